"""api_latency: the operator status board of a 1,000-meter site, and a shop tenant's balance page, through the whole
app, each against one query.

DynamoDB Local in memory, one process. The site has 1,000 DTSY1352 meters in 4 buildings × 10 floors × 25 units on
32 buses, each with a stored state holding the registers its read plan decodes (a tenth with active alarms in its
alarm memory, a few silent), and a money state (nine in ten on an account).

- Board: a sample is one ``GET /api/v1/sites/{site}/board`` (the first page of 200 rows, counts over all 1,000)
  through Chalice's test client with a bearer token: middleware, session, scope check, the board's queries, rules and
  JSON. Baseline: one raw Query (all its pages, no model parsing) of the site's 1,000 meter-state items, the largest
  of the board's reads.
- Tenant: a shop whose account holds a prepaid meter (a purchase a week for a year) and a cloud-billed one (a charge
  every 30 minutes for 90 days, with the priced intervals they were posted from, as the reading cycle leaves them);
  a sample is one ``GET /t/{operator}`` with the tenant's cookie: balances, states, days of credit from the last
  week's use. Baseline: one raw Query of the cloud-billed meter's last week of priced intervals, the largest of the
  page's reads.

Calls and baseline queries alternate so both see the same noise. Target: p95 <= 150 ms for each.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from bench.timing import percentile, ratio_result

NAME = "api_latency"
METERS, BUILDINGS, FLOORS, UNITS_PER_FLOOR, PER_BUS = 1000, 4, 10, 25, 32
SAMPLES, QUICK_SAMPLES, WARM_UP = 200, 30, 5
TARGET_P95_MS = 150.0
SHOP_METERS = ("m0", "m1")  # the tenant's: m0 prepaid, m1 cloud-billed
CLOUD_BILLED = "m1"
CHARGE_DAYS, CHARGES_PER_DAY, PURCHASE_WEEKS = 90, 48, 52


def _values(n: int) -> dict[str, Any]:
    """What ingestion keeps of one DTSY1352 reading (the read plan's registers), as exact text and integers."""
    balance = Decimal(12000 - n * 13) / 100  # from 120.00 down into arrears for the last ones
    bits = (balance <= 50) * 1 | (balance <= 20) * 2 | (balance <= 0) * 4
    return {"energy_total": f"{1000 + n}.25", "energy_sharp": "100.10", "energy_peak": "300.20",
            "energy_flat": "400.30", "energy_valley": f"{200 + n}.65", "voltage": "229.8", "current": "4.12",
            "active_power": "0.947", "apparent_power": "0.997", "power_factor": "0.950",
            "remaining_amount": str(balance), "total_purchased": "2500.00", "purchase_count": 7 + n % 5,
            "control_mode": 1 if n % 97 == 0 else 0, "relay_state": 1 if balance <= 0 else 0, "status_bits": bits}


def _alarms(meter_id: str, at: datetime, bits: int) -> Any:
    from chalicelib.domain.alarms import Alarm, AlarmKind, AlarmState, Severity, Subject, SubjectKind

    subject = Subject(SubjectKind.METER, meter_id)
    kinds = [kind for bit, kind in ((1, AlarmKind.ALARM_1), (2, AlarmKind.ALARM_2), (4, AlarmKind.ARREARS))
             if bits & bit]
    return AlarmState(subject, tuple(Alarm(f"{meter_id}:{k}", k, subject, Severity.WARNING, at, {"balance": "1.00"})
                                     for k in kinds), None, at) if kinds else None


def build_site(op: str) -> str:
    """The site, its tree, 1,000 meters with states and money states; returns the site id."""
    from chalicelib.adapters.dynamodb.batch import put_items
    from chalicelib.adapters.dynamodb.money_repo import _money_item
    from chalicelib.bootstrap import get_services
    from chalicelib.domain.meter_money import MeterMoney
    from chalicelib.domain.readings import StoredState
    from chalicelib.domain.tenancy import BillingMode, Building, Meter, Site, Unit
    from chalicelib.services.audit import operation

    services, site_id, now = get_services(), f"site_{secrets.token_hex(3)}", datetime.now(UTC)
    services.tenancy.add_site(Site(op, site_id, "Latency park"), operation(op, "bench", "site.create", site_id, now))
    floors = tuple(str(f) for f in range(1, FLOORS + 1))
    for b in range(BUILDINGS):
        services.tenancy.add_building(Building(op, site_id, f"b{b}", f"Block {chr(65 + b)}", floors),
                                      operation(op, "bench", "building.create", f"b{b}", now))
    units = [Unit(op, site_id, f"u{n}", f"b{n // (FLOORS * UNITS_PER_FLOOR)}",
                  str(n // UNITS_PER_FLOOR % FLOORS + 1), f"{chr(65 + n // (FLOORS * UNITS_PER_FLOOR))}{n % 250:03d}")
             for n in range(METERS)]
    meters = [Meter(op, site_id, f"m{n}", f"SN{n:06d}", "DTSY1352", f"c{n // PER_BUS}", n % PER_BUS + 1, f"u{n}",
                    BillingMode.CLOUD_BILLED if f"m{n}" == CLOUD_BILLED else BillingMode.PREPAID_METER)
              for n in range(METERS)]
    services.tenancy.add_units(units)
    services.tenancy.add_meters(meters)
    states = []
    for n in range(METERS):
        values, silent = _values(n), n % 101 == 0
        heard = now - timedelta(minutes=90 if silent else 1)
        states.append(StoredState(f"m{n}", now, values, (), heard, 3 if silent else 0,
                                  _alarms(f"m{n}", now, int(values["status_bits"]))))
    services.readings.put_states(op, site_id, states)
    moneys = [MeterMoney.new(op, site_id, f"m{n}", BillingMode.PREPAID_METER, 7) for n in range(METERS)
              if f"m{n}" not in SHOP_METERS]  # the shop's meters are opened on a real account (open_shop)
    connection = services.readings._connection  # the one botocore connection every repository shares
    items = [_money_item(m if n % 10 == 9 else _opened(m, n), now) for n, m in enumerate(moneys)]
    put_items(connection, ((item.Meta.table_name, item.serialize()) for item in items))
    return site_id


def _opened(money: Any, n: int) -> Any:
    from dataclasses import replace

    return replace(money, account_id=f"acct-{n // 3}", credit_minor=12000 - n * 13)


def open_shop(op: str, password: str, site_id: str) -> str:
    """The shop's account (a real one, opened at the desk) with its history, and its tenant; returns the tenant's
    session cookie."""
    from chalicelib.adapters.dynamodb.batch import put_items
    from chalicelib.adapters.dynamodb.money_repo import _entry_items
    from chalicelib.bootstrap import get_services
    from chalicelib.domain import accounts as account_rules
    from chalicelib.domain.ledger import Channel, Request, cashier_request_id
    from chalicelib.domain.readings import Usage
    from chalicelib.services.sales import new_request_token
    from chalicelib.web.guards import signer
    from chalicelib.web.tenant_guards import TENANT_COOKIE

    services = get_services()
    session = services.auth.login(op, "admin", password)
    admin = services.auth.resolve(op, session.session_id)
    assert admin is not None
    stored = services.sales.open_account(admin, site_id, "Tea house", list(SHOP_METERS), request_id=new_request_token())
    account = stored.account
    # The history is seeded as the ledger holds it (each entry with its journal and meter-history copies): a
    # purchase a week at the desk for the prepaid meter, and for the cloud-billed one the charge the reading cycle
    # posts every 30 minutes.
    now, policy = datetime.now(UTC), account_rules.SalesPolicy(hoarding_limit_minor=10**9)
    purchases = [account_rules.sell(account, "m0", account_rules.SaleQuantity(5_000), balance_minor=0, policy=policy,
                                    request=Request(op, cashier_request_id(new_request_token()), "admin",
                                                    Channel.CASH, now - timedelta(weeks=week, hours=3)))
                 for week in range(PURCHASE_WEEKS, 0, -1)]
    start = now - timedelta(days=CHARGE_DAYS)
    charges = [account_rules.charge(account, CLOUD_BILLED, 41, energy_centi_kwh=55,
                                    interval_start=start + timedelta(minutes=30 * k),
                                    created_at=start + timedelta(minutes=30 * k + 1))
               for k in range(CHARGE_DAYS * CHARGES_PER_DAY)]
    items = [item for entry in purchases + charges for item in _entry_items(entry)]
    put_items(services.readings._connection, ((i.Meta.table_name, i.serialize()) for i in items))
    services.readings.put_run(op, site_id, [], [], [  # the priced intervals those charges were posted from
        Usage(CLOUD_BILLED, int((start + timedelta(minutes=30 * k)).timestamp() * 1000),
              int((start + timedelta(minutes=30 * (k + 1))).timestamp() * 1000), 55, 412_500, 41, "-")
        for k in range(CHARGE_DAYS * CHARGES_PER_DAY)])
    invitation = services.tenant_auth.invite(admin, site_id, account.account_id)
    tenant = services.tenant_auth.accept(op, invitation.invitation_id, login="+8613800138104",
                                         display_name="Tea house", password="shop-power-2468")
    return f"{TENANT_COOKIE}={signer().session_token(op, tenant.session_id)}"


def usage_query(op: str, site_id: str) -> int:
    """The tenant page's floor: one raw Query of the cloud-billed meter's last week of priced intervals."""
    from chalicelib.adapters.dynamodb.keys import site_pk
    from chalicelib.adapters.dynamodb.models import UsageItem
    from chalicelib.bootstrap import get_services

    since_ms = int((datetime.now(UTC) - timedelta(days=7)).timestamp() * 1000)
    request: dict[str, Any] = {"TableName": UsageItem.Meta.table_name,
                               "KeyConditionExpression": "pk = :pk AND sk BETWEEN :since AND :last",
                               "ExpressionAttributeValues": {":pk": {"S": site_pk(op, site_id)},
                                                             ":since": {"S": f"USE#{CLOUD_BILLED}#{since_ms:013d}"},
                                                             ":last": {"S": f"USE#{CLOUD_BILLED}#{10**13 - 1}"}}}
    count, connection = 0, get_services().readings._connection
    while True:
        answer = connection.dispatch("Query", request)
        count += len(answer["Items"])
        if "LastEvaluatedKey" not in answer:
            return count
        request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]


def onboard() -> tuple[str, str]:
    from bench.operators import onboard as onboard_operator

    return onboard_operator("bench-latency")


def baseline_query(op: str, site_id: str) -> int:
    """The floor: every page of one Query of the site's meter states, as raw items."""
    from chalicelib.adapters.dynamodb.keys import site_pk
    from chalicelib.adapters.dynamodb.models import MeterStateItem
    from chalicelib.bootstrap import get_services

    connection, table = get_services().readings._connection, MeterStateItem.Meta.table_name
    request: dict[str, Any] = {"TableName": table, "KeyConditionExpression": "pk = :pk AND begins_with(sk, :sk)",
                               "ExpressionAttributeValues": {":pk": {"S": site_pk(op, site_id)},
                                                             ":sk": {"S": "STATE#"}}}
    count = 0
    while True:
        answer = connection.dispatch("Query", request)
        count += len(answer["Items"])
        if "LastEvaluatedKey" not in answer:
            return count
        request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]


Samples = dict[str, tuple[list[float], list[float]]]  # page → (its times, its baseline's times), in ms


def measure(op: str, password: str, site_id: str, tenant_cookie: str,
            samples: int) -> tuple[Samples, dict[str, Any], str]:
    from chalice.test import Client

    from app import app

    with Client(app) as client:
        body = json.dumps({"company": op, "username": "admin", "password": password}).encode()
        token = client.http.post("/api/v1/session", headers={"content-type": "application/json"}, body=body)
        pages = {
            "board": (f"/api/v1/sites/{site_id}/board", {"authorization": f"Bearer {json.loads(token.body)['token']}"},
                      lambda: baseline_query(op, site_id) == METERS),
            "tenant": (f"/t/{op}", {"cookie": tenant_cookie},
                       lambda: usage_query(op, site_id) >= 7 * CHARGES_PER_DAY - 1),
        }
        found: Samples = {page: ([], []) for page in pages}
        last: dict[str, bytes] = {}
        for n in range(WARM_UP + samples):
            for page, (path, headers, floor) in pages.items():
                started = time.perf_counter()
                response = client.http.get(path, headers=headers)
                took = time.perf_counter() - started
                assert response.status_code == 200, response.body[:200]
                last[page] = response.body
                started = time.perf_counter()
                assert floor()
                base = time.perf_counter() - started
                if n >= WARM_UP:
                    found[page][0].append(took * 1000)
                    found[page][1].append(base * 1000)
    return found, json.loads(last["board"]), last["tenant"].decode()


def run(quick: bool) -> Iterator[dict[str, Any]]:
    from infra.local import dynamodb_local
    from infra.local.stack import configure_environment, prepare_tables

    samples = QUICK_SAMPLES if quick else SAMPLES
    server = dynamodb_local.start()
    try:
        configure_environment(server.endpoint)
        prepare_tables()
        op, password = onboard()
        site_id = build_site(op)
        cookie = open_shop(op, password, site_id)
        found, board, tenant_page = measure(op, password, site_id, cookie, samples)
    finally:
        server.stop()
    assert board["total"] == METERS and len(board["rows"]) == 200
    assert "Tea house" in tenant_page and tenant_page.count('href="/t/') >= len(SHOP_METERS)
    details = {"board": {"meters": METERS, "rows_per_page": len(board["rows"]), "counts": board["counts"]},
               "tenant": {"meters": len(SHOP_METERS), "charges": CHARGE_DAYS * CHARGES_PER_DAY,
                          "purchases": PURCHASE_WEEKS}}
    for page, (ours, floor) in found.items():
        p95, base95 = percentile(ours, 95), percentile(floor, 95)
        yield {**ratio_result(p95, base95, "ms"), "page": page, "p50_ms": round(percentile(ours, 50), 2),
               "p95_ms": round(p95, 2), "baseline_p50_ms": round(percentile(floor, 50), 2),
               "baseline_p95_ms": round(base95, 2), "target_p95_ms": TARGET_P95_MS, "met": p95 <= TARGET_P95_MS,
               "samples": samples, **details[page]}
