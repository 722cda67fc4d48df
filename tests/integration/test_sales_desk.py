"""The cashier's desk against DynamoDB Local: accounts, sales, refunds, reversals, idempotency, races, tenancy.

No bridge here: deliveries stay queued (the delivery path has its own end-to-end tests). Meters get a reading
written directly, as the reading cycle would have stored it.
"""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pytest

from chalicelib.bootstrap import get_services
from chalicelib.domain.access import Role
from chalicelib.domain.actor import Actor
from chalicelib.domain.delivery import acknowledge, mark_sent
from chalicelib.domain.errors import Conflict, NotFound, PermissionDenied, ValidationError
from chalicelib.domain.ledger import AccountKind, EntryKind, LedgerAccount, check_balances
from chalicelib.domain.readings import StoredState, Usage
from chalicelib.domain.tenancy import BillingMode, Meter, Site
from chalicelib.ports import MoneyChange
from chalicelib.services.audit import operation
from chalicelib.services.sales import new_request_token
from chalicelib.services.staff_admin import StaffDraft
from tests.conftest import OperatorFixture
from tests.support.cloud_stack import admin_actor


@dataclass
class Desk:
    admin: Actor
    site_id: str
    prepaid: str
    cloud: str


def _read(operator_id: str, site_id: str, meter_id: str, remaining: str, count: int) -> None:
    state = StoredState(meter_id, datetime.now(UTC), {"remaining_amount": remaining, "purchase_count": count,
                                                      "relay_state": 0}, (), datetime.now(UTC), 0)
    get_services().readings.put_states(operator_id, site_id, [state])


@pytest.fixture()
def desk(new_operator: OperatorFixture) -> Desk:
    services, op = get_services(), new_operator.operator_id
    site_id = f"site_{secrets.token_hex(3)}"
    services.tenancy.add_site(Site(op, site_id, "Desk park", hoarding_limit_minor=100_000),
                              operation(op, "test", "site.create", site_id, datetime.now(UTC)))
    services.tenancy.add_meters([
        Meter(op, site_id, "m_pre", "SN1", "DTSY1352", "c1", 1, "u1", BillingMode.PREPAID_METER),
        Meter(op, site_id, "m_cloud", "SN2", "DTSY1352", "c1", 2, "u2", BillingMode.CLOUD_BILLED)])
    _read(op, site_id, "m_pre", "12.00", 7)
    return Desk(admin_actor(new_operator), site_id, "m_pre", "m_cloud")


def _open(desk: Desk, *meters: str) -> str:
    stored = get_services().sales.open_account(desk.admin, desk.site_id, "Tea house", list(meters),
                                               request_id=new_request_token())
    return stored.account.account_id


def _cashier(new_operator: OperatorFixture, desk: Desk) -> Actor:
    services = get_services()
    name = f"till{secrets.token_hex(2)}"
    services.staff_admin.create(desk.admin, StaffDraft(name, "Till", Role.CASHIER), "till-secret-12345")
    session = services.auth.login(new_operator.operator_id, name, "till-secret-12345")
    actor = services.auth.resolve(new_operator.operator_id, session.session_id)
    assert actor is not None
    return actor


def test_opening_records_what_the_meter_already_holds_and_a_sale_queues_its_delivery(desk: Desk) -> None:
    services = get_services()
    account_id = _open(desk, desk.prepaid)
    sale = services.sales.sell(desk.admin, desk.site_id, desk.prepaid, request_id=new_request_token(), amount="50.00")
    money = services.money.money(desk.admin.operator_id, desk.prepaid)
    assert money is not None and money.account_id == account_id
    assert money.credit_minor == 1_200 + 5_000  # opening balance + sale
    head = money.queue.head()
    assert head is not None and (head.delivery_id, head.amount_minor, head.state.value) == (sale.entry_id, 5_000,
                                                                                            "pending")
    view, lines = services.sales.meter_sales(desk.admin, desk.site_id, desk.prepaid)
    assert view.balance_minor == 6_200  # the reading's 12.00 plus the 50.00 on its way
    assert [(line.entry.kind, line.delivery_state) for line in lines] == [(EntryKind.ADJUSTMENT, "not-needed"),
                                                                          (EntryKind.SALE, "pending")]


