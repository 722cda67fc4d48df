"""Read side of the tenancy tree for the back office, limited to the sites an operator may see."""

from __future__ import annotations

from dataclasses import dataclass, field

from chalicelib.domain.access import Permission
from chalicelib.domain.actor import Actor
from chalicelib.domain.bridges import Bridge
from chalicelib.domain.meter_state import Condition, MeterState, condition, state_from_values
from chalicelib.domain.tenancy import Building, Collector, Meter, Site, Unit
from chalicelib.ports import BridgeRepository, ReadingsRepository, TenancyRepository
from chalicelib.services.scoping import site_in_scope


@dataclass(frozen=True)
class MeterRow:
    meter: Meter
    unit: Unit | None
    state: MeterState | None
    condition: Condition
    missed_cycles: int


@dataclass(frozen=True)
class SiteOverview:
    site: Site
    buildings: list[Building]
    units: list[Unit]
    collectors: list[Collector]
    meters: list[Meter]
    rows: list[MeterRow] = field(default_factory=list)
    bridges: list[Bridge] = field(default_factory=list)

    def unit(self, unit_id: str) -> Unit | None:
        return next((u for u in self.units if u.unit_id == unit_id), None)


class SiteQueries:
    def __init__(self, tenancy: TenancyRepository, readings: ReadingsRepository,
                 bridges: BridgeRepository) -> None:
        self._tenancy = tenancy
        self._readings = readings
        self._bridges = bridges

    def sites(self, actor: Actor) -> list[Site]:
        actor.require(Permission.METERS_VIEW)
        return [s for s in self._tenancy.list_sites(actor.operator_id) if actor.grant.covers_site(s.site_id)]

    def overview(self, actor: Actor, site_id: str) -> SiteOverview:
        actor.require(Permission.METERS_VIEW)
        site = site_in_scope(self._tenancy, actor, site_id)
        op = actor.operator_id
        units, meters = self._tenancy.list_units(op, site_id), self._tenancy.list_meters(op, site_id)
        return SiteOverview(site, self._tenancy.list_buildings(op, site_id), units,
                            self._tenancy.list_collectors(op, site_id), meters, self._rows(op, site_id, meters, units),
                            [b for b in self._bridges.list(op) if b.site_id == site_id])

    def _rows(self, operator_id: str, site_id: str, meters: list[Meter], units: list[Unit]) -> list[MeterRow]:
        stored = {s.meter_id: s for s in self._readings.list_states(operator_id, site_id)}
        units_by_id = {u.unit_id: u for u in units}
        rows = []
        for meter in sorted(meters, key=lambda m: (units_by_id[m.unit_id].number if m.unit_id in units_by_id
                                                    else m.unit_id)):
            saved = stored.get(meter.meter_id)
            state = state_from_values(meter.meter_id, saved.last_answer_at, saved.values) \
                if saved and saved.last_answer_at else None
            missed = saved.missed_cycles if saved else 0
            rows.append(MeterRow(meter, units_by_id.get(meter.unit_id), state, condition(state, missed), missed))
        return rows
