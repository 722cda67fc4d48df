"""Every HTTP route of the app, called with malformed, missing, oversized and wrong-typed input by signed-in users:
nothing may answer with a server error, and every refusal says why (TARGETS.md, ``bad_input``).

Used by the test (a few variants per route) and the benchmark (all of them). Each call goes through Chalice's
in-process test client: the real middleware, sessions, CSRF checks, services and DynamoDB Local.
"""

from __future__ import annotations

import json
import re
import secrets
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from chalice.test import Client

# The first few of each are the quick set: they include a "%" (it once broke the rendering of error messages).
BAD_SEGMENTS = ("%00", "<b>vv-markup</b>", "x" * 300, "..", "名字", "' OR '1'='1", "-", "a b", "ÿ" * 3)
MARKUP = "<b>vv-markup</b>"  # sent as input: must never come back unescaped in a page
BAD_VALUES: tuple[Any, ...] = ("%(x)f", MARKUP, "", "abc", "-1", "1e9999", "0.001", "x" * 5000, "名字", "<script>",
                               "[]", "null", "99999999999999999999999", "2026-13-45", "%", "\u0000")
WRONG_TYPES: tuple[Any, ...] = ([], {}, None, True, 1.5, -1, "x" * 5000, 10**30)
FIELDS = ("amount", "energy", "meter_id", "account_id", "site_id", "name", "month", "kind", "channel", "reason",
          "request_id", "form_token", "login", "password", "username", "role", "prices", "schedule", "building_id",
          "floor", "unit_id", "collector_id", "address", "model", "serial", "billing_mode", "hoarding_limit",
          "alarm_amount_1", "alarm_amount_2", "interval_s", "meter_ids", "operation", "language", "phone",
          "display_name", "company", "timezone", "currency", "effective_from", "ladder", "card_number", "file")


@dataclass
class Outcome:
    calls: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    unexplained: list[str] = field(default_factory=list)  # a 4xx with no message in it
    unescaped: list[str] = field(default_factory=list)  # our markup came back as markup

    def add(self, what: str, status: int, body: bytes) -> None:
        self.calls += 1
        self.by_status[status] += 1
        if status >= 500:
            self.server_errors.append(f"{status} {what}: {body[:300]!r}")
        elif 400 <= status < 500 and status not in (401, 403, 404, 405, 413) and not _has_message(body):
            self.unexplained.append(f"{status} {what}: {body[:200]!r}")
        if MARKUP.encode() in body and not body.lstrip().startswith(b"{"):  # JSON carries it as data, not as HTML
            self.unescaped.append(f"{status} {what}")


def _has_message(body: bytes) -> bool:
    text = body.decode("utf-8", errors="replace")
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            return False
        return isinstance(data, dict) and bool(data.get("message") or data.get("error") or data.get("Message"))
    return bool(re.search(r'class="(error|notice)[^"]*"[^>]*>\s*\S', text) or re.search(r"<p[^>]*>\s*\S", text))


@dataclass(frozen=True)
class Identities:
    """What real ids and signed-in users the sweep mixes in with the bad ones."""

    operator_id: str
    site_id: str
    meter_id: str
    account_id: str
    staff_headers: dict[str, str]  # cookie + CSRF header of a signed-in administrator
    api_headers: dict[str, str]  # bearer token
    tenant_headers: dict[str, str]  # cookie + CSRF header of a signed-in shop tenant


# Routes that end the caller's own session: called with anything, they sign the sweep out (their refusals are
# covered by their own tests).
SESSION_ENDERS = {("/logout", "POST"), ("/t/{operator_id}/logout", "POST"), ("/api/v1/session", "DELETE")}


def routes(app: Any) -> list[tuple[str, str]]:
    return sorted((path, method) for path, methods in app.routes.items() for method in methods
                  if (path, method) not in SESSION_ENDERS)


def _paths(path: str, ids: Identities, quick: bool) -> Iterator[str]:
    """The route with real ids, then with each parameter in turn replaced by a bad one."""
    real = {"operator_id": ids.operator_id, "site_id": ids.site_id, "meter_id": ids.meter_id,
            "account_id": ids.account_id}
    yield fill_path(path, real)
    for name in re.findall(r"{(\w+)}", path):
        for bad in BAD_SEGMENTS[:3] if quick else BAD_SEGMENTS:
            yield fill_path(path, {**real, name: bad})


def fill_path(path: str, values: dict[str, str]) -> str:
    """The route with its parameters filled in (URL-quoted); one not in ``values`` gets an id nothing has."""
    return re.sub(r"{(\w+)}", lambda m: quote(values.get(m.group(1), f"nope-{m.group(1)}"), safe=""), path)


