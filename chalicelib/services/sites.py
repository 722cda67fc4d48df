"""Read side of the tenancy tree for the back office, limited to the sites an operator may see."""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.domain.access import Permission
from chalicelib.domain.actor import Actor
from chalicelib.domain.errors import NotFound
from chalicelib.domain.tenancy import Building, Collector, Meter, Site, Unit, check_id
from chalicelib.ports import TenancyRepository


@dataclass(frozen=True)
class SiteOverview:
    site: Site
    buildings: list[Building]
    units: list[Unit]
    collectors: list[Collector]
    meters: list[Meter]

    def unit(self, unit_id: str) -> Unit | None:
        return next((u for u in self.units if u.unit_id == unit_id), None)


class SiteQueries:
    def __init__(self, tenancy: TenancyRepository) -> None:
        self._tenancy = tenancy

    def sites(self, actor: Actor) -> list[Site]:
        actor.require(Permission.METERS_VIEW)
        return [s for s in self._tenancy.list_sites(actor.operator_id) if actor.grant.covers_site(s.site_id)]

    def overview(self, actor: Actor, site_id: str) -> SiteOverview:
        actor.require(Permission.METERS_VIEW)
        check_id(site_id, field="site_id")
        site = self._tenancy.get_site(actor.operator_id, site_id)
        # A site outside the actor's scope answers like a missing one: nothing to learn from ids.
        if site is None or not actor.grant.covers_site(site_id):
            raise NotFound("no such site")
        op = actor.operator_id
        return SiteOverview(site, self._tenancy.list_buildings(op, site_id), self._tenancy.list_units(op, site_id),
                            self._tenancy.list_collectors(op, site_id), self._tenancy.list_meters(op, site_id))
