"""The status board's reads: the site's tree, its meters' states and their accounts, each in one projected Query.

For 1,000 meters the repositories' full reads cost more in parsing than in DynamoDB: botocore walks every attribute
of every item, then PynamoDB builds a model of each. The board shows a few attributes, so each query asks for just
those (a money state's delivery queue, or a meter's settings, never leave DynamoDB) and the answers are read straight
into domain objects. Reads only; writes stay with the repositories that own these items.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from pynamodb.attributes import UTCDateTimeAttribute
from pynamodb.connection import Connection

from chalicelib.adapters.dynamodb.keys import operator_pk, site_pk
from chalicelib.adapters.dynamodb.models import MainItem
from chalicelib.domain.alarms import AlarmKind
from chalicelib.domain.board import SHOWN_REGISTERS, MeterAccount, MeterListing, MeterStatus
from chalicelib.domain.tenancy import BillingMode, Building, Unit

Item = dict[str, dict[str, Any]]
_TIMES = UTCDateTimeAttribute()
_KINDS = {kind.value for kind in AlarmKind}  # a kind added later is skipped by an older reader, not a 500


def _connection() -> Connection:
    # The connection every model is bound to (chalicelib.adapters.dynamodb.binding), so the board shares its
    # HTTP pool and endpoint with the repositories.
    return MainItem._get_connection().connection


def _query(pk: str, prefix: str, attributes: tuple[str, ...], *, only_site: str | None = None) -> Iterator[Item]:
    """Every page of one Query; attribute names go through placeholders (values, floor, number are reserved)."""
    names = {f"#a{n}": name for n, name in enumerate(attributes)}
    request: dict[str, Any] = {
        "TableName": MainItem.Meta.table_name, "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
        "ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": {":pk": {"S": pk}, ":prefix": {"S": prefix}}}
    if only_site is not None:
        request["FilterExpression"] = "#site = :site"
        request["ExpressionAttributeNames"]["#site"] = "site_id"
        request["ExpressionAttributeValues"][":site"] = {"S": only_site}
    connection = _connection()
    while True:
        answer = connection.dispatch("Query", request)
        yield from answer.get("Items", [])
        if "LastEvaluatedKey" not in answer:
            return
        request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]


def _text(item: Item, name: str, default: str = "") -> str:
    value = item.get(name)
    return str(value["S"]) if value and "S" in value else default


def _number(item: Item, name: str, default: int = 0) -> int:
    value = item.get(name)
    return int(value["N"]) if value and "N" in value else default


class DynamoBoardReads:
    def buildings(self, operator_id: str, site_id: str) -> list[Building]:
        items = _query(site_pk(operator_id, site_id), "BLDG#", ("building_id", "name", "floors"))
        return [Building(operator_id, site_id, _text(i, "building_id"), _text(i, "name"),
                         tuple(str(f["S"]) for f in i.get("floors", {}).get("L", []))) for i in items]

    def units(self, operator_id: str, site_id: str) -> list[Unit]:
        items = _query(site_pk(operator_id, site_id), "UNIT#", ("unit_id", "building_id", "floor", "number"))
        return [Unit(operator_id, site_id, _text(i, "unit_id"), _text(i, "building_id"), _text(i, "floor"),
                     _text(i, "number")) for i in items]

    def meters(self, operator_id: str, site_id: str) -> list[MeterListing]:
        fields = ("meter_id", "serial", "unit_id", "billing_mode")
        return [MeterListing(_text(i, "meter_id"), _text(i, "serial"), _text(i, "unit_id"),
                             BillingMode(_text(i, "billing_mode", BillingMode.PREPAID_METER.value)))
                for i in _query(site_pk(operator_id, site_id), "METER#", fields)]

    def states(self, operator_id: str, site_id: str) -> list[MeterStatus]:
        """Each state's board summary (one small attribute); states stored before summaries existed are read the
        long way, in one more query, only when there are any."""
        pk = site_pk(operator_id, site_id)
        found, legacy = [], False
        for item in _query(pk, "STATE#", ("board",)):
            summary = _text(item, "board")
            if summary:
                found.append(_summary(summary))
            else:
                legacy = True
        if legacy:
            seen = {status.meter_id for status in found}
            fields = ("meter_id", "values", "last_answer_at", "missed_cycles", "alarms")
            found += [s for s in map(_status, _query(pk, "STATE#", fields)) if s.meter_id not in seen]
        return found

    def accounts(self, operator_id: str, site_id: str) -> list[MeterAccount]:
        """The site's meters' money states (kept per operator, so filtered to the site by DynamoDB)."""
        items = _query(operator_pk(operator_id), "MONEY#", ("meter_id", "account_id", "credit_minor"),
                       only_site=site_id)
        return [MeterAccount(_text(i, "meter_id"), _text(i, "account_id") or None, _number(i, "credit_minor"))
                for i in items]


def _status(item: Item) -> MeterStatus:
    answered = _text(item, "last_answer_at")
    values = json.loads(_text(item, "values", "{}"), parse_float=Decimal)
    return MeterStatus(_text(item, "meter_id"), {k: values[k] for k in SHOWN_REGISTERS if k in values},
                       _TIMES.deserialize(answered) if answered else None, _number(item, "missed_cycles"),
                       _active_alarms(_text(item, "alarms")))


def _summary(text: str) -> MeterStatus:
    data = json.loads(text, parse_float=Decimal)
    answered = data.get("t")
    return MeterStatus(data["i"], dict(data.get("v") or {}), datetime.fromisoformat(answered) if answered else None,
                       int(data.get("m") or 0), tuple(AlarmKind(k) for k in data.get("k") or () if k in _KINDS))


def _active_alarms(memory: str) -> tuple[AlarmKind, ...]:
    """The kinds of the alarms active in a meter's alarm memory (the layout of ``alarm_codec.state_to_dict``).
    Only the kinds: building every Alarm with its times and evidence would cost more than the rest of the row."""
    if not memory:
        return ()
    active = json.loads(memory).get("active") or []
    return tuple(AlarmKind(a["kind"]) for a in active if a.get("cleared_at") is None and a.get("kind") in _KINDS)
