"""Shared builders for the ledger tests: one operator, a clock that moves a minute per request, a policy."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from itertools import count

from chalicelib.domain import accounts
from chalicelib.domain.ledger import Channel, Entry, Request, balances

OPERATOR = "op-1"
T0 = datetime(2024, 3, 1, 1, 0, tzinfo=UTC)
POLICY = accounts.SalesPolicy(hoarding_limit_minor=200_000, min_top_up_minor=1_000, max_top_up_minor=100_000)
_ticks = count(1)


def request(request_id: str, channel: Channel = Channel.CASH, *, actor: str = "cashier-li",
            operator: str = OPERATOR) -> Request:
    return Request(operator, request_id, actor, channel, T0 + timedelta(minutes=next(_ticks)))


def open_shop(*meters: tuple[str, accounts.BillingMode], account_id: str = "acct-7") -> accounts.CustomerAccount:
    openings = [accounts.MeterOpening(meter_id, mode) for meter_id, mode in meters]
    opened = accounts.open_account(account_id, accounts.Customer("Golden Noodle", "13800000000", "B2-F1-07"),
                                   openings, request(f"open-{account_id}"))
    assert opened.entries == ()
    return opened.account


def prepaid(meter_id: str) -> tuple[str, accounts.BillingMode]:
    return meter_id, accounts.BillingMode.PREPAID_METER


def cloud_billed(meter_id: str) -> tuple[str, accounts.BillingMode]:
    return meter_id, accounts.BillingMode.CLOUD_BILLED


def account_balances(entries: Iterable[Entry]) -> dict[str, int]:
    """Balances by account name, so worked examples read like a trial balance."""
    return {str(account): amount for account, amount in balances(entries).by_account.items()}


def credit(entries: Iterable[Entry], meter_id: str) -> int:
    return balances(entries).meter(meter_id).credit
