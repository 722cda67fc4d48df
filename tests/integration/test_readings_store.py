"""The readings repository's hot path against DynamoDB Local: items written from their values without model
objects are the items the models write, and states read straight from DynamoDB's answer are the states stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from chalicelib.adapters.dynamodb.alarm_codec import state_to_dict
from chalicelib.adapters.dynamodb.batch import item_attributes
from chalicelib.adapters.dynamodb.keys import site_pk
from chalicelib.adapters.dynamodb.models import MeterMoneyItem, MeterStateItem, ReadingItem, UsageItem
from chalicelib.adapters.dynamodb.readings_repo import READINGS_EXPIRE, board_summary, reading_pk
from chalicelib.bootstrap import get_services
from chalicelib.domain.alarms import Alarm, AlarmKind, AlarmState, RegisterBaseline, Severity, Subject, SubjectKind
from chalicelib.domain.readings import StoredState, Usage
from tests.conftest import OperatorFixture

AT = datetime(2026, 11, 20, 9, 30, 0, 123000, tzinfo=UTC)
VALUES = {"energy_total": "1200.75", "remaining_amount": "-3.20", "relay_state": 1, "purchase_count": 4}


def _alarmed(meter_id: str) -> AlarmState:
    subject = Subject(SubjectKind.METER, meter_id)
    arrears = Alarm(f"meter:{meter_id}:arrears:1", AlarmKind.ARREARS, subject, Severity.CRITICAL,
                    AT - timedelta(hours=1), {"balance": "-3.20"}, None, "cashier", AT)
    return AlarmState(subject, (arrears,), RegisterBaseline(Decimal("1200.75"), (Decimal("1"), Decimal("2")), 4), AT)


def _states() -> list[StoredState]:
    return [
        StoredState("m_full", AT, dict(VALUES), ("m_full@0010: no answer",), AT, 0, _alarmed("m_full"),
                    {"month": "2026-11", "month_energy": 4200, "exact_micro": 1_234_567, "posted_minor": 123}),
        StoredState("m_silent", AT, {}, ("m_silent@0000: timeout",), None, 3),
        StoredState("m_plain", AT + timedelta(minutes=1), {"voltage": "229.9"}, (), AT, 0),
    ]


def test_states_come_back_as_they_were_stored(new_operator: OperatorFixture) -> None:
    readings, op = get_services().readings, new_operator.operator_id
    stored = _states()
    readings.put_run(op, "site_rs", [], stored)

    found = readings.get_states(op, "site_rs", ["m_plain", "m_full", "m_ghost", "m_silent", "m_full"])

    assert sorted(found, key=lambda s: s.meter_id) == sorted(stored, key=lambda s: s.meter_id)
    assert readings.get_states(op, "site_rs", []) == []
    assert readings.get_states(op, "another_site", ["m_full"]) == []


def test_items_written_from_values_are_what_the_models_write(new_operator: OperatorFixture) -> None:
    readings, op = get_services().readings, new_operator.operator_id
    usage = Usage("m_full", 1_700_000_000_000, 1_700_003_600_000, 250, 1_625_000, 163, "2026-11")
    readings.put_run(op, "site_rs", [("m_full", 1_700_003_600_000, dict(VALUES))], _states(), [usage])

    full = _states()[0]
    as_model = MeterStateItem(pk=site_pk(op, "site_rs"), sk="STATE#m_full", meter_id="m_full", read_at=full.read_at,
                              values=full.values, problems=list(full.problems), last_answer_at=full.last_answer_at,
                              missed_cycles=0, alarms=state_to_dict(_alarmed("m_full")), billing=full.billing,
                              board=board_summary("m_full", full.values, full.last_answer_at, 0, full.alarms))
    raw = readings._connection.dispatch("GetItem", {"TableName": MeterStateItem.Meta.table_name, "Key": {
        "pk": {"S": site_pk(op, "site_rs")}, "sk": {"S": "STATE#m_full"}}})["Item"]
    assert raw == as_model.serialize()  # what DynamoDB holds, attribute for attribute
    assert MeterStateItem.get(site_pk(op, "site_rs"), "STATE#m_full").serialize() == as_model.serialize()
    reading = ReadingItem.get(reading_pk(op, "m_full"), 1_700_003_600_000)
    expires = datetime.fromtimestamp(1_700_003_600, UTC) + READINGS_EXPIRE
    assert reading.serialize() == ReadingItem(pk=reading_pk(op, "m_full"), at_ms=1_700_003_600_000,
                                              values=VALUES, expires=expires).serialize()
    assert readings.usage(op, "site_rs", "m_full") == [usage]
    assert [type(i) for i in UsageItem.query(site_pk(op, "site_rs"), UsageItem.sk.startswith("USE#"))] == [UsageItem]


def test_serializing_from_values_keeps_the_models_rules() -> None:
    table, attributes = item_attributes(ReadingItem, pk="p", at_ms=5, values={"a": 1})
    assert table == ReadingItem.Meta.table_name
    assert attributes == ReadingItem(pk="p", at_ms=5, values={"a": 1}).serialize()  # no expiry: left out, as null

    silent = item_attributes(MeterStateItem, pk="p", sk="STATE#m", meter_id="m", read_at=AT, values={})[1]
    assert silent["problems"] == {"L": []} and silent["missed_cycles"] == {"N": "0"}  # the models' defaults
    assert silent["kind"] == {"S": "meter_state"}

    try:  # given as None is not "not given": the default does not step in, as it would not in the model
        item_attributes(MeterStateItem, pk="p", sk="STATE#m", meter_id="m", read_at=AT, values={}, missed_cycles=None)
    except ValueError as error:
        assert "missed_cycles" in str(error)
    else:
        raise AssertionError("a None for a required attribute was accepted")
    try:
        item_attributes(MeterMoneyItem, pk="p", sk="MONEY#m")
    except ValueError as error:
        assert "versioned" in str(error)
    else:
        raise AssertionError("a versioned model was written without its condition")

    for wrong in ({"pk": "p", "at_ms": 5}, {"pk": "p", "at_ms": 5, "values": {}, "colour": "red"}):
        try:
            item_attributes(ReadingItem, **wrong)
        except ValueError as error:  # AttributeNullError is a ValueError too
            assert "values" in str(error) or "colour" in str(error)
        else:
            raise AssertionError(f"{wrong} was accepted")


def test_many_states_are_read_past_one_batch_get_call(new_operator: OperatorFixture) -> None:
    readings, op = get_services().readings, new_operator.operator_id
    many = [StoredState(f"m{n:03d}", AT, {"energy_total": f"{n}.00"}, (), AT, 0) for n in range(130)]
    readings.put_run(op, "site_many", [], many)

    found = readings.get_states(op, "site_many", [s.meter_id for s in many])

    assert sorted(found, key=lambda s: s.meter_id) == many


def test_a_meters_usage_since_a_moment_is_read_as_a_key_range(new_operator: OperatorFixture) -> None:
    readings, op = get_services().readings, new_operator.operator_id
    hour = 3_600_000
    intervals = [Usage("m_u", start, start + hour, 100, 650_000, 65, "2026-11")
                 for start in (1_700_000_000_000 + n * hour for n in range(5))]
    neighbour = Usage("m_u2", 1_700_000_000_000, 1_700_000_000_000 + hour, 1, 1, 1, "2026-11")
    readings.put_run(op, "site_use", [], [], [*intervals, neighbour])

    assert readings.usage(op, "site_use", "m_u") == intervals
    assert readings.usage(op, "site_use", "m_u", intervals[3].start_ms) == intervals[3:]
    assert readings.usage(op, "site_use", "m_u", intervals[3].start_ms + 1) == intervals[4:]
    assert readings.usage(op, "site_use", "m_u", intervals[4].end_ms) == []
    assert readings.usage(op, "site_use", "m_u2") == [neighbour]  # one meter's range never runs into the next
