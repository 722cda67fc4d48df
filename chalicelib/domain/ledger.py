"""The money ledger, pure: immutable entries whose postings sum to zero, ids derived from requests, balances as a fold.

Chart of accounts (``AccountKind``; ``key`` says which one of its kind, "" for the operator-wide ones):

=======================  ==========  ===============  ===========================================================
account                  type        keyed by         what its balance means
=======================  ==========  ===============  ===========================================================
cash                     asset       operator         cash taken at the desk (the cashier is on the entry)
card-clearing            asset       operator         card payments not yet paid out by the processor
bank-clearing            asset       operator         bank transfers received
meter-credit             liability   meter            credit the customer holds on one meter: in the meter for
                                                      prepaid meters, in the cloud for cloud-billed ones
consumption-revenue      income      operator         energy used, charged by the cloud or recognised at closing
refunds-payable          liability   customer acct    unused credit owed back, not yet paid out
amount-due               asset       customer acct    arrears a closed account still owes
opening-balances         equity      operator         credit meters already held when we took them over
adjustments              income/exp  operator         write-offs and goodwill corrections
=======================  ==========  ===============  ===========================================================

The customer's balance lives per meter, not per account: the hoarding limit and the purchase count are per meter,
and a prepaid meter is where the money physically is. An account's balance is the sum of its meters' credit.

Signs: a posting's amount is positive for a debit and negative for a credit, so a liability with money owed to the
customer has a negative balance. ``MeterTotals.credit`` turns that round into the customer's view (positive =
credit left, negative = arrears).

Idempotency: an entry's id is a hash of the operator and the external request id (Stripe payment intent, cashier
request id, meter + interval for charges), so a retry derives the same id and the store's conditional put refuses
the second write. A reversal's id is derived from the entry it reverses instead, so two reversals of one entry
collide on the id even when they come from different requests: a second reversal cannot be stored.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from chalicelib.domain.errors import Conflict, ValidationError
from chalicelib.domain.money import format_amount


class EntryKind(StrEnum):
    SALE = "sale"
    REFUND = "refund"
    REVERSAL = "reversal"
    TRANSFER = "transfer"  # one meter's balance moved into another (retrofit)
    CHARGE = "charge"  # consumption priced by the cloud, or recognised when a prepaid meter is closed
    ADJUSTMENT = "adjustment"


class Channel(StrEnum):
    CASH = "cash"
    CARD = "card"
    TRANSFER = "transfer"  # bank transfer
    SYSTEM = "system"  # no money changes hands now: charges, transfers, closings


class AccountKind(StrEnum):
    CASH = "cash"
    CARD_CLEARING = "card-clearing"
    BANK_CLEARING = "bank-clearing"
    METER_CREDIT = "meter-credit"
    CONSUMPTION_REVENUE = "consumption-revenue"
    REFUNDS_PAYABLE = "refunds-payable"
    AMOUNT_DUE = "amount-due"
    OPENING_BALANCES = "opening-balances"
    ADJUSTMENTS = "adjustments"


KEYED_KINDS = frozenset({AccountKind.METER_CREDIT, AccountKind.REFUNDS_PAYABLE, AccountKind.AMOUNT_DUE})
REVERSIBLE = frozenset({EntryKind.SALE, EntryKind.REFUND})
NEEDS_REASON = frozenset({EntryKind.REVERSAL, EntryKind.ADJUSTMENT})
# Which way each kind moves the credit of the entry's meter (+1 adds credit); adjustments may go either way.
CREDIT_DIRECTION = {EntryKind.SALE: 1, EntryKind.REFUND: -1, EntryKind.TRANSFER: 1, EntryKind.CHARGE: -1}


class LedgerAccount(NamedTuple):
    kind: AccountKind
    key: str = ""

    def __str__(self) -> str:
        return f"{self.kind}:{self.key}" if self.key else str(self.kind)


def meter_credit(meter_id: str) -> LedgerAccount:
    return LedgerAccount(AccountKind.METER_CREDIT, meter_id)


def settlement_account(channel: Channel, account_id: str) -> LedgerAccount:
    """Where the money side of a sale or refund lands: the channel's clearing account, or (system) a payable."""
    by_channel = {Channel.CASH: AccountKind.CASH, Channel.CARD: AccountKind.CARD_CLEARING,
                  Channel.TRANSFER: AccountKind.BANK_CLEARING}
    if channel in by_channel:
        return LedgerAccount(by_channel[channel])
    return LedgerAccount(AccountKind.REFUNDS_PAYABLE, account_id)


