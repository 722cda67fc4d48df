"""Receipts for sales, refunds and reversals: the printed proof a cashier hands over (SPEC 17, 19, 21).

A receipt is a read-only view of one ledger entry plus the names around it, so it holds no rules of its own
beyond being well formed. Its number is derived from the operator and the entry, so printing the same entry
twice (a reprint, a retried request) always shows the same number and no counter has to be stored.

Display texts are built here, with ``Decimal`` and integers only, so the page and the PDF cannot disagree.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.money import format_amount

KINDS = frozenset({"sale", "refund", "reversal"})
CHANNELS = frozenset({"cash", "card", "transfer"})
DELIVERY_STATES = frozenset({"pending", "sent", "delivered", "failed"})

RECEIPT_PREFIX = "R-"
RECEIPT_CHARS = 10  # 50 bits: a cashier can read it out, and clashes stay negligible within one operator
PRICE_DIGITS = 4  # the meter stores prices in 1/10000 of the currency per kWh
ENERGY_DIGITS = 2  # energy is sold in 0.01 kWh


def receipt_number_for(operator_id: str, entry_id: str) -> str:
    """``R-`` and 10 base32 characters of a hash of operator and entry: stable across reprints and retries.

    RFC 4648 base32 has no 0, 1, 8 or 9, so nothing on the paper can be mistaken for O, I, B or g.
    """
    if not operator_id or not entry_id:
        raise ValidationError("a receipt number needs an operator and a ledger entry")
    digest = hashlib.sha256(f"receipt\x1f{operator_id}\x1f{entry_id}".encode()).digest()
    return RECEIPT_PREFIX + base64.b32encode(digest).decode("ascii")[:RECEIPT_CHARS]


def is_receipt_number(text: str) -> bool:
    body = text[len(RECEIPT_PREFIX):]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    return text.startswith(RECEIPT_PREFIX) and len(body) == RECEIPT_CHARS and all(c in alphabet for c in body)


def _fixed_point(value: int, digits: int) -> str:
    quantum = Decimal(1).scaleb(-digits)
    return str((Decimal(value) * quantum).quantize(quantum))


def format_price_e4(price_e4: int) -> str:
    """A price in 1/10000 of the currency as text with four decimals: 12345 → ``"1.2345"``."""
    return _fixed_point(price_e4, PRICE_DIGITS)


def format_energy_centi_kwh(centi_kwh: int) -> str:
    """Energy in 0.01 kWh as text with two decimals: 1234 → ``"12.34"``."""
    return _fixed_point(centi_kwh, ENERGY_DIGITS)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class Receipt:
    receipt_number: str
    kind: str  # "sale" | "refund" | "reversal"
    operator_name: str
    site_name: str
    unit: str  # the shop or unit label
    customer_name: str
    meter_id: str
    meter_serial: str
    amount_minor: int  # always positive; the kind says which way the money went
    currency: str
    energy_price_e4: int | None  # price per kWh in 1/10000 of the currency, as the meter holds it
    energy_centi_kwh: int | None  # energy sold in 0.01 kWh, when the sale was by energy
    purchase_count: int | None  # the meter's purchase count this credit went in with; None while pending
    delivery_state: str  # "pending" | "sent" | "delivered" | "failed"
    cashier: str
    channel: str  # "cash" | "card" | "transfer"
    issued_at: datetime  # tz-aware; shown with its offset, so convert to the site's zone before building
    reason: str = ""  # why a reversal was made
    reverses_receipt: str | None = None  # the number of the receipt a reversal undoes

    def __post_init__(self) -> None:
        self._check_identity()
        self._check_numbers()
        self._check_reversal()

    def _check_identity(self) -> None:
        if not is_receipt_number(self.receipt_number):
            raise ValidationError(f"not a receipt number: {self.receipt_number!r}", field="receipt_number")
        for name, value, allowed in (("kind", self.kind, KINDS), ("channel", self.channel, CHANNELS),
                                     ("delivery_state", self.delivery_state, DELIVERY_STATES)):
            if value not in allowed:
                raise ValidationError(f"{name} must be one of {sorted(allowed)}, not {value!r}", field=name)
        if not isinstance(self.issued_at, datetime) or self.issued_at.utcoffset() is None:
            raise ValidationError("a receipt's time must carry its time zone", field="issued_at")
        if not self.currency:
            raise ValidationError("a receipt needs a currency", field="currency")

    def _check_numbers(self) -> None:
        if not _is_int(self.amount_minor) or self.amount_minor <= 0:
            raise ValidationError("the amount must be a positive whole number of minor units", field="amount_minor")
        optional = (("energy_price_e4", self.energy_price_e4), ("energy_centi_kwh", self.energy_centi_kwh),
                    ("purchase_count", self.purchase_count))
        for name, value in optional:
            if value is not None and (not _is_int(value) or value < 0):
                raise ValidationError(f"{name} must be a whole number, zero or more", field=name)

    def _check_reversal(self) -> None:
        if self.kind == "reversal":
            if not self.reason.strip():
                raise ValidationError("a reversal receipt must say why", field="reason")
            if self.reverses_receipt is None or not is_receipt_number(self.reverses_receipt):
                raise ValidationError("a reversal receipt must name the receipt it reverses",
                                      field="reverses_receipt")
        elif self.reverses_receipt is not None:
            raise ValidationError("only a reversal reverses another receipt", field="reverses_receipt")

    @property
    def amount_text(self) -> str:
        return format_amount(self.amount_minor)

    @property
    def price_text(self) -> str:
        """Four decimals, or "" when the sale carried no price."""
        return "" if self.energy_price_e4 is None else format_price_e4(self.energy_price_e4)

    @property
    def energy_text(self) -> str:
        """Two decimals, or "" when the sale was by amount."""
        return "" if self.energy_centi_kwh is None else format_energy_centi_kwh(self.energy_centi_kwh)

    @property
    def issued_at_text(self) -> str:
        """Local time with its UTC offset, so a receipt read elsewhere is still unambiguous."""
        return self.issued_at.isoformat(sep=" ", timespec="seconds")
