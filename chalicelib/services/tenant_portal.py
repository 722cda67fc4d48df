"""What a signed-in shop tenant sees (issue 8.2): each meter of their accounts with a clear state, how long the
credit lasts at the recent rate, daily usage, this month's energy and cost by rate, purchases with receipts and
alarm history. A meter outside the tenant's accounts does not exist for them (404, never 403)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo

from chalicelib.domain.alarms import Alarm
from chalicelib.domain.errors import NotFound, ValidationError
from chalicelib.domain.history import DayLine, days_of_credit, spent_in_window
from chalicelib.domain.meter_money import MeterMoney
from chalicelib.domain.meter_state import Condition, MeterState, condition, state_from_values
from chalicelib.domain.money import parse_amount, round_to_minor
from chalicelib.domain.receipts import Receipt
from chalicelib.domain.tariffs import RatePrices
from chalicelib.domain.tenancy import Meter, check_id
from chalicelib.domain.tenants import TenantActor
from chalicelib.ports import AlarmRepository, Clock, MoneyRepository, ReadingsRepository, TenancyRepository
from chalicelib.services.meter_page import MeterPages
from chalicelib.services.money_posting import spendable_balance
from chalicelib.services.receipts import RECEIPTED
from chalicelib.services.sales import SaleLine, SalesDesk

RATE_WINDOW_DAYS = 7
HISTORY_DAYS = 30
RATES = ("sharp", "peak", "flat", "valley")
PricesFor = Callable[[list[Meter]], dict[str, RatePrices]]


class TenantState(StrEnum):
    FINE = "fine"
    ALARM_1 = "alarm-1"
    ALARM_2 = "alarm-2"
    ARREARS = "arrears"
    TRIPPED = "tripped"
    UNKNOWN = "unknown"


_BY_CONDITION = {Condition.NORMAL: TenantState.FINE, Condition.ALARM_1: TenantState.ALARM_1,
                 Condition.ALARM_2: TenantState.ALARM_2, Condition.ARREARS: TenantState.ARREARS}


def tenant_state(reading: MeterState | None, missed_cycles: int) -> TenantState:
    """The tenant's words: power off trumps everything, then the balance levels; silence is "unknown"."""
    if reading is not None and reading.relay_open:
        return TenantState.TRIPPED
    return _BY_CONDITION.get(condition(reading, missed_cycles), TenantState.UNKNOWN)


@dataclass(frozen=True)
class TenantMeter:
    meter: Meter
    account_id: str
    balance_minor: int | None
    reading: MeterState | None
    state: TenantState
    days_left: Decimal | None


@dataclass(frozen=True)
class RateCost:
    rate: str
    energy_kwh: Decimal
    price_e4: int | None
    cost_minor: int | None


@dataclass(frozen=True)
class TenantMeterDetail:
    summary: TenantMeter
    history: list[DayLine]
    month_by_rate: list[RateCost]
    purchases: list[SaleLine]
    alarms: list[Alarm]
    zone: ZoneInfo