class Posting(NamedTuple):
    account: LedgerAccount
    amount_minor: int  # debit positive, credit negative


class Request(NamedTuple):
    """Who asks, through which channel, when, and under which external id (the idempotency key)."""

    operator_id: str
    request_id: str
    actor: str  # cashier, tenant, or "system" for scheduled work
    channel: Channel
    created_at: datetime


def stripe_request_id(payment_intent_id: str) -> str:
    return f"stripe:{payment_intent_id}"


def stripe_refund_request_id(payment_intent_id: str, refunded_outside_total_minor: int) -> str:
    """Refunds made in the processor's dashboard, named by the intent and the total so refunded: the same refund
    seen again has the same id, the next one another."""
    return f"stripe-refund:{payment_intent_id}:{refunded_outside_total_minor}"


def cashier_request_id(token: str) -> str:
    return f"cashier:{token}"


INTERVAL_CHARGE_PREFIX = "charge:"


def charge_request_id(meter_id: str, interval_start: datetime) -> str:
    return f"{INTERVAL_CHARGE_PREFIX}{meter_id}:{interval_start.isoformat()}"


def is_interval_charge(entry: Entry) -> bool:
    """A reading interval's charge, posted by the reading cycle (not consumption charged at a closing or transfer)."""
    return entry.kind is EntryKind.CHARGE and entry.request_id.startswith(INTERVAL_CHARGE_PREFIX)


def new_request_token() -> str:
    """Put in each sale form when it is shown, so a double submit or a retry posts once."""
    return secrets.token_urlsafe(12)


def entry_id_for(operator_id: str, request_id: str) -> str:
    digest = hashlib.sha256(f"{operator_id}\x1f{request_id}".encode()).hexdigest()
    return f"e-{digest[:32]}"


def reversal_entry_id(operator_id: str, original_entry_id: str) -> str:
    return entry_id_for(operator_id, f"reversal-of:{original_entry_id}")


@dataclass(frozen=True, slots=True)
class Entry:
    entry_id: str
    request_id: str
    kind: EntryKind
    operator_id: str
    account_id: str
    meter_id: str | None  # None only for account-level adjustments (netting at closing)
    actor: str
    channel: Channel
    created_at: datetime
    amount_minor: int  # the headline amount, always positive; the postings say which way it went
    postings: tuple[Posting, ...]
    delivers_to_meter: bool = False  # the meter-credit change must be written into a prepaid meter
    reason: str = ""
    reverses: str | None = None  # entry id of the original, for reversals
    reversed_kind: EntryKind | None = None
    from_meter_id: str | None = None  # the source meter of a transfer
    energy_centi_kwh: int | None = None  # energy sold or charged, when the entry is about energy
    energy_price_e4: int | None = None  # the energy price in force when sold (1/10000 per kWh), for receipts

    def credit_change(self, meter_id: str) -> int:
        """The change this entry makes to the customer's credit on ``meter_id`` (positive = more credit)."""
        return -sum(p.amount_minor for p in self.postings if p.account == meter_credit(meter_id))


def expected_entry_id(entry: Entry) -> str:
    if entry.kind is EntryKind.REVERSAL and entry.reverses:
        return reversal_entry_id(entry.operator_id, entry.reverses)
    return entry_id_for(entry.operator_id, entry.request_id)


