"""Site tariffs (versioned, SPEC pricing) and pushing the prices in force to the site's prepaid meters."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from chalicelib.domain.access import Permission
from chalicelib.domain.actor import Actor
from chalicelib.domain.commands import CommandRecord
from chalicelib.domain.errors import NotFound
from chalicelib.domain.tariffs import RatePrices, Tariff, TariffHistory, meter_prices_at
from chalicelib.domain.tariffs.json_format import tariff_from_json
from chalicelib.domain.tenancy import BillingMode, Meter, Site, check_id
from chalicelib.ports import Clock, OperationLog, ReadingsRepository, TariffRepository, TenancyRepository
from chalicelib.services.audit import operation
from chalicelib.services.bridge_link import BridgeLink
from chalicelib.services.meter_commands import MeterCommands
from chalicelib.services.scoping import site_in_scope


class TariffService:
    def __init__(self, tariffs: TariffRepository, commands: MeterCommands, link: BridgeLink,
                 tenancy: TenancyRepository, readings: ReadingsRepository, oplog: OperationLog,
                 clock: Clock) -> None:
        self._tariffs = tariffs
        self._commands = commands
        self._link = link
        self._tenancy = tenancy
        self._readings = readings
        self._oplog = oplog
        self._clock = clock

    def add_site_version(self, actor: Actor, site_id: str, body: Any, meter_id: str | None = None) -> Tariff:
        """A new version of the site's default tariff, or of one meter's own price when ``meter_id`` is given."""
        actor.require(Permission.SETTINGS_MANAGE)
        self._site(actor, site_id)
        scope = "site"
        if meter_id is not None:
            if not self._tenancy.get_meters(actor.operator_id, site_id, [check_id(meter_id, field="meter_id")]):
                raise NotFound("no such meter")
            scope = f"meter:{meter_id}"
        tariff = tariff_from_json(body)
        self._tariffs.add_version(actor.operator_id, site_id, scope, tariff)  # Conflict if that time is taken
        self._oplog.append(operation(actor.operator_id, actor.username, "tariff.add_version", f"{scope}@{site_id}",
                                     self._clock.now(), after=body if isinstance(body, dict) else None,
                                     source_ip=actor.source_ip))
        return tariff

    def history(self, actor: Actor, site_id: str) -> TariffHistory | None:
        actor.require(Permission.METERS_VIEW)
        self._site(actor, site_id)
        return self._tariffs.history(actor.operator_id, site_id)

    def push_prices(self, actor: Actor, site_id: str) -> list[CommandRecord]:
        """Write the prices in force now (with each meter's ladder tier) into every prepaid meter."""
        actor.require(Permission.METERS_CONTROL)
        self._site(actor, site_id)
        histories = self._tariffs.histories(actor.operator_id, site_id)
        if "site" not in histories:
            raise NotFound("the site has no tariff yet")
        records = self._push(self._tenancy.list_meters(actor.operator_id, site_id), histories)
        self._oplog.append(operation(actor.operator_id, actor.username, "tariff.push_prices", f"site:{site_id}",
                                     self._clock.now(), source_ip=actor.source_ip, meters=len(records)))
        return records

    def push_to_meters(self, meters: list[Meter]) -> list[CommandRecord]:
        """The prices in force now written into these prepaid meters (a meter joining an account, say)."""
        if not meters:
            return []
        return self._push(meters, self._tariffs.histories(meters[0].operator_id, meters[0].site_id))

    def _push(self, meters: list[Meter], histories: dict[str, TariffHistory]) -> list[CommandRecord]:
        if not meters:
            return []
        prices = self._prices(meters, histories)
        bridges = {c: b for b in self._link.bridges_of(meters[0].operator_id, meters[0].site_id) for c in b.collectors}
        return [self._commands.push_prices(bridge, meter, prices[meter.meter_id]) for meter in meters
                if meter.meter_id in prices and (bridge := bridges.get(meter.collector_id)) is not None]

    def prices_for(self, meters: list[Meter]) -> dict[str, RatePrices]:
        """The prices each prepaid meter must hold now (its own tariff or the site's, its ladder tier)."""
        if not meters:
            return {}
        return self._prices(meters, self._tariffs.histories(meters[0].operator_id, meters[0].site_id))

    def _prices(self, meters: list[Meter], histories: dict[str, TariffHistory]) -> dict[str, RatePrices]:
        if "site" not in histories and not any(f"meter:{m.meter_id}" in histories for m in meters):
            return {}
        operator = self._tenancy.get_operator(meters[0].operator_id)
        zone = ZoneInfo(operator.timezone if operator else "UTC")
        found = {}
        for meter in meters:
            history = histories.get(f"meter:{meter.meter_id}") or histories.get("site")
            if meter.billing_mode is BillingMode.PREPAID_METER and history is not None:
                found[meter.meter_id] = meter_prices_at(history, zone, self._clock.now(),
                                                        self._month_energy(meter, zone))
        return found

    def price_now(self, meter: Meter) -> int | None:
        """The energy price in force for ``meter`` now (its rate at this time, its ladder tier this month), in
        1/10000 of the currency per kWh; None when the site has no tariff."""
        histories = self._tariffs.histories(meter.operator_id, meter.site_id)
        history = histories.get(f"meter:{meter.meter_id}") or histories.get("site")
        if history is None:
            return None
        operator = self._tenancy.get_operator(meter.operator_id)
        zone = ZoneInfo(operator.timezone if operator else "UTC")
        now = self._clock.now()
        prices = meter_prices_at(history, zone, now, self._month_energy(meter, zone))
        return prices.for_rate(history.in_force_at(now).rate_at(now.astimezone(zone)))

    def commands(self, actor: Actor, site_id: str) -> list[CommandRecord]:
        actor.require(Permission.METERS_VIEW)
        self._site(actor, site_id)
        return self._tariffs.commands(actor.operator_id, site_id)

    def _month_energy(self, meter: Meter, zone: ZoneInfo) -> int:
        """This month's energy in centi-kWh so far (the ladder's position); 0 while unknown."""
        local = self._clock.now().astimezone(zone)
        month_start = int(local.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp() * 1000)
        opening = self._readings.last_reading_before(meter.operator_id, meter.meter_id, month_start)
        states = self._readings.get_states(meter.operator_id, meter.site_id, [meter.meter_id])
        if opening is None or not states or "energy_total" not in states[0].values:
            return 0
        return int((_kwh(states[0].values["energy_total"]) - _kwh(opening.get("energy_total", 0))) * 100)

    def _site(self, actor: Actor, site_id: str) -> Site:
        return site_in_scope(self._tenancy, actor, site_id)


def _kwh(value: object) -> Any:
    from decimal import Decimal

    return Decimal(str(value))
