"""The shop tenants' portal through Chalice's test client against DynamoDB Local: an invitation by the operator,
sign-up, the tenant's meters and receipts, isolation between tenants and from staff sessions, password reset."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from chalice.test import Client

from chalicelib.adapters.sms import LocalOutboxSender
from chalicelib.bootstrap import get_services, reset_services
from chalicelib.domain.readings import StoredState, Usage
from chalicelib.domain.tenancy import BillingMode, Meter, Site
from chalicelib.services.audit import operation
from chalicelib.services.notifier import Notifier
from chalicelib.services.sales import new_request_token
from tests.conftest import OperatorFixture
from tests.integration.portal_client import PortalClient, hidden_tokens
from tests.support.cloud_stack import admin_actor
from tests.support.payments import tenant_of

FORM_TOKEN = re.compile(r'name="form_token" value="([^"]+)"')


def _shop(operator: OperatorFixture, name: str, meter_id: str) -> tuple[str, str]:
    """A site with one read prepaid meter on a new account with one cash sale: (site id, account id)."""
    services, op, site_id = get_services(), operator.operator_id, f"site_{secrets.token_hex(3)}"
    services.tenancy.add_site(Site(op, site_id, "Tenant park"), operation(op, "t", "site.create", site_id,
                                                                          datetime.now(UTC)))
    services.tenancy.add_meters([Meter(op, site_id, meter_id, f"SN-{meter_id}", "DTSY1352", "c1", 1, "u1",
                                       BillingMode.PREPAID_METER)])
    state = StoredState(meter_id, datetime.now(UTC), {"remaining_amount": "-2.00", "purchase_count": 3,
                                                      "relay_state": 1}, (), datetime.now(UTC), 0)
    services.readings.put_states(op, site_id, [state])
    admin = admin_actor(operator)
    stored = services.sales.open_account(admin, site_id, name, [meter_id], request_id=new_request_token())
    services.sales.sell(admin, site_id, meter_id, request_id=new_request_token(), amount="30.00")
    return site_id, stored.account.account_id


def _invite(portal: PortalClient, site_id: str, account_id: str) -> str:
    page = portal.get(f"/sites/{site_id}/accounts/{account_id}")
    response = portal.post_form(f"/sites/{site_id}/invitations", {"account_id": account_id, **hidden_tokens(page)})
    assert response.status_code == 200 and "<svg" in response.body.decode()  # the QR code
    match = re.search(r'id="invitation-link" href="https?://[^/"]+(/t/[^"]+)"', response.body.decode())
    assert match is not None
    return match.group(1)


def _join(client: Client, path: str, login: str, password: str) -> PortalClient:
    tenant = PortalClient(client)
    page = tenant.get(path)
    assert page.status_code == 200
    token = FORM_TOKEN.search(page.body.decode())
    assert token is not None
    joined = tenant.post_form(path, {"form_token": token.group(1), "name": "Mei", "login": login,
                                     "password": password})
    assert joined.status_code == 303 and "vv_tenant" in tenant.cookies
    return tenant


def test_a_tenant_joins_by_invitation_and_sees_only_their_meter(client: Client,
                                                                 new_operator: OperatorFixture) -> None:
    op = new_operator.operator_id
    site_a, account_a = _shop(new_operator, "Tea house", "m_tea")
    site_b, account_b = _shop(new_operator, "Florist", "m_flower")
    staff = PortalClient(client)
    staff.log_in(op, "boss", new_operator.admin_password)
    invitation = _invite(staff, site_a, account_a)
    mei = _join(client, invitation, "+86 139 1234 5678", "mei-password-2026")

    home = mei.get(f"/t/{op}").body.decode()
    assert "SN-m_tea" in home and "SN-m_flower" not in home and "28.00" in home  # -2.00 + 30.00 on its way
    detail = mei.get(f"/t/{op}/meters/m_tea").body.decode()
    assert "30.00" in detail and 'id="top-up"' in detail and "<svg" in detail
    entry_id = re.search(r'data-entry="(e-[0-9a-f]+)"', detail)
    assert entry_id is not None
    assert mei.get(f"/t/{op}/meters/m_tea/receipts/{entry_id.group(1)}").status_code == 200
    # The other shop's meter and its receipts do not exist for this tenant.
    assert mei.get(f"/t/{op}/meters/m_flower").status_code == 404
    assert mei.get(f"/t/{op}/meters/m_flower/receipts/{entry_id.group(1)}").status_code == 404
    # The invitation was single-use; a staff session is no tenant session.
    assert PortalClient(client).get(invitation).status_code == 404
    assert staff.get(f"/t/{op}").status_code == 303
    florist = _join(client, _invite(staff, site_b, account_b), "florist@example.com", "flower-password-2026")
    assert florist.get(f"/t/{op}/meters/m_tea").status_code == 404


def test_sign_in_reset_and_preferences(client: Client, new_operator: OperatorFixture,
                                       other_operator: OperatorFixture) -> None:
    op = new_operator.operator_id
    site_id, account_id = _shop(new_operator, "Bakery", "m_bread")
    staff = PortalClient(client)
    staff.log_in(op, "boss", new_operator.admin_password)
    _join(client, _invite(staff, site_id, account_id), "+8613900001111", "first-password-2026")

    def sign_in(password: str, operator_id: str = op) -> PortalClient:
        tenant = PortalClient(client)
        page = tenant.get(f"/t/{operator_id}/login").body.decode()
        token = FORM_TOKEN.search(page)
        assert token is not None
        tenant.post_form(f"/t/{operator_id}/login", {"form_token": token.group(1), "login": "+8613900001111",
                                                     "password": password})
        return tenant

    assert "vv_tenant" not in sign_in("wrong-password-2026").cookies
    assert "vv_tenant" not in sign_in("first-password-2026", other_operator.operator_id).cookies
    assert "vv_tenant" in sign_in("first-password-2026").cookies

    anyone = PortalClient(client)
    page = anyone.get(f"/t/{op}/forgot").body.decode()
    token = FORM_TOKEN.search(page)
    assert token is not None
    answer = anyone.post_form(f"/t/{op}/forgot", {"form_token": token.group(1), "login": "+86 139 0000 1111"})
    assert answer.status_code == 200 and 'id="reset-sent"' in answer.body.decode()
    sms = [m for m in get_services().alarms.outbox(op) if m.recipient == "+8613900001111"]
    assert len(sms) == 1 and sms[0].urgent
    reset_path = re.search(r"(/t/\S+/reset/\S+)", sms[0].text)
    assert reset_path is not None
    form = anyone.get(reset_path.group(1)).body.decode()
    token = FORM_TOKEN.search(form)
    assert token is not None
    done = anyone.post_form(reset_path.group(1), {"form_token": token.group(1), "password": "second-password-2026"})
    assert done.status_code == 303 and "vv_tenant" in anyone.cookies
    again = FORM_TOKEN.search(anyone.get(reset_path.group(1)).body.decode())
    assert again is not None
    assert anyone.post_form(reset_path.group(1), {"form_token": again.group(1),
                                                  "password": "third-password-2026"}).status_code == 404  # once
    assert "vv_tenant" in sign_in("second-password-2026").cookies

    settings = anyone.get(f"/t/{op}/settings")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', settings.body.decode())
    assert csrf is not None
    assert anyone.post_form(f"/t/{op}/settings", {"language": "xx", "csrf_token": csrf.group(1)}).status_code == 400
    assert anyone.post_form(f"/t/{op}/settings", {"language": "en"}).status_code == 403  # no CSRF token
    anyone.post_form(f"/t/{op}/settings", {"language": "en", "csrf_token": csrf.group(1)})
    assert "My electricity" in anyone.get(f"/t/{op}").body.decode()


def test_an_invitation_goes_by_sms_to_the_accounts_phone(client: Client, new_operator: OperatorFixture) -> None:
    op = new_operator.operator_id
    site_id, account_id = _shop(new_operator, "Cobbler", "m_shoe")
    staff = PortalClient(client)
    staff.log_in(op, "boss", new_operator.admin_password)
    page = staff.get(f"/sites/{site_id}/accounts/{account_id}")
    shown = staff.post_form(f"/sites/{site_id}/invitations", {"account_id": account_id, **hidden_tokens(page)})
    invitation_id = re.search(r"/invitations/([^/]+)/sms", shown.body.decode())
    assert invitation_id is not None
    no_phone = staff.post_form(f"/sites/{site_id}/invitations/{invitation_id.group(1)}/sms", hidden_tokens(shown))
    assert no_phone.status_code == 400 and "no phone number" in no_phone.body.decode()

    admin = admin_actor(new_operator)
    services = get_services()
    services.tenancy.add_meters([Meter(op, site_id, "m_shoe2", "SN-m_shoe2", "DTSY1352", "c1", 2, "u1",
                                       BillingMode.CLOUD_BILLED)])
    with_phone = services.sales.open_account(admin, site_id, "Key cutter", ["m_shoe2"], phone="+8613600001111",
                                             request_id=new_request_token()).account.account_id
    page = staff.get(f"/sites/{site_id}/accounts/{with_phone}")
    shown = staff.post_form(f"/sites/{site_id}/invitations", {"account_id": with_phone, **hidden_tokens(page)})
    invitation_id = re.search(r"/invitations/([^/]+)/sms", shown.body.decode())
    assert invitation_id is not None
    sent = staff.post_form(f"/sites/{site_id}/invitations/{invitation_id.group(1)}/sms", hidden_tokens(shown))
    assert sent.status_code == 200 and 'id="invitation-sent"' in sent.body.decode()
    sms = [m for m in services.alarms.outbox(op) if m.recipient == "+8613600001111"]
    assert len(sms) == 1 and f"/t/{op}/invite/{invitation_id.group(1)}" in sms[0].text


def test_days_of_credit_go_by_the_last_weeks_spending(new_operator: OperatorFixture) -> None:
    """A cloud-billed meter: the balance over what its last week's intervals were charged; a prepaid meter: the
    balance over what it used in the week (what it held then, plus credit added, less what it holds now)."""
    services, op, admin = get_services(), new_operator.operator_id, admin_actor(new_operator)
    site_id = f"site_{secrets.token_hex(3)}"
    services.tenancy.add_site(Site(op, site_id, "Days park"), operation(op, "t", "site.create", site_id,
                                                                        datetime.now(UTC)))
    services.tenancy.add_meters([
        Meter(op, site_id, "m_cl", "SN-cl", "DTSY1352", "c1", 1, "u1", BillingMode.CLOUD_BILLED),
        Meter(op, site_id, "m_pp", "SN-pp", "DTSY1352", "c1", 2, "u2", BillingMode.PREPAID_METER)])
    now, hour = datetime.now(UTC), 3_600_000
    week_ago_ms = int((now - timedelta(days=7)).timestamp() * 1000)
    # The prepaid meter held 40.00 a week ago and 19.00 now, with a 30.00 sale on its way to it: the tenant's balance
    # is 49.00, and it used 21.00.
    services.readings.put_readings(op, [("m_pp", week_ago_ms - hour, {"remaining_amount": "40.00"})])
    services.readings.put_states(op, site_id, [
        StoredState("m_pp", now, {"remaining_amount": "19.00", "purchase_count": 3, "relay_state": 0}, (), now, 0),
        StoredState("m_cl", now, {"energy_total": "100.00"}, (), now, 0)])
    stored = services.sales.open_account(admin, site_id, "Days shop", ["m_cl", "m_pp"], request_id=new_request_token())
    services.sales.sell(admin, site_id, "m_cl", request_id=new_request_token(), amount="100.00")
    services.sales.sell(admin, site_id, "m_pp", request_id=new_request_token(), amount="30.00")
    # The cloud-billed meter's intervals: 7.00 in the last week, and 50.00 before it that must not count.
    recent = [Usage("m_cl", week_ago_ms + n * hour, week_ago_ms + (n + 1) * hour, 100, 1_000_000, 100, "x")
              for n in range(1, 8)]
    older = [Usage("m_cl", week_ago_ms - (n + 1) * hour, week_ago_ms - n * hour, 100, 1, 5_000, "x")
             for n in range(1, 11)]
    services.readings.put_run(op, site_id, [], [], [*older, *recent])

    found = {m.meter.meter_id: m for m in get_services().tenant_portal.meters(tenant_of(op, stored.account.account_id))}

    assert found["m_cl"].balance_minor == 10_000 and found["m_cl"].days_left == Decimal("100.0")  # 100.00 × 7 / 7.00
    assert found["m_pp"].balance_minor == 4_900 and found["m_pp"].days_left == Decimal("16.3")  # 49.00 × 7 / 21.00


class _Mailbox:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    def send(self, address: str, subject: str, text: str) -> str:
        self.sent.append((address, subject, text))
        return f"mail-{len(self.sent)}"


def test_a_tenant_who_signs_in_by_e_mail_resets_by_e_mail_on_the_public_address(
        client: Client, new_operator: OperatorFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    op = new_operator.operator_id
    site_id, account_id = _shop(new_operator, "Bookshop", "m_book")
    staff = PortalClient(client)
    staff.log_in(op, "boss", new_operator.admin_password)
    _join(client, _invite(staff, site_id, account_id), "Reader@Example.com", "first-password-2026")
    monkeypatch.setenv("VOLTVEND_PUBLIC_URL", "https://power.example.com/api")
    reset_services()
    try:
        anyone = PortalClient(client)
        token = FORM_TOKEN.search(anyone.get(f"/t/{op}/forgot").body.decode())
        assert token is not None
        # Whoever asks chooses the Host header; the link must not follow it to their site.
        answer = anyone.post_form(f"/t/{op}/forgot", {"form_token": token.group(1), "login": "reader@example.com"},
                                  headers={"host": "evil.example.net"})
        assert answer.status_code == 200 and 'id="reset-sent"' in answer.body.decode()
        services = get_services()
        mailbox = _Mailbox()
        assert Notifier(services.alarms, LocalOutboxSender(), services.clock, mailbox).send_due([op]) == 1
        [(address, subject, text)] = mailbox.sent
        assert address == "reader@example.com" and subject == "Voltvend"
        link = re.search(r"https://power\.example\.com/api(/t/\S+/reset/\S+)", text)
        assert link is not None and "evil" not in text
        assert [m.status for m in services.alarms.outbox(op) if m.recipient == address] == ["sent"]
    finally:
        monkeypatch.delenv("VOLTVEND_PUBLIC_URL")
        reset_services()
    form = FORM_TOKEN.search(anyone.get(link.group(1)).body.decode())
    assert form is not None
    done = anyone.post_form(link.group(1), {"form_token": form.group(1), "password": "second-password-2026"})
    assert done.status_code == 303 and "vv_tenant" in anyone.cookies


def test_without_a_public_address_a_reset_asked_through_a_foreign_host_sends_nothing(
        client: Client, new_operator: OperatorFixture) -> None:
    op = new_operator.operator_id
    site_id, account_id = _shop(new_operator, "Toyshop", "m_toy")
    staff = PortalClient(client)
    staff.log_in(op, "boss", new_operator.admin_password)
    _join(client, _invite(staff, site_id, account_id), "+8613900002222", "first-password-2026")
    anyone = PortalClient(client)
    for host, queued in (("evil.example.net", 0), ("127.0.0.1:8080", 1)):
        token = FORM_TOKEN.search(anyone.get(f"/t/{op}/forgot").body.decode())
        assert token is not None
        answer = anyone.post_form(f"/t/{op}/forgot", {"form_token": token.group(1), "login": "+8613900002222"},
                                  headers={"host": host})
        assert answer.status_code == 200 and 'id="reset-sent"' in answer.body.decode()  # the same answer either way
        sent = [m for m in get_services().alarms.outbox(op) if m.recipient == "+8613900002222"]
        assert len(sent) == queued and "evil" not in "".join(m.text for m in sent)
