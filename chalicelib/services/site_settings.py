"""System settings by hand (SPEC 6–10): sites, buildings and floors, units, collectors and meters, and the site's
default parameters with a meter's own overrides. Bulk import is services/meter_import.py.

Every change is one DynamoDB transaction with its operation-log record (before and after). The rules live in
domain/settings.py; a meter is checked by the import's own checker (domain/meter_form.py). Removals are refused
while something still depends on the thing removed: a unit still supplied by meters, a collector still carrying
meters or served by a gateway bridge, a building with units or collectors, a meter on an open customer account.

What is not guarded: the "still used" checks read and then write, so a meter added to a unit in the same instant
the unit is removed can be left pointing at nothing; and two operators editing one item at once, the later save
wins. Both need two people on one site's settings within a second.

After a change that alters what the site's buses must read (a meter added, moved or removed, the reading interval
changed), the site's gateway bridges get fresh standing read plans. Alarms and the bridge's meter registry pick up
changes within their 30 s caches.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, TypeVar
from zoneinfo import ZoneInfo

from chalicelib.domain.access import ALL_SITES, Permission, Role
from chalicelib.domain.actor import Actor
from chalicelib.domain.bridges import BridgeStatus
from chalicelib.domain.commands import CommandRecord
from chalicelib.domain.errors import Conflict, NotFound
from chalicelib.domain.settings import (
    EffectiveSettings,
    SettingsForbidden,
    SettingsInvalid,
    SettingsRefused,
    building_removable,
    check_building,
    check_collector,
    check_unit,
    collector_removable,
    effective_settings,
    flat_tariff,
    meter_with_overrides,
    meters_broken_by,
    parse_endpoint,
    parse_floors,
    parse_name,
    parse_new_id,
    parse_price,
    parse_transport,
    site_with_defaults,
    snapshot,
    unit_removable,
)
from chalicelib.domain.tenancy import (
    Building,
    Collector,
    Meter,
    Site,
    SiteNode,
    Unit,
    check_id,
    new_id,
)
from chalicelib.ports import (
    Clock,
    MoneyRepository,
    OperationLog,
    TariffRepository,
    TenancyRepository,
    TenancyWriter,
)
from chalicelib.services.audit import operation
from chalicelib.services.bridge_link import BridgeLink
from chalicelib.services.meter_control import MeterControl
from chalicelib.services.scoping import site_in_scope
from chalicelib.services.tariffs import TariffService

if TYPE_CHECKING:  # the import's checker loads with the first meter change, not with every settings page
    from chalicelib.domain.meter_import import SiteContext

LOG = logging.getLogger("voltvend.site_settings")
Values = Mapping[str, object]
_T = TypeVar("_T")


@dataclass(frozen=True)
class SiteSettings:
    """Everything the settings page shows."""

    site: Site
    buildings: list[Building]
    units: list[Unit]
    collectors: list[Collector]
    meters: list[Meter]
    effective: dict[str, EffectiveSettings]  # by meter id
    tariff_versions: int
    models: list[str]

    def unit(self, unit_id: str) -> Unit | None:
        return next((u for u in self.units if u.unit_id == unit_id), None)

    def building(self, building_id: str) -> Building | None:
        return next((b for b in self.buildings if b.building_id == building_id), None)


@dataclass(frozen=True)
class SavedDefaults:
    site: Site
    tariff_added: bool


@dataclass(frozen=True)
class PushOutcome:
    records: list[CommandRecord]
    meters: int  # meters asked; the difference is plain meters and meters no bridge serves


class SiteSettingsService:
    def __init__(self, tenancy: TenancyRepository, writer: TenancyWriter, money: MoneyRepository,
                 tariffs: TariffRepository, oplog: OperationLog, clock: Clock, tariff_service: TariffService,
                 control: MeterControl, link: BridgeLink) -> None:
        self._tenancy = tenancy
        self._writer = writer
        self._money = money
        self._tariffs = tariffs
        self._oplog = oplog
        self._clock = clock
        self._tariff_service = tariff_service
        self._control = control
        self._link = link

    # -- reading -----------------------------------------------------------------------------------------
    def view(self, actor: Actor, site_id: str) -> SiteSettings:
        from chalicelib.services.meter_import import _model_names

        site = self._site(actor, site_id)
        op = actor.operator_id
        units = sorted(self._tenancy.list_units(op, site_id), key=lambda u: (u.building_id, u.floor, u.number))
        meters = sorted(self._tenancy.list_meters(op, site_id), key=lambda m: (m.collector_id, m.address))
        history = self._tariffs.history(op, site_id)
        return SiteSettings(site, sorted(self._tenancy.list_buildings(op, site_id), key=lambda b: b.name), units,
                            sorted(self._tenancy.list_collectors(op, site_id), key=lambda c: c.collector_id), meters,
                            {m.meter_id: effective_settings(site, m) for m in meters},
                            len(history.versions) if history else 0, list(_model_names()))

    def meter(self, actor: Actor, site_id: str, meter_id: str) -> tuple[SiteSettings, Meter]:
        settings = self.view(actor, site_id)
        check_id(meter_id, field="meter_id")
        found = next((m for m in settings.meters if m.meter_id == meter_id), None)
        if found is None:
            raise NotFound("no such meter")
        return settings, found

    # -- sites -------------------------------------------------------------------------------------------
    def create_site(self, actor: Actor, values: Values) -> Site:
        """A new site, registered for the schedulers like every site. Only an administrator over all sites may:
        anyone narrower could create a site they would then not see."""
        self.require_site_creator(actor)
        site_id = parse_new_id(values.get("site_id"), field="site_id", label="site ID", make=lambda: new_id("site"))
        blank = Site(actor.operator_id, site_id, "-")
        site = site_with_defaults(blank, {"name": values.get("name"), "address": values.get("address", "")})
        self._write(actor, "site.create", f"site:{site_id}", None, site, create=True)
        return site

    def require_site_creator(self, actor: Actor) -> None:
        actor.require(Permission.SETTINGS_MANAGE)
        if actor.grant.role is not Role.ADMINISTRATOR or ALL_SITES not in actor.grant.sites:
            raise SettingsForbidden("admin_only")

    def save_defaults(self, actor: Actor, site_id: str, values: Values) -> SavedDefaults:
        """Name, address and default parameters; a default price gives a site without a tariff its first one."""
        site = self._site(actor, site_id)
        changed = site_with_defaults(site, values)
        meters_broken_by(changed, self._tenancy.list_meters(actor.operator_id, site_id))
        price = parse_price(values.get("default_price"))
        if price is not None and self._tariffs.history(actor.operator_id, site_id) is not None:
            raise SettingsRefused("has_tariff", field="default_price")
        if changed != site:
            self._write(actor, "site.update", f"site:{site_id}", site, changed, create=False)
        if price is not None:
            operator = self._tenancy.get_operator(actor.operator_id)
            now = self._clock.now().astimezone(ZoneInfo(operator.timezone if operator else "UTC"))
            self._tariff_service.add_site_version(actor, site_id, flat_tariff(price, now))
        if changed.reading_interval_s != site.reading_interval_s:
            self._replan(actor.operator_id, site_id)
        return SavedDefaults(changed, price is not None)

    # -- buildings ---------------------------------------------------------------------------------------
    def add_building(self, actor: Actor, site_id: str, values: Values) -> Building:
        self._site(actor, site_id)
        building_id = parse_new_id(values.get("building_id"), field="building_id", label="building ID",
                                   make=lambda: new_id("bldg"))
        building = Building(actor.operator_id, site_id, building_id, parse_name(values.get("name"),
                                                                                label="building name"),
                            parse_floors(values.get("floors", "")))
        check_building(building, self._tenancy.list_buildings(actor.operator_id, site_id), [])
        self._write(actor, "building.create", f"building:{building_id}@{site_id}", None, building, create=True)
        return building

    def update_building(self, actor: Actor, site_id: str, building_id: str, values: Values) -> Building:
        self._site(actor, site_id)
        buildings = self._tenancy.list_buildings(actor.operator_id, site_id)
        before = _find(buildings, building_id, lambda b: b.building_id, "building")
        after = replace(before,
                        name=parse_name(values["name"], label="building name") if "name" in values else before.name,
                        floors=parse_floors(values["floors"]) if "floors" in values else before.floors)
        check_building(after, buildings, self._tenancy.list_units(actor.operator_id, site_id))
        self._write(actor, "building.update", f"building:{building_id}@{site_id}", before, after, create=False)
        return after

    def remove_building(self, actor: Actor, site_id: str, building_id: str) -> None:
        self._site(actor, site_id)
        op = actor.operator_id
        building = _find(self._tenancy.list_buildings(op, site_id), building_id, lambda b: b.building_id, "building")
        building_removable(building, self._tenancy.list_units(op, site_id), self._tenancy.list_collectors(op, site_id))
        self._remove(actor, "building.remove", f"building:{building_id}@{site_id}", building)

    # -- units -------------------------------------------------------------------------------------------
    def add_unit(self, actor: Actor, site_id: str, values: Values) -> Unit:
        self._site(actor, site_id)
        unit = self._checked_unit(actor, site_id, Unit(actor.operator_id, site_id, new_id("unit"), "", "", ""),
                                  values)
        self._write(actor, "unit.create", f"unit:{unit.unit_id}@{site_id}", None, unit, create=True)
        return unit

    def update_unit(self, actor: Actor, site_id: str, unit_id: str, values: Values) -> Unit:
        self._site(actor, site_id)
        before = _find(self._tenancy.list_units(actor.operator_id, site_id), unit_id, lambda u: u.unit_id, "unit")
        after = self._checked_unit(actor, site_id, before, values)
        self._write(actor, "unit.update", f"unit:{unit_id}@{site_id}", before, after, create=False)
        return after

    def remove_unit(self, actor: Actor, site_id: str, unit_id: str) -> None:
        self._site(actor, site_id)
        unit = _find(self._tenancy.list_units(actor.operator_id, site_id), unit_id, lambda u: u.unit_id, "unit")
        unit_removable(unit, self._tenancy.list_meters(actor.operator_id, site_id))
        self._remove(actor, "unit.remove", f"unit:{unit_id}@{site_id}", unit)

    def _checked_unit(self, actor: Actor, site_id: str, unit: Unit, values: Values) -> Unit:
        def text(key: str, label: str, current: str, longest: int) -> str:
            return parse_name(values[key], field=key, label=label, longest=longest) if key in values else current

        drafted = replace(unit, building_id=text("building_id", "building", unit.building_id, 64),
                          floor=text("floor", "floor", unit.floor, 20), number=text("number", "unit number",
                                                                                    unit.number, 40))
        for key, label in (("building_id", "building"), ("floor", "floor"), ("number", "unit number")):
            if not getattr(drafted, key):
                raise SettingsInvalid("required", field=key, label=label)
        return check_unit(drafted, self._tenancy.list_buildings(actor.operator_id, site_id),
                          self._tenancy.list_units(actor.operator_id, site_id))

    # -- collectors --------------------------------------------------------------------------------------
    def add_collector(self, actor: Actor, site_id: str, values: Values) -> Collector:
        self._site(actor, site_id)
        collector_id = parse_new_id(values.get("collector_id"), field="collector_id", label="collector ID",
                                    make=lambda: new_id("coll"))
        collector = self._checked_collector(actor, site_id, collector_id, values, None)
        self._write(actor, "collector.create", f"collector:{collector_id}@{site_id}", None, collector, create=True)
        return collector

    def update_collector(self, actor: Actor, site_id: str, collector_id: str, values: Values) -> Collector:
        self._site(actor, site_id)
        before = _find(self._tenancy.list_collectors(actor.operator_id, site_id), collector_id,
                       lambda c: c.collector_id, "collector")
        after = self._checked_collector(actor, site_id, collector_id, values, before)
        self._write(actor, "collector.update", f"collector:{collector_id}@{site_id}", before, after, create=False)
        return after

    def remove_collector(self, actor: Actor, site_id: str, collector_id: str) -> None:
        self._site(actor, site_id)
        collector = _find(self._tenancy.list_collectors(actor.operator_id, site_id), collector_id,
                          lambda c: c.collector_id, "collector")
        bridged = next((b.bridge_id for b in self._link.bridges_of(actor.operator_id, site_id)
                        if collector_id in b.collectors and b.status is not BridgeStatus.REVOKED), None)
        collector_removable(collector, self._tenancy.list_meters(actor.operator_id, site_id), bridged)
        self._remove(actor, "collector.remove", f"collector:{collector_id}@{site_id}", collector)

    def _checked_collector(self, actor: Actor, site_id: str, collector_id: str, values: Values,
                           before: Collector | None) -> Collector:
        def given(key: str, current: object) -> object:
            return values.get(key, current)

        transport = parse_transport(given("transport", before.transport.value if before else ""))
        host, port = parse_endpoint(transport, given("host", before.host if before else ""),
                                    given("port", before.port if before else ""))
        building_id = parse_name(given("building_id", before.building_id if before else ""), field="building_id",
                                 label="building", longest=64, required=False)
        collector = Collector(actor.operator_id, site_id, collector_id,
                              parse_name(given("name", before.name if before else ""), label="collector name"),
                              transport, host, port, building_id)
        check_collector(collector, self._tenancy.list_buildings(actor.operator_id, site_id),
                        self._tenancy.list_collectors(actor.operator_id, site_id))
        return collector

    # -- meters ------------------------------------------------------------------------------------------
    def add_meter(self, actor: Actor, site_id: str, values: Values) -> Meter:
        from chalicelib.domain.meter_form import checked_meter

        site = self._site(actor, site_id)
        meter = meter_with_overrides(checked_meter(values, self._context(actor, site_id, None)), site, values)
        self._write(actor, "meter.create", f"meter:{meter.meter_id}@{site_id}", None, meter, create=True)
        self._replan(actor.operator_id, site_id)
        return meter

    def update_meter(self, actor: Actor, site_id: str, meter_id: str, values: Values) -> Meter:
        from chalicelib.domain.meter_form import checked_meter

        site = self._site(actor, site_id)
        before = self._existing_meter(actor, site_id, meter_id)
        after = meter_with_overrides(checked_meter(values, self._context(actor, site_id, meter_id), existing=before),
                                     site, values)
        if after.billing_mode is not before.billing_mode:
            account = self._open_account(actor, meter_id)
            if account is not None:  # the account's ledger and the meter's money state keep the billing mode
                raise SettingsRefused("billing_on_account", field="billing_mode", value=meter_id, account=account)
        self._write(actor, "meter.update", f"meter:{meter_id}@{site_id}", before, after, create=False)
        if (after.collector_id, after.address, after.model) != (before.collector_id, before.address, before.model):
            self._replan(actor.operator_id, site_id)
        return after

    def remove_meter(self, actor: Actor, site_id: str, meter_id: str) -> None:
        self._site(actor, site_id)
        meter = self._existing_meter(actor, site_id, meter_id)
        money = self._money.money(actor.operator_id, meter_id)
        if money is not None and money.account_id is not None:
            raise SettingsRefused("meter_on_account", value=meter_id, account=money.account_id)
        if money is not None and money.queue.undelivered():
            raise SettingsRefused("credit_on_its_way", value=meter_id)
        self._remove(actor, "meter.remove", f"meter:{meter_id}@{site_id}", meter)
        self._replan(actor.operator_id, site_id)

    def push_settings(self, actor: Actor, site_id: str, meter_ids: list[str] | None = None) -> PushOutcome:
        """Write each meter's effective alarm amounts, hoarding limit and overload threshold into it (prepaid
        meters with a bridge; the read-back decides each command's outcome)."""
        actor.require(Permission.METERS_CONTROL)
        self._site(actor, site_id)
        meters = self._tenancy.list_meters(actor.operator_id, site_id)
        if meter_ids is not None:
            for meter_id in meter_ids:
                check_id(meter_id, field="meter_id")
            meters = [m for m in meters if m.meter_id in set(meter_ids)]
            if not meters:
                raise NotFound("no such meter")
        records = self._control.push_settings(
            meters, values_for=lambda site, meter: effective_settings(site, meter).register_values())
        self._log_push(actor, site_id, len(meters), records)
        return PushOutcome(records, len(meters))

    def _log_push(self, actor: Actor, site_id: str, meters: int, records: list[CommandRecord]) -> None:
        self._oplog.append(operation(actor.operator_id, actor.username, "meter.push_settings", f"site:{site_id}",
                                     self._clock.now(), source_ip=actor.source_ip, meters=meters,
                                     commands=len(records), command_ids=[r.command_id for r in records[:300]]))

    def site(self, actor: Actor, site_id: str) -> Site:
        """The actor's site, if they may manage its settings (404 for another operator's)."""
        return self._site(actor, site_id)

    # -- helpers -----------------------------------------------------------------------------------------
    def _site(self, actor: Actor, site_id: str) -> Site:
        actor.require(Permission.SETTINGS_MANAGE)
        return site_in_scope(self._tenancy, actor, site_id)

    def _existing_meter(self, actor: Actor, site_id: str, meter_id: str) -> Meter:
        check_id(meter_id, field="meter_id")
        found = self._tenancy.get_meters(actor.operator_id, site_id, [meter_id])
        if not found:
            raise NotFound("no such meter")
        return found[0]

    def _open_account(self, actor: Actor, meter_id: str) -> str | None:
        money = self._money.money(actor.operator_id, meter_id)
        return money.account_id if money is not None else None

    def _context(self, actor: Actor, site_id: str, leave_out: str | None) -> SiteContext:
        """What the import's checker judges a meter against, without the meter being edited."""
        from chalicelib.domain.meter_import import SiteContext
        from chalicelib.services.meter_import import _model_names, resolve_model

        op = actor.operator_id
        site_meters = [m for m in self._tenancy.list_meters(op, site_id) if m.meter_id != leave_out]
        others = [m for s in self._tenancy.list_sites(op) if s.site_id != site_id
                  for m in self._tenancy.list_meters(op, s.site_id)]
        return SiteContext(op, site_id, self._tenancy.list_buildings(op, site_id),
                           self._tenancy.list_units(op, site_id), self._tenancy.list_collectors(op, site_id),
                           site_meters, site_meters + others, resolve_model, _model_names())

    def _write(self, actor: Actor, action: str, target: str, before: SiteNode | None, after: SiteNode, *,
               create: bool) -> None:
        record = operation(actor.operator_id, actor.username, action, target, self._clock.now(),
                           before=snapshot(before) if before is not None else None, after=snapshot(after),
                           source_ip=actor.source_ip)
        try:
            self._writer.put_node(after, record, create=create)
        except Conflict as taken:
            if not create:
                raise
            id_field = "site_id" if isinstance(after, Site) else f"{type(after).__name__.lower()}_id"
            raise SettingsRefused("id_taken", field=id_field, value=getattr(after, id_field)) from taken

    def _remove(self, actor: Actor, action: str, target: str, node: Building | Unit | Collector | Meter) -> None:
        record = operation(actor.operator_id, actor.username, action, target, self._clock.now(),
                           before=snapshot(node), source_ip=actor.source_ip)
        self._writer.remove_node(node, record)

    def _replan(self, operator_id: str, site_id: str) -> None:
        """Fresh standing read plans for the site's bridges. The change is saved already: a bridge that cannot be
        told now gets the plan on its next hello, so a failure here is logged, not raised."""
        for bridge in self._link.bridges_of(operator_id, site_id):
            if bridge.status is BridgeStatus.REVOKED:
                continue
            try:
                self._link.push_plans(bridge)
            except Exception:
                LOG.exception("could not send new read plans to bridge %s", bridge.bridge_id)


def _find(items: list[_T], wanted: str, key: Callable[[_T], str], what: str) -> _T:
    """The item with id ``wanted``; another operator's id or a removed one answers alike (404)."""
    check_id(wanted, field=f"{what}_id")
    found = next((i for i in items if key(i) == wanted), None)
    if found is None:
        raise NotFound(f"no such {what}")
    return found
