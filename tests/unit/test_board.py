"""The status board's pure rules: each meter's colour, its row, the filters (and their 400s), counts and paging."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.domain.alarms import Alarm, AlarmKind, AlarmState, Severity, Subject, SubjectKind
from chalicelib.domain.board import (
    BoardFilter,
    BoardState,
    MeterAccount,
    MeterStatus,
    board_rows,
    board_state,
    floors_of,
    parse_filter,
    select,
)
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.meter_state import Condition, ControlMode
from chalicelib.domain.readings import StoredState
from chalicelib.domain.tenancy import BillingMode, Building, Meter, Unit

OP, SITE = "op", "site"
AT = datetime(2026, 5, 1, 8, 30, tzinfo=UTC)
BUILDINGS = [Building(OP, SITE, "b_a", "Block A", ("1", "2", "10")), Building(OP, SITE, "b_b", "Block B", ("1",))]
UNITS = [Unit(OP, SITE, "u_a101", "b_a", "1", "A101"), Unit(OP, SITE, "u_a201", "b_a", "2", "A201"),
         Unit(OP, SITE, "u_a1001", "b_a", "10", "A1001"), Unit(OP, SITE, "u_b101", "b_b", "1", "B101"),
         Unit(OP, SITE, "u_b102", "b_b", "1", "B102")]


def meter(n: int, unit_id: str, billing: BillingMode = BillingMode.PREPAID_METER) -> Meter:
    return Meter(OP, SITE, f"m{n}", f"SN{n:04d}", "DTSY1352", "c1", n, unit_id, billing)


def stored(meter_id: str, *, balance: str = "100.00", bits: int = 0, relay: int = 0, mode: int = 0, missed: int = 0,
           answered: bool = True, alarms: tuple[AlarmKind, ...] = ()) -> MeterStatus:
    values: dict[str, Any] = {"remaining_amount": balance, "status_bits": bits, "relay_state": relay,
                              "control_mode": mode}
    memory = AlarmState(Subject(SubjectKind.METER, meter_id),
                        tuple(Alarm(f"a-{k}", k, Subject(SubjectKind.METER, meter_id), Severity.WARNING, AT)
                              for k in alarms)) if alarms else None
    return MeterStatus.of(StoredState(meter_id, AT, values, (), AT if answered else None, missed, memory))


def money(meter_id: str, *, account: str | None = "acct-1", credit: int = 0) -> MeterAccount:
    return MeterAccount(meter_id, account, credit)


def test_lost_contact_outranks_everything_then_not_opened_then_never_read() -> None:
    prepaid = BillingMode.PREPAID_METER
    assert board_state(Condition.LOST_CONTACT, False, prepaid) is BoardState.LOST_CONTACT
    assert board_state(Condition.ARREARS, False, prepaid) is BoardState.NOT_OPENED
    assert board_state(Condition.NEVER_READ, False, prepaid) is BoardState.NOT_OPENED
    assert board_state(Condition.NEVER_READ, True, prepaid) is BoardState.NEVER_READ


@pytest.mark.parametrize(("level", "expected"), [
    (Condition.NORMAL, BoardState.OPENED), (Condition.ALARM_1, BoardState.ALARM_1),
    (Condition.ALARM_2, BoardState.ALARM_2), (Condition.ARREARS, BoardState.ARREARS)])
def test_an_opened_prepaid_meter_takes_its_level_from_its_own_status_bits(level: Condition,
                                                                          expected: BoardState) -> None:
    assert board_state(level, True, BillingMode.PREPAID_METER, (AlarmKind.ARREARS,)) is expected


def test_an_opened_cloud_billed_meter_takes_its_worst_ledger_alarm_not_its_bits() -> None:
    cloud = BillingMode.CLOUD_BILLED
    assert board_state(Condition.ARREARS, True, cloud) is BoardState.OPENED
    assert board_state(Condition.NORMAL, True, cloud, (AlarmKind.ALARM_1, AlarmKind.OVERLOAD)) is BoardState.ALARM_1
    both = (AlarmKind.ALARM_1, AlarmKind.ALARM_2)
    assert board_state(Condition.NORMAL, True, cloud, both) is BoardState.ALARM_2
    assert board_state(Condition.NORMAL, True, cloud, (*both, AlarmKind.ARREARS)) is BoardState.ARREARS


def sample_rows() -> list[Any]:
    meters = [meter(1, "u_a101"), meter(2, "u_a201"), meter(3, "u_a1001"), meter(4, "u_b101"),
              meter(5, "u_b102", BillingMode.CLOUD_BILLED), meter(6, "u_b102")]
    states = [stored("m1", balance="88.50", alarms=(AlarmKind.OVERLOAD,)),
              stored("m2", balance="12.00", bits=0b011, mode=1),
              stored("m3", balance="-1.00", bits=0b111, relay=1, missed=3),
              stored("m4", balance="40.00", bits=0b001),
              stored("m5", alarms=(AlarmKind.ALARM_1, AlarmKind.ALARM_2))]
    moneys = [money("m1"), money("m2"), money("m3"), money("m4", account=None),
              money("m5", credit=1534), money("m6"), money("another-sites-meter")]
    return board_rows(reversed(meters), UNITS, BUILDINGS, states, moneys)


def test_rows_are_ordered_naturally_and_carry_what_the_board_shows() -> None:
    rows = sample_rows()
    assert [r.unit for r in rows] == ["A101", "A201", "A1001", "B101", "B102", "B102"]  # floor 2 before 10
    first = rows[0]
    assert (first.building, first.floor, first.serial, first.remaining_minor) == ("Block A", "1", "SN0001", 8850)
    assert (first.relay_open, first.mode, first.alarms, first.read_at) == (False, ControlMode.PREPAID,
                                                                           (AlarmKind.OVERLOAD,), AT)
    assert [r.state for r in rows] == [BoardState.OPENED, BoardState.ALARM_2, BoardState.LOST_CONTACT,
                                       BoardState.NOT_OPENED, BoardState.ALARM_2, BoardState.NEVER_READ]
    assert rows[1].mode is ControlMode.KEEP_POWER and rows[2].relay_open is True


def test_a_cloud_billed_meter_shows_its_ledger_credit_and_a_never_read_meter_shows_nothing() -> None:
    by_id = {r.meter_id: r for r in sample_rows()}
    assert by_id["m5"].remaining_minor == 1534
    never = by_id["m6"]
    assert (never.remaining_minor, never.relay_open, never.mode, never.read_at) == (None, None, None, None)


def test_a_meter_whose_unit_is_gone_still_appears_under_its_unit_id() -> None:
    rows = board_rows([meter(9, "u_gone")], UNITS, BUILDINGS, [], [])
    assert (rows[0].unit, rows[0].building, rows[0].state) == ("u_gone", "", BoardState.NOT_OPENED)


def test_counts_cover_the_scope_but_not_the_state_filter() -> None:
    rows = sample_rows()
    view = select(rows, BoardFilter(building_id="b_b", state=BoardState.ALARM_2))
    assert [r.meter_id for r in view.rows] == ["m5"]
    assert view.counts[BoardState.NOT_OPENED] == 1 and view.counts[BoardState.ALARM_2] == 1
    assert view.counts[BoardState.NEVER_READ] == 1 and view.counts[BoardState.OPENED] == 0
    assert (view.matched, view.total, view.pages) == (1, 6, 1)


@pytest.mark.parametrize(("flt", "expected"), [
    (BoardFilter(floor="1"), ["m1", "m4", "m5", "m6"]),
    (BoardFilter(building_id="b_a", floor="1"), ["m1"]),
    (BoardFilter(query="a10"), ["m1", "m3"]),  # unit numbers A101 and A1001
    (BoardFilter(query="sn0004"), ["m4"]),  # serial, case-insensitive
    (BoardFilter(query="M6"), ["m6"]),  # meter id
    (BoardFilter(state=BoardState.LOST_CONTACT), ["m3"]),
])
def test_filters_and_search(flt: BoardFilter, expected: list[str]) -> None:
    assert [r.meter_id for r in select(sample_rows(), flt).rows] == expected


def test_paging_and_a_page_past_the_end_shows_the_last_one() -> None:
    rows = sample_rows()
    second = select(rows, BoardFilter(page=2), page_size=4)
    assert ([r.meter_id for r in second.rows], second.page, second.pages) == (["m5", "m6"], 2, 2)
    past = select(rows, BoardFilter(page=9), page_size=4)
    assert (past.page, [r.meter_id for r in past.rows]) == (2, ["m5", "m6"])
    empty = select(rows, BoardFilter(query="nothing like this"))
    assert (empty.rows, empty.page, empty.pages, empty.matched) == ([], 1, 1, 0)


def test_parse_filter_reads_every_parameter() -> None:
    flt = parse_filter({"building": "b_a", "floor": "10", "state": "alarm-2", "q": "  A1   001 ", "page": "3"},
                       BUILDINGS, UNITS)
    assert flt == BoardFilter("b_a", "10", BoardState.ALARM_2, "A1 001", 3)
    assert flt.params() == {"building": "b_a", "floor": "10", "state": "alarm-2", "q": "A1 001", "page": "3"}
    assert parse_filter({}, BUILDINGS, UNITS) == BoardFilter()
    assert BoardFilter().params() == {}


@pytest.mark.parametrize(("params", "field", "words"), [
    ({"building": "b_z"}, "building", "no building 'b_z'"),
    ({"floor": "7"}, "floor", "no floor '7' on this site"),
    ({"building": "b_b", "floor": "2"}, "floor", "in that building"),
    ({"state": "purple"}, "state", "opened, alarm-1, alarm-2, arrears, not-opened, lost-contact, never-read"),
    ({"q": "x" * 65}, "q", "at most 64"),
    ({"page": "0"}, "page", "1 to 10000"),
    ({"page": "two"}, "page", "whole number"),
    ({"page": "-1"}, "page", "whole number"),
])
def test_bad_filter_values_are_validation_errors_that_say_what_is_allowed(params: dict[str, str], field: str,
                                                                           words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_filter(params, BUILDINGS, UNITS)
    assert caught.value.field == field and words in caught.value.message


def test_floors_offered_are_the_buildings_and_their_units() -> None:
    units = [*UNITS, Unit(OP, SITE, "u_b301", "b_b", "3", "B301")]  # a floor the building does not declare
    assert floors_of(BUILDINGS, units) == ["1", "2", "3", "10"]
    assert floors_of(BUILDINGS, units, "b_b") == ["1", "3"]



def test_a_status_keeps_the_shown_registers_and_only_uncleared_alarms() -> None:
    subject = Subject(SubjectKind.METER, "m1")
    memory = AlarmState(subject, (Alarm("a1", AlarmKind.ALARM_1, subject, Severity.NOTICE, AT, cleared_at=AT),
                                  Alarm("a2", AlarmKind.OVERLOAD, subject, Severity.CRITICAL, AT)))
    status = MeterStatus.of(StoredState("m1", AT, {"remaining_amount": "5.00", "voltage": "230.1", "status_bits": 1},
                                        (), AT, 2, memory))
    assert status == MeterStatus("m1", {"remaining_amount": "5.00", "status_bits": 1}, AT, 2, (AlarmKind.OVERLOAD,))


def test_a_meter_that_never_answered_in_three_cycles_is_lost_not_unread() -> None:
    rows = board_rows([meter(1, "u_a101"), meter(2, "u_a201")], UNITS, BUILDINGS,
                      [stored("m1", answered=False, missed=3), stored("m2", answered=False, missed=2)],
                      [money("m1"), money("m2")])
    assert [r.state for r in rows] == [BoardState.LOST_CONTACT, BoardState.NEVER_READ]
