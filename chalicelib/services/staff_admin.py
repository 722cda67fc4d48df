"""Operator management and permission assignment (SPEC 2 and 3)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from chalicelib.domain.access import ALL_SITES, Grant, Permission, Role
from chalicelib.domain.actor import Actor
from chalicelib.domain.errors import Conflict, NotFound, ValidationError
from chalicelib.domain.staff import (
    StaffStatus,
    StaffUser,
    validate_display_name,
    validate_new_password,
    validate_username,
)
from chalicelib.ports import Clock, PasswordHasher, SessionStore, StaffRepository, TenancyRepository
from chalicelib.services.audit import operation


@dataclass(frozen=True)
class StaffDraft:
    """What an administrator submits to create or change an operator."""

    username: str
    display_name: str
    role: Role
    extra: frozenset[Permission] = frozenset()
    sites: frozenset[str] = frozenset({ALL_SITES})


class StaffAdminService:
    def __init__(self, staff: StaffRepository, sessions: SessionStore, hasher: PasswordHasher,
                 clock: Clock, tenancy: TenancyRepository) -> None:
        self._staff = staff
        self._sessions = sessions
        self._hasher = hasher
        self._clock = clock
        self._tenancy = tenancy

    def list(self, actor: Actor) -> list[StaffUser]:
        actor.require(Permission.STAFF_MANAGE)
        return sorted(self._staff.list(actor.operator_id), key=lambda u: u.username)

    def get(self, actor: Actor, username: str) -> StaffUser:
        actor.require(Permission.STAFF_MANAGE)
        return self._existing(actor, username)

    def create(self, actor: Actor, draft: StaffDraft, temporary_password: str) -> StaffUser:
        actor.require(Permission.STAFF_MANAGE)
        username = validate_username(draft.username)
        validate_new_password(temporary_password, username=username)
        grant = self._checked_grant(actor, draft)
        user = StaffUser(actor.operator_id, username, validate_display_name(draft.display_name),
                         self._hasher.hash(temporary_password), grant, must_change_password=True,
                         created_at=self._clock.now())
        record = operation(actor.operator_id, actor.username, "staff.create", f"staff:{username}",
                           self._clock.now(), after=user.public_view(), source_ip=actor.source_ip)
        self._staff.create(user, record)
        return user

    def update(self, actor: Actor, draft: StaffDraft) -> StaffUser:
        actor.require(Permission.STAFF_MANAGE)
        user = self._existing(actor, draft.username)
        grant = self._checked_grant(actor, draft)
        if user.grant.role is Role.ADMINISTRATOR and grant.role is not Role.ADMINISTRATOR:
            self._keep_one_administrator(actor, user.username)
        changed = replace(user, display_name=validate_display_name(draft.display_name), grant=grant)
        return self._save(actor, user, changed, "staff.update")

    def set_status(self, actor: Actor, username: str, status: StaffStatus) -> StaffUser:
        actor.require(Permission.STAFF_MANAGE)
        user = self._existing(actor, username)
        if status is StaffStatus.DISABLED:
            if user.username == actor.username:
                raise ValidationError("you cannot disable yourself")
            if user.grant.role is Role.ADMINISTRATOR:
                self._keep_one_administrator(actor, user.username)
        saved = self._save(actor, user, replace(user, status=status), f"staff.{status.value}")
        if status is StaffStatus.DISABLED:
            self._sessions.delete_for_user(actor.operator_id, user.username)
        return saved

    def reset_password(self, actor: Actor, username: str, temporary_password: str) -> StaffUser:
        actor.require(Permission.STAFF_MANAGE)
        user = self._existing(actor, username)
        validate_new_password(temporary_password, username=user.username)
        changed = replace(user, password_hash=self._hasher.hash(temporary_password), must_change_password=True,
                          failed_logins=0, locked_until=None)
        saved = self._save(actor, user, changed, "staff.reset_password")
        self._sessions.delete_for_user(actor.operator_id, user.username)
        return saved

    def _save(self, actor: Actor, before: StaffUser, after: StaffUser, action: str) -> StaffUser:
        record = operation(actor.operator_id, actor.username, action, f"staff:{before.username}",
                           self._clock.now(), before=before.public_view(), after=after.public_view(),
                           source_ip=actor.source_ip)
        return self._staff.save(after, record)

    def _existing(self, actor: Actor, username: str) -> StaffUser:
        user = self._staff.get(actor.operator_id, username.strip().lower())
        if user is None:
            raise NotFound(f"no operator {username!r}")
        return user

    def _checked_grant(self, actor: Actor, draft: StaffDraft) -> Grant:
        sites = draft.sites or frozenset({ALL_SITES})
        known = {site.site_id for site in self._tenancy.list_sites(actor.operator_id)}
        unknown = {s for s in sites if s != ALL_SITES} - known
        if unknown:
            raise ValidationError(f"unknown site: {', '.join(sorted(unknown))}", field="sites")
        return Grant(role=draft.role, extra=draft.extra, sites=sites)

    def _keep_one_administrator(self, actor: Actor, leaving: str) -> None:
        others = [u for u in self._staff.list(actor.operator_id)
                  if u.username != leaving and u.is_active and u.grant.role is Role.ADMINISTRATOR]
        if not others:
            raise Conflict("the company must keep at least one active administrator")

