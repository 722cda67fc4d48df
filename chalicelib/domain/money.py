"""Money as integer minor units. The one place where amounts are parsed and formatted.

Floats never enter: text is parsed with ``Decimal`` and must not carry more decimals than the
currency has.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from chalicelib.domain.errors import ValidationError

MINOR_DIGITS = 2
_QUANTUM = Decimal(1).scaleb(-MINOR_DIGITS)


def to_decimal(value: str | int | Decimal) -> Decimal:
    """Build a Decimal from text or an integer; floats are refused outright."""
    if isinstance(value, float | bool):
        raise TypeError("money and energy never travel as float")
    try:
        number = Decimal(value) if not isinstance(value, Decimal) else value
    except InvalidOperation as exc:
        raise ValidationError(f"not a number: {value!r}") from exc
    if not number.is_finite():
        raise ValidationError(f"not a finite number: {value!r}")
    return number


def parse_amount(text: str, *, field: str = "amount") -> int:
    """Parse ``"12.50"`` into minor units (1250); more than two decimals is an error, not a rounding."""
    number = to_decimal(text.strip() if isinstance(text, str) else text)
    minor = number.scaleb(MINOR_DIGITS)
    if minor != minor.to_integral_value():
        raise ValidationError(f"{field} has more than {MINOR_DIGITS} decimals: {text}", field=field)
    return int(minor)


def format_amount(minor: int) -> str:
    """Format minor units as fixed-point text: 1250 → ``"12.50"``, -5 → ``"-0.05"``."""
    return str((Decimal(minor) * _QUANTUM).quantize(_QUANTUM))


def round_to_minor(value: Decimal) -> int:
    """Round an exact Decimal amount to minor units, banker's rounding (no drift over many intervals)."""
    return int(value.scaleb(MINOR_DIGITS).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
