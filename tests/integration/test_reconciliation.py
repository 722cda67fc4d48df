"""The hourly reconciliation against DynamoDB Local: a cloud-billed meter's credit folded on from a checkpoint, so
an hour reads what was posted since, and a stored credit that disagrees with the entries is still found."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.adapters.dynamodb.keys import operator_pk
from chalicelib.adapters.dynamodb.models import MeterMoneyItem
from chalicelib.bootstrap import get_services
from chalicelib.domain.actor import Actor
from chalicelib.domain.credit_fold import FoldCheckpoint
from chalicelib.domain.delivery import DiscrepancyKind
from chalicelib.domain.readings import Usage
from chalicelib.domain.tenancy import BillingMode, Meter, Site
from chalicelib.services.audit import operation
from chalicelib.services.reconciliation import Reconciliation
from chalicelib.services.sales import new_request_token
from tests.conftest import OperatorFixture
from tests.support.cloud_stack import admin_actor

HALF_HOUR_MS = 1_800_000


class LaterClock:
    """An hour from now: every entry posted by the test is settled by then."""

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(hours=1)


class ReadsSeen:
    """The money repository, noting which windows of history the reconciliation asks for."""

    def __init__(self, money: Any) -> None:
        self._money = money
        self.windows: list[datetime | None] = []

    def meter_entries(self, operator_id: str, meter_id: str, since: datetime | None = None, *,
                      with_charges: bool = True) -> Any:
        self.windows.append(since)
        return self._money.meter_entries(operator_id, meter_id, since, with_charges=with_charges)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._money, name)


def _charge(op: str, meter_id: str, first_ms: int, count: int) -> None:
    poster = get_services().bridge_link.charge_poster
    assert poster is not None
    poster(op, [Usage(meter_id, first_ms + k * HALF_HOUR_MS, first_ms + (k + 1) * HALF_HOUR_MS, 100, 650_000, 65, "x")
                for k in range(count)])


def _cloud_shop(operator: OperatorFixture, meter_id: str, amount: str) -> tuple[Actor, str]:
    """A cloud-billed meter on a new site, on an open account sold ``amount``: (the administrator, the site)."""
    services, op = get_services(), operator.operator_id
    site_id = f"site_{secrets.token_hex(3)}"
    services.tenancy.add_site(Site(op, site_id, "Fold park"), operation(op, "t", "site.create", site_id,
                                                                        datetime.now(UTC)))
    services.tenancy.add_meters([Meter(op, site_id, meter_id, f"SN-{meter_id}", "DTSY1352", "c1", 1, "u1",
                                       BillingMode.CLOUD_BILLED)])
    admin = admin_actor(operator)
    services.sales.open_account(admin, site_id, "Fold shop", [meter_id], request_id=new_request_token())
    services.sales.sell(admin, site_id, meter_id, request_id=new_request_token(), amount=amount)
    return admin, site_id


def test_the_fold_goes_on_from_its_checkpoint_and_still_finds_a_wrong_stored_credit(
        new_operator: OperatorFixture) -> None:
    services, op = get_services(), new_operator.operator_id
    _cloud_shop(new_operator, "m_cb", "50.00")
    start_ms = int(datetime.now(UTC).timestamp() * 1000) - 10 * HALF_HOUR_MS
    _charge(op, "m_cb", start_ms, 3)
    money = ReadsSeen(services.money)
    reconciliation = Reconciliation(money, services.readings, services.alarms, LaterClock())

    assert reconciliation.run(op) == []
    first = services.money.fold_checkpoint(op, "m_cb")
    history = services.money.meter_entries(op, "m_cb")
    assert first is not None and (first.through_at, first.through_entry_id) == (history[-1].created_at,
                                                                               history[-1].entry_id)
    assert first.balance_minor == -(5_000 - 3 * 65)
    assert money.windows == [None]  # the first hour folds the whole history

    _charge(op, "m_cb", start_ms + 3 * HALF_HOUR_MS, 2)
    assert reconciliation.run(op) == []
    moved = services.money.fold_checkpoint(op, "m_cb")
    assert moved is not None and moved.balance_minor == -(5_000 - 5 * 65)
    assert money.windows[-1] == first.through_at  # the next hour reads from where the fold stopped

    # A stored credit the entries do not explain (a bug, or a hand in the table) is found, and the fold stays put.
    MeterMoneyItem.get(operator_pk(op), "MONEY#m_cb").update(actions=[MeterMoneyItem.credit_minor.set(9_999)])
    findings = reconciliation.run(op)
    assert [(f.discrepancy.kind, f.discrepancy.evidence) for f in findings] == [
        (DiscrepancyKind.STORED_BALANCE, {"stored": -9_999, "derived": -(5_000 - 5 * 65)})]
    assert services.money.fold_checkpoint(op, "m_cb") == moved


def test_a_wrong_checkpoint_is_refolded_and_a_moving_meter_is_left_for_the_next_hour(
        new_operator: OperatorFixture) -> None:
    services, op = get_services(), new_operator.operator_id
    admin, site_id = _cloud_shop(new_operator, "m_rf", "20.00")
    _charge(op, "m_rf", int(datetime.now(UTC).timestamp() * 1000) - 4 * HALF_HOUR_MS, 2)
    first = services.money.meter_entries(op, "m_rf")[0]
    services.money.save_fold_checkpoint(op, "m_rf", FoldCheckpoint(first.created_at, first.entry_id, -1))  # wrong
    reconciliation = Reconciliation(services.money, services.readings, services.alarms, LaterClock())

    assert reconciliation.run(op) == []  # the whole history agrees: the checkpoint was wrong, not the credit
    fixed = services.money.fold_checkpoint(op, "m_rf")
    assert fixed is not None and fixed.balance_minor == -(2_000 - 2 * 65)

    class MovingMoney(ReadsSeen):
        def meter_entries(self, *args: Any, **kwargs: Any) -> Any:
            found = super().meter_entries(*args, **kwargs)
            services.sales.sell(admin, site_id, "m_rf", request_id=new_request_token(), amount="1.00")
            return found  # read before the sale that has just moved the money

    moving = Reconciliation(MovingMoney(services.money), services.readings, services.alarms, LaterClock())
    assert moving.run(op) == []  # not a discrepancy: judged again next hour
    assert services.money.fold_checkpoint(op, "m_rf") == fixed
    assert reconciliation.run(op) == []  # and then it agrees
