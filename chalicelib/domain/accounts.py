"""Customer accounts and the money rules around them, pure: open, add meters, sell, refund, charge, reverse,
transfer a retrofitted meter's balance, close.

Every function takes the figures it rules on as arguments (a meter's balance, the ledger's credit for it, the
final reading) and returns new values and ledger entries; storing them, and delivering credit to meters, is the
services' job. "Balance" always means the credit a meter will hold once its pending deliveries are applied
(``delivery.effective_balance`` for a prepaid meter; the ledger's credit for a cloud-billed one).

Sale by energy: prices are integer 1/10000 of the currency per kWh (the meter's 0.0001 /kWh registers) and energy
is integer 0.01 kWh (the meter's energy step), so energy × price is exact in 1/1,000,000 of the currency; it is
rounded half-even (banker's rounding) to minor units: ties go to the even cent, so over many sales roundings
cancel out instead of always favouring one side.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from chalicelib.domain.errors import Conflict, NotFound, ValidationError
from chalicelib.domain.ledger import (
    AccountKind,
    Channel,
    Entry,
    EntryKind,
    LedgerAccount,
    Posting,
    Request,
    charge_request_id,
    make_entry,
    meter_credit,
    reverse_entry,
    settlement_account,
)
from chalicelib.domain.money import format_amount, round_to_minor

# The meter registry's enum, re-exported: a meter's billing mode is one fact, named the same everywhere.
from chalicelib.domain.tenancy import BillingMode as BillingMode

REVENUE = LedgerAccount(AccountKind.CONSUMPTION_REVENUE)
OPENING_BALANCES = LedgerAccount(AccountKind.OPENING_BALANCES)


@dataclass(frozen=True)
class Customer:
    name: str
    phone: str = ""
    unit: str = ""  # shop number: building, floor, unit


@dataclass(frozen=True)
class AccountMeter:
    meter_id: str
    billing_mode: BillingMode
    opened_at: datetime
    closed_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    @property
    def is_prepaid(self) -> bool:
        return self.billing_mode is BillingMode.PREPAID_METER


@dataclass(frozen=True)
class CustomerAccount:
    account_id: str
    operator_id: str
    customer: Customer
    meters: tuple[AccountMeter, ...]
    opened_at: datetime
    closed_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    def meter(self, meter_id: str) -> AccountMeter:
        found = next((m for m in self.meters if m.meter_id == meter_id), None)
        if found is None:
            raise NotFound(f"meter {meter_id} is not on account {self.account_id}")
        return found

    def open_meter(self, meter_id: str) -> AccountMeter:
        if not self.is_open:
            raise Conflict(f"account {self.account_id} is closed")
        meter = self.meter(meter_id)
        if not meter.is_open:
            raise Conflict(f"meter {meter_id} was closed on {meter.closed_at:%Y-%m-%d}")
        return meter


@dataclass(frozen=True)
class SalesPolicy:
    """The operator's limits (site defaults or a meter's own)."""

    hoarding_limit_minor: int  # the most credit one meter may hold
    min_top_up_minor: int = 1
    max_top_up_minor: int = 10**9

    def __post_init__(self) -> None:
        if not 0 < self.min_top_up_minor <= self.max_top_up_minor:
            raise ValidationError("top-up limits: 0 < minimum ≤ maximum", field="min_top_up")
        if self.hoarding_limit_minor <= 0:
            raise ValidationError("the hoarding limit must be positive", field="hoarding_limit")

    def check_top_up(self, amount_minor: int) -> None:
        if not self.min_top_up_minor <= amount_minor <= self.max_top_up_minor:
            raise ValidationError(f"a top-up is between {format_amount(self.min_top_up_minor)} and "
                                  f"{format_amount(self.max_top_up_minor)}", field="amount")

    def check_hoarding(self, balance_minor: int, amount_minor: int) -> None:
        if balance_minor + amount_minor > self.hoarding_limit_minor:
            room = max(self.hoarding_limit_minor - balance_minor, 0)
            raise ValidationError(f"the meter would hold {format_amount(balance_minor + amount_minor)}, above its "
                                  f"hoarding limit of {format_amount(self.hoarding_limit_minor)}; at most "
                                  f"{format_amount(room)} can be added now", field="amount")


def amount_for_energy(energy_centi_kwh: int, price_per_kwh_e4: int) -> int:
    """0.01 kWh × 0.0001/kWh = 10⁻⁶ of the currency, exact; rounded half-even to minor units."""
    if energy_centi_kwh <= 0 or price_per_kwh_e4 <= 0:
        raise ValidationError("energy and price must be positive", field="energy")
    return round_to_minor(Decimal(energy_centi_kwh * price_per_kwh_e4).scaleb(-6))


@dataclass(frozen=True)
class SaleQuantity:
    amount_minor: int
    energy_centi_kwh: int | None = None  # set when the customer bought energy rather than an amount
    price_e4: int | None = None  # the energy price in force at the sale, when known

    @classmethod
    def of_energy(cls, energy_centi_kwh: int, price_per_kwh_e4: int) -> SaleQuantity:
        return cls(amount_for_energy(energy_centi_kwh, price_per_kwh_e4), energy_centi_kwh, price_per_kwh_e4)


@dataclass(frozen=True)
class MeterOpening:
    meter_id: str
    billing_mode: BillingMode
    remaining_minor: int = 0  # what a prepaid meter already holds when it joins the account


class Opened(NamedTuple):
    account: CustomerAccount
    entries: tuple[Entry, ...]  # opening balances of meters that already held credit


def _sub_request(request: Request, suffix: str) -> Request:
    """A request of its own for each entry one operation makes, so each has its own idempotent id."""
    return request._replace(request_id=f"{request.request_id}/{suffix}", channel=Channel.SYSTEM)


def _opening_entry(account_id: str, opening: MeterOpening, request: Request) -> Entry | None:
    if opening.remaining_minor == 0:
        return None
    held = opening.remaining_minor
    return make_entry(_sub_request(request, f"opening/{opening.meter_id}"), EntryKind.ADJUSTMENT,
                      account_id=account_id, meter_id=opening.meter_id, amount_minor=abs(held),
                      postings=[Posting(OPENING_BALANCES, held), Posting(meter_credit(opening.meter_id), -held)],
                      reason="opening balance: credit the meter already held")


def open_account(account_id: str, customer: Customer, meters: Sequence[MeterOpening], request: Request) -> Opened:
    if not account_id.strip() or not customer.name.strip():
        raise ValidationError("an account needs an id and a customer name", field="customer")
    if not meters:
        raise ValidationError("open at least one meter with the account", field="meters")
    if len({m.meter_id for m in meters}) != len(meters):
        raise ValidationError("a meter appears twice", field="meters")
    account = CustomerAccount(account_id, request.operator_id, customer,
                              tuple(AccountMeter(m.meter_id, m.billing_mode, request.created_at) for m in meters),
                              request.created_at)
    entries = (_opening_entry(account_id, m, request) for m in meters)
    return Opened(account, tuple(e for e in entries if e is not None))


def add_meter(account: CustomerAccount, opening: MeterOpening, request: Request) -> Opened:
    if not account.is_open:
        raise Conflict(f"account {account.account_id} is closed")
    if any(m.meter_id == opening.meter_id for m in account.meters):
        raise Conflict(f"meter {opening.meter_id} is already on account {account.account_id}")
    added = AccountMeter(opening.meter_id, opening.billing_mode, request.created_at)
    entry = _opening_entry(account.account_id, opening, request)
    return Opened(replace(account, meters=(*account.meters, added)), () if entry is None else (entry,))


def _target(account: CustomerAccount, meter_id: str, request: Request) -> AccountMeter:
    if request.operator_id != account.operator_id:
        raise NotFound(f"account {account.account_id} not found")
    return account.open_meter(meter_id)


def sell(account: CustomerAccount, meter_id: str, quantity: SaleQuantity, *, balance_minor: int,
         policy: SalesPolicy, request: Request) -> Entry:
    meter = _target(account, meter_id, request)
    amount = quantity.amount_minor
    policy.check_top_up(amount)
    policy.check_hoarding(balance_minor, amount)
    postings = [Posting(settlement_account(request.channel, account.account_id), amount),
                Posting(meter_credit(meter_id), -amount)]
    return make_entry(request, EntryKind.SALE, account_id=account.account_id, meter_id=meter_id,
                      amount_minor=amount, postings=postings, delivers_to_meter=meter.is_prepaid,
                      energy_centi_kwh=quantity.energy_centi_kwh, energy_price_e4=quantity.price_e4)


def refund(account: CustomerAccount, meter_id: str, amount_minor: int, *, remaining_minor: int,
           request: Request) -> Entry:
    """Return unused credit; ``remaining_minor`` is what the meter still holds (its balance)."""
    meter = _target(account, meter_id, request)
    if amount_minor <= 0:
        raise ValidationError("a refund must be positive", field="amount")
    if amount_minor > remaining_minor:
        raise ValidationError(f"the meter holds only {format_amount(max(remaining_minor, 0))} unused: "
                              f"cannot refund {format_amount(amount_minor)}", field="amount")
    postings = [Posting(meter_credit(meter_id), amount_minor),
                Posting(settlement_account(request.channel, account.account_id), -amount_minor)]
    return make_entry(request, EntryKind.REFUND, account_id=account.account_id, meter_id=meter_id,
                      amount_minor=amount_minor, postings=postings, delivers_to_meter=meter.is_prepaid)


def charge(account: CustomerAccount, meter_id: str, amount_minor: int, *, energy_centi_kwh: int,
           interval_start: datetime, created_at: datetime) -> Entry:
    """Debit a cloud-billed meter for one interval's priced energy; the balance may go negative (arrears)."""
    request = Request(account.operator_id, charge_request_id(meter_id, interval_start), "system", Channel.SYSTEM,
                      created_at)
    meter = _target(account, meter_id, request)
    if meter.is_prepaid:
        raise ValidationError("a prepaid meter deducts its own consumption: the cloud does not charge it")
    postings = [Posting(meter_credit(meter_id), amount_minor), Posting(REVENUE, -amount_minor)]
    return make_entry(request, EntryKind.CHARGE, account_id=account.account_id, meter_id=meter_id,
                      amount_minor=amount_minor, postings=postings, energy_centi_kwh=energy_centi_kwh)


