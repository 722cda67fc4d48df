"""Receipts: numbers that survive reprints, refusal of malformed receipts, and exact display texts."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.receipts import (
    Receipt,
    format_energy_centi_kwh,
    format_price_e4,
    is_receipt_number,
    receipt_number_for,
)

SHANGHAI = timezone(timedelta(hours=8))


def make(**changes: Any) -> Receipt:
    fields: dict[str, Any] = {
        "receipt_number": receipt_number_for("riverside", "e-1"), "kind": "sale",
        "operator_name": "Riverside Property", "site_name": "Riverside Business Park", "unit": "B2-0315",
        "customer_name": "Noodle House", "meter_id": "m-0003", "meter_serial": "000012345678",
        "amount_minor": 12550, "currency": "CNY", "energy_price_e4": 12345, "energy_centi_kwh": 10166,
        "purchase_count": 17, "delivery_state": "delivered", "cashier": "cashier", "channel": "cash",
        "issued_at": datetime(2026, 11, 23, 14, 5, 9, tzinfo=SHANGHAI),
    }
    fields.update(changes)
    return Receipt(**fields)


# -- numbers ---------------------------------------------------------------------------------------------------


def test_the_number_is_pinned_so_reprints_after_a_deploy_match_the_paper() -> None:
    assert receipt_number_for("riverside", "e-abc") == "R-UBRGIGQS4E"
    assert receipt_number_for("riverside", "e-abc") == receipt_number_for("riverside", "e-abc")


def test_the_number_is_r_dash_and_ten_unambiguous_characters() -> None:
    number = receipt_number_for("riverside", "e-0f3a")
    assert is_receipt_number(number)
    assert number.startswith("R-") and len(number) == 12
    assert not set(number[2:]) & set("0189abcdefghijklmnopqrstuvwxyz")


def test_numbers_differ_per_entry_and_per_operator() -> None:
    numbers = {receipt_number_for("riverside", f"e-{i}") for i in range(2000)}
    assert len(numbers) == 2000
    assert receipt_number_for("riverside", "e-1") != receipt_number_for("harbour", "e-1")
    # The separator keeps ids that only concatenate alike apart.
    assert receipt_number_for("ab", "c") != receipt_number_for("a", "bc")


@pytest.mark.parametrize(("operator_id", "entry_id"), [("", "e-1"), ("riverside", "")])
def test_a_number_needs_both_ids(operator_id: str, entry_id: str) -> None:
    with pytest.raises(ValidationError):
        receipt_number_for(operator_id, entry_id)


@pytest.mark.parametrize("text", ["R-ABC", "X-UBRGIGQS4E", "R-UBRGIGQS4e", "R-UBRGIGQS40", "R-UBRGIGQS4EE", ""])
def test_malformed_numbers_are_recognised(text: str) -> None:
    assert not is_receipt_number(text)


# -- validation ------------------------------------------------------------------------------------------------


def test_a_well_formed_receipt_is_accepted_and_frozen() -> None:
    receipt = make()
    with pytest.raises(dataclasses.FrozenInstanceError):
        receipt.amount_minor = 1  # type: ignore[misc]


@pytest.mark.parametrize("amount", [0, -100, 12.5, Decimal("12.50"), True, "1250"])
def test_the_amount_must_be_positive_integer_minor_units(amount: object) -> None:
    with pytest.raises(ValidationError) as caught:
        make(amount_minor=amount)
    assert caught.value.field == "amount_minor"


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        make(issued_at=datetime(2026, 11, 23, 14, 5, 9))
    assert caught.value.field == "issued_at"


@pytest.mark.parametrize(("field", "value"), [
    ("kind", "charge"), ("kind", "Sale"), ("channel", "system"), ("channel", "cheque"),
    ("delivery_state", "done"), ("receipt_number", "e-1"), ("currency", ""),
    ("energy_price_e4", -1), ("energy_price_e4", 1.2345), ("energy_centi_kwh", -5), ("energy_centi_kwh", False),
    ("purchase_count", -1), ("purchase_count", 17.0),
])
def test_malformed_fields_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        make(**{field: value})
    assert caught.value.field == field


def test_optional_numbers_may_be_absent_while_pending_or_sold_by_amount() -> None:
    receipt = make(energy_price_e4=None, energy_centi_kwh=None, purchase_count=None, delivery_state="pending")
    assert (receipt.price_text, receipt.energy_text, receipt.purchase_count) == ("", "", None)


def test_a_reversal_names_what_it_reverses_and_why() -> None:
    original = receipt_number_for("riverside", "e-1")
    reversal = make(kind="reversal", receipt_number=receipt_number_for("riverside", "e-2"), reason="wrong meter",
                    reverses_receipt=original)
    assert reversal.reverses_receipt == original
    with pytest.raises(ValidationError, match="say why"):
        make(kind="reversal", reason="  ", reverses_receipt=original)
    with pytest.raises(ValidationError, match="name the receipt"):
        make(kind="reversal", reason="wrong meter")
    with pytest.raises(ValidationError, match="name the receipt"):
        make(kind="reversal", reason="wrong meter", reverses_receipt="e-1")


def test_only_a_reversal_reverses_a_receipt() -> None:
    with pytest.raises(ValidationError) as caught:
        make(kind="refund", reverses_receipt=receipt_number_for("riverside", "e-1"))
    assert caught.value.field == "reverses_receipt"


# -- display ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("minor", "text"), [(12550, "125.50"), (5, "0.05"), (100, "1.00"), (123456789, "1234567.89")])
def test_amount_text(minor: int, text: str) -> None:
    assert make(amount_minor=minor).amount_text == text


@pytest.mark.parametrize(("price_e4", "text"), [(12345, "1.2345"), (5000, "0.5000"), (7, "0.0007"), (0, "0.0000"),
                                                (99999999, "9999.9999")])
def test_price_text_has_four_decimals(price_e4: int, text: str) -> None:
    assert format_price_e4(price_e4) == text
    assert make(energy_price_e4=price_e4).price_text == text


@pytest.mark.parametrize(("centi", "text"), [(10166, "101.66"), (7, "0.07"), (100, "1.00"), (0, "0.00")])
def test_energy_text_has_two_decimals(centi: int, text: str) -> None:
    assert format_energy_centi_kwh(centi) == text
    assert make(energy_centi_kwh=centi).energy_text == text


def test_the_time_is_shown_with_its_offset() -> None:
    assert make().issued_at_text == "2026-11-23 14:05:09+08:00"
    in_utc = make(issued_at=datetime(2026, 11, 23, 6, 5, 9, 999, tzinfo=UTC))
    assert in_utc.issued_at_text == "2026-11-23 06:05:09+00:00"
