"""The portal's pages through Chalice's test client: log-in, CSRF, permissions, language, errors."""

from __future__ import annotations

from tests.conftest import OperatorFixture
from tests.integration.portal_client import PortalClient, hidden_tokens


def test_pages_need_a_login(portal: PortalClient) -> None:
    response = portal.get("/staff")
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/login?next=")


def test_login_sets_a_hardened_session_cookie(portal: PortalClient, new_operator: OperatorFixture) -> None:
    response = portal.log_in(new_operator.operator_id, "boss", new_operator.admin_password)
    assert response.status_code == 303 and response.headers["Location"] == "/dashboard"
    cookies = response.headers["Set-Cookie"]
    session_cookie = next(c for c in cookies if c.startswith("vv_session="))
    for flag in ("HttpOnly", "Secure", "SameSite=Lax", "Max-Age="):
        assert flag in session_cookie
    assert portal.get("/dashboard").status_code == 200


def test_wrong_password_shows_the_form_again_with_401(portal: PortalClient, new_operator: OperatorFixture) -> None:
    response = portal.log_in(new_operator.operator_id, "boss", "definitely-wrong")
    assert response.status_code == 401
    assert "wrong" in response.body.decode()
    assert "vv_session" not in portal.cookies


def test_login_without_its_csrf_token_is_refused(portal: PortalClient, new_operator: OperatorFixture) -> None:
    portal.get("/login")
    response = portal.post_form("/login", {"company": new_operator.operator_id, "username": "boss",
                                           "password": new_operator.admin_password})
    assert response.status_code == 403
    assert "vv_session" not in portal.cookies


def test_forms_need_the_session_csrf_token(portal: PortalClient, new_operator: OperatorFixture) -> None:
    portal.log_in(new_operator.operator_id, "boss", new_operator.admin_password)
    fields = {"username": "ivy", "display_name": "Ivy", "role": "cashier", "password": "till-secret-0001"}
    forged = portal.post_form("/staff/new", fields)
    assert forged.status_code == 403
    assert portal.get("/staff/ivy").status_code == 404
    made = portal.post_form("/staff/new", fields, with_token_from="/staff/new")
    assert made.status_code == 303
    assert portal.get("/staff/ivy").status_code == 200


def test_create_operator_then_see_it_in_the_log(portal: PortalClient, new_operator: OperatorFixture) -> None:
    portal.log_in(new_operator.operator_id, "boss", new_operator.admin_password)
    portal.post_form("/staff/new", {"username": "jay", "display_name": "Jay", "role": "engineer",
                                    "password": "relay-secret-0002"}, with_token_from="/staff/new")
    page = portal.get("/oplog").body.decode()
    assert "staff.create" in page and "staff:jay" in page


def test_bad_staff_form_gives_400_with_message_and_creates_nothing(portal: PortalClient,
                                                                   new_operator: OperatorFixture) -> None:
    portal.log_in(new_operator.operator_id, "boss", new_operator.admin_password)
    response = portal.post_form("/staff/new", {"username": "Bad Name!", "display_name": "X", "role": "cashier",
                                               "password": "long-enough-pw"}, with_token_from="/staff/new")
    assert response.status_code == 400
    assert "username" in response.body.decode()
    bad_role = portal.post_form("/staff/new", {"username": "kim", "display_name": "Kim", "role": "king",
                                               "password": "long-enough-pw"}, with_token_from="/staff/new")
    assert bad_role.status_code == 400
    assert portal.get("/staff/kim").status_code == 404


def test_cashier_gets_403_on_operator_pages(portal: PortalClient, new_operator: OperatorFixture) -> None:
    portal.log_in(new_operator.operator_id, "boss", new_operator.admin_password)
    portal.post_form("/staff/new", {"username": "lee", "display_name": "Lee", "role": "cashier",
                                    "password": "till-secret-0003"}, with_token_from="/staff/new")
    cashier = PortalClient.__new__(PortalClient)
    cashier._http, cashier.cookies = portal._http, {}
    cashier.log_in(new_operator.operator_id, "lee", "till-secret-0003")
    assert cashier.get("/dashboard").headers.get("Location") == "/account/password"
    cashier.post_form("/account/password", {"current_password": "till-secret-0003", "new_password": "my-own-pass-1",
                                            "repeat_password": "my-own-pass-1"}, with_token_from="/account/password")
    assert cashier.get("/dashboard").status_code == 200
    assert cashier.get("/staff").status_code == 403
    assert cashier.get("/oplog").status_code == 403


def test_logout_ends_the_session(portal: PortalClient, new_operator: OperatorFixture) -> None:
    portal.log_in(new_operator.operator_id, "boss", new_operator.admin_password)
    old_cookie = portal.cookies["vv_session"]
    token = hidden_tokens(portal.get("/dashboard"))["csrf_token"]
    assert portal.post_form("/logout", {"csrf_token": token}).status_code == 303
    portal.cookies["vv_session"] = old_cookie  # a stolen copy of the cookie is now worthless
    assert portal.get("/dashboard").status_code == 303


def test_language_switch_serves_simplified_chinese(portal: PortalClient, new_operator: OperatorFixture) -> None:
    portal.get("/lang/zh_Hans?next=/login")
    page = portal.get("/login").body.decode()
    assert "登录" in page
    portal.get("/lang/en?next=/login")
    assert "Log in" in portal.get("/login").body.decode()


def test_other_companys_site_is_404(portal: PortalClient, new_operator: OperatorFixture, ddb: str) -> None:
    from infra.local.seed import DEMO_SITE, seed_demo

    seed_demo()
    portal.log_in(new_operator.operator_id, "boss", new_operator.admin_password)
    assert portal.get(f"/sites/{DEMO_SITE}").status_code == 404
    assert portal.get("/sites/..%2F..%2Fetc").status_code in (400, 404)