def make_entry(request: Request, kind: EntryKind, *, account_id: str, meter_id: str | None, amount_minor: int,
               postings: Sequence[Posting], delivers_to_meter: bool = False, reason: str = "",
               reverses: Entry | None = None, from_meter_id: str | None = None,
               energy_centi_kwh: int | None = None, energy_price_e4: int | None = None) -> Entry:
    """Build an entry with its derived id and validate it: nothing unbalanced or malformed ever leaves here."""
    entry = Entry(
        entry_id="", request_id=request.request_id, kind=kind, operator_id=request.operator_id,
        account_id=account_id, meter_id=meter_id, actor=request.actor, channel=request.channel,
        created_at=request.created_at, amount_minor=amount_minor, postings=tuple(postings),
        delivers_to_meter=delivers_to_meter, reason=reason.strip(),
        reverses=reverses.entry_id if reverses else None, reversed_kind=reverses.kind if reverses else None,
        from_meter_id=from_meter_id, energy_centi_kwh=energy_centi_kwh, energy_price_e4=energy_price_e4)
    entry = replace(entry, entry_id=expected_entry_id(entry))
    validate_entry(entry)
    return entry


# -- validation ------------------------------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_entry(entry: Entry) -> None:
    """Refuse, with ``ValidationError``, any entry that is unbalanced, malformed or inconsistent with its kind."""
    _check_identity(entry)
    _check_postings(entry)
    _check_kind_rules(entry)
    _check_meter_credit(entry)


def _check_identity(entry: Entry) -> None:
    for name in ("request_id", "operator_id", "account_id", "actor"):
        if not str(getattr(entry, name)).strip():
            raise ValidationError(f"a ledger entry needs a {name.replace('_', ' ')}", field=name)
    if entry.created_at.tzinfo is None:
        raise ValidationError("entry time must carry a time zone", field="created_at")
    if not _is_int(entry.amount_minor) or entry.amount_minor <= 0:
        raise ValidationError("the amount must be a positive whole number of minor units", field="amount")
    if entry.energy_centi_kwh is not None and (not _is_int(entry.energy_centi_kwh) or entry.energy_centi_kwh < 0):
        raise ValidationError("energy must be a whole, non-negative number of 0.01 kWh", field="energy")
    if entry.energy_price_e4 is not None and (not _is_int(entry.energy_price_e4) or entry.energy_price_e4 <= 0):
        raise ValidationError("a price must be a positive whole number of 0.0001 per kWh", field="price")
    if entry.entry_id != expected_entry_id(entry):
        raise ValidationError(f"entry id {entry.entry_id} is not the one derived from its request", field="entry_id")


def _check_postings(entry: Entry) -> None:
    if len(entry.postings) < 2:
        raise ValidationError("an entry needs at least two postings", field="postings")
    for posting in entry.postings:
        if not _is_int(posting.amount_minor) or posting.amount_minor == 0:
            raise ValidationError(f"posting to {posting.account}: a non-zero whole number of minor units",
                                  field="postings")
        if (posting.account.kind in KEYED_KINDS) != bool(posting.account.key):
            raise ValidationError(f"account {posting.account}: keyed accounts need a key, others none",
                                  field="postings")
    accounts = Counter(p.account for p in entry.postings)
    if max(accounts.values()) > 1:
        raise ValidationError("each account appears once in an entry", field="postings")
    total = sum(p.amount_minor for p in entry.postings)
    if total != 0:
        raise ValidationError(f"postings are off balance by {format_amount(total)}", field="postings")


def _check_kind_rules(entry: Entry) -> None:
    if entry.kind in NEEDS_REASON and not entry.reason:
        raise ValidationError(f"a {entry.kind} needs a reason", field="reason")
    is_reversal = entry.kind is EntryKind.REVERSAL
    if is_reversal != (entry.reverses is not None) or is_reversal != (entry.reversed_kind is not None):
        raise ValidationError("only a reversal names the entry it reverses", field="reverses")
    if is_reversal and entry.reversed_kind not in REVERSIBLE:
        raise ValidationError("only sales and refunds can be reversed", field="reverses")
    if entry.kind is EntryKind.CHARGE and (entry.channel is not Channel.SYSTEM or entry.delivers_to_meter):
        raise ValidationError("a charge is posted by the system and never written to a meter", field="channel")
    if entry.kind is EntryKind.SALE and entry.channel is Channel.SYSTEM:
        raise ValidationError("a sale is paid in cash, by card or by transfer", field="channel")
    is_transfer = entry.kind is EntryKind.TRANSFER
    if is_transfer != (entry.from_meter_id is not None) or (is_transfer and entry.from_meter_id == entry.meter_id):
        raise ValidationError("a transfer, and only a transfer, moves credit from another meter", field="from_meter")