def reverse(account: CustomerAccount, original: Entry, history: Iterable[Entry], reason: str, *,
            balance_minor: int, policy: SalesPolicy, request: Request) -> Entry:
    """Reverse a sale or refund of an open meter (``ledger.reverse_entry`` has the rules)."""
    if original.account_id != account.account_id or original.meter_id is None:
        raise NotFound(f"entry {original.entry_id} is not on account {account.account_id}")
    _target(account, original.meter_id, request)
    return reverse_entry(original, history, request, reason, meter_credit_minor=balance_minor,
                         hoarding_limit_minor=policy.hoarding_limit_minor)


def _consumption_entry(account_id: str, meter_id: str, used_minor: int, request: Request) -> Entry | None:
    """Recognise what a meter used that the ledger has not charged yet (a prepaid meter deducts it itself)."""
    if used_minor == 0:
        return None
    return make_entry(_sub_request(request, f"consumption/{meter_id}"), EntryKind.CHARGE, account_id=account_id,
                      meter_id=meter_id, amount_minor=used_minor,
                      postings=[Posting(meter_credit(meter_id), used_minor), Posting(REVENUE, -used_minor)])


def _unused_credit(meter_id: str, remaining_minor: int, ledger_credit_minor: int) -> int:
    """What the ledger must still charge: its credit minus what the meter holds; more held than sold is refused."""
    if remaining_minor > ledger_credit_minor:
        raise ValidationError(f"meter {meter_id} holds {format_amount(remaining_minor)} but the ledger gave it only "
                              f"{format_amount(ledger_credit_minor)}: reconcile it first", field="remaining")
    return ledger_credit_minor - remaining_minor