class TenantPortal:
    def __init__(self, tenancy: TenancyRepository, money: MoneyRepository, readings: ReadingsRepository,
                 alarms: AlarmRepository, pages: MeterPages, sales: SalesDesk, clock: Clock) -> None:
        self._tenancy = tenancy
        self._money = money
        self._readings = readings
        self._alarms = alarms
        self._pages = pages
        self._sales = sales
        self._clock = clock
        self.prices_for: PricesFor | None = None  # set at start-up: the tariff service's prices in force now

    def meters(self, tenant: TenantActor) -> list[TenantMeter]:
        found = []
        for account_id in tenant.account_ids:
            stored = self._money.account(tenant.operator_id, account_id)
            if stored is None:
                continue
            for money in self._money.moneys(tenant.operator_id, [m.meter_id for m in stored.account.meters
                                                                 if m.is_open]):
                if money.account_id == account_id:
                    found.append(self._summary(money))
        return found

    def meter(self, tenant: TenantActor, meter_id: str) -> TenantMeterDetail:
        money = self._own(tenant, meter_id)
        summary = self._summary(money)
        zone = self._zone(tenant.operator_id)
        lines = [line for line in self._sales.lines_of(tenant.operator_id, meter_id)
                 if line.entry.kind in RECEIPTED and line.entry.account_id == money.account_id]
        alarms = sorted((a for a in self._alarms.alarms(tenant.operator_id, money.site_id)
                         if a.subject.subject_id == meter_id), key=lambda a: a.raised_at, reverse=True)
        return TenantMeterDetail(summary, self._pages.history(summary.meter, zone, HISTORY_DAYS),
                                 self._month_by_rate(summary, zone), list(reversed(lines)), alarms[:20], zone)

    def receipt(self, tenant: TenantActor, meter_id: str, entry_id: str) -> Receipt:
        money = self._own(tenant, meter_id)
        meter = self._meter(money)
        receipt = self._sales.meter_receipt(tenant.operator_id, meter, entry_id)
        entry = self._money.entry(tenant.operator_id, entry_id)
        if entry is None or entry.account_id != money.account_id:
            raise NotFound("no such receipt")  # the meter's earlier tenant's receipts are theirs, not this tenant's
        return receipt

    def own_meter(self, tenant: TenantActor, meter_id: str) -> Meter:
        """The tenant's meter, or NotFound: what the top-up pages start from."""
        return self._meter(self._own(tenant, meter_id))

    def _own(self, tenant: TenantActor, meter_id: str) -> MeterMoney:
        check_id(meter_id, field="meter_id")
        money = self._money.money(tenant.operator_id, meter_id)
        if money is None or money.account_id is None or money.account_id not in tenant.account_ids:
            raise NotFound("no such meter")
        return money

    def _meter(self, money: MeterMoney) -> Meter:
        meters = self._tenancy.get_meters(money.operator_id, money.site_id, [money.meter_id])
        if not meters:
            raise NotFound("no such meter")
        return meters[0]

    def _summary(self, money: MeterMoney) -> TenantMeter:
        meter = self._meter(money)
        states = self._readings.get_states(money.operator_id, money.site_id, [money.meter_id])
        state = states[0] if states else None
        reading = state_from_values(money.meter_id, state.read_at, state.values) if state else None
        try:
            balance: int | None = spendable_balance(money, state)
        except ValidationError:  # never read yet
            balance = None
        return TenantMeter(meter, money.account_id or "", balance, reading,
                           tenant_state(reading, state.missed_cycles if state else 0),
                           days_of_credit(balance, self._spent(money, balance), RATE_WINDOW_DAYS))

    def _spent(self, money: MeterMoney, balance_now: int | None) -> int:
        """Spending over the last week: what a cloud-billed meter's intervals were charged; for a prepaid meter,
        what its balance lost beyond the credit added."""
        since = self._clock.now() - timedelta(days=RATE_WINDOW_DAYS)
        since_ms = int(since.timestamp() * 1000)
        if not money.is_prepaid:
            return sum(u.charge_minor for u in self._readings.usage(money.operator_id, money.site_id, money.meter_id,
                                                                    since_ms))
        recent = self._money.meter_entries(money.operator_id, money.meter_id, since, with_charges=False)
        then = self._readings.last_reading_before(money.operator_id, money.meter_id, since_ms)
        added = sum(e.credit_change(money.meter_id) for e in recent if e.delivers_to_meter)
        then_balance = _minor(then.get("remaining_amount")) if then else None
        return spent_in_window(then_balance, balance_now, added)

    def _month_by_rate(self, summary: TenantMeter, zone: ZoneInfo) -> list[RateCost]:
        """This month's energy per rate from the registers, priced at the rate prices in force now."""
        now = self._clock.now().astimezone(zone)
        month_start = datetime.combine(now.date().replace(day=1), time(0), zone)
        opening = self._readings.last_reading_before(summary.meter.operator_id, summary.meter.meter_id,
                                                     int(month_start.timestamp() * 1000)) or {}
        reading = summary.reading
        prices = self.prices_for([summary.meter]).get(summary.meter.meter_id) if self.prices_for else None
        rows = []
        for index, rate in enumerate(RATES):
            closing = reading.energy_by_rate[index] if reading and reading.energy_by_rate else None
            start = opening.get(f"energy_{rate}")
            energy = closing - Decimal(str(start)) if closing is not None and start is not None else Decimal(0)
            price = prices.as_tuple()[index] if prices is not None else None
            cost = round_to_minor(energy * price / 10_000) if price is not None else None
            rows.append(RateCost(rate, energy, price, cost))
        return rows

    def _zone(self, operator_id: str) -> ZoneInfo:
        operator = self._tenancy.get_operator(operator_id)
        return ZoneInfo(operator.timezone if operator else "UTC")


def _minor(value: object) -> int | None:
    return None if value is None else parse_amount(str(value))
