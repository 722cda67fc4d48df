"""Log-in, sessions, lockout and password change against DynamoDB Local."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from chalicelib.bootstrap import get_services
from chalicelib.domain.errors import AccountLocked, AuthenticationFailed, ValidationError
from tests.conftest import OperatorFixture


def test_login_opens_a_session_that_resolves_to_the_actor(new_operator: OperatorFixture) -> None:
    auth = get_services().auth
    session = auth.login(new_operator.operator_id, "BOSS", new_operator.admin_password)
    actor = auth.resolve(new_operator.operator_id, session.session_id)
    assert actor is not None
    assert (actor.operator_id, actor.username, actor.grant.role.value) == (new_operator.operator_id, "boss",
                                                                            "administrator")
    auth.logout(actor)
    assert auth.resolve(new_operator.operator_id, session.session_id) is None


def test_wrong_password_unknown_user_and_unknown_company_answer_alike(new_operator: OperatorFixture) -> None:
    auth = get_services().auth
    messages = set()
    for company, user, password in [(new_operator.operator_id, "boss", "wrong-password"),
                                    (new_operator.operator_id, "nobody", new_operator.admin_password),
                                    ("no-such-company", "boss", new_operator.admin_password)]:
        with pytest.raises(AuthenticationFailed) as caught:
            auth.login(company, user, password)
        messages.add(caught.value.message)
    assert len(messages) == 1


def test_missing_fields_are_a_validation_error(new_operator: OperatorFixture) -> None:
    with pytest.raises(ValidationError):
        get_services().auth.login(new_operator.operator_id, "boss", "")


def test_repeated_failures_lock_then_success_resets(new_operator: OperatorFixture) -> None:
    services = get_services()
    for _ in range(5):
        with pytest.raises(AuthenticationFailed):
            services.auth.login(new_operator.operator_id, "boss", "not-the-password")
    with pytest.raises(AccountLocked) as locked:
        services.auth.login(new_operator.operator_id, "boss", new_operator.admin_password)
    assert 1 <= locked.value.retry_after <= 30
    # Let the lock run out (moving it into the past stands in for waiting 30 s).
    user = services.staff_repo.get(new_operator.operator_id, "boss")
    assert user is not None and user.failed_logins == 5 and user.locked_until is not None
    services.staff_repo.save(replace(user, locked_until=user.locked_until - timedelta(minutes=1)), None)
    services.auth.login(new_operator.operator_id, "boss", new_operator.admin_password)
    after = services.staff_repo.get(new_operator.operator_id, "boss")
    assert after is not None and after.failed_logins == 0 and after.locked_until is None


def test_change_own_password(new_operator: OperatorFixture) -> None:
    auth = get_services().auth
    session = auth.login(new_operator.operator_id, "boss", new_operator.admin_password)
    actor = auth.resolve(new_operator.operator_id, session.session_id)
    assert actor is not None
    with pytest.raises(ValidationError):
        auth.change_password(actor, "not-current", "a-brand-new-secret")
    auth.change_password(actor, new_operator.admin_password, "a-brand-new-secret")
    with pytest.raises(AuthenticationFailed):
        auth.login(new_operator.operator_id, "boss", new_operator.admin_password)
    assert auth.login(new_operator.operator_id, "boss", "a-brand-new-secret").username == "boss"


def test_expired_sessions_are_swept(new_operator: OperatorFixture) -> None:
    services = get_services()
    session = services.auth.login(new_operator.operator_id, "boss", new_operator.admin_password)
    from chalicelib.adapters.dynamodb.binding import bind_models
    from chalicelib.adapters.dynamodb.session_repo import DynamoSessionStore
    from chalicelib.config import get_settings

    store = DynamoSessionStore(bind_models(get_settings()))
    assert store.delete_expired(new_operator.operator_id, session.created_at) == 0
    assert store.delete_expired(new_operator.operator_id, session.expires_at + timedelta(seconds=1)) >= 1
    assert services.auth.resolve(new_operator.operator_id, session.session_id) is None
