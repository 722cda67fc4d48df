"""Days of credit left, from the balance and the last window's spending (pure)."""

from __future__ import annotations

from decimal import Decimal

from chalicelib.domain.history import days_of_credit, spent_in_window


def test_days_of_credit_at_the_recent_rate() -> None:
    assert days_of_credit(4_900, 2_100, 7) == Decimal("16.3")
    assert days_of_credit(10_000, 700, 7) == Decimal("100.0")
    assert days_of_credit(0, 700, 7) == Decimal(0)  # nothing left
    assert days_of_credit(-350, 700, 7) == Decimal(0)  # in arrears
    assert days_of_credit(4_900, 0, 7) is None  # nothing spent: no rate to go by
    assert days_of_credit(None, 700, 7) is None  # never read


def test_what_a_prepaid_meter_spent_over_a_window() -> None:
    assert spent_in_window(4_000, 1_900, 0) == 2_100
    assert spent_in_window(4_000, 4_900, 3_000) == 2_100  # credit added meanwhile counts as held
    assert spent_in_window(1_000, 1_500, 0) == 0  # more now without a purchase seen: never negative spending
    assert spent_in_window(None, 1_900, 0) == 0
    assert spent_in_window(4_000, None, 0) == 0
