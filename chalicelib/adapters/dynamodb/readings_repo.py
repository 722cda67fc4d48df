"""Ingested bus runs: each meter's current state and its time-ordered readings."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pynamodb.attributes import UTCDateTimeAttribute
from pynamodb.connection import Connection
from pynamodb.exceptions import UpdateError

from chalicelib.adapters.dynamodb.alarm_codec import state_from_dict, state_to_dict
from chalicelib.adapters.dynamodb.batch import Attributes, batch_get, item_attributes, put_items
from chalicelib.adapters.dynamodb.keys import site_pk
from chalicelib.adapters.dynamodb.models import MeterStateItem, ReadingItem, UsageItem
from chalicelib.domain.alarms import AlarmState
from chalicelib.domain.board import SHOWN_REGISTERS
from chalicelib.domain.readings import READINGS_HOT, Reading, StoredState, Usage

# TTL is only a safety net: it must never remove a reading the daily archival has not moved yet, so it
# lies two months past the hot window (DynamoDB Local does sweep expired items now and then, too).
READINGS_EXPIRE = READINGS_HOT + timedelta(days=60)
LAST_MS = 10**13 - 1  # the largest time a usage key's 13 digits hold (the year 2286)


def reading_pk(operator_id: str, meter_id: str) -> str:
    return f"OP#{operator_id}#METER#{meter_id}"


class DynamoReadingsRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def get_state(self, operator_id: str, site_id: str, meter_id: str) -> StoredState | None:
        found = self.get_states(operator_id, site_id, [meter_id])
        return found[0] if found else None

    def get_states(self, operator_id: str, site_id: str, meter_ids: Iterable[str]) -> list[StoredState]:
        """The meters' states (those that have one), read straight from DynamoDB's answer: every bus run reads its
        meters' states first, and building a model of each costs more than DynamoDB Local takes to find them."""
        pk = site_pk(operator_id, site_id)
        keys = [{"pk": {"S": pk}, "sk": {"S": f"STATE#{meter_id}"}} for meter_id in dict.fromkeys(meter_ids)]
        return [_state_of(item) for item in batch_get(self._connection, MeterStateItem.Meta.table_name, keys,
                                                      _STATE_ATTRIBUTES)]

    def set_alarm_state(self, operator_id: str, site_id: str, meter_id: str, alarms: AlarmState) -> None:
        try:
            item = MeterStateItem.get(site_pk(operator_id, site_id), f"STATE#{meter_id}", consistent_read=True)
        except MeterStateItem.DoesNotExist:
            return
        summary = board_summary(meter_id, dict(item.values), item.last_answer_at, item.missed_cycles or 0, alarms)
        item.update(actions=[MeterStateItem.alarms.set(state_to_dict(alarms)), MeterStateItem.board.set(summary)],
                    condition=MeterStateItem.pk.exists())

    def merge_values(self, operator_id: str, site_id: str, meter_id: str, values: dict[str, Any],
                     at: datetime) -> bool:
        try:
            item = MeterStateItem.get(site_pk(operator_id, site_id), f"STATE#{meter_id}", consistent_read=True)
        except MeterStateItem.DoesNotExist:
            return False
        if item.read_at > at:
            return False
        exact = {k: v if isinstance(v, int) else str(v) for k, v in values.items()}
        merged = {**dict(item.values), **exact}
        alarms = state_from_dict(item.alarms) if item.alarms else None
        try:
            # Conditional on the reading it was merged into, so a bus run stored meanwhile is never overwritten.
            item.update(actions=[MeterStateItem.values.set(merged), MeterStateItem.read_at.set(at),
                                 MeterStateItem.last_answer_at.set(at),
                                 MeterStateItem.board.set(board_summary(meter_id, merged, at, 0, alarms))],
                        condition=MeterStateItem.read_at == item.read_at)
        except UpdateError:
            return False
        return True

    def list_states(self, operator_id: str, site_id: str) -> list[StoredState]:
        items = MeterStateItem.query(site_pk(operator_id, site_id), MeterStateItem.sk.startswith("STATE#"))
        return [_state_of(item.serialize()) for item in items]

    def put_states(self, operator_id: str, site_id: str, states: Iterable[StoredState]) -> None:
        put_items(self._connection, (_state_item(operator_id, site_id, s) for s in states))

    def put_readings(self, operator_id: str, readings: Iterable[Reading]) -> None:
        put_items(self._connection, (_reading_item(operator_id, *r) for r in readings))

    def put_run(self, operator_id: str, site_id: str, readings: Iterable[Reading],
                states: Iterable[StoredState], usage: Iterable[Usage] = ()) -> None:
        """A bus run's readings, the states they lead to and any priced usage, packed into shared batch calls."""
        put_items(self._connection, [*(_reading_item(operator_id, *r) for r in readings),
                                     *(_state_item(operator_id, site_id, s) for s in states),
                                     *(_usage_item(operator_id, site_id, u) for u in usage)])

    def usage(self, operator_id: str, site_id: str, meter_id: str, since_ms: int = 0) -> list[Usage]:
        """A cloud-billed meter's priced intervals, oldest first; those starting at or after ``since_ms`` (a key range:
        a meter gathers one every reading cycle)."""
        window = UsageItem.sk.between(_usage_sk(meter_id, since_ms), _usage_sk(meter_id, LAST_MS))
        items = UsageItem.query(site_pk(operator_id, site_id), window)
        return [Usage(i.meter_id, i.start_ms, i.end_ms, i.energy_centi_kwh, i.cost_micro, i.charge_minor, i.month)
                for i in items]

    def readings(self, operator_id: str, meter_id: str, since_ms: int = 0,
                 limit: int = 500) -> list[tuple[int, dict[str, Any]]]:
        items = ReadingItem.query(reading_pk(operator_id, meter_id), ReadingItem.at_ms >= since_ms, limit=limit)
        return [(item.at_ms, dict(item.values)) for item in items]


    def last_reading_before(self, operator_id: str, meter_id: str, before_ms: int) -> dict[str, Any] | None:
        items = list(ReadingItem.query(reading_pk(operator_id, meter_id), ReadingItem.at_ms < before_ms,
                                       scan_index_forward=False, limit=1))
        return dict(items[0].values) if items else None

    def readings_between(self, operator_id: str, meter_id: str, start_ms: int,
                         end_ms: int) -> list[tuple[int, dict[str, Any]]]:
        items = ReadingItem.query(reading_pk(operator_id, meter_id), ReadingItem.at_ms.between(start_ms, end_ms - 1))
        return [(item.at_ms, dict(item.values)) for item in items]

    def readings_before(self, operator_id: str, meter_id: str, before_ms: int) -> list[tuple[int, dict[str, Any]]]:
        items = ReadingItem.query(reading_pk(operator_id, meter_id), ReadingItem.at_ms < before_ms,
                                  consistent_read=True)
        return [(item.at_ms, dict(item.values)) for item in items]

    def delete_readings(self, operator_id: str, meter_id: str, times_ms: list[int]) -> None:
        with ReadingItem.batch_write() as batch:
            for at_ms in times_ms:
                batch.delete(ReadingItem(pk=reading_pk(operator_id, meter_id), at_ms=at_ms))


