"""A meter's current state as the cloud mirrors it, built from decoded register values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import IntEnum, StrEnum

from chalicelib.domain.money import round_to_minor

Value = Decimal | int


class ControlMode(IntEnum):
    PREPAID = 0
    KEEP_POWER = 1
    FORCED_TRIP = 2


class StatusBit(IntEnum):
    ALARM_1 = 0
    ALARM_2 = 1
    ARREARS = 2
    OVERLOAD_TRIP = 3


@dataclass(frozen=True)
class MeterState:
    meter_id: str
    read_at: datetime
    energy_kwh: Decimal | None = None
    energy_by_rate: tuple[Decimal, Decimal, Decimal, Decimal] | None = None  # sharp, peak, flat, valley
    voltage: Decimal | None = None
    current: Decimal | None = None
    power_kw: Decimal | None = None
    remaining_minor: int | None = None
    total_purchased_minor: int | None = None
    purchase_count: int | None = None
    control_mode: ControlMode | None = None
    relay_open: bool | None = None
    status_bits: int = 0

    def has(self, bit: StatusBit) -> bool:
        return bool(self.status_bits >> bit & 1)


def _decimal(values: Mapping[str, Value], name: str) -> Decimal | None:
    value = values.get(name)
    return None if value is None else Decimal(value)


def _minor(values: Mapping[str, Value], name: str) -> int | None:
    value = values.get(name)
    return None if value is None else round_to_minor(Decimal(value))


def _int(values: Mapping[str, Value], name: str) -> int | None:
    value = values.get(name)
    return None if value is None else int(value)


def state_from_values(meter_id: str, read_at: datetime, values: Mapping[str, Value]) -> MeterState:
    """Name the decoded registers the way the business speaks; absent registers stay None."""
    rates = [_decimal(values, f"energy_{rate}") for rate in ("sharp", "peak", "flat", "valley")]
    mode = _int(values, "control_mode")
    relay = _int(values, "relay_state")
    return MeterState(
        meter_id=meter_id,
        read_at=read_at,
        energy_kwh=_decimal(values, "energy_total"),
        energy_by_rate=(rates[0], rates[1], rates[2], rates[3]) if all(r is not None for r in rates) else None,  # type: ignore[arg-type]
        voltage=_decimal(values, "voltage"),
        current=_decimal(values, "current"),
        power_kw=_decimal(values, "active_power"),
        remaining_minor=_minor(values, "remaining_amount"),
        total_purchased_minor=_minor(values, "total_purchased"),
        purchase_count=_int(values, "purchase_count"),
        control_mode=ControlMode(mode) if mode in (0, 1, 2) else None,
        relay_open=None if relay is None else relay == 1,
        status_bits=_int(values, "status_bits") or 0,
    )


class Condition(StrEnum):
    """The board's colour for a meter (SPEC 15: opened, alarm 1, alarm 2, arrears, not opened, lost contact)."""

    NEVER_READ = "never-read"
    LOST_CONTACT = "lost-contact"
    ARREARS = "arrears"
    ALARM_2 = "alarm-2"
    ALARM_1 = "alarm-1"
    NORMAL = "normal"


LOST_AFTER_MISSED_CYCLES = 3


def condition(state: MeterState | None, missed_cycles: int,
              lost_after: int = LOST_AFTER_MISSED_CYCLES) -> Condition:
    """Worst first: a silent meter's old balance is not news, so lost contact outranks the alarms."""
    if state is None:
        return Condition.NEVER_READ
    if missed_cycles >= lost_after:
        return Condition.LOST_CONTACT
    for bit, level in ((StatusBit.ARREARS, Condition.ARREARS), (StatusBit.ALARM_2, Condition.ALARM_2),
                       (StatusBit.ALARM_1, Condition.ALARM_1)):
        if state.has(bit):
            return level
    return Condition.NORMAL
