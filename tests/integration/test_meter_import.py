"""Bulk meter import against DynamoDB Local: the report, the writes, all or nothing, tenancy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters.spreadsheets import XlsxReader
from chalicelib.bootstrap import get_services
from chalicelib.domain.access import Grant, Role
from chalicelib.domain.actor import Actor
from chalicelib.domain.errors import Conflict, NotFound, PermissionDenied
from chalicelib.domain.meter_import import ImportInvalid, ImportRolledBack
from chalicelib.domain.tenancy import BillingMode, Meter
from chalicelib.services.meter_import import STALE_IMPORT, MeterImportService, Upload
from tests.conftest import OperatorFixture
from tests.integration.meter_import_support import bad_rows, csv_bytes, good_rows, make_site, xlsx_bytes

pytestmark = pytest.mark.ddb


class FakeClock:
    def __init__(self) -> None:
        self.at = datetime.now(UTC)

    def now(self) -> datetime:
        return self.at


def admin(operator: OperatorFixture) -> Actor:
    auth = get_services().auth
    session = auth.login(operator.operator_id, operator.admin_username, operator.admin_password)
    actor = auth.resolve(operator.operator_id, session.session_id)
    assert actor is not None
    return actor


def service(clock: FakeClock | None = None) -> MeterImportService:
    tenancy = get_services().tenancy
    return MeterImportService(tenancy, tenancy, XlsxReader(), clock or FakeClock())


def meter_ids(operator_id: str, site_id: str) -> set[str]:
    return {m.meter_id for m in get_services().tenancy.list_meters(operator_id, site_id)}


def unit_numbers(operator_id: str, site_id: str) -> set[str]:
    return {u.number for u in get_services().tenancy.list_units(operator_id, site_id)}


def log_actions(operator_id: str) -> list[str]:
    month = datetime.now(UTC).strftime("%Y-%m")
    _, records, _ = get_services().oplog.page(admin_probe(operator_id), month, None)
    return [r.action for r in records if r.action.startswith("meter.")]


def admin_probe(operator_id: str) -> Actor:
    return Actor(operator_id, "probe", "Probe", Grant(Role.ADMINISTRATOR), "s", "c")


def many_rows(count: int) -> list[list[object]]:
    """``count`` meters over collectors coll_1..coll_9 (addresses 2-32), each declaring its own unit."""
    slots = [(bus, address) for bus in range(1, 10) for address in range(2, 33)]
    return [[f"m_{n}", f"SN-{n:05d}", "DTSY1352", f"coll_{bus}", address, "bldg_a", 1, f"X{n}", "", "", "yes"]
            for n, (bus, address) in enumerate(slots[:count])]


def test_check_reports_problems_by_row_and_writes_nothing(new_operator: OperatorFixture) -> None:
    op, site_id = new_operator.operator_id, make_site(new_operator)
    plan = service().check(admin(new_operator), site_id, Upload("bad.csv", csv_bytes(bad_rows())))
    assert not plan.ok
    assert [(p.row, p.column, p.code) for p in plan.problems] == [(5, "Modbus address", "address_taken")]
    assert "m_exist" in plan.problems[0].message
    assert meter_ids(op, site_id) == {"m_exist"}
    with pytest.raises(ImportInvalid) as invalid:
        service().run(admin(new_operator), site_id, Upload("bad.csv", csv_bytes(bad_rows())))
    assert invalid.value.status == 400 and len(invalid.value.plan.problems) == 1
    assert meter_ids(op, site_id) == {"m_exist"} and "A103" not in unit_numbers(op, site_id)


def test_a_good_file_imports_meters_and_declared_units_with_one_log_record(new_operator: OperatorFixture) -> None:
    op, site_id = new_operator.operator_id, make_site(new_operator)
    plan = service().run(admin(new_operator), site_id, Upload("good.csv", csv_bytes(good_rows())))
    assert len(plan.meters) == 3 and [u.number for u in plan.units] == ["A103"]
    stored = {m.meter_id: m for m in get_services().tenancy.list_meters(op, site_id)}
    assert set(stored) == {"m_exist", "m_a102", "m_a201", "m_a103"}
    assert stored["m_a201"].model == "ACR" and stored["m_a201"].ct_ratio == 40
    assert stored["m_a201"].billing_mode is BillingMode.CLOUD_BILLED
    assert stored["m_a103"].model == "DTSY1352" and stored["m_a103"].collector_id == "coll_2"
    assert stored["m_a103"].unit_id == plan.units[0].unit_id
    assert "A103" in unit_numbers(op, site_id)
    assert log_actions(op) == ["meter.import"]
    assert get_services().tenancy.running_meter_import(op, site_id) is None


def test_xlsx_with_chinese_headers_and_excel_numbers(new_operator: OperatorFixture) -> None:
    op, site_id = new_operator.operator_id, make_site(new_operator)
    header = ["电表编号", "表号", "型号", "采集器", "通讯地址", "楼栋", "楼层", "户号", "CT变比", "计费方式",
              "新建户号"]
    rows = [["m_x1", 12345678, "DTSY1352", "coll_2", 5.0, "Building B", 1.0, "B101", 1.0, "预付费", "否"],
            ["m_x2", "SN-X2", "ACR", "coll_2", 6, None, None, "A201", None, "云端计费", None]]
    plan = service().run(admin(new_operator), site_id, Upload("电表.xlsx", xlsx_bytes(rows, header)))
    assert plan.ok
    stored = {m.meter_id: m for m in get_services().tenancy.list_meters(op, site_id)}
    assert stored["m_x1"].serial == "12345678" and stored["m_x1"].address == 5
    assert stored["m_x2"].billing_mode is BillingMode.CLOUD_BILLED


def test_a_large_import_spans_several_transactions(new_operator: OperatorFixture) -> None:
    op, site_id = new_operator.operator_id, make_site(new_operator, collectors=9)
    plan = service().run(admin(new_operator), site_id, Upload("big.csv", csv_bytes(many_rows(250))))
    assert len(plan.meters) == 250 and len(plan.units) == 250  # 500 items and the record: six transactions
    assert len(meter_ids(op, site_id)) == 251
    assert log_actions(op) == ["meter.import"]
    assert get_services().tenancy.running_meter_import(op, site_id) is None


def fail_transaction(monkeypatch: pytest.MonkeyPatch, number: int, error: BaseException) -> list[int]:
    """Make the ``number``-th TransactWriteItems call (1-based) raise ``error``; returns the call counter."""
    connection = get_services().tenancy._connection
    real = connection.transact_write_items
    calls = [0]

    def flaky(**kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == number:
            raise error
        return real(**kwargs)

    monkeypatch.setattr(connection, "transact_write_items", flaky)
    return calls


def test_a_write_failing_midway_leaves_nothing_behind(new_operator: OperatorFixture,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    op, site_id = new_operator.operator_id, make_site(new_operator, collectors=9)
    calls = fail_transaction(monkeypatch, 4, RuntimeError("network gone"))
    with pytest.raises(ImportRolledBack) as rolled_back:
        service().run(admin(new_operator), site_id, Upload("big.csv", csv_bytes(many_rows(250))))
    assert rolled_back.value.status == 503 and calls[0] >= 4
    assert meter_ids(op, site_id) == {"m_exist"}
    assert unit_numbers(op, site_id) == {"A101", "A102", "A201", "B101"}
    assert get_services().tenancy.running_meter_import(op, site_id) is None
    assert log_actions(op) == ["meter.import_rolled_back"]


def test_a_meter_added_meanwhile_is_a_conflict_and_nothing_stays(new_operator: OperatorFixture,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    op, site_id = new_operator.operator_id, make_site(new_operator, collectors=9)
    tenancy = get_services().tenancy
    real_import = tenancy.import_meters
    intruder = Meter(op, site_id, "m_180", "SN-OTHER", "DTSY1352", "coll_9", 99, "unit_b101")

    def someone_adds_m_180_first(batch: Any) -> None:
        tenancy.add_meters([intruder])  # after the check, before the writes: a later transaction hits it
        real_import(batch)

    monkeypatch.setattr(tenancy, "import_meters", someone_adds_m_180_first)
    with pytest.raises(Conflict, match="m_180"):
        service().run(admin(new_operator), site_id, Upload("big.csv", csv_bytes(many_rows(250))))
    assert meter_ids(op, site_id) == {"m_exist", "m_180"}
    assert tenancy.get_meters(op, site_id, ["m_180"])[0].serial == "SN-OTHER"  # not ours: left alone
    assert tenancy.running_meter_import(op, site_id) is None


class Crash(BaseException):
    """The process dies: nothing in the import gets to run its compensation."""


def test_a_crashed_import_blocks_the_site_until_stale_then_is_rolled_back(new_operator: OperatorFixture,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    op, site_id = new_operator.operator_id, make_site(new_operator, collectors=9)
    clock = FakeClock()
    fail_transaction(monkeypatch, 3, Crash())
    with pytest.raises(Crash):
        service(clock).run(admin(new_operator), site_id, Upload("big.csv", csv_bytes(many_rows(250))))
    monkeypatch.undo()
    journal = get_services().tenancy.running_meter_import(op, site_id)
    assert journal is not None and len(journal.meter_ids) == 250
    assert "X1" in unit_numbers(op, site_id)  # the first transactions (units go first) are there, for now
    with pytest.raises(Conflict, match="another meter import"):
        service(clock).run(admin(new_operator), site_id, Upload("good.csv", csv_bytes(good_rows())))
    assert service(clock).setup(admin(new_operator), site_id).running is not None
    clock.at += STALE_IMPORT + timedelta(seconds=1)
    plan = service(clock).run(admin(new_operator), site_id, Upload("good.csv", csv_bytes(good_rows())))
    assert len(plan.meters) == 3
    assert meter_ids(op, site_id) == {"m_exist", "m_a102", "m_a201", "m_a103"}
    assert "X1" not in unit_numbers(op, site_id)
    assert sorted(log_actions(op)) == ["meter.import", "meter.import_rolled_back"]


def test_another_operator_cannot_check_or_import_into_the_site(new_operator: OperatorFixture,
                                                              other_operator: OperatorFixture) -> None:
    site_id = make_site(new_operator)
    intruder = admin(other_operator)
    for attempt in (service().check, service().run):
        with pytest.raises(NotFound):
            attempt(intruder, site_id, Upload("good.csv", csv_bytes(good_rows())))
    assert meter_ids(new_operator.operator_id, site_id) == {"m_exist"}


def test_a_cashier_may_not_import(new_operator: OperatorFixture) -> None:
    site_id = make_site(new_operator)
    boss = admin(new_operator)
    cashier = Actor(boss.operator_id, "till", "Till", Grant(Role.CASHIER), "s", "c")
    with pytest.raises(PermissionDenied):
        service().run(cashier, site_id, Upload("good.csv", csv_bytes(good_rows())))


def test_meter_ids_are_unique_across_the_operators_sites(new_operator: OperatorFixture) -> None:
    first, second = make_site(new_operator), make_site(new_operator)
    service().run(admin(new_operator), first, Upload("good.csv", csv_bytes(good_rows())))
    plan = service().check(admin(new_operator), second, Upload("good.csv", csv_bytes(good_rows())))
    codes = {(p.row, p.code) for p in plan.problems}
    assert {(2, "meter_id_taken"), (2, "serial_taken"), (4, "meter_id_taken")} <= codes
