"""What every money operation shares: judge on fresh state, write all or nothing, and on a race judge again.

A money operation reads the meters' money states, lets the pure rules build entries from them, and commits the
result conditional on the versions it read. If another cashier (or the delivery worker) moved a state on in
between, nothing was written: it reads again and the rules judge again (a second sale may now break the hoarding
limit). A request seen before answers with what was stored then, however the balance has moved since.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TypeVar

from chalicelib.domain.accounts import BillingMode
from chalicelib.domain.delivery import MeterQueue, MeterRegisters, balance_seen
from chalicelib.domain.errors import Conflict, ValidationError
from chalicelib.domain.ledger import Entry
from chalicelib.domain.meter_money import MeterMoney
from chalicelib.domain.money import parse_amount
from chalicelib.domain.readings import StoredState
from chalicelib.ports import AlreadyPosted, MoneyChange, MoneyRepository, StaleMoney

ATTEMPTS = 8
Result = TypeVar("Result")


def commit_judged(money: MoneyRepository, judge: Callable[[], tuple[MoneyChange, Result]]) -> Result:
    """Run ``judge`` (which reads and decides) and commit its change; again on a race, up to ATTEMPTS times."""
    for _ in range(ATTEMPTS):
        change, result = judge()
        if not (change.entries or change.moneys or change.account or change.record or change.settled):
            return result  # the rules decided there is nothing to write
        try:
            money.commit(change)
        except StaleMoney:
            continue
        return result
    raise Conflict("the meter is busy with other operations right now; try again in a moment")


def posted_before(money: MoneyRepository, operator_id: str, entry_id: str, *, meter_id: str | None,
                  amount_minor: int | None = None, request_id: str | None = None) -> Entry | None:
    """The entry a repeated request already posted, or None. The same request id for a different operation is
    refused: an id names one operation for ever. ``request_id``: for entries whose id is not derived from their
    request (reversals), the stored entry is this request's only if it carries it."""
    existing = money.entry(operator_id, entry_id)
    if existing is None:
        return None
    if request_id is not None and existing.request_id != request_id:
        raise Conflict(f"{existing.reversed_kind or existing.kind} {existing.reverses or existing.entry_id} was "
                       f"already reversed by {existing.actor} (request {existing.request_id})")
    if existing.meter_id != meter_id or (amount_minor is not None and existing.amount_minor != amount_minor):
        raise Conflict(f"request {existing.request_id} was already used for a {existing.kind} of "
                       f"{existing.amount_minor} on meter {existing.meter_id}")
    return existing


def stored_entry(money: MoneyRepository, operator_id: str, error: AlreadyPosted) -> Entry:
    existing = money.entry(operator_id, error.entry_ids[0])
    if existing is None:  # the guard said it exists: a read after the write cannot miss it
        raise Conflict("the request was posted but cannot be read back yet; try again")
    return existing


def register_minor(state: StoredState | None, name: str) -> int | None:
    value = state.values.get(name) if state is not None else None
    if value is None:
        return None
    return parse_amount(str(value)) if name != "purchase_count" else int(Decimal(str(value)))


def spendable_balance(money: MeterMoney, state: StoredState | None) -> int:
    """The balance sales and refunds are judged on. Prepaid meter: its last reading plus what has not reached it
    yet. Cloud-billed meter: the ledger's credit."""
    if not money.is_prepaid:
        return money.credit_minor
    remaining, count = register_minor(state, "remaining_amount"), register_minor(state, "purchase_count")
    if remaining is None or count is None:
        raise ValidationError(f"meter {money.meter_id} has not been read yet: read it first")
    return balance_seen(remaining, count, money.queue)


def fresh_money(operator_id: str, site_id: str, meter_id: str, prepaid: bool, state: StoredState | None,
                existing: MeterMoney | None) -> MeterMoney:
    """A meter's money state as it joins an account: its own (count and all) if it had one before."""
    mode = BillingMode.PREPAID_METER if prepaid else BillingMode.CLOUD_BILLED
    if existing is not None:
        if existing.account_id is not None:
            raise Conflict(f"meter {meter_id} is on account {existing.account_id} already")
        return existing
    count = register_minor(state, "purchase_count")
    if prepaid and count is None:
        raise ValidationError(f"meter {meter_id} has not been read yet: read it before opening an account")
    return MeterMoney(operator_id, site_id, meter_id, mode, None, 0, MeterQueue(meter_id, count or 0),
                      baseline=registers_of(state) if prepaid else None)


def registers_of(state: StoredState | None) -> MeterRegisters | None:
    """The money registers of a reading, when it has them all."""
    count, total = register_minor(state, "purchase_count"), register_minor(state, "total_purchased")
    remaining = register_minor(state, "remaining_amount")
    if count is None or total is None or remaining is None:
        return None
    return MeterRegisters(count, total, remaining)