class Transferred(NamedTuple):
    account: CustomerAccount
    entries: tuple[Entry, ...]


def transfer_balance(account: CustomerAccount, old_meter_id: str, new_meter_id: str, *, old_remaining_minor: int,
                     old_ledger_credit_minor: int, new_balance_minor: int, policy: SalesPolicy,
                     request: Request) -> Transferred:
    """Retrofit: the old meter's remaining credit moves into the new meter and the old meter closes."""
    if old_meter_id == new_meter_id:
        raise ValidationError("transfer between two different meters", field="meter_id")
    _target(account, old_meter_id, request)
    new = _target(account, new_meter_id, request)
    if old_remaining_minor <= 0:
        raise ValidationError(f"meter {old_meter_id} has no credit to transfer: close it instead", field="remaining")
    used = _unused_credit(old_meter_id, old_remaining_minor, old_ledger_credit_minor)
    policy.check_hoarding(new_balance_minor, old_remaining_minor)
    moved = old_remaining_minor
    transfer = make_entry(_sub_request(request, "transfer"), EntryKind.TRANSFER, account_id=account.account_id,
                          meter_id=new_meter_id, from_meter_id=old_meter_id, amount_minor=moved,
                          postings=[Posting(meter_credit(old_meter_id), moved),
                                    Posting(meter_credit(new_meter_id), -moved)],
                          delivers_to_meter=new.is_prepaid)
    consumption = _consumption_entry(account.account_id, old_meter_id, used, request)
    closed = _close_meters(account, {old_meter_id}, request.created_at)
    return Transferred(closed, (transfer,) if consumption is None else (consumption, transfer))


def _close_meters(account: CustomerAccount, meter_ids: Collection[str], at: datetime) -> CustomerAccount:
    return replace(account, meters=tuple(replace(m, closed_at=at) if m.meter_id in meter_ids else m
                                         for m in account.meters))


@dataclass(frozen=True)
class FinalReading:
    """A meter's last reading at closing. ``remaining_minor``: a prepaid meter's register; for a cloud-billed meter,
    the ledger's credit less the priced energy since the last charge."""

    meter_id: str
    energy_centi_kwh: int
    remaining_minor: int


