"""Operator-triggered bridge actions on a site: "read now" (SPEC 1) and re-sending read plans."""

from __future__ import annotations

from chalicelib.domain.access import Permission
from chalicelib.domain.actor import Actor
from chalicelib.domain.errors import Conflict, NotFound
from chalicelib.ports import Clock, OperationLog, TenancyRepository
from chalicelib.services.audit import operation
from chalicelib.services.bridge_link import BridgeLink
from chalicelib.services.scoping import site_in_scope


class SiteControl:
    def __init__(self, link: BridgeLink, tenancy: TenancyRepository, oplog: OperationLog, clock: Clock) -> None:
        self._link = link
        self._tenancy = tenancy
        self._oplog = oplog
        self._clock = clock

    def read_now(self, actor: Actor, site_id: str, meter_id: str | None = None) -> int:
        """Ask the site's bridges for a fresh read of every meter (or one); returns buses asked."""
        actor.require(Permission.METERS_CONTROL)
        site_in_scope(self._tenancy, actor, site_id)
        meters = [m for m in self._tenancy.list_meters(actor.operator_id, site_id)
                  if meter_id is None or m.meter_id == meter_id]
        if not meters:
            raise NotFound("no such meter")
        asked = sum(self._link.read_now(bridge, meters) for bridge in self._link.bridges_of(actor.operator_id, site_id))
        self._oplog.append(operation(actor.operator_id, actor.username, "meters.read_now", f"site:{site_id}",
                                     self._clock.now(), source_ip=actor.source_ip, meter=meter_id or "all",
                                     buses=asked))
        if not asked:
            raise Conflict("no bridge of this site is connected; the next reading comes when it reconnects")
        return asked
