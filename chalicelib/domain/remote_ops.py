"""Remote operations on meters (SPEC 15.2–15.4), pure: what a batch can do to a meter and the control mode each
supply choice writes (METER.md: 0 prepaid control, 1 keep power, 2 forced trip)."""

from __future__ import annotations

from enum import StrEnum

from chalicelib.domain.errors import ValidationError


class SupplyMode(StrEnum):
    PREPAID_CONTROL = "prepaid-control"
    KEEP_POWER = "keep-power"
    TRIP = "trip"


class Operation(StrEnum):
    """What a batch can do to each meter it names (SPEC 15.2–15.4)."""

    TRIP = "trip"
    KEEP_POWER = "keep-power"
    PREPAID_CONTROL = "prepaid-control"
    SETTINGS = "settings"  # the site's alarm amounts and hoarding limit
    PRICES = "prices"  # the tariff prices in force now

    @property
    def mode(self) -> SupplyMode | None:
        return SupplyMode(self.value) if self.value in {m.value for m in SupplyMode} else None


MODE_REGISTER = {SupplyMode.PREPAID_CONTROL: 0, SupplyMode.KEEP_POWER: 1, SupplyMode.TRIP: 2}


def parse_operation(text: str) -> Operation:
    try:
        return Operation((text or "").strip().lower())
    except ValueError as error:
        raise ValidationError(f"operation is one of {', '.join(o.value for o in Operation)}",
                              field="operation") from error
