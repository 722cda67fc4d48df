"""The ledger, meters' money states and customer accounts in the main table, written in single transactions.

Keys (the operator's id leads each):

- entry by id (idempotency guard):  ``OP#<op>``                         ``ENTRY#<entry id>``
- month journal:                     ``OP#<op>#JOURNAL#<yyyy-mm>``       ``<iso time>#<entry id>``
- meter history (or account's,      ``OP#<op>#MLEDGER#<meter id>``      ``<iso time>#<entry id>``
  for account-level entries):        ``OP#<op>#ALEDGER#<account id>``
- a meter's interval charges:        ``OP#<op>#CJOURNAL#<yyyy-mm>`` and ``OP#<op>#MCHARGE#<meter id>``, same sort keys

Interval charges have partitions of their own: the reading cycle posts one per cloud-billed meter and interval (48
a day at the default cycle), so in the journal or a meter's history they would bury the sales, refunds and
reversals that desks, receipts and tenants list, and every such list would read a year of them to show a page.
Consumption charged at a closing or a transfer stays with the other entries.
- meter money state:                 ``OP#<op>``                         ``MONEY#<meter id>``
- reconciliation's fold checkpoint:  ``OP#<op>``                         ``FOLD#<meter id>``
- finished delivery:                 ``OP#<op>``                         ``DELIVERY#<entry id>``
- customer account:                  ``OP#<op>``                         ``ACCOUNT#<account id>``

A money change puts the entries (the by-id copy conditional on not existing, so a retried request writes
nothing), the meters' money states and the account (conditional on their versions) and the operation log
record in one TransactWriteItems call: either all of it is stored or none.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.adapters.dynamodb.keys import operator_pk
from chalicelib.adapters.dynamodb.ledger_codec import (
    account_from_dict,
    account_to_dict,
    closing_from_dict,
    closing_to_dict,
    delivery_from_dict,
    delivery_to_dict,
    entry_from_dict,
    entry_to_dict,
    queue_from_parts,
)
from chalicelib.adapters.dynamodb.models import (
    CustomerAccountItem,
    DeliveryRecordItem,
    FoldCheckpointItem,
    LedgerEntryItem,
    MeterMoneyItem,
)
from chalicelib.adapters.dynamodb.oplog_repo import add_to_transaction
from chalicelib.domain.accounts import BillingMode
from chalicelib.domain.credit_fold import FoldCheckpoint
from chalicelib.domain.delivery import Delivery, MeterRegisters
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.ledger import Entry, is_interval_charge
from chalicelib.domain.meter_money import MeterMoney
from chalicelib.ports import AlreadyPosted, MoneyChange, StaleMoney, StoredAccount

TRANSACTION_LIMIT = 100  # DynamoDB's TransactWriteItems ceiling


def _entry_sk(entry_id: str) -> str:
    return f"ENTRY#{entry_id}"


def _history_pk(operator_id: str, entry: Entry) -> str:
    if entry.meter_id is not None:
        return meter_history_pk(operator_id, entry.meter_id, charges=is_interval_charge(entry))
    return f"OP#{operator_id}#ALEDGER#{entry.account_id}"


def meter_history_pk(operator_id: str, meter_id: str, *, charges: bool = False) -> str:
    return f"OP#{operator_id}#{'MCHARGE' if charges else 'MLEDGER'}#{meter_id}"


def journal_pk(operator_id: str, month: str, *, charges: bool = False) -> str:
    return f"OP#{operator_id}#{'CJOURNAL' if charges else 'JOURNAL'}#{month}"


def _entry_items(entry: Entry) -> list[LedgerEntryItem]:
    data = entry_to_dict(entry)
    at = entry.created_at.astimezone(UTC)
    ordered = f"{at.isoformat()}#{entry.entry_id}"
    month = journal_pk(entry.operator_id, at.strftime("%Y-%m"), charges=is_interval_charge(entry))
    return [LedgerEntryItem(pk=pk, sk=sk, entry=data, account_id=entry.account_id, meter_id=entry.meter_id,
                            created_at=entry.created_at)
            for pk, sk in ((operator_pk(entry.operator_id), _entry_sk(entry.entry_id)), (month, ordered),
                           (_history_pk(entry.operator_id, entry), ordered))]


def _money_item(money: MeterMoney, at: datetime | None) -> MeterMoneyItem:
    item = MeterMoneyItem(pk=operator_pk(money.operator_id), sk=f"MONEY#{money.meter_id}", site_id=money.site_id,
                          meter_id=money.meter_id, account_id=money.account_id,
                          billing_mode=money.billing_mode.value, credit_minor=money.credit_minor,
                          confirmed_count=money.queue.confirmed_count, blocked=money.queue.blocked or None,
                          deliveries=[delivery_to_dict(d) for d in money.queue.deliveries],
                          has_work=money.has_work, updated_at=at or money.updated_at,
                          baseline=asdict(money.baseline) if money.baseline else None)
    if money.version:  # VersionAttribute: the save is conditional on it (or on no item) and adds one
        item.version = money.version
    return item


def _to_money(operator_id: str, item: MeterMoneyItem) -> MeterMoney:
    queue = queue_from_parts(item.meter_id, item.confirmed_count, item.blocked, list(item.deliveries or []))
    baseline = MeterRegisters(**{k: int(v) for k, v in dict(item.baseline).items()}) if item.baseline else None
    return MeterMoney(operator_id, item.site_id, item.meter_id, BillingMode(item.billing_mode), item.account_id,
                      item.credit_minor, queue, item.version or 0, item.updated_at, baseline)


def _account_item(stored: StoredAccount) -> CustomerAccountItem:
    account = stored.account
    item = CustomerAccountItem(pk=operator_pk(account.operator_id), sk=f"ACCOUNT#{account.account_id}",
                               account=account_to_dict(account), is_open=account.is_open,
                               closing=closing_to_dict(stored.closing) if stored.closing else None)
    if stored.version:
        item.version = stored.version
    return item


def _to_account(item: CustomerAccountItem) -> StoredAccount:
    account = account_from_dict(dict(item.account))
    closing = closing_from_dict(account.customer, dict(item.closing)) if item.closing else None
    return StoredAccount(account, item.version or 0, closing)


class DynamoMoneyRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def commit(self, change: MoneyChange) -> None:
        at = change.at or datetime.now(UTC)
        size = 3 * len(change.entries) + len(change.moneys) + len(change.settled) + (change.account is not None) \
            + (change.record is not None)
        if size > TRANSACTION_LIMIT:
            raise ValidationError(f"one operation may write at most {TRANSACTION_LIMIT} items; this one needs {size}")
        guards: list[str] = []  # entry id of each transaction item that is an idempotency guard, else ""
        try:
            with TransactWrite(connection=self._connection) as transaction:
                for entry in change.entries:
                    by_id, *copies = _entry_items(entry)
                    transaction.save(by_id, condition=LedgerEntryItem.pk.does_not_exist())
                    guards.append(entry.entry_id)
                    for copy in copies:
                        transaction.save(copy, condition=LedgerEntryItem.pk.does_not_exist())
                        guards.append("")
                for money in change.moneys:
                    transaction.save(_money_item(money, at))
                    guards.append("")
                if change.account is not None:
                    transaction.save(_account_item(change.account))
                    guards.append("")
                for delivery in change.settled:
                    transaction.save(DeliveryRecordItem(
                        pk=operator_pk(_operator_of(change)), sk=f"DELIVERY#{delivery.delivery_id}",
                        meter_id=delivery.meter_id, delivery=delivery_to_dict(delivery), settled_at=at))
                    guards.append("")
                if change.record is not None:
                    add_to_transaction(transaction, change.record)
                    guards.append("")
        except TransactWriteError as error:
            meaning = _cancellation(error, guards)
            if meaning is None:
                raise
            raise meaning from error

    def money(self, operator_id: str, meter_id: str) -> MeterMoney | None:
        try:
            item = MeterMoneyItem.get(operator_pk(operator_id), f"MONEY#{meter_id}", consistent_read=True)
        except MeterMoneyItem.DoesNotExist:
            return None
        return _to_money(operator_id, item)

    def moneys(self, operator_id: str, meter_ids: Iterable[str]) -> list[MeterMoney]:
        keys = [(operator_pk(operator_id), f"MONEY#{m}") for m in dict.fromkeys(meter_ids)]
        items = MeterMoneyItem.batch_get(keys, consistent_read=True) if keys else []
        return [_to_money(operator_id, item) for item in items]

    def all_moneys(self, operator_id: str) -> list[MeterMoney]:
        items = MeterMoneyItem.query(operator_pk(operator_id), MeterMoneyItem.sk.startswith("MONEY#"))
        return [_to_money(operator_id, item) for item in items]

    def moneys_with_work(self, operator_id: str) -> list[MeterMoney]:
        items = MeterMoneyItem.query(operator_pk(operator_id), MeterMoneyItem.sk.startswith("MONEY#"),
                                     filter_condition=MeterMoneyItem.has_work == True)  # noqa: E712 (a condition)
        return [_to_money(operator_id, item) for item in items]

    def entry(self, operator_id: str, entry_id: str) -> Entry | None:
        try:
            item = LedgerEntryItem.get(operator_pk(operator_id), _entry_sk(entry_id), consistent_read=True)
        except LedgerEntryItem.DoesNotExist:
            return None
        return entry_from_dict(dict(item.entry))

    def meter_entries(self, operator_id: str, meter_id: str, since: datetime | None = None, *,
                      with_charges: bool = True) -> list[Entry]:
        # The history's sort keys begin with the posting time in UTC (``_entry_items``), so a window is a key range.
        window = LedgerEntryItem.sk >= since.astimezone(UTC).isoformat() if since is not None else None
        found = [(item.sk, item) for item in LedgerEntryItem.query(meter_history_pk(operator_id, meter_id), window,
                                                                     consistent_read=True)]
        if with_charges:
            found += [(item.sk, item) for item in LedgerEntryItem.query(
                meter_history_pk(operator_id, meter_id, charges=True), window, consistent_read=True)]
            found.sort(key=lambda pair: pair[0])
        return _entries(item for _, item in found)

    def account_entries(self, operator_id: str, account_id: str) -> list[Entry]:
        stored = self.account(operator_id, account_id)
        if stored is None:
            return []
        found = {e.entry_id: e for m in stored.account.meters
                 for e in self.meter_entries(operator_id, m.meter_id, with_charges=False)
                 if e.account_id == account_id}
        found.update((e.entry_id, e) for e in _entries(
            LedgerEntryItem.query(f"OP#{operator_id}#ALEDGER#{account_id}", consistent_read=True)))
        return sorted(found.values(), key=lambda e: (e.created_at, e.entry_id))

    def fold_checkpoint(self, operator_id: str, meter_id: str) -> FoldCheckpoint | None:
        try:
            item = FoldCheckpointItem.get(operator_pk(operator_id), f"FOLD#{meter_id}", consistent_read=True)
        except FoldCheckpointItem.DoesNotExist:
            return None
        return FoldCheckpoint(item.through_at, item.through_entry_id, item.balance_minor)

    def save_fold_checkpoint(self, operator_id: str, meter_id: str, checkpoint: FoldCheckpoint) -> None:
        # Unconditional: any checkpoint a run computes is true; a slower run's older one only folds more next time.
        FoldCheckpointItem(pk=operator_pk(operator_id), sk=f"FOLD#{meter_id}", through_at=checkpoint.through_at,
                           through_entry_id=checkpoint.through_entry_id, balance_minor=checkpoint.balance_minor).save()

    def journal(self, operator_id: str, month: str) -> list[Entry]:
        return _entries(LedgerEntryItem.query(journal_pk(operator_id, month)))

    def delivery_records(self, operator_id: str, entry_ids: Iterable[str]) -> dict[str, Delivery]:
        keys = [(operator_pk(operator_id), f"DELIVERY#{e}") for e in dict.fromkeys(entry_ids)]
        items = DeliveryRecordItem.batch_get(keys) if keys else []
        return {item.sk.removeprefix("DELIVERY#"): delivery_from_dict(item.meter_id, dict(item.delivery))
                for item in items}

    def account(self, operator_id: str, account_id: str) -> StoredAccount | None:
        try:
            item = CustomerAccountItem.get(operator_pk(operator_id), f"ACCOUNT#{account_id}", consistent_read=True)
        except CustomerAccountItem.DoesNotExist:
            return None
        return _to_account(item)

    def accounts(self, operator_id: str) -> list[StoredAccount]:
        items = CustomerAccountItem.query(operator_pk(operator_id), CustomerAccountItem.sk.startswith("ACCOUNT#"))
        return [_to_account(item) for item in items]


def _operator_of(change: MoneyChange) -> str:
    operators = [e.operator_id for e in change.entries] + [m.operator_id for m in change.moneys]
    if operators:
        return operators[0]
    if change.account is not None:
        return change.account.account.operator_id
    raise ValidationError("a money change names no operator")


def _entries(items: Iterable[Any]) -> list[Entry]:
    return [entry_from_dict(dict(item.entry)) for item in items]


def _cancellation(error: TransactWriteError, guards: list[str]) -> Exception | None:
    """Which condition failed decides the meaning: a guard → already posted; anything else → read again."""
    reasons = error.cancellation_reasons or []
    posted = [guards[i] for i, reason in enumerate(reasons)
              if reason is not None and reason.code == "ConditionalCheckFailed" and i < len(guards) and guards[i]]
    if posted:
        return AlreadyPosted(posted)
    codes = {reason.code for reason in reasons if reason is not None}
    if codes & {"ConditionalCheckFailed", "TransactionConflict"}:
        return StaleMoney("a meter's money state or the account changed meanwhile")
    return None