def _check_meter_credit(entry: Entry) -> None:
    if entry.meter_id is None:
        if entry.kind is not EntryKind.ADJUSTMENT or entry.delivers_to_meter:
            raise ValidationError(f"a {entry.kind} belongs to a meter", field="meter_id")
        return
    change = entry.credit_change(entry.meter_id)
    direction = CREDIT_DIRECTION.get(entry.kind)
    if entry.kind is EntryKind.REVERSAL and entry.reversed_kind is not None:
        direction = -CREDIT_DIRECTION[entry.reversed_kind]
    if direction is not None and change != direction * entry.amount_minor:
        raise ValidationError(f"a {entry.kind} of {format_amount(entry.amount_minor)} must change the meter's "
                              f"credit by {format_amount(direction * entry.amount_minor)}", field="postings")
    if entry.delivers_to_meter and change == 0:
        raise ValidationError("nothing to write to the meter: its credit does not change", field="postings")


# -- idempotency and reversal ------------------------------------------------------------------------------------


def is_duplicate(incoming: Entry, existing: Entry | None) -> bool:
    """True when ``incoming`` is a retry of the stored entry with its id (the caller answers with the stored one).

    The same id with a different content is a request id reused for something else: refused, never merged.
    """
    if existing is None:
        return False
    if existing.entry_id != incoming.entry_id:
        raise ValueError("compare an entry only with the stored entry of the same id")
    if replace(incoming, created_at=existing.created_at) == existing:
        return True
    if existing.kind is EntryKind.REVERSAL:
        raise Conflict(f"{existing.reversed_kind} {existing.reverses} was already reversed "
                       f"(request {existing.request_id}, {existing.created_at:%Y-%m-%d %H:%M})")
    raise Conflict(f"request {incoming.request_id} was already used for a different {existing.kind}")


def find_reversal(original: Entry, history: Iterable[Entry]) -> Entry | None:
    return next((e for e in history if e.kind is EntryKind.REVERSAL and e.reverses == original.entry_id), None)


def reverse_entry(original: Entry, history: Iterable[Entry], request: Request, reason: str, *,
                  meter_credit_minor: int, hoarding_limit_minor: int) -> Entry:
    """A new entry mirroring a sale or refund, never an edit. ``meter_credit_minor`` is the credit the meter holds
    once every pending delivery is applied; reversing a sale takes it back out, reversing a refund puts it back in.
    """
    if original.kind is EntryKind.REVERSAL:
        raise Conflict("a reversal cannot itself be reversed: post a new sale or refund instead")
    if original.kind not in REVERSIBLE:
        raise ValidationError(f"a {original.kind} cannot be reversed: correct it with an adjustment")
    if request.operator_id != original.operator_id:
        raise ValidationError("an entry is reversed by its own operator", field="operator_id")
    earlier = find_reversal(original, history)
    if earlier is not None:
        raise Conflict(f"{original.kind} {original.entry_id} was already reversed on "
                       f"{earlier.created_at:%Y-%m-%d %H:%M} by {earlier.actor}")
    amount = original.amount_minor
    if original.kind is EntryKind.SALE and meter_credit_minor < amount:
        raise ValidationError(f"cannot reverse a sale of {format_amount(amount)}: the meter has only "
                              f"{format_amount(meter_credit_minor)} unused; the rest is already used")
    if original.kind is EntryKind.REFUND and meter_credit_minor + amount > hoarding_limit_minor:
        raise ValidationError(f"cannot reverse a refund of {format_amount(amount)}: the meter would hold more "
                              f"than its hoarding limit of {format_amount(hoarding_limit_minor)}")
    mirrored = [Posting(p.account, -p.amount_minor) for p in original.postings]
    return make_entry(request._replace(channel=original.channel), EntryKind.REVERSAL,
                      account_id=original.account_id, meter_id=original.meter_id, amount_minor=amount,
                      postings=mirrored, delivers_to_meter=original.delivers_to_meter, reason=reason,
                      reverses=original, energy_centi_kwh=original.energy_centi_kwh,
                      energy_price_e4=original.energy_price_e4)