def _state_item(operator_id: str, site_id: str, state: StoredState) -> tuple[str, Attributes]:
    return item_attributes(MeterStateItem, pk=site_pk(operator_id, site_id), sk=f"STATE#{state.meter_id}",
                           meter_id=state.meter_id, read_at=state.read_at, values=state.values,
                           problems=list(state.problems), last_answer_at=state.last_answer_at,
                           missed_cycles=state.missed_cycles,
                           alarms=state_to_dict(state.alarms) if state.alarms else None, billing=state.billing,
                           board=board_summary(state.meter_id, state.values, state.last_answer_at,
                                               state.missed_cycles, state.alarms))


def board_summary(meter_id: str, values: dict[str, Any], last_answer_at: datetime | None, missed_cycles: int,
                  alarms: AlarmState | None) -> str:
    """The status board's view of a state (read back by adapters/dynamodb/board_reads.py): the registers a row
    shows, when the meter last answered, its silent cycles and its active alarms' kinds."""
    shown = {k: values[k] for k in SHOWN_REGISTERS if k in values}
    kinds = [a.kind.value for a in alarms.active if a.cleared_at is None] if alarms else []
    return json.dumps({"i": meter_id, "v": shown, "t": last_answer_at.isoformat() if last_answer_at else None,
                       "m": missed_cycles, "k": kinds}, separators=(",", ":"), default=str)


def _reading_item(operator_id: str, meter_id: str, at_ms: int, values: dict[str, Any]) -> tuple[str, Attributes]:
    at = datetime.fromtimestamp(at_ms / 1000, UTC)
    return item_attributes(ReadingItem, pk=reading_pk(operator_id, meter_id), at_ms=at_ms, values=values,
                           expires=at + READINGS_EXPIRE)


def _usage_sk(meter_id: str, start_ms: int) -> str:
    return f"USE#{meter_id}#{start_ms:013d}"  # fixed width, so the text orders as the time does


def _usage_item(operator_id: str, site_id: str, usage: Usage) -> tuple[str, Attributes]:
    return item_attributes(UsageItem, pk=site_pk(operator_id, site_id),
                           sk=_usage_sk(usage.meter_id, usage.start_ms), meter_id=usage.meter_id,
                           start_ms=usage.start_ms, end_ms=usage.end_ms, energy_centi_kwh=usage.energy_centi_kwh,
                           cost_micro=usage.cost_micro, charge_minor=usage.charge_minor, month=usage.month)


_STATE_ATTRIBUTES = ("meter_id", "read_at", "values", "problems", "last_answer_at", "missed_cycles", "alarms",
                     "billing")
_TIMES = UTCDateTimeAttribute()


def _state_of(item: dict[str, dict[str, Any]]) -> StoredState:
    """A state from its DynamoDB attributes, as ``MeterStateItem`` stores them (absent means null)."""
    def text(name: str) -> str | None:
        value = item.get(name)
        return value.get("S") if value else None

    answered, alarms, billing = text("last_answer_at"), text("alarms"), text("billing")
    return StoredState(str(text("meter_id")), _TIMES.deserialize(text("read_at")),
                       json.loads(text("values") or "{}", parse_float=Decimal),
                       tuple(str(p["S"]) for p in item.get("problems", {}).get("L", [])),
                       _TIMES.deserialize(answered) if answered else None,
                       int(item["missed_cycles"]["N"]) if "missed_cycles" in item else 0,
                       state_from_dict(json.loads(alarms, parse_float=Decimal)) if alarms else None,
                       (json.loads(billing, parse_float=Decimal) or None) if billing else None)
