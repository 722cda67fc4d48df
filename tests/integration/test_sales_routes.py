"""Accounts, sales and receipts through the portal and the JSON API (Chalice's test client, DynamoDB Local)."""

from __future__ import annotations

import json
import secrets
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from chalice.test import Client

from chalicelib.bootstrap import get_services
from chalicelib.domain.readings import StoredState
from chalicelib.domain.tenancy import BillingMode, Meter, Site
from chalicelib.services.audit import operation
from tests.conftest import OperatorFixture
from tests.integration.portal_client import PortalClient, hidden_tokens
from tests.integration.test_json_api import auth, token_for


def _site(operator: OperatorFixture) -> str:
    services, op, site_id = get_services(), operator.operator_id, f"site_{secrets.token_hex(3)}"
    services.tenancy.add_site(Site(op, site_id, "Route park"), operation(op, "test", "site.create", site_id,
                                                                         datetime.now(UTC)))
    services.tenancy.add_meters([Meter(op, site_id, "m_1", "SN-R1", "DTSY1352", "c1", 1, "u1",
                                       BillingMode.PREPAID_METER)])
    state = StoredState("m_1", datetime.now(UTC), {"remaining_amount": "8.00", "purchase_count": 2}, (),
                        datetime.now(UTC), 0)
    services.readings.put_states(op, site_id, [state])
    return site_id


