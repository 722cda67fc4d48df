"""Every HTTP route called by operator A's users with operator B's ids, and by a shop tenant with another shop's ids:
each is refused (not found, forbidden, or sent to sign in), no answer carries the other party's data, and the other
party's data is the same afterwards (TARGETS.md, ``tenant_isolation``).

Used by the test and the benchmark. Writes carry plausible, valid-looking fields, so that a route which checked the
form before the owner would show up as answering something other than a refusal.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from chalice.test import Client

from tests.support.bad_input import SESSION_ENDERS, Identities, fill_path, prepare

# 303: sent to sign in (a tenant cookie of another operator is no session there).
REFUSED = {303, 401, 403, 404}
IMPORT_CSV = b"serial,model,collector,address,building,floor,unit\nSN-ISO,DTSY1352,c1,9,b,1,Z1\n"
# Tenant pages anyone may open, by design: signing in, asking for a reset, an invitation's own page.
PUBLIC = ("/t/{operator_id}/login", "/t/{operator_id}/forgot", "/t/{operator_id}/reset/{token}",
          "/t/{operator_id}/invite/{invitation_id}")
PLAUSIBLE = {"amount": "10.00", "energy": "5", "reason": "isolation check", "name": "Isolation", "month": "2026-11",
             "kind": "sale", "channel": "cash", "meter_ids": "", "operation": "trip", "language": "en",
             "display_name": "Isolation", "phone": "+8613700000099", "role": "cashier", "status": "disabled",
             "password": "isolation-password-2026", "confirm": "isolation-password-2026", "floor": "1",
             "number": "Z1", "serial": "SN-ISO", "model": "DTSY1352", "address": "9", "billing_mode": "prepaid"}


@dataclass
class Outcome:
    calls: int = 0
    not_refused: list[str] = field(default_factory=list)  # a route given the other party's ids answered anyway
    leaks: list[str] = field(default_factory=list)  # an answer carried the other party's data
    server_errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Other:
    """Operator B's objects (and A's second shop, for the tenant): ids to aim at, and text that must never show."""

    ids: dict[str, str]
    markers: tuple[str, ...]


def _other_operator(operator_id: str, admin_password: str) -> tuple[Identities, Other]:
    from chalicelib.bootstrap import get_services
    from chalicelib.domain.access import Role
    from chalicelib.domain.tenancy import Building
    from chalicelib.services.audit import operation
    from chalicelib.services.sales import new_request_token
    from chalicelib.services.staff_admin import StaffDraft

    ids = prepare(operator_id, admin_password, meter_id="m_b_secret", shop="Secret Tailor B")
    services = get_services()
    admin = services.auth.resolve(operator_id, services.auth.login(operator_id, "boss", admin_password).session_id)
    assert admin is not None
    sale = services.sales.sell(admin, ids.site_id, ids.meter_id, request_id=new_request_token(), amount="7.00")
    services.staff_admin.create(admin, StaffDraft("b_clerk", "Clerk B", Role.CASHIER), "clerk-b-password-2026")
    services.tenancy.add_building(Building(operator_id, ids.site_id, "bldg_b", "Tower B", ("1",)),
                                  operation(operator_id, "sweep", "building.create", "bldg_b", datetime.now(UTC)))
    invitation = services.tenant_auth.invite(admin, ids.site_id, ids.account_id)
    return ids, Other({"operator_id": operator_id, "site_id": ids.site_id, "meter_id": ids.meter_id,
                       "account_id": ids.account_id, "entry_id": sale.entry_id, "username": "b_clerk",
                       "building_id": "bldg_b", "invitation_id": invitation.invitation_id},
                      ("Secret Tailor B", "SN-m_b_secret", "m_b_secret", "bldg_b", "Tower B", "b_clerk"))


def snapshot(operator_id: str, site_id: str, account_id: str, invitation_id: str = "") -> str:
    """Operator B's data as the services and repositories see it: what must not change."""
    from chalicelib.adapters.dynamodb.bridge_repo import DynamoBridgeRepository
    from chalicelib.adapters.dynamodb.tariff_repo import DynamoTariffRepository
    from chalicelib.adapters.dynamodb.tenant_repo import DynamoTenantRepository
    from chalicelib.bootstrap import get_services

    services = get_services()
    connection = services.readings._connection  # the one connection every repository shares
    tenants = DynamoTenantRepository(connection)
    parts: list[Any] = [
        services.tenancy.list_sites(operator_id), services.tenancy.list_meters(operator_id, site_id),
        services.tenancy.list_buildings(operator_id, site_id), services.tenancy.list_units(operator_id, site_id),
        services.tenancy.list_collectors(operator_id, site_id), services.money.all_moneys(operator_id),
        services.money.account(operator_id, account_id), services.staff_repo.list(operator_id),
        sorted(e.entry_id for m in services.money.all_moneys(operator_id)
               for e in services.money.meter_entries(operator_id, m.meter_id)),
        [a.alarm_id for a in services.alarms.alarms(operator_id, site_id)],
        DynamoTariffRepository(connection).histories(operator_id, site_id),
        DynamoBridgeRepository(connection).list(operator_id), tenants.list(operator_id),
        tenants.invitation(operator_id, invitation_id) if invitation_id else None,
    ]
    return repr(parts)


