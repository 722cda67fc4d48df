"""Registering a site's gateway bridge (credential + collector keys) and revoking it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway_bridge.protocol import ChannelState, KeyRing, Suite, generate_key

from chalicelib.domain.access import Permission
from chalicelib.domain.actor import Actor
from chalicelib.domain.bridges import (
    Bridge,
    BridgeStatus,
    TunnelState,
    bridge_id_for,
    credential_digest,
    new_credential,
)
from chalicelib.domain.errors import NotFound, ValidationError
from chalicelib.ports import BridgeRepository, Clock, TenancyRepository
from chalicelib.services.audit import operation
from chalicelib.services.scoping import site_in_scope


@dataclass(frozen=True)
class BridgeBundle:
    """What the installer copies to the bridge box, shown once: the credential is not stored in clear."""

    bridge_id: str
    site_id: str
    credential: str
    keyrings: dict[str, dict[str, Any]]


class BridgeAdmin:
    def __init__(self, bridges: BridgeRepository, tenancy: TenancyRepository, clock: Clock) -> None:
        self._bridges = bridges
        self._tenancy = tenancy
        self._clock = clock

    def register(self, actor: Actor, site_id: str, name: str, *, suite: Suite = Suite.TDES_CBC_HMAC) -> BridgeBundle:
        actor.require(Permission.SETTINGS_MANAGE)
        site_in_scope(self._tenancy, actor, site_id)
        collectors = [c.collector_id for c in self._tenancy.list_collectors(actor.operator_id, site_id)]
        if not collectors:
            raise ValidationError("the site has no collectors to bridge yet", field="site_id")
        bridge_id = bridge_id_for(actor.operator_id, name)
        credential = new_credential()
        now_ms = int(self._clock.now().timestamp() * 1000)
        rings = {c: KeyRing(current=generate_key(1, suite, now_ms)) for c in collectors}
        tunnels = [TunnelState(c, ring.to_dict(), ChannelState().to_dict(), ChannelState().to_dict(), 0)
                   for c, ring in rings.items()]
        bridge = Bridge(actor.operator_id, bridge_id, site_id, tuple(collectors), credential_digest(credential))
        record = operation(actor.operator_id, actor.username, "bridge.register", f"bridge:{bridge_id}",
                           self._clock.now(), after={"site_id": site_id, "collectors": collectors,
                                                     "suite": suite.value}, source_ip=actor.source_ip)
        self._bridges.register(bridge, tunnels, record)
        return BridgeBundle(bridge_id, site_id, credential, {c: r.to_dict() for c, r in rings.items()})

    def revoke(self, actor: Actor, bridge_id: str) -> None:
        actor.require(Permission.SETTINGS_MANAGE)
        bridge = self._bridges.get(actor.operator_id, bridge_id)
        if bridge is None or not actor.grant.covers_site(bridge.site_id):
            raise NotFound("no such bridge")
        record = operation(actor.operator_id, actor.username, "bridge.revoke", f"bridge:{bridge_id}",
                           self._clock.now(), before={"status": bridge.status.value},
                           after={"status": BridgeStatus.REVOKED.value}, source_ip=actor.source_ip)
        self._bridges.set_status(actor.operator_id, bridge_id, BridgeStatus.REVOKED, record)

    def list(self, actor: Actor) -> list[Bridge]:
        actor.require(Permission.METERS_VIEW)
        return [b for b in self._bridges.list(actor.operator_id) if actor.grant.covers_site(b.site_id)]