@dataclass(frozen=True)
class MeterClosing:
    meter_id: str
    final_energy_centi_kwh: int
    ledger_credit_minor: int
    consumption_minor: int  # charged at closing
    remaining_minor: int  # settled: refunded when positive, owed when negative


@dataclass(frozen=True)
class ClosingRecord:
    account_id: str
    customer: Customer
    closed_at: datetime
    closed_by: str
    meters: tuple[MeterClosing, ...]
    refund_minor: int  # owed to the customer (refunds payable)
    amount_due_minor: int  # owed by the customer


class Closed(NamedTuple):
    account: CustomerAccount
    entries: tuple[Entry, ...]
    record: ClosingRecord


def _settle_meter(account: CustomerAccount, final: FinalReading, ledger_credit_minor: int,
                  request: Request) -> tuple[MeterClosing, list[Entry]]:
    meter = account.meter(final.meter_id)
    used = _unused_credit(meter.meter_id, final.remaining_minor, ledger_credit_minor)
    entries = [e for e in [_consumption_entry(account.account_id, meter.meter_id, used, request)] if e]
    left = final.remaining_minor
    settle = _sub_request(request, f"settle/{meter.meter_id}")
    if left > 0:
        entries.append(make_entry(settle, EntryKind.REFUND, account_id=account.account_id, meter_id=meter.meter_id,
                                  amount_minor=left, delivers_to_meter=meter.is_prepaid,
                                  postings=[Posting(meter_credit(meter.meter_id), left),
                                            Posting(settlement_account(Channel.SYSTEM, account.account_id), -left)]))
    elif left < 0:
        entries.append(make_entry(settle, EntryKind.ADJUSTMENT, account_id=account.account_id,
                                  meter_id=meter.meter_id, amount_minor=-left, reason="closing: arrears owed",
                                  postings=[Posting(LedgerAccount(AccountKind.AMOUNT_DUE, account.account_id), -left),
                                            Posting(meter_credit(meter.meter_id), left)]))
    closing = MeterClosing(meter.meter_id, final.energy_centi_kwh, ledger_credit_minor, used, left)
    return closing, entries


def _netting_entry(account_id: str, refund_minor: int, due_minor: int, request: Request) -> Entry | None:
    """Credit on one meter and arrears on another: set them against each other so one figure is left."""
    offset = min(refund_minor, due_minor)
    if offset <= 0:
        return None
    return make_entry(_sub_request(request, "netting"), EntryKind.ADJUSTMENT, account_id=account_id, meter_id=None,
                      amount_minor=offset, reason="closing: refund set against amount due",
                      postings=[Posting(LedgerAccount(AccountKind.REFUNDS_PAYABLE, account_id), offset),
                                Posting(LedgerAccount(AccountKind.AMOUNT_DUE, account_id), -offset)])


def close_account(account: CustomerAccount, finals: Sequence[FinalReading], ledger_credit: Mapping[str, int],
                  request: Request, *, meters_with_pending_deliveries: Collection[str] = ()) -> Closed:
    """Close every open meter at its final reading and settle the balance; ``ledger_credit`` is per meter."""
    if request.operator_id != account.operator_id:
        raise NotFound(f"account {account.account_id} not found")
    if not account.is_open:
        raise Conflict(f"account {account.account_id} is already closed")
    open_ids = {m.meter_id for m in account.meters if m.is_open}
    if {f.meter_id for f in finals} != open_ids or len(finals) != len(open_ids):
        raise ValidationError(f"give one final reading for each open meter: {', '.join(sorted(open_ids))}",
                              field="finals")
    waiting = open_ids & set(meters_with_pending_deliveries)
    if waiting:
        raise Conflict(f"deliveries are still pending for {', '.join(sorted(waiting))}: close after they land")
    settled = [_settle_meter(account, f, ledger_credit.get(f.meter_id, 0), request) for f in finals]
    closings = tuple(c for c, _ in settled)
    refund_total = sum(c.remaining_minor for c in closings if c.remaining_minor > 0)
    due_total = -sum(c.remaining_minor for c in closings if c.remaining_minor < 0)
    entries = [e for _, meter_entries in settled for e in meter_entries]
    netting = _netting_entry(account.account_id, refund_total, due_total, request)
    entries.extend([netting] if netting else [])
    offset = min(refund_total, due_total)
    record = ClosingRecord(account.account_id, account.customer, request.created_at, request.actor, closings,
                           refund_total - offset, due_total - offset)
    closed = replace(_close_meters(account, open_ids, request.created_at), closed_at=request.created_at)
    return Closed(closed, tuple(entries), record)
