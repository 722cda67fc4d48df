"""Bulk meter imports in DynamoDB, all or nothing across several transactions (the design is explained in
chalicelib/services/meter_import.py).

Every unit and meter an import puts carries the import's id in an extra ``import_id`` attribute (the item
classes do not declare it, so reads ignore it): compensation deletes a key only while it still carries that
id, so it can never remove an item somebody else wrote. The site's journal item (sk ``IMPORT#METERS``) exists
exactly while an import of several transactions is unfinished, and lists every key the import may write.
"""

from __future__ import annotations

import base64
import json
import logging
import zlib
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError
from pynamodb.attributes import UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError

from chalicelib.adapters.dynamodb.keys import site_pk
from chalicelib.adapters.dynamodb.models import MainItem, MeterItem, UnitItem
from chalicelib.adapters.dynamodb.oplog_repo import record_to_item
from chalicelib.domain.errors import Conflict, ValidationError
from chalicelib.domain.meter_import import ImportJournal, ImportRolledBack, MeterImportBatch
from chalicelib.domain.oplog import OperationRecord
from chalicelib.domain.tenancy import Meter, Unit

LOG = logging.getLogger("voltvend.meter_import")
JOURNAL_SK = "IMPORT#METERS"
TRANSACTION_LIMIT = 100  # DynamoDB's TransactWriteItems cap
MAX_JOURNAL_BYTES = 300 * 1024  # an item holds 400 KB; the rest is headroom for the other attributes
Action = dict[str, dict[str, Any]]


class MeterImportJournalItem(MainItem, discriminator="meter_import"):
    import_id = UnicodeAttribute()
    started_at = UTCDateTimeAttribute()
    actor = UnicodeAttribute()
    keys = UnicodeAttribute()  # zlib + base64 of {"meters": [...], "units": [...]}: a few hundred ids fit easily


class _JournalTaken(Conflict):
    """The site's journal exists: another import of several transactions is unfinished."""


class MeterImportStore:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    @property
    def _table(self) -> str:
        return str(MainItem.Meta.table_name)

    def import_meters(self, batch: MeterImportBatch) -> None:
        puts = [self._put(_unit_item(u, batch.import_id)) for u in batch.units] + \
               [self._put(_meter_item(m, batch.import_id)) for m in batch.meters]
        record = self._put(record_to_item(batch.record).serialize())
        if len(puts) + 2 <= TRANSACTION_LIMIT:  # one transaction; it only checks that no other import is open
            no_journal = {"TableName": self._table, "Key": _journal_key(batch.operator_id, batch.site_id),
                          "ConditionExpression": "attribute_not_exists(pk)"}
            self._transact(f"{batch.import_id}-0", [{"ConditionCheck": no_journal}, *puts, record])
            return
        journal = self._put(_journal_item(_journal_of(batch)).serialize())
        try:
            for number, actions in enumerate(_transactions(journal, puts, self._close(batch), record)):
                self._transact(f"{batch.import_id}-{number}", actions)
        except _JournalTaken:
            raise  # our first transaction wrote nothing: the other import's journal stays untouched
        except Exception as error:
            self.undo_meter_import(_journal_of(batch), batch.undo_record)
            if isinstance(error, Conflict):
                raise
            raise ImportRolledBack("the import could not be written and was rolled back; nothing was imported; "
                                   "try again") from error

    def running_meter_import(self, operator_id: str, site_id: str) -> ImportJournal | None:
        answer = self._connection.dispatch("GetItem", {"TableName": self._table, "ConsistentRead": True,
                                                       "Key": _journal_key(operator_id, site_id)})
        raw = answer.get("Item")
        if not raw:
            return None
        item = MeterImportJournalItem.from_raw_data(raw)
        keys = json.loads(zlib.decompress(base64.b64decode(item.keys)))
        return ImportJournal(operator_id, site_id, item.import_id, item.started_at, item.actor,
                             tuple(keys["meters"]), tuple(keys["units"]))

    def undo_meter_import(self, journal: ImportJournal, record: OperationRecord) -> None:
        """Remove what the import wrote (only keys still tagged with its id), then its journal, and log that."""
        pk = site_pk(journal.operator_id, journal.site_id)
        for sk in [f"METER#{m}" for m in journal.meter_ids] + [f"UNIT#{u}" for u in journal.unit_ids]:
            self._delete_if_tagged(pk, sk, journal.import_id)
        release = {"TableName": self._table, "Key": _journal_key(journal.operator_id, journal.site_id),
                   "ConditionExpression": "attribute_not_exists(pk) OR import_id = :import",
                   "ExpressionAttributeValues": {":import": {"S": journal.import_id}}}
        log_it = self._put(record_to_item(record).serialize())
        try:
            self._transact(f"{journal.import_id}-undo", [{"Delete": release}, log_it])
        except _JournalTaken:  # our journal was never written and another import holds the site now
            self._transact(f"{journal.import_id}-undo-log", [log_it])
        LOG.warning("meter import %s on %s/%s rolled back", journal.import_id, journal.operator_id, journal.site_id)

    # -- helpers ---------------------------------------------------------------------------------
    def _put(self, item: dict[str, Any]) -> Action:
        return {"Put": {"TableName": self._table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}}

    def _close(self, batch: MeterImportBatch) -> Action:
        """Deleting the journal commits the import; only our own journal may be deleted."""
        return {"Delete": {"TableName": self._table, "Key": _journal_key(batch.operator_id, batch.site_id),
                           "ConditionExpression": "import_id = :import",
                           "ExpressionAttributeValues": {":import": {"S": batch.import_id}}}}

    def _transact(self, token: str, actions: list[Action]) -> None:
        """One TransactWriteItems; the request token makes botocore's own retries of it idempotent."""
        groups: dict[str, list[dict[str, Any]]] = {"ConditionCheck": [], "Delete": [], "Put": []}
        for action in actions:
            for kind, body in action.items():
                groups[kind].append(body)
        try:
            self._connection.transact_write_items(condition_check_items=groups["ConditionCheck"],
                                                  delete_items=groups["Delete"], put_items=groups["Put"],
                                                  update_items=[], client_request_token=token)
        except TransactWriteError as error:
            # DynamoDB lists reasons in the order pynamodb sends: condition checks, deletes, puts
            raise _explain(error, groups["ConditionCheck"] + groups["Delete"] + groups["Put"]) from error

    def _delete_if_tagged(self, pk: str, sk: str, import_id: str) -> None:
        try:
            self._connection.dispatch("DeleteItem", {
                "TableName": self._table, "Key": {"pk": {"S": pk}, "sk": {"S": sk}},
                "ConditionExpression": "import_id = :import",
                "ExpressionAttributeValues": {":import": {"S": import_id}},
            })
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise  # absent, or somebody else's item: both are left alone