# -- balances as a fold ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MeterTotals:
    """One meter's figures, derived from entries; sales and refunds are net of their reversals."""

    credit: int = 0  # customer's view: positive = credit left, negative = arrears
    sold: int = 0
    refunded: int = 0
    transferred: int = 0  # in minus out
    charged: int = 0
    adjusted: int = 0
    meter_commands: int = 0  # entries written into the meter: each takes one purchase count
    purchased_on_meter: int = 0  # what those commands added (the meter's "total purchased" grows by it)
    refunded_on_meter: int = 0  # what they took out


@dataclass(frozen=True)
class Balances:
    by_account: Mapping[LedgerAccount, int]
    by_meter: Mapping[str, MeterTotals]

    def meter(self, meter_id: str) -> MeterTotals:
        return self.by_meter.get(meter_id, MeterTotals())


_TOTAL_BY_KIND = {EntryKind.SALE: "sold", EntryKind.REFUND: "refunded", EntryKind.CHARGE: "charged"}


def _fold_meter(totals: defaultdict[str, Counter[str]], entry: Entry) -> None:
    for posting in entry.postings:
        if posting.account.kind is AccountKind.METER_CREDIT:
            totals[posting.account.key]["credit"] -= posting.amount_minor
    if entry.meter_id is None:
        return
    meter = totals[entry.meter_id]
    kind, sign = (entry.reversed_kind, -1) if entry.reversed_kind else (entry.kind, 1)
    if kind is EntryKind.TRANSFER and entry.from_meter_id:
        meter["transferred"] += entry.amount_minor
        totals[entry.from_meter_id]["transferred"] -= entry.amount_minor
    elif kind is EntryKind.ADJUSTMENT:
        meter["adjusted"] += entry.credit_change(entry.meter_id)
    elif kind in _TOTAL_BY_KIND:
        meter[_TOTAL_BY_KIND[kind]] += sign * entry.amount_minor
    if entry.delivers_to_meter:
        change = entry.credit_change(entry.meter_id)
        meter["meter_commands"] += 1
        meter["purchased_on_meter" if change > 0 else "refunded_on_meter"] += abs(change)


def balances(entries: Iterable[Entry]) -> Balances:
    """Fold one operator's entries into every account's balance and every meter's figures."""
    by_account: Counter[LedgerAccount] = Counter()
    meters: defaultdict[str, Counter[str]] = defaultdict(Counter)
    operators: set[str] = set()
    for entry in entries:
        operators.add(entry.operator_id)
        for posting in entry.postings:
            by_account[posting.account] += posting.amount_minor
        _fold_meter(meters, entry)
    if len(operators) > 1:
        raise ValidationError("balances are folded one operator at a time")
    names = {f.name for f in fields(MeterTotals)}
    by_meter = {meter_id: MeterTotals(**{k: v for k, v in c.items() if k in names}) for meter_id, c in meters.items()}
    return Balances(by_account={a: v for a, v in by_account.items() if v}, by_meter=by_meter)


class BalanceMismatch(NamedTuple):
    account: LedgerAccount
    stored_minor: int
    derived_minor: int


def check_balances(stored: Mapping[LedgerAccount, int], entries: Iterable[Entry]) -> list[BalanceMismatch]:
    """Prove the stored running balances equal the fold of the entries; an empty list is the proof."""
    derived = balances(entries).by_account
    accounts = sorted(set(stored) | set(derived), key=str)
    return [BalanceMismatch(a, stored.get(a, 0), derived.get(a, 0)) for a in accounts
            if stored.get(a, 0) != derived.get(a, 0)]