def test_a_repeated_request_posts_once_and_a_reused_id_for_something_else_is_refused(desk: Desk) -> None:
    services = get_services()
    _open(desk, desk.prepaid)
    token = new_request_token()
    first = services.sales.sell(desk.admin, desk.site_id, desk.prepaid, request_id=token, amount="20.00")
    again = services.sales.sell(desk.admin, desk.site_id, desk.prepaid, request_id=token, amount="20.00")
    assert again == first
    money = services.money.money(desk.admin.operator_id, desk.prepaid)
    assert money is not None and money.credit_minor == 1_200 + 2_000 and len(money.queue.deliveries) == 1
    with pytest.raises(Conflict, match="already used"):
        services.sales.sell(desk.admin, desk.site_id, desk.prepaid, request_id=token, amount="30.00")


def test_two_cashiers_selling_to_one_meter_at_once_respect_the_hoarding_limit(
        desk: Desk, new_operator: OperatorFixture) -> None:
    services = get_services()
    _open(desk, desk.prepaid)
    tills = [_cashier(new_operator, desk), _cashier(new_operator, desk)]

    def sell(till: Actor) -> str:
        try:  # 12.00 held + 600.00 + 600.00 would pass the 1,000.00 hoarding limit: only one may land
            return services.sales.sell(till, desk.site_id, desk.prepaid, request_id=new_request_token(),
                                       amount="600.00").entry_id
        except ValidationError as refused:
            return f"refused: {refused}"

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(sell, tills))
    assert sum(not o.startswith("refused") for o in outcomes) == 1
    assert any("hoarding limit" in o for o in outcomes)
    money = services.money.money(desk.admin.operator_id, desk.prepaid)
    assert money is not None and money.credit_minor == 1_200 + 60_000

    def small(till: Actor) -> str:
        return services.sales.sell(till, desk.site_id, desk.prepaid, request_id=new_request_token(),
                                   amount="10.00").entry_id

    with ThreadPoolExecutor(max_workers=2) as pool:  # both fit: both land, one after the other
        assert len(set(pool.map(small, tills))) == 2
    money = services.money.money(desk.admin.operator_id, desk.prepaid)
    assert money is not None and money.credit_minor == 1_200 + 60_000 + 2_000
    assert [d.amount_minor for d in money.queue.deliveries] == [60_000, 1_000, 1_000]
    entries = services.money.meter_entries(desk.admin.operator_id, desk.prepaid)
    stored = {LedgerAccount(AccountKind.METER_CREDIT, desk.prepaid): -money.credit_minor}
    assert [m for m in check_balances(stored, entries) if m.account.kind is AccountKind.METER_CREDIT] == []


def test_refunds_only_unused_credit_and_only_an_administrator_reverses(
        desk: Desk, new_operator: OperatorFixture) -> None:
    services = get_services()
    _open(desk, desk.prepaid)
    with pytest.raises(ValidationError, match=r"holds only 12\.00"):
        services.sales.refund(desk.admin, desk.site_id, desk.prepaid, request_id=new_request_token(), amount="13.00")
    sale = services.sales.sell(desk.admin, desk.site_id, desk.prepaid, request_id=new_request_token(),
                               amount="30.00")
    till = _cashier(new_operator, desk)
    with pytest.raises(PermissionDenied):
        services.sales.reverse(till, desk.site_id, sale.entry_id, request_id=new_request_token(), reason="typo")
    reversal = services.sales.reverse(desk.admin, desk.site_id, sale.entry_id, request_id=new_request_token(),
                                      reason="wrong meter")
    assert reversal.kind is EntryKind.REVERSAL and reversal.reverses == sale.entry_id
    with pytest.raises(Conflict, match="already reversed"):
        services.sales.reverse(desk.admin, desk.site_id, sale.entry_id, request_id=new_request_token(),
                               reason="again")
    money = services.money.money(desk.admin.operator_id, desk.prepaid)
    assert money is not None and money.credit_minor == 1_200
    assert [(d.command.value, d.amount_minor) for d in money.queue.deliveries] == [("purchase", 3_000),
                                                                                    ("refund", 3_000)]


