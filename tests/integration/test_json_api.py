"""The JSON API: bearer sessions, bad input answered with 4xx and a message, tenancy isolation."""

from __future__ import annotations

import json

import pytest
from chalice.test import Client

from tests.conftest import OperatorFixture


def token_for(client: Client, company: str, username: str, password: str) -> str:
    body = json.dumps({"company": company, "username": username, "password": password}).encode()
    response = client.http.post("/api/v1/session", headers={"content-type": "application/json"}, body=body)
    assert response.status_code == 201, response.body
    return str(response.json_body["token"])


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", "content-type": "application/json"}


@pytest.mark.parametrize(("body", "status"), [
    (b"not json", 400),
    (b"[1, 2]", 400),
    (b'{"company": 7, "username": "boss", "password": "x"}', 400),
    (b'{"username": "boss", "password": "x"}', 400),
    (b'{"company": "Bad Company!", "username": "boss", "password": "x"}', 400),
    (b'{"company": "nobody-here", "username": "boss", "password": "whatever-pass"}', 401),
    (b"{" + b'"company": "' + b"x" * 70000 + b'"}', 400),
])
def test_bad_login_bodies_get_4xx_with_a_message(client: Client, ddb: str, body: bytes, status: int) -> None:
    response = client.http.post("/api/v1/session", headers={"content-type": "application/json"}, body=body)
    assert response.status_code == status
    assert isinstance(response.json_body["error"], str) and response.json_body["error"]


def test_without_a_token_the_api_answers_401(client: Client) -> None:
    assert client.http.get("/api/v1/me").status_code == 401
    assert client.http.get("/api/v1/me", headers={"authorization": "Bearer forged.token.value"}).status_code == 401


@pytest.mark.parametrize("payload", [
    {"username": "neo", "display_name": "Neo", "role": "wizard", "password": "long-enough-123"},
    {"username": "neo", "display_name": "Neo", "role": "cashier", "password": "short"},
    {"username": "neo", "display_name": "", "role": "cashier", "password": "long-enough-123"},
    {"username": "neo", "display_name": "Neo", "role": "cashier", "password": "long-enough-123",
     "extra_permissions": "sales.sell"},
    {"username": "neo", "display_name": "Neo", "role": "cashier", "password": "long-enough-123",
     "sites": ["site_of_someone_else"]},
    {"username": ["neo"], "display_name": "Neo", "role": "cashier", "password": "long-enough-123"},
])
def test_bad_staff_payloads_change_nothing(client: Client, new_operator: OperatorFixture,
                                           payload: dict[str, object]) -> None:
    token = token_for(client, new_operator.operator_id, "boss", new_operator.admin_password)
    response = client.http.post("/api/v1/staff", headers=auth(token), body=json.dumps(payload).encode())
    assert response.status_code == 400
    assert response.json_body["error"]
    staff = client.http.get("/api/v1/staff", headers=auth(token)).json_body["staff"]
    assert [s["username"] for s in staff] == ["boss"]


def test_operator_a_cannot_reach_operator_b(client: Client, new_operator: OperatorFixture,
                                            other_operator: OperatorFixture) -> None:
    from infra.local.seed import DEMO_COMPANY, DEMO_SITE, seed_demo

    seed_demo()
    token = token_for(client, new_operator.operator_id, "boss", new_operator.admin_password)
    assert client.http.get(f"/api/v1/sites/{DEMO_SITE}/meters", headers=auth(token)).status_code == 404
    assert client.http.get("/api/v1/sites", headers=auth(token)).json_body["sites"] == []
    assert new_operator.operator_id != DEMO_COMPANY
    entries = client.http.get("/api/v1/oplog", headers=auth(token)).json_body["entries"]
    assert entries and all(e["target"] in {f"operator:{new_operator.operator_id}", "staff:boss"} for e in entries)


def test_cookie_sessions_need_the_csrf_header_for_api_writes(client: Client, new_operator: OperatorFixture) -> None:
    token = token_for(client, new_operator.operator_id, "boss", new_operator.admin_password)
    headers = {"cookie": f"vv_session={token}", "content-type": "application/json"}
    body = json.dumps({"username": "oz", "display_name": "Oz", "role": "cashier", "password": "long-enough-123"})
    assert client.http.post("/api/v1/staff", headers=headers, body=body.encode()).status_code == 403


def test_demo_site_lists_its_64_meters(client: Client, ddb: str) -> None:
    from infra.local.seed import DEMO_COMPANY, DEMO_LOGINS, DEMO_SITE, seed_demo

    seed_demo()
    admin = DEMO_LOGINS[0]
    token = token_for(client, DEMO_COMPANY, admin.username, admin.password)
    meters = client.http.get(f"/api/v1/sites/{DEMO_SITE}/meters", headers=auth(token)).json_body["meters"]
    assert len(meters) == 64
    assert {m["collector_id"] for m in meters} == {"coll_a", "coll_b"}
    assert sorted(m["address"] for m in meters if m["collector_id"] == "coll_a") == list(range(1, 33))
