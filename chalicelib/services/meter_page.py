"""One meter's page (SPEC 16, 15.2–15.4 for one meter): its registers, account, recent commands, and its reading
history by day with an export of the raw readings."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from chalicelib.domain.access import Permission
from chalicelib.domain.actor import Actor
from chalicelib.domain.commands import CommandRecord
from chalicelib.domain.errors import NotFound, ValidationError
from chalicelib.domain.history import EXPORT_COLUMNS as EXPORT_COLUMNS
from chalicelib.domain.history import DayLine, daily_lines
from chalicelib.domain.history import export_row as export_row
from chalicelib.domain.meter_money import MeterMoney
from chalicelib.domain.meter_state import Condition, MeterState, condition, state_from_values
from chalicelib.domain.readings import StoredState
from chalicelib.domain.tenancy import Meter, Unit, check_id
from chalicelib.ports import Clock, MoneyRepository, ReadingsRepository, TariffRepository, TenancyRepository
from chalicelib.services.scoping import site_in_scope

MAX_DAYS = 366


@dataclass(frozen=True)
class MeterView:
    meter: Meter
    unit: Unit | None
    state: StoredState | None
    money: MeterMoney | None
    commands: list[CommandRecord]
    history: list[DayLine]
    zone: ZoneInfo

    @property
    def reading(self) -> MeterState | None:
        return state_from_values(self.meter.meter_id, self.state.read_at, self.state.values) if self.state else None

    @property
    def condition(self) -> Condition:
        return condition(self.reading, self.state.missed_cycles if self.state else 0)


def _days(text: str | int) -> int:
    try:
        days = int(text)
    except (TypeError, ValueError) as error:
        raise ValidationError("days: a whole number", field="days") from error
    if not 1 <= days <= MAX_DAYS:
        raise ValidationError(f"days: 1 to {MAX_DAYS}", field="days")
    return days


class MeterPages:
    def __init__(self, tenancy: TenancyRepository, readings: ReadingsRepository, money: MoneyRepository,
                 records: TariffRepository, clock: Clock) -> None:
        self._tenancy = tenancy
        self._readings = readings
        self._money = money
        self._records = records
        self._clock = clock

    def view(self, actor: Actor, site_id: str, meter_id: str, days: str | int = 30) -> MeterView:
        meter, zone = self._meter(actor, site_id, meter_id)
        states = self._readings.get_states(actor.operator_id, meter.site_id, [meter_id])
        unit = next((u for u in self._tenancy.list_units(actor.operator_id, meter.site_id)
                     if u.unit_id == meter.unit_id), None)
        commands = [r for r in self._records.commands(actor.operator_id, meter.site_id) if r.meter_id == meter_id]
        return MeterView(meter, unit, states[0] if states else None, self._money.money(actor.operator_id, meter_id),
                         commands[:10], self.history(meter, zone, _days(days)), zone)

    def history(self, meter: Meter, zone: ZoneInfo, days: int) -> list[DayLine]:
        today = self._clock.now().astimezone(zone).date()
        first = today - timedelta(days=days - 1)
        span = [first + timedelta(days=n) for n in range(days)]
        boundaries = [self._readings.last_reading_before(meter.operator_id, meter.meter_id, _start_ms(day, zone))
                      for day in [*span, today + timedelta(days=1)]]
        return daily_lines(span, boundaries)

    def readings(self, actor: Actor, site_id: str, meter_id: str,
                 days: str | int = 30) -> tuple[Meter, Iterator[tuple[datetime, dict[str, object]]]]:
        """The raw readings of the last ``days`` days, oldest first, in the operator's time zone."""
        meter, zone = self._meter(actor, site_id, meter_id)
        end = self._clock.now()
        start = end - timedelta(days=_days(days))
        rows = self._readings.readings_between(actor.operator_id, meter_id, int(start.timestamp() * 1000),
                                               int(end.timestamp() * 1000) + 1)
        return meter, ((datetime.fromtimestamp(at / 1000, zone), values) for at, values in rows)

    def _meter(self, actor: Actor, site_id: str, meter_id: str) -> tuple[Meter, ZoneInfo]:
        actor.require(Permission.METERS_VIEW)
        site = site_in_scope(self._tenancy, actor, site_id)
        check_id(meter_id, field="meter_id")
        found = self._tenancy.get_meters(actor.operator_id, site.site_id, [meter_id])
        if not found:
            raise NotFound("no such meter on this site")
        operator = self._tenancy.get_operator(actor.operator_id)
        return found[0], ZoneInfo(operator.timezone if operator else "UTC")


def _start_ms(day: date, zone: ZoneInfo) -> int:
    return int(datetime.combine(day, time(0), zone).timestamp() * 1000)
