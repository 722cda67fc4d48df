"""Operator management, permissions and the operation log, against DynamoDB Local."""

from __future__ import annotations

import pytest

from chalicelib.bootstrap import get_services
from chalicelib.domain.access import Permission, Role
from chalicelib.domain.actor import Actor
from chalicelib.domain.errors import Conflict, NotFound, PermissionDenied, ValidationError
from chalicelib.domain.staff import StaffStatus
from chalicelib.services.staff_admin import StaffDraft
from tests.conftest import OperatorFixture


def log_in(operator_id: str, username: str, password: str) -> Actor:
    auth = get_services().auth
    session = auth.login(operator_id, username, password)
    actor = auth.resolve(operator_id, session.session_id)
    assert actor is not None
    return actor


@pytest.fixture()
def admin(new_operator: OperatorFixture) -> Actor:
    return log_in(new_operator.operator_id, "boss", new_operator.admin_password)


def test_create_operator_is_logged_with_its_after_state(admin: Actor) -> None:
    services = get_services()
    services.staff_admin.create(admin, StaffDraft("cindy", "Cindy", Role.CASHIER), "till-secret-123")
    _, records, _ = services.oplog.page(admin, None, None)
    created = [r for r in records if r.action == "staff.create" and r.target == "staff:cindy"]
    assert len(created) == 1
    assert created[0].actor == "boss"
    assert created[0].after is not None and created[0].after["role"] == "cashier"
    assert "password_hash" not in created[0].after


def test_duplicate_username_is_a_conflict_and_changes_nothing(admin: Actor) -> None:
    staff_admin = get_services().staff_admin
    staff_admin.create(admin, StaffDraft("dan", "Dan", Role.ENGINEER), "relay-secret-123")
    with pytest.raises(Conflict):
        staff_admin.create(admin, StaffDraft("dan", "Other Dan", Role.ADMINISTRATOR), "other-secret-123")
    assert staff_admin.get(admin, "dan").grant.role is Role.ENGINEER


def test_new_operator_must_change_password_then_can_work(admin: Actor, new_operator: OperatorFixture) -> None:
    get_services().staff_admin.create(admin, StaffDraft("erin", "Erin", Role.AUDITOR), "first-secret-123")
    erin = log_in(new_operator.operator_id, "erin", "first-secret-123")
    assert erin.must_change_password
    get_services().auth.change_password(erin, "first-secret-123", "her-own-secret-77")
    assert not log_in(new_operator.operator_id, "erin", "her-own-secret-77").must_change_password


def test_permissions_are_enforced(admin: Actor, new_operator: OperatorFixture) -> None:
    get_services().staff_admin.create(admin, StaffDraft("carl", "Carl", Role.CASHIER), "till-secret-456")
    carl = log_in(new_operator.operator_id, "carl", "till-secret-456")
    with pytest.raises(PermissionDenied):
        get_services().staff_admin.list(carl)
    with pytest.raises(PermissionDenied):
        get_services().oplog.page(carl, None, None)


def test_disable_ends_sessions_and_blocks_login(admin: Actor, new_operator: OperatorFixture) -> None:
    services = get_services()
    services.staff_admin.create(admin, StaffDraft("fay", "Fay", Role.CASHIER), "till-secret-789")
    fay = log_in(new_operator.operator_id, "fay", "till-secret-789")
    services.staff_admin.set_status(admin, "fay", StaffStatus.DISABLED)
    assert services.auth.resolve(new_operator.operator_id, fay.session_id) is None
    with pytest.raises(Exception, match="disabled"):
        services.auth.login(new_operator.operator_id, "fay", "till-secret-789")


def test_the_last_administrator_stays(admin: Actor) -> None:
    staff_admin = get_services().staff_admin
    with pytest.raises(ValidationError):
        staff_admin.set_status(admin, "boss", StaffStatus.DISABLED)
    with pytest.raises(Conflict):
        staff_admin.update(admin, StaffDraft("boss", "Boss", Role.CASHIER))
    assert staff_admin.get(admin, "boss").grant.role is Role.ADMINISTRATOR


def test_grants_with_unknown_sites_are_refused(admin: Actor) -> None:
    with pytest.raises(ValidationError):
        get_services().staff_admin.create(admin, StaffDraft("gus", "Gus", Role.ENGINEER, sites=frozenset({"site_x"})),
                                          "relay-secret-999")


def test_extra_permissions_take_effect(admin: Actor, new_operator: OperatorFixture) -> None:
    services = get_services()
    services.staff_admin.create(admin, StaffDraft("hal", "Hal", Role.CASHIER), "till-secret-000")
    services.staff_admin.update(admin, StaffDraft("hal", "Hal", Role.CASHIER, extra=frozenset({Permission.OPLOG_VIEW})))
    hal = log_in(new_operator.operator_id, "hal", "till-secret-000")
    assert services.oplog.page(hal, None, None)[1]


def test_another_companys_operator_is_invisible(admin: Actor, other_operator: OperatorFixture) -> None:
    services = get_services()
    services.staff_admin.create(admin, StaffDraft("zed", "Zed", Role.CASHIER), "till-secret-zzz")
    other_admin = log_in(other_operator.operator_id, "boss", other_operator.admin_password)
    with pytest.raises(NotFound):
        services.staff_admin.get(other_admin, "zed")
    with pytest.raises(NotFound):
        services.staff_admin.reset_password(other_admin, "zed", "taken-over-123")
    assert [u.username for u in services.staff_admin.list(other_admin)] == ["boss"]
    assert log_in(admin.operator_id, "zed", "till-secret-zzz").username == "zed"