def test_a_reversal_that_needs_credit_already_used_is_refused(desk: Desk) -> None:
    services = get_services()
    _open(desk, desk.prepaid)
    sale = services.sales.sell(desk.admin, desk.site_id, desk.prepaid, request_id=new_request_token(),
                               amount="30.00")
    _read(desk.admin.operator_id, desk.site_id, desk.prepaid, "5.00", 8)  # delivered (count 8), then mostly used
    money = services.money.money(desk.admin.operator_id, desk.prepaid)
    assert money is not None
    queue, _ = mark_sent(money.queue, sale.entry_id)
    services.money.commit(MoneyChange(moneys=(money.with_queue(acknowledge(queue, sale.entry_id)),)))
    with pytest.raises(ValidationError, match=r"only 5\.00 unused"):
        services.sales.reverse(desk.admin, desk.site_id, sale.entry_id, request_id=new_request_token(),
                               reason="mistake")


def test_cloud_billed_meters_hold_their_credit_in_the_ledger(desk: Desk) -> None:
    services = get_services()
    _open(desk, desk.cloud)
    sale = services.sales.sell(desk.admin, desk.site_id, desk.cloud, request_id=new_request_token(),
                               amount="80.00", channel="transfer")
    assert not sale.delivers_to_meter
    view, lines = services.sales.meter_sales(desk.admin, desk.site_id, desk.cloud)
    assert view.balance_minor == 8_000 and lines[-1].delivery_state == "not-needed"


def test_bad_input_and_other_operators_ids_get_clear_errors(desk: Desk, other_operator: OperatorFixture) -> None:
    services = get_services()
    with pytest.raises(Conflict, match="not on an open account"):
        services.sales.sell(desk.admin, desk.site_id, desk.prepaid, request_id=new_request_token(), amount="1.00")
    _open(desk, desk.prepaid)
    for kwargs, message in [({"amount": "1.001"}, "more than 2 decimals"), ({"amount": "-5"}, "between"),
                            ({"amount": "abc"}, "not a number"), ({}, "an amount or an energy"),
                            ({"amount": "1", "energy": "2"}, "an amount or an energy"),
                            ({"amount": "1", "channel": "system"}, "cash, card or transfer"),
                            ({"energy": "10"}, "no tariff")]:
        with pytest.raises(ValidationError, match=message):
            services.sales.sell(desk.admin, desk.site_id, desk.prepaid, request_id=new_request_token(), **kwargs)
    with pytest.raises(ValidationError, match="request id"):
        services.sales.sell(desk.admin, desk.site_id, desk.prepaid, request_id="x", amount="1.00")
    with pytest.raises(Conflict, match="already"):
        _open(desk, desk.prepaid)
    stranger = admin_actor(other_operator)
    with pytest.raises(NotFound):
        services.sales.sell(stranger, desk.site_id, desk.prepaid, request_id=new_request_token(), amount="1.00")
    sale = services.sales.sell(desk.admin, desk.site_id, desk.prepaid, request_id=new_request_token(), amount="1.00")
    with pytest.raises(NotFound):
        services.sales.sale(stranger, desk.site_id, sale.entry_id)
    with pytest.raises(NotFound):
        services.sales.reverse(stranger, desk.site_id, sale.entry_id, request_id=new_request_token(), reason="x")


def test_sales_queries_filter_the_months_journal(desk: Desk) -> None:
    services = get_services()
    _open(desk, desk.prepaid, desk.cloud)
    services.sales.sell(desk.admin, desk.site_id, desk.prepaid, request_id=new_request_token(), amount="5.00")
    services.sales.sell(desk.admin, desk.site_id, desk.cloud, request_id=new_request_token(), amount="7.00",
                        channel="card")
    month = datetime.now(UTC).strftime("%Y-%m")
    sales = services.sales.sales(desk.admin, desk.site_id, month, kind="sale")
    assert [line.entry.amount_minor for line in sales] == [700, 500]  # newest first
    assert [line.entry.meter_id for line in services.sales.sales(desk.admin, desk.site_id, month, channel="card")] \
        == [desk.cloud]
    with pytest.raises(ValidationError, match="YYYY-MM"):
        services.sales.sales(desk.admin, desk.site_id, "2026-13")


def _deliver_all(operator_id: str, meter_id: str) -> None:
    """Stand in for the bridge: every queued delivery acknowledged by the meter."""
    services = get_services()
    money = services.money.money(operator_id, meter_id)
    assert money is not None
    queue = money.queue
    while (head := queue.head()) is not None:
        queue, _ = mark_sent(queue, head.delivery_id)
        queue = acknowledge(queue, head.delivery_id)
    services.money.commit(MoneyChange(moneys=(money.with_queue(queue),)))


