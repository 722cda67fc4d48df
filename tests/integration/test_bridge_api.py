"""Registering, listing and revoking bridges over the JSON API, with tenancy and bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from chalice.test import Client

from chalicelib.bootstrap import get_services
from chalicelib.domain.tenancy import Collector, Site, Transport
from chalicelib.services.audit import operation
from tests.conftest import OperatorFixture
from tests.integration.test_json_api import auth, token_for


def make_site(operator: OperatorFixture) -> str:
    services, op, now = get_services(), operator.operator_id, datetime.now(UTC)
    services.tenancy.add_site(Site(op, "site_api", "API park"), operation(op, "test", "site.create", "s", now))
    services.tenancy.add_collectors([Collector(op, "site_api", "coll_1", "C1", Transport.RTU_OVER_TCP,
                                               "127.0.0.1", 5020)])
    return "site_api"


def test_register_list_revoke(client: Client, new_operator: OperatorFixture) -> None:
    site_id = make_site(new_operator)
    token = token_for(client, new_operator.operator_id, "boss", new_operator.admin_password)
    made = client.http.post(f"/api/v1/sites/{site_id}/bridges", headers=auth(token),
                            body=json.dumps({"name": "main", "suite": "aes-256-gcm"}).encode())
    assert made.status_code == 201
    bundle = made.json_body
    assert bundle["bridge_id"] == f"{new_operator.operator_id}.main"
    assert set(bundle["keyrings"]) == {"coll_1"} and len(bundle["credential"]) >= 40
    listed = client.http.get("/api/v1/bridges", headers=auth(token)).json_body["bridges"]
    assert [(b["bridge_id"], b["status"], b["online"]) for b in listed] == [(bundle["bridge_id"], "active", False)]
    assert "credential" not in json.dumps(listed)
    again = client.http.post(f"/api/v1/sites/{site_id}/bridges", headers=auth(token),
                             body=json.dumps({"name": "main"}).encode())
    assert again.status_code == 409
    revoked = client.http.post(f"/api/v1/bridges/{bundle['bridge_id']}/revoke", headers=auth(token), body=b"{}")
    assert revoked.status_code == 200
    assert client.http.get("/api/v1/bridges", headers=auth(token)).json_body["bridges"][0]["status"] == "revoked"


@pytest.mark.parametrize(("body", "status"), [
    ({"name": "Bad Name"}, 400), ({"name": "ok", "suite": "rot13"}, 400), ({}, 400), ({"name": 5}, 400)])
def test_bad_registrations(client: Client, new_operator: OperatorFixture, body: dict[str, object],
                           status: int) -> None:
    site_id = make_site(new_operator)
    token = token_for(client, new_operator.operator_id, "boss", new_operator.admin_password)
    response = client.http.post(f"/api/v1/sites/{site_id}/bridges", headers=auth(token), body=json.dumps(body).encode())
    assert response.status_code == status and response.json_body["error"]


def test_another_operator_cannot_register_or_revoke(client: Client, new_operator: OperatorFixture,
                                                    other_operator: OperatorFixture) -> None:
    site_id = make_site(new_operator)
    mine = token_for(client, new_operator.operator_id, "boss", new_operator.admin_password)
    bridge_id = client.http.post(f"/api/v1/sites/{site_id}/bridges", headers=auth(mine),
                                 body=b'{"name": "main"}').json_body["bridge_id"]
    theirs = token_for(client, other_operator.operator_id, "boss", other_operator.admin_password)
    assert client.http.post(f"/api/v1/sites/{site_id}/bridges", headers=auth(theirs),
                            body=b'{"name": "evil"}').status_code == 404
    assert client.http.post(f"/api/v1/bridges/{bridge_id}/revoke", headers=auth(theirs), body=b"{}").status_code == 404
    assert client.http.get("/api/v1/bridges", headers=auth(theirs)).json_body["bridges"] == []


def test_presence_sweep_forgets_quiet_connections(new_operator: OperatorFixture) -> None:
    services = get_services()
    make_site(new_operator)
    from tests.support.cloud_stack import admin_actor

    bundle = services.bridge_admin.register(admin_actor(new_operator), "site_api", "quiet")
    repo_bridges = services.bridge_link
    quiet_since = datetime.now(UTC) - timedelta(hours=1)
    services.bridge_link._bridges.mark_seen(new_operator.operator_id, bundle.bridge_id, quiet_since, "conn-1")
    assert repo_bridges.sweep_presence([new_operator.operator_id]) == 1
    bridge = repo_bridges.bridge(new_operator.operator_id, bundle.bridge_id)
    assert bridge is not None and bridge.connection_id is None


def test_a_silent_collector_raises_lost_contact_and_recovers(new_operator: OperatorFixture) -> None:
    from tests.support.cloud_stack import admin_actor

    services, op = get_services(), new_operator.operator_id
    make_site(new_operator)
    actor = admin_actor(new_operator)
    bundle = services.bridge_admin.register(actor, "site_api", "silent")
    now = datetime.now(UTC)
    services.bridge_link._bridges.mark_seen(op, bundle.bridge_id, now - timedelta(hours=1), "conn-9")
    heard = services.bridge_link.collectors_heard(op)["site_api"]
    raised = services.alarm_watch.sweep_collectors(op, "site_api", heard, now)
    assert [(e.kind.value, e.alarm.kind.value, e.alarm.subject.subject_id) for e in raised] == [
        ("raised", "collector-lost-contact", "coll_1")]
    assert services.alarm_watch.sweep_collectors(op, "site_api", heard, now) == []  # raised once, not again
    services.bridge_link._bridges.mark_seen(op, bundle.bridge_id, now, "conn-9")
    heard_again = services.bridge_link.collectors_heard(op)["site_api"]
    cleared = services.alarm_watch.sweep_collectors(op, "site_api", heard_again, now)
    assert [e.kind.value for e in cleared] == ["cleared"]
    active = services.alarm_queries.report(actor, "site_api").active
    assert [a for a in active if a.subject.subject_id == "coll_1"] == []
