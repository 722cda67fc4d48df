"""Card-payment test helpers: a shop (site, prepaid meter with a reading, open account, its tenant), the local
stand-in's events caught instead of sent, and a webhook delivery over HTTP to the live app. A test module uses the
fixtures by importing their ``*_fixture`` functions (the fixtures' names drop the suffix)."""

from __future__ import annotations

import json
import os
import secrets
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.bootstrap import get_services
from chalicelib.domain.actor import Actor
from chalicelib.domain.ledger import Channel, Entry, EntryKind
from chalicelib.domain.readings import StoredState
from chalicelib.domain.tenancy import BillingMode, Meter, Site
from chalicelib.domain.tenants import TenantActor
from chalicelib.services.audit import operation
from chalicelib.services.sales import new_request_token
from infra.local.host import LocalHost
from infra.local.stack import use_public_url
from tests.conftest import OperatorFixture
from tests.support.cloud_stack import admin_actor

HOARDING_LIMIT = 100_000  # 1,000.00


@dataclass
class Shop:
    operator_id: str
    site_id: str
    meter_id: str
    account_id: str
    admin: Actor
    tenant: TenantActor


@pytest.fixture(scope="module", name="public_app")
def public_app_fixture(cloud: LocalHost) -> Iterator[LocalHost]:
    """The live app, knowing its own address (checkout URLs, the local card page's webhook deliveries)."""
    before = os.environ.get("VOLTVEND_PUBLIC_URL")
    use_public_url(cloud.http_url)
    yield cloud
    if before is None:
        os.environ.pop("VOLTVEND_PUBLIC_URL", None)
    else:
        os.environ["VOLTVEND_PUBLIC_URL"] = before


def read_meter(operator_id: str, site_id: str, meter_id: str, remaining: str, count: int) -> None:
    """Store a reading as the reading cycle would (no bridge needed): remaining amount and purchase count."""
    state = StoredState(meter_id, datetime.now(UTC), {"remaining_amount": remaining, "purchase_count": count,
                                                      "relay_state": 0}, (), datetime.now(UTC), 0)
    get_services().readings.put_states(operator_id, site_id, [state])


def make_shop(operator: OperatorFixture) -> Shop:
    services, op = get_services(), operator.operator_id
    site_id, meter_id = f"site_{secrets.token_hex(3)}", f"m_{secrets.token_hex(3)}"
    services.tenancy.add_site(Site(op, site_id, "Card park", hoarding_limit_minor=HOARDING_LIMIT),
                              operation(op, "test", "site.create", site_id, datetime.now(UTC)))
    services.tenancy.add_meters([Meter(op, site_id, meter_id, "SN77", "DTSY1352", "c1", 1, "u1",
                                       BillingMode.PREPAID_METER)])
    read_meter(op, site_id, meter_id, "12.00", 7)
    admin = admin_actor(operator)
    account = services.sales.open_account(admin, site_id, "Tea house", [meter_id], request_id=new_request_token())
    account_id = account.account.account_id
    return Shop(op, site_id, meter_id, account_id, admin, tenant_of(op, account_id))


def tenant_of(operator_id: str, *account_ids: str) -> TenantActor:
    """A signed-in tenant as the portal's guard resolves one (service-level tests need no sign-in)."""
    tenant_id = f"tn-{secrets.token_hex(4)}"
    return TenantActor(operator_id, tenant_id, "Tea house", "+8613800000001", tuple(account_ids),
                       secrets.token_hex(8), secrets.token_hex(8), "en")


@pytest.fixture(name="shop")
def shop_fixture(new_operator: OperatorFixture, public_app: LocalHost) -> Shop:
    return make_shop(new_operator)


@pytest.fixture(name="caught")
def caught_fixture() -> Iterator[list[tuple[bytes, dict[str, str]]]]:
    """The local stand-in's events, caught instead of delivered: the test delivers them itself, in its order."""
    gateway: Any = get_services().payments.gateway
    sent: list[tuple[bytes, dict[str, str]]] = []
    original = gateway.post

    def catch(url: str, body: bytes, headers: dict[str, str]) -> int:
        sent.append((body, headers))
        return 200

    gateway.post = catch
    yield sent
    gateway.post = original


def event_type(body: bytes) -> str:
    return str(json.loads(body)["type"])


def deliver(app: LocalHost, body: bytes, signature: str | None) -> tuple[int, dict[str, Any]]:
    """POST one event to the live webhook route, as Stripe does."""
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    request = urllib.request.Request(f"{app.http_url}/webhooks/stripe", data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status), json.load(response)
    except urllib.error.HTTPError as error:
        return int(error.code), json.load(error)


def card_sales(operator_id: str, meter_id: str) -> list[Entry]:
    return [e for e in get_services().money.meter_entries(operator_id, meter_id)
            if e.kind is EntryKind.SALE and e.channel is Channel.CARD]


def session_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[1]