def sweep(client: Client, app: Any, mine: Identities, other: Other, other_shop: Other) -> Outcome:
    """A's administrator, API client and tenant call every route that names an object, with B's ids; A's tenant
    also calls the tenant routes with A's other shop's ids."""
    outcome = Outcome()
    for path, methods in sorted(app.routes.items()):
        params = set(re.findall(r"{(\w+)}", path))
        if not params & {"site_id", "meter_id", "account_id", "entry_id", "username", "building_id", "operator_id",
                         "invitation_id"} or path.startswith(("/webhooks/", "/pay/local/")) or path in PUBLIC:
            continue  # a route that names none of another party's objects acts on the caller's own
        for method in methods:
            if (path, method) in SESSION_ENDERS:
                continue
            if path.startswith("/t/"):
                targets = [(mine.tenant_headers, other)]
                if params - {"operator_id"}:  # another shop of the tenant's own operator
                    targets.append((mine.tenant_headers, other_shop))
            elif path.startswith("/api/"):
                targets = [(mine.api_headers, other)]
            else:
                targets = [(mine.staff_headers, other)]
            content_type = app.routes[path][method].content_types[0]
            for headers, aimed in targets:
                _call(client, outcome, method, fill_path(path, aimed.ids), headers, aimed, content_type)
    return outcome


def _call(client: Client, outcome: Outcome, method: str, path: str, headers: dict[str, str], aimed: Other,
          declared: str) -> None:
    if method == "GET":
        response = client.http.get(path, headers=headers)
    else:
        fields = {**PLAUSIBLE, "meter_id": aimed.ids["meter_id"], "account_id": aimed.ids["account_id"],
                  "site_id": aimed.ids["site_id"], "request_id": secrets.token_urlsafe(12),
                  "form_token": secrets.token_urlsafe(12), "meter_ids": aimed.ids["meter_id"]}
        content_type, body = _body(path, declared, fields)
        response = client.http.request(method, path, headers={**headers, "content-type": content_type}, body=body)
    outcome.calls += 1
    what, text = f"{method} {path}", response.body.decode("utf-8", errors="replace")
    if response.status_code >= 500:
        outcome.server_errors.append(f"{response.status_code} {what}")
    elif response.status_code not in REFUSED:
        outcome.not_refused.append(f"{response.status_code} {what}: {text[:160]!r}")
    location = next((str(v) for k, v in response.headers.items() if k.lower() == "location"), "")
    if response.status_code == 303 and "/login" not in location:
        outcome.not_refused.append(f"303 {what} to {location}")
    shown = [m for m in aimed.markers if m in text and m not in path]
    if shown:
        outcome.leaks.append(f"{what} shows {shown}")


def _body(path: str, declared: str, fields: dict[str, str]) -> tuple[str, bytes]:
    """A well-formed body of the route's own content type: JSON, a form, a CSV file, or a form with a file."""
    import json

    if declared == "multipart/form-data":
        boundary = "vv-isolation"
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
                 for name, value in fields.items()]
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="meters.csv"\r\n'
                     f"Content-Type: text/csv\r\n\r\n".encode() + IMPORT_CSV + b"\r\n")
        return f"multipart/form-data; boundary={boundary}", b"".join(parts) + f"--{boundary}--\r\n".encode()
    if declared.startswith(("text/", "application/csv", "application/vnd", "application/octet")):
        return "text/csv", IMPORT_CSV
    if path.startswith("/api/"):
        return "application/json", json.dumps(fields).encode()
    return "application/x-www-form-urlencoded", urlencode(fields).encode()


def prepare_both(operator_a: str, password_a: str, operator_b: str,
                 password_b: str) -> tuple[Identities, Other, Other]:
    """A (with a second shop, another tenant's), and B; returns A's identities, B's objects, A's other shop."""
    mine = prepare(operator_a, password_a)
    second = prepare(operator_a, password_a, meter_id="m_a_other", shop="Other Florist A", site_id=mine.site_id)
    _, other = _other_operator(operator_b, password_b)
    from chalicelib.bootstrap import get_services
    from chalicelib.services.sales import new_request_token

    services = get_services()
    admin = services.auth.resolve(operator_a, services.auth.login(operator_a, "boss", password_a).session_id)
    assert admin is not None
    sale = services.sales.sell(admin, mine.site_id, second.meter_id, request_id=new_request_token(), amount="3.00")
    other_shop = Other({"operator_id": operator_a, "site_id": mine.site_id, "meter_id": second.meter_id,
                        "account_id": second.account_id, "entry_id": sale.entry_id},
                       ("Other Florist A", "SN-m_a_other"))
    return mine, other, other_shop
