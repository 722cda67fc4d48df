"""A pure model of one meter: energy, money, relay and alarms as the prepaid meters keep them.

No I/O and no clock of its own beyond the meter's settable clock: the caller moves time forward with
``advance``. Energy is kept in integer watt-milliseconds per rate and money in exact Decimals, so no
rounding creeps in however often time advances; the registers show them floored to 0.01.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from enum import IntEnum, IntFlag

from .tou import DEFAULT_TOU, RATES, TouPlan

WMS_PER_TICK = 36_000_000  # 0.01 kWh, the energy registers' step, in watt-milliseconds
WMS_PER_KWH = 3_600_000_000
CENT = Decimal("0.01")
MAX_COUNT = 0xFFFF  # the purchase count is one UINT16 register


class Mode(IntEnum):
    """Relay control mode (register control_mode)."""

    PREPAID = 0
    KEEP_POWER = 1
    FORCED_TRIP = 2


class Status(IntFlag):
    """Bits of register status_bits."""

    ALARM_1 = 1
    ALARM_2 = 2
    EXHAUSTED = 4
    OVERLOAD = 8


def zero_per_rate() -> dict[str, int]:
    return dict.fromkeys(RATES, 0)


def zero_prices() -> dict[str, Decimal]:
    return dict.fromkeys(RATES, Decimal(0))


@dataclass
class MeterState:
    """Everything a meter remembers; what the simulator saves and restores."""

    serial: str
    clock: datetime
    load_kw: Decimal = Decimal(0)  # demand downstream of the relay; drawn only while it is closed
    energy_wms: dict[str, int] = field(default_factory=zero_per_rate)
    balance: Decimal = Decimal(0)  # exact; the register shows it floored to 0.01
    total_purchased: Decimal = Decimal(0)
    purchase_count: int = 0
    alarm_amount_1: Decimal = Decimal(0)
    alarm_amount_2: Decimal = Decimal(0)
    hoarding_limit: Decimal = Decimal("99999.99")
    overload_threshold_kw: Decimal = Decimal(0)  # 0 disables the overload check
    control_mode: Mode = Mode.PREPAID
    prices: dict[str, Decimal] = field(default_factory=zero_prices)
    ct_ratio: int = 1


@dataclass(frozen=True)
class Electrical:
    """Instantaneous measurements, derived from the load actually drawn."""

    power_kw: Decimal
    apparent_kva: Decimal
    reactive_kvar: Decimal
    power_factor: Decimal
    voltage: Decimal  # per phase
    current: Decimal  # per phase
    frequency: Decimal


class Meter:
    """One meter; ``prepaid`` meters also keep money, a relay and alarms."""

    def __init__(
        self,
        state: MeterState,
        *,
        prepaid: bool,
        phases: int = 1,
        tou: TouPlan = DEFAULT_TOU,
        nominal_voltage: Decimal = Decimal(230),
        power_factor: Decimal = Decimal("0.95"),
    ) -> None:
        self.state = state
        self.prepaid = prepaid
        self.phases = phases
        self.tou = tou
        self.nominal_voltage = nominal_voltage
        self.power_factor = power_factor

    # -- what the registers show --------------------------------------------------------------

    @property
    def remaining_amount(self) -> Decimal:
        """The balance as the register shows it: floored to 0.01, negative in arrears."""
        return self.state.balance.quantize(CENT, rounding=ROUND_FLOOR)

    @property
    def overloaded(self) -> bool:
        threshold = self.state.overload_threshold_kw
        return self.prepaid and threshold > 0 and self.state.load_kw > threshold

    @property
    def relay_open(self) -> bool:
        """Prepaid control opens at zero or below; keep power ignores the balance; overload always trips."""
        if not self.prepaid:
            return False  # plain meters have no relay
        mode = self.state.control_mode
        if mode == Mode.FORCED_TRIP or self.overloaded:
            return True
        return mode == Mode.PREPAID and self.remaining_amount <= 0

    @property
    def status(self) -> Status:
        if not self.prepaid:
            return Status(0)
        remaining, bits = self.remaining_amount, Status(0)
        if remaining <= self.state.alarm_amount_1:
            bits |= Status.ALARM_1
        if remaining <= self.state.alarm_amount_2:
            bits |= Status.ALARM_2
        if remaining <= 0:
            bits |= Status.EXHAUSTED
        if self.overloaded:
            bits |= Status.OVERLOAD
        return bits

    def energy_kwh(self, rate: str | None = None) -> Decimal:
        """Energy of one rate, or the total, in kWh floored to the registers' 0.01 step."""
        wms = self.state.energy_wms[rate] if rate else sum(self.state.energy_wms.values())
        return Decimal(wms // WMS_PER_TICK) * CENT

    def electrical(self) -> Electrical:
        power = self.state.load_kw if not self.relay_open else Decimal(0)
        factor = self.power_factor if power > 0 else Decimal(1)
        apparent = power / factor
        current = apparent * 1000 / (self.phases * self.nominal_voltage)
        reactive = (apparent * apparent - power * power).sqrt()
        return Electrical(power, apparent, reactive, factor, self.nominal_voltage, current, Decimal(50))

    # -- time ------------------------------------------------------------------------------------

    def advance(self, seconds: Decimal | int) -> None:
        """Let ``seconds`` pass (millisecond resolution): energy flows into the rate in force and is paid for.

        The interval is cut at every time-of-use switch and at the moment the credit runs out, so
        each piece has one rate and one relay state.
        """
        if seconds < 0:
            raise ValueError("time only moves forward")
        left = int(Decimal(seconds) * 1000)
        while left > 0:
            step = min(left, self._ms_until_change())
            self._run(step)
            left -= step

    def _power_watts(self) -> int:
        return 0 if self.relay_open else int(self.state.load_kw * 1000)

    def _ms_until_change(self) -> int:
        until = self.tou.ms_to_next_switch(self.state.clock)
        watts = self._power_watts()
        if self.prepaid and watts and self.state.control_mode == Mode.PREPAID:
            until = min(until, self._ms_until_exhausted(watts))
        return until

    def _ms_until_exhausted(self, watts: int) -> int:
        """Milliseconds until the shown balance drops to 0.00 at this load and rate (at least 1)."""
        rate = self.tou.rate_at(self.state.clock)
        cost_per_tick = self.state.prices[rate] * CENT
        if cost_per_tick <= 0:
            return 2**62
        ticks = math.floor((self.state.balance - CENT) / cost_per_tick) + 1
        wms_needed = ticks * WMS_PER_TICK - self.state.energy_wms[rate] % WMS_PER_TICK
        return max(1, -(-wms_needed // watts))

    def _run(self, ms: int) -> None:
        rate = self.tou.rate_at(self.state.clock)
        before = self.state.energy_wms[rate] // WMS_PER_TICK
        self.state.energy_wms[rate] += self._power_watts() * ms
        ticks = self.state.energy_wms[rate] // WMS_PER_TICK - before
        if self.prepaid and ticks:
            self.state.balance -= ticks * self.state.prices[rate] * CENT
        self.state.clock += timedelta(milliseconds=ms)

    # -- commands (each returns whether the meter accepted it; a refusal changes nothing) --------

    def purchase(self, amount: Decimal, count: int) -> bool:
        """Accepted when ``count`` is the stored count + 1 and the new balance stays within the hoarding limit."""
        if not self._next_count(count) or amount <= 0:
            return False
        if self.remaining_amount + amount > self.state.hoarding_limit:
            return False
        self.state.balance += amount
        self.state.total_purchased += amount
        self.state.purchase_count = count
        return True

    def refund(self, amount: Decimal, count: int) -> bool:
        """Accepted when ``count`` is the stored count + 1 and the shown balance covers ``amount``.

        Total purchased stays as it was: it counts what was ever bought (an assumption of ours).
        """
        if not self._next_count(count) or amount <= 0 or self.remaining_amount < amount:
            return False
        self.state.balance -= amount
        self.state.purchase_count = count
        return True

    def _next_count(self, count: int) -> bool:
        return self.prepaid and count == self.state.purchase_count + 1 and count <= MAX_COUNT

    def set_mode(self, mode: int) -> bool:
        if not self.prepaid or mode not in tuple(Mode):
            return False
        self.state.control_mode = Mode(mode)
        return True

    def set_clock(self, moment: datetime) -> None:
        self.state.clock = moment

    def set_load(self, load_kw: Decimal) -> None:
        """The demand downstream of the relay (a simulator control, not a register)."""
        if load_kw < 0:
            raise ValueError("load cannot be negative")
        self.state.load_kw = load_kw.quantize(Decimal("0.001"))

    def set_balance(self, amount: Decimal) -> None:
        """Force the balance (a simulator control for tests and demos, not a meter command)."""
        self.state.balance = amount