def test_a_cashier_opens_an_account_sells_and_prints_the_receipt(client: Client, new_operator: OperatorFixture,
                                                                   tmp_path: Path) -> None:
    site_id = _site(new_operator)
    portal = PortalClient(client)
    portal.log_in(new_operator.operator_id, "boss", new_operator.admin_password)
    page = portal.get(f"/sites/{site_id}/accounts")
    assert page.status_code == 200 and "SN-R1" in page.body.decode()
    request_id = next(line.split('value="')[1].split('"')[0] for line in page.body.decode().splitlines()
                      if 'name="request_id"' in line)
    opened = portal.post_form(f"/sites/{site_id}/accounts", {"customer": "Bakery", "meters": ["m_1"],
                                                             "request_id": request_id, **hidden_tokens(page)})
    assert opened.status_code == 303
    account_url = opened.headers["Location"]
    account_page = portal.get(account_url)
    assert "Bakery" in account_page.body.decode() and "8.00" in account_page.body.decode()

    fields = {"meter_id": "m_1", "amount": "40.00", "channel": "cash", "request_id": f"{request_id}-s1",
              **hidden_tokens(account_page)}
    sold = portal.post_form(f"{account_url}/sell", fields)
    assert sold.status_code == 303 and "/receipts/" in sold.headers["Location"]
    again = portal.post_form(f"{account_url}/sell", fields)  # a double submit lands on the same receipt
    assert again.headers["Location"] == sold.headers["Location"]
    receipt = portal.get(sold.headers["Location"]).body.decode()
    assert "40.00" in receipt and "SN-R1" in receipt and "R-" in receipt

    pdf = portal.get(sold.headers["Location"] + "/pdf", headers={"Accept": "application/pdf,*/*"})
    assert pdf.status_code == 200 and pdf.headers["Content-Type"] == "application/pdf"
    (tmp_path / "r.pdf").write_bytes(pdf.body)
    text = subprocess.run(["pdftotext", str(tmp_path / "r.pdf"), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "40.00" in text and "SN-R1" in text and "boss" in text
    ledger = portal.get(account_url).body.decode()
    assert ledger.count('class="delivery-pending"') == 1  # no bridge here: it waits, and says so

    refused = portal.post_form(f"{account_url}/refund", {"meter_id": "m_1", "amount": "999.00",
                                                         "request_id": f"{request_id}-r1",
                                                         **hidden_tokens(account_page)})
    assert refused.status_code == 400 and "holds only" in refused.body.decode()


def test_the_json_api_sells_idempotently_and_refuses_bad_input_clearly(client: Client,
                                                                        new_operator: OperatorFixture,
                                                                        other_operator: OperatorFixture) -> None:
    site_id = _site(new_operator)
    headers = auth(token_for(client, new_operator.operator_id, "boss", new_operator.admin_password))
    opened = client.http.post(f"/api/v1/sites/{site_id}/accounts", headers=headers,
                              body=json.dumps({"customer": "Florist", "meters": ["m_1"],
                                               "request_id": "open-florist-1"}).encode())
    assert opened.status_code == 201
    sale = {"amount": "12.50", "channel": "card"}
    first = client.http.post(f"/api/v1/sites/{site_id}/meters/m_1/sales",
                             headers={**headers, "Idempotency-Key": "till-7-000123"}, body=json.dumps(sale).encode())
    second = client.http.post(f"/api/v1/sites/{site_id}/meters/m_1/sales",
                              headers={**headers, "Idempotency-Key": "till-7-000123"}, body=json.dumps(sale).encode())
    assert first.status_code == second.status_code == 201
    assert json.loads(first.body)["entry_id"] == json.loads(second.body)["entry_id"]
    account_id = json.loads(opened.body)["account_id"]
    account = json.loads(client.http.get(f"/api/v1/sites/{site_id}/accounts/{account_id}", headers=headers).body)
    assert account["meters"][0]["balance"] == "20.50" and len(account["entries"]) == 2

    bad_bodies = [(b"not json", 400, "JSON"),
                  (json.dumps({"amount": 12.5, "request_id": "r-23456789"}).encode(), 400, "string"),
                  (json.dumps({"amount": "1e9", "request_id": "r-12345678"}).encode(), 400, ""),
                  (json.dumps({"amount": "5.00"}).encode(), 400, "request_id")]
    for body, status, message in bad_bodies:
        response = client.http.post(f"/api/v1/sites/{site_id}/meters/m_1/sales", headers=headers, body=body)
        assert response.status_code == status and message in json.loads(response.body)["error"]
    stranger = auth(token_for(client, other_operator.operator_id, "boss", other_operator.admin_password))
    foreign = client.http.post(f"/api/v1/sites/{site_id}/meters/m_1/sales", headers={**stranger,
                                                                                     "Idempotency-Key": "x-12345678"},
                               body=json.dumps(sale).encode())
    assert foreign.status_code == 404
    assert client.http.get(f"/api/v1/sites/{site_id}/accounts/{account_id}", headers=stranger).status_code == 404


def test_an_account_is_closed_from_its_page_and_the_api_answers_the_closing(client: Client,
                                                                             new_operator: OperatorFixture) -> None:
    site_id = _site(new_operator)
    headers = auth(token_for(client, new_operator.operator_id, "boss", new_operator.admin_password))
    opened = client.http.post(f"/api/v1/sites/{site_id}/accounts", headers=headers,
                              body=json.dumps({"customer": "Cobbler", "meters": ["m_1"],
                                               "request_id": "open-cobbler-1"}).encode())
    account_id = json.loads(opened.body)["account_id"]
    portal = PortalClient(client)
    portal.log_in(new_operator.operator_id, "boss", new_operator.admin_password)
    page = portal.get(f"/sites/{site_id}/accounts/{account_id}")
    assert 'id="close-account"' in page.body.decode()
    closed = portal.post_form(f"/sites/{site_id}/accounts/{account_id}/close",
                              {"request_id": "close-cobbler-1", **hidden_tokens(page)})
    assert closed.status_code == 303 and "done=" in closed.headers["Location"]
    after = portal.get(closed.headers["Location"]).body.decode()
    assert "Account closed." in after and 'id="closing"' in after and "8.00" in after
    again = client.http.post(f"/api/v1/sites/{site_id}/accounts/{account_id}/close", headers=headers,
                             body=json.dumps({"request_id": "close-cobbler-2"}).encode())
    assert again.status_code == 200 and json.loads(again.body)["refund"] == "8.00"
    bogus = portal.get(f"/sites/{site_id}/accounts/{account_id}?done=<script>alert(1)</script>").body.decode()
    assert "<script>alert(1)" not in bogus


def test_the_menu_leads_to_the_sites_accounts_and_sales(client: Client, new_operator: OperatorFixture) -> None:
    portal = PortalClient(client)
    portal.log_in(new_operator.operator_id, "boss", new_operator.admin_password)
    assert "No site yet." in portal.get("/accounts").body.decode()
    site_id = _site(new_operator)
    assert portal.get("/accounts").headers["Location"] == f"/sites/{site_id}/accounts"
    assert portal.get("/sell").headers["Location"] == f"/sites/{site_id}/sales"
    second = _site(new_operator)
    choice = portal.get("/sell").body.decode()
    assert f"/sites/{site_id}/sales" in choice and f"/sites/{second}/sales" in choice