def _transactions(journal: Action, puts: list[Action], close: Action, record: Action) -> Iterator[list[Action]]:
    """The journal with the first items; full transactions; the rest with the journal's delete and the record."""
    first, rest = puts[:TRANSACTION_LIMIT - 1], puts[TRANSACTION_LIMIT - 1:]
    yield [journal, *first]
    cut = max(0, len(rest) - (TRANSACTION_LIMIT - 2))
    for start in range(0, cut, TRANSACTION_LIMIT):
        yield rest[start:min(start + TRANSACTION_LIMIT, cut)]
    yield [*rest[cut:], close, record]


def _explain(error: TransactWriteError, bodies: list[dict[str, Any]]) -> Exception:
    """A taken key becomes a Conflict that names it; anything else stays as it is."""
    for reason, body in zip(error.cancellation_reasons, bodies, strict=False):
        if reason is None or reason.code != "ConditionalCheckFailed":
            continue
        sk = str((body.get("Item") or body.get("Key") or {}).get("sk", {}).get("S", ""))
        if sk == JOURNAL_SK:  # a journal we wanted absent is there, or ours went missing (not the user's doing)
            taken = "attribute_not_exists" in str(body.get("ConditionExpression", ""))
            return _JournalTaken("another meter import is running on this site; try again in a few minutes") \
                if taken else error
        return Conflict(f"{sk.partition('#')[2]} was added by someone else meanwhile; nothing was imported")
    return error


def _journal_key(operator_id: str, site_id: str) -> dict[str, Any]:
    return {"pk": {"S": site_pk(operator_id, site_id)}, "sk": {"S": JOURNAL_SK}}


def _journal_of(batch: MeterImportBatch) -> ImportJournal:
    return ImportJournal(batch.operator_id, batch.site_id, batch.import_id, batch.started_at, batch.actor,
                         tuple(m.meter_id for m in batch.meters), tuple(u.unit_id for u in batch.units))


def _journal_item(journal: ImportJournal) -> MeterImportJournalItem:
    packed = zlib.compress(json.dumps({"meters": journal.meter_ids, "units": journal.unit_ids}).encode())
    if len(packed) > MAX_JOURNAL_BYTES:
        raise ValidationError("too many meters for one import; split the file")
    return MeterImportJournalItem(pk=site_pk(journal.operator_id, journal.site_id), sk=JOURNAL_SK,
                                  import_id=journal.import_id, started_at=journal.started_at, actor=journal.actor,
                                  keys=base64.b64encode(packed).decode("ascii"))


def _meter_item(meter: Meter, import_id: str) -> dict[str, Any]:
    item = MeterItem(pk=site_pk(meter.operator_id, meter.site_id), sk=f"METER#{meter.meter_id}",
                     meter_id=meter.meter_id, serial=meter.serial, model=meter.model,
                     collector_id=meter.collector_id, address=meter.address, unit_id=meter.unit_id,
                     billing_mode=meter.billing_mode.value, ct_ratio=meter.ct_ratio).serialize()
    return {**item, "import_id": {"S": import_id}}


def _unit_item(unit: Unit, import_id: str) -> dict[str, Any]:
    item = UnitItem(pk=site_pk(unit.operator_id, unit.site_id), sk=f"UNIT#{unit.unit_id}", unit_id=unit.unit_id,
                    building_id=unit.building_id, floor=unit.floor, number=unit.number).serialize()
    return {**item, "import_id": {"S": import_id}}