def test_adding_a_meter_and_closing_settles_every_meter(desk: Desk) -> None:
    services, op = get_services(), desk.admin.operator_id
    account_id = _open(desk, desk.prepaid)
    services.account_changes.add_meter(desk.admin, desk.site_id, account_id, desk.cloud,
                                       request_id=new_request_token())
    services.sales.sell(desk.admin, desk.site_id, desk.prepaid, request_id=new_request_token(), amount="30.00")
    services.sales.sell(desk.admin, desk.site_id, desk.cloud, request_id=new_request_token(), amount="9.00",
                        channel="transfer")
    with pytest.raises(Conflict, match="pending"):
        services.account_changes.close(desk.admin, desk.site_id, account_id, request_id=new_request_token())
    _deliver_all(op, desk.prepaid)
    _read(op, desk.site_id, desk.prepaid, "40.00", 8)  # 12.00 + 30.00 landed at count 8, then 2.00 was used
    token = new_request_token()
    record = services.account_changes.close(desk.admin, desk.site_id, account_id, request_id=token)
    assert (record.refund_minor, record.amount_due_minor) == (4_000 + 900, 0)
    assert {m.meter_id: (m.consumption_minor, m.remaining_minor) for m in record.meters} == {
        desk.prepaid: (200, 4_000), desk.cloud: (0, 900)}
    assert services.account_changes.close(desk.admin, desk.site_id, account_id, request_id=token) == record
    prepaid = services.money.money(op, desk.prepaid)
    assert prepaid is not None and prepaid.account_id is None and prepaid.credit_minor == 0
    head = prepaid.queue.head()
    assert head is not None and (head.command.value, head.amount_minor) == ("refund", 4_000)  # out of the meter
    stored = services.money.account(op, account_id)
    assert stored is not None and not stored.account.is_open and stored.closing == record
    # The 2.00 used, charged at closing, is no interval charge: it stays in the account's and the month's lists.
    used = [e for e in services.money.account_entries(op, account_id) if e.kind is EntryKind.CHARGE]
    assert [(e.meter_id, e.amount_minor) for e in used] == [(desk.prepaid, 200)]
    month = datetime.now(UTC).strftime("%Y-%m")
    assert used[0].entry_id in {e.entry_id for e in services.money.journal(op, month)}
    with pytest.raises(Conflict, match="not on an open account"):
        services.sales.sell(desk.admin, desk.site_id, desk.cloud, request_id=new_request_token(), amount="1.00")


def test_a_retrofit_moves_the_old_meters_credit_into_the_new_one(desk: Desk) -> None:
    services, op = get_services(), desk.admin.operator_id
    services.tenancy.add_meters([Meter(op, desk.site_id, "m_new", "SN3", "DTSY1352", "c1", 3, "u1",
                                       BillingMode.PREPAID_METER)])
    _read(op, desk.site_id, "m_new", "0.00", 0)
    account_id = _open(desk, desk.prepaid, "m_new")
    _read(op, desk.site_id, desk.prepaid, "11.50", 7)  # 0.50 used since the account was opened
    entries = services.account_changes.transfer(desk.admin, desk.site_id, account_id, desk.prepaid, "m_new",
                                                request_id=new_request_token())
    assert [(e.kind.value, e.meter_id, e.amount_minor) for e in entries] == [
        ("charge", desk.prepaid, 50), ("transfer", "m_new", 1_150)]
    old, new = services.money.money(op, desk.prepaid), services.money.money(op, "m_new")
    assert old is not None and old.account_id is None and old.credit_minor == 0 and not old.queue.deliveries
    assert new is not None and new.credit_minor == 1_150
    head = new.queue.head()
    assert head is not None and (head.command.value, head.amount_minor) == ("purchase", 1_150)


def test_closing_needs_a_fresh_final_reading(desk: Desk) -> None:
    services, op = get_services(), desk.admin.operator_id
    account_id = _open(desk, desk.prepaid)
    stale = StoredState(desk.prepaid, datetime(2026, 1, 1, tzinfo=UTC), {"remaining_amount": "12.00",
                                                                         "purchase_count": 7}, (),
                        datetime(2026, 1, 1, tzinfo=UTC), 0)
    services.readings.put_states(op, desk.site_id, [stale])
    with pytest.raises(ValidationError, match="fresh reading"):
        services.account_changes.close(desk.admin, desk.site_id, account_id, request_id=new_request_token())


