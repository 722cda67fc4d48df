from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.money import format_amount, parse_amount, round_to_minor, to_decimal


@pytest.mark.parametrize(("text", "minor"), [("12.50", 1250), ("0", 0), ("-0.05", -5), ("100", 10000), (" 7.1 ", 710)])
def test_parse_amount(text: str, minor: int) -> None:
    assert parse_amount(text) == minor


@pytest.mark.parametrize("text", ["1.234", "abc", "NaN", "Infinity", ""])
def test_parse_amount_refuses(text: str) -> None:
    with pytest.raises(ValidationError):
        parse_amount(text)


def test_floats_are_refused() -> None:
    with pytest.raises(TypeError):
        to_decimal(1.5)  # type: ignore[arg-type]


@given(st.integers(min_value=-10**12, max_value=10**12))
def test_format_then_parse_round_trips(minor: int) -> None:
    assert parse_amount(format_amount(minor)) == minor


def test_round_to_minor_is_bankers() -> None:
    assert round_to_minor(Decimal("0.125")) == 12
    assert round_to_minor(Decimal("0.135")) == 14
    assert round_to_minor(Decimal("-0.125")) == -12