def _bodies(path: str, quick: bool) -> Iterator[tuple[str, bytes]]:
    """Bodies for a write: missing, malformed, oversized, wrong-typed; as JSON for the API, as forms elsewhere."""
    if path.startswith("/api/"):
        yield "application/json", b""
        yield "application/json", b"{not json"
        yield "application/json", b"[1, 2]"
        yield "application/json", b'"text"'
        for wrong in WRONG_TYPES[:3] if quick else WRONG_TYPES:
            yield "application/json", json.dumps({name: wrong for name in FIELDS}).encode()
        if not quick:
            yield "application/json", json.dumps({"x": "y" * 2_000_000}).encode()
            yield "application/json", b'{"amount": "1", "amount": "2"}' + b" " * 10
        return
    yield "application/x-www-form-urlencoded", b""
    yield "application/x-www-form-urlencoded", b"%%%=%%%&&&"
    for bad in BAD_VALUES[:4] if quick else BAD_VALUES:
        yield "application/x-www-form-urlencoded", urlencode({name: bad for name in FIELDS}).encode()
    if not quick:
        yield "multipart/form-data; boundary=xyz", b"--xyz\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n"
        yield "application/x-www-form-urlencoded", urlencode({"amount": "1" * 2_000_000}).encode()


def sweep(client: Client, app: Any, ids: Identities, *, quick: bool) -> Outcome:
    outcome = Outcome()
    for path, method in routes(app):
        if path.startswith("/webhooks/"):
            headers_sets = [{"stripe-signature": "t=1,v1=00"}]
        elif path.startswith("/t/"):
            headers_sets = [ids.tenant_headers]
        elif path.startswith("/api/"):
            headers_sets = [ids.api_headers]
        else:
            headers_sets = [ids.staff_headers]
        for concrete in _paths(path, ids, quick):
            for headers in headers_sets:
                if method == "GET":
                    for query in ("", "?month=2026-99&page=-1&state=%00&q=" + "x" * 3000):
                        response = client.http.get(concrete + query, headers=headers)
                        outcome.add(f"GET {concrete[:120]}{query[:40]}", response.status_code, response.body)
                    continue
                for content_type, body in _bodies(path, quick):
                    response = client.http.request(method, concrete, headers={**headers, "content-type": content_type},
                                                   body=body)
                    outcome.add(f"{method} {concrete[:120]} [{content_type[:20]} {body[:60]!r}]",
                                response.status_code, response.body)
    return outcome


def prepare(operator_id: str, admin_password: str, *, meter_id: str = "m_bad", shop: str = "Sweep shop",
            site_id: str | None = None) -> Identities:
    """A read meter on an open account (on a new site, or ``site_id``), a signed-in administrator, API client and
    tenant of that account (sessions, tokens)."""
    from chalicelib.bootstrap import get_services
    from chalicelib.domain.readings import StoredState
    from chalicelib.domain.tenancy import BillingMode, Meter, Site
    from chalicelib.services.audit import operation
    from chalicelib.services.sales import new_request_token
    from chalicelib.web.guards import SESSION_COOKIE, signer
    from chalicelib.web.tenant_guards import TENANT_COOKIE

    services, now = get_services(), datetime.now(UTC)
    if site_id is None:
        site_id = f"site_{secrets.token_hex(3)}"
        services.tenancy.add_site(Site(operator_id, site_id, f"{shop} park"),
                                  operation(operator_id, "sweep", "site.create", site_id, now))
    address = len(services.tenancy.list_meters(operator_id, site_id)) + 1
    services.tenancy.add_meters([Meter(operator_id, site_id, meter_id, f"SN-{meter_id}", "DTSY1352", "c1", address,
                                       f"u{address}", BillingMode.PREPAID_METER)])
    services.readings.put_states(operator_id, site_id, [StoredState(
        meter_id, now, {"remaining_amount": "20.00", "purchase_count": 2, "relay_state": 0}, (), now, 0)])
    session = services.auth.login(operator_id, "boss", admin_password)
    admin = services.auth.resolve(operator_id, session.session_id)
    assert admin is not None
    account = services.sales.open_account(admin, site_id, shop, [meter_id], request_id=new_request_token())
    invitation = services.tenant_auth.invite(admin, site_id, account.account.account_id)
    tenant = services.tenant_auth.accept(operator_id, invitation.invitation_id,
                                         login=f"+86137{secrets.randbelow(10**8):08d}", display_name=shop,
                                         password="sweep-password-2026")
    api = services.auth.login(operator_id, "boss", admin_password)
    return Identities(
        operator_id, site_id, meter_id, account.account.account_id,
        {"cookie": f"{SESSION_COOKIE}={signer().session_token(operator_id, session.session_id)}",
         "x-csrf-token": session.csrf_token},
        {"authorization": f"Bearer {signer().session_token(operator_id, api.session_id)}"},
        {"cookie": f"{TENANT_COOKIE}={signer().session_token(operator_id, tenant.session_id)}",
         "x-csrf-token": tenant.csrf_token})
