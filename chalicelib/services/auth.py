"""Log in, log out, resolve a session, change one's own password (SPEC 1 and 5)."""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import timedelta

from chalicelib.domain.actor import Actor
from chalicelib.domain.errors import AuthenticationFailed, ValidationError
from chalicelib.domain.sessions import Session
from chalicelib.domain.staff import StaffUser, after_failed_login, refuse_if_locked, validate_new_password
from chalicelib.domain.tenancy import validate_code
from chalicelib.ports import Clock, OperationLog, PasswordHasher, SessionStore, StaffRepository
from chalicelib.services.audit import operation

BAD_CREDENTIALS = "company, username or password is wrong"


class AuthService:
    def __init__(self, staff: StaffRepository, sessions: SessionStore, oplog: OperationLog,
                 hasher: PasswordHasher, clock: Clock, session_ttl_seconds: int) -> None:
        self._staff = staff
        self._sessions = sessions
        self._oplog = oplog
        self._hasher = hasher
        self._clock = clock
        self._ttl = timedelta(seconds=session_ttl_seconds)
        # Verifying against a real hash for unknown users keeps the timing of both answers alike.
        self._decoy_hash = hasher.hash(secrets.token_urlsafe(16))

    def login(self, company: str, username: str, password: str, *, source_ip: str = "") -> Session:
        if not company.strip() or not username.strip() or not password:
            raise ValidationError("company, username and password are all required")
        operator_id = validate_code(company)
        user = self._staff.get(operator_id, username.strip().lower())
        if user is None:
            self._hasher.verify(self._decoy_hash, password)
            raise AuthenticationFailed(BAD_CREDENTIALS)
        refuse_if_locked(user, self._clock.now())
        if not self._hasher.verify(user.password_hash, password):
            self._record_failure(user, source_ip)
            raise AuthenticationFailed(BAD_CREDENTIALS)
        if not user.is_active:
            raise AuthenticationFailed("this operator is disabled; ask an administrator")
        return self._open_session(user, password, source_ip)

    def _record_failure(self, user: StaffUser, source_ip: str) -> None:
        now = self._clock.now()
        failed = after_failed_login(user, now)
        record = operation(user.operator_id, user.username, "auth.login_failed", f"staff:{user.username}", now,
                           source_ip=source_ip, failures=failed.failed_logins)
        self._staff.save(failed, record)

    def _open_session(self, user: StaffUser, password: str, source_ip: str) -> Session:
        now = self._clock.now()
        refreshed = replace(user, failed_logins=0, locked_until=None)
        if self._hasher.needs_rehash(user.password_hash):
            refreshed = replace(refreshed, password_hash=self._hasher.hash(password))
        session = Session(user.operator_id, secrets.token_urlsafe(24), user.username,
                          secrets.token_urlsafe(24), now, now + self._ttl)
        self._sessions.put(session)
        record = operation(user.operator_id, user.username, "auth.login", f"staff:{user.username}", now,
                           source_ip=source_ip)
        self._staff.save(refreshed, record)
        return session

    def resolve(self, operator_id: str, session_id: str, *, source_ip: str = "") -> Actor | None:
        """The actor behind a session, or None when it is unknown, expired or its user disabled."""
        session = self._sessions.get(operator_id, session_id)
        if session is None or not session.is_live(self._clock.now()):
            return None
        user = self._staff.get(operator_id, session.username)
        if user is None or not user.is_active:
            return None
        return Actor(operator_id, user.username, user.display_name, user.grant, session.session_id,
                     session.csrf_token, user.must_change_password, source_ip)

    def logout(self, actor: Actor) -> None:
        self._sessions.delete(actor.operator_id, actor.session_id)
        self._oplog.append(operation(actor.operator_id, actor.username, "auth.logout",
                                     f"staff:{actor.username}", self._clock.now(), source_ip=actor.source_ip))

    def change_password(self, actor: Actor, current: str, new: str) -> None:
        user = self._staff.get(actor.operator_id, actor.username)
        if user is None or not self._hasher.verify(user.password_hash, current):
            raise ValidationError("the current password is wrong", field="current_password")
        if current == new:
            raise ValidationError("the new password must differ from the current one", field="new_password")
        validate_new_password(new, username=user.username)
        changed = replace(user, password_hash=self._hasher.hash(new), must_change_password=False)
        record = operation(actor.operator_id, actor.username, "staff.change_own_password",
                           f"staff:{actor.username}", self._clock.now(), source_ip=actor.source_ip)
        self._staff.save(changed, record)

    def sweep_expired_sessions(self, operator_ids: list[str]) -> int:
        now = self._clock.now()
        return sum(self._sessions.delete_expired(op, now) for op in operator_ids)