def test_a_sale_records_the_price_in_force_and_energy_sales_are_priced_exactly(desk: Desk) -> None:
    services = get_services()
    services.tariffs.add_site_version(desk.admin, desk.site_id, {
        "effective_from": "2026-01-01T00:00:00+08:00",
        "prices": {"sharp": "0.8000", "peak": "0.8000", "flat": "0.8000", "valley": "0.8000"},
        "schedule": [{"starts_on": [1, 1], "bands": [["00:00", "flat"]]}]})
    _open(desk, desk.prepaid)
    by_amount = services.sales.sell(desk.admin, desk.site_id, desk.prepaid, request_id=new_request_token(),
                                    amount="20.00")
    by_energy = services.sales.sell(desk.admin, desk.site_id, desk.prepaid, request_id=new_request_token(),
                                    energy="12.34")
    assert (by_amount.amount_minor, by_amount.energy_price_e4) == (2_000, 8_000)
    assert (by_energy.amount_minor, by_energy.energy_centi_kwh, by_energy.energy_price_e4) == (987, 1_234, 8_000)


def test_a_meters_entries_since_a_moment_are_read_as_a_key_range(desk: Desk) -> None:
    services, op = get_services(), desk.admin.operator_id
    _open(desk, desk.prepaid)
    for amount in ("5.00", "6.00", "7.00"):
        services.sales.sell(desk.admin, desk.site_id, desk.prepaid, request_id=new_request_token(), amount=amount)
    every = services.money.meter_entries(op, desk.prepaid)
    assert len(every) == 4  # the opening balance, then the three sales, oldest first
    assert [e.created_at for e in every] == sorted(e.created_at for e in every)

    third = every[2].created_at
    assert services.money.meter_entries(op, desk.prepaid, third) == every[2:]  # at the moment itself: included
    assert services.money.meter_entries(op, desk.prepaid, third + timedelta(microseconds=1)) == every[3:]
    # A moment with no fraction of a second (shorter ISO text) and one given in another zone read the same way.
    whole_second = third.replace(microsecond=0)
    assert services.money.meter_entries(op, desk.prepaid, whole_second) == [e for e in every
                                                                            if e.created_at >= whole_second]
    assert services.money.meter_entries(op, desk.prepaid, third.astimezone(timezone(timedelta(hours=8)))) \
        == every[2:]
    assert services.money.meter_entries(op, desk.prepaid, datetime.now(UTC) + timedelta(minutes=1)) == []


def test_interval_charges_fold_into_the_balance_but_stay_out_of_the_lists_of_sales(desk: Desk) -> None:
    services, op = get_services(), desk.admin.operator_id
    account_id = _open(desk, desk.cloud)
    sale = services.sales.sell(desk.admin, desk.site_id, desk.cloud, request_id=new_request_token(), amount="50.00")
    start, half_hour = int(datetime.now(UTC).timestamp() * 1000) - 3 * 1_800_000, 1_800_000
    usage = [Usage(desk.cloud, start + k * half_hour, start + (k + 1) * half_hour, 100, 650_000, 65, "x")
             for k in range(3)]
    assert services.bridge_link.charge_poster is not None
    services.bridge_link.charge_poster(op, usage)

    every = services.money.meter_entries(op, desk.cloud)
    assert [e.kind for e in every] == [EntryKind.SALE, EntryKind.CHARGE, EntryKind.CHARGE, EntryKind.CHARGE]
    assert [e.created_at for e in every] == sorted(e.created_at for e in every)
    money = services.money.money(op, desk.cloud)
    assert money is not None and money.credit_minor == 5_000 - 3 * 65
    stored = {LedgerAccount(AccountKind.METER_CREDIT, desk.cloud): -money.credit_minor}
    assert [m for m in check_balances(stored, every) if m.account.kind is AccountKind.METER_CREDIT] == []

    assert services.money.meter_entries(op, desk.cloud, with_charges=False) == [sale]
    assert services.money.meter_entries(op, desk.cloud, every[2].created_at) == every[2:]
    assert [line.entry for line in services.sales.lines_of(op, desk.cloud)] == [sale]
    assert [e.entry_id for e in services.money.account_entries(op, account_id)] == [sale.entry_id]
    month = datetime.now(UTC).strftime("%Y-%m")
    assert EntryKind.CHARGE not in {e.kind for e in services.money.journal(op, month)}
    assert sale.entry_id in {e.entry_id for e in services.money.journal(op, month)}
