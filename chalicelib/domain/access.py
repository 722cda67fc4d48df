"""Roles, permissions and site scope of back-office operators (SPEC functions 3 and 4)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from chalicelib.domain.errors import PermissionDenied, ValidationError


class Permission(StrEnum):
    """What an operator may do. Checked at every route; stored as strings."""

    STAFF_MANAGE = "staff.manage"
    OPLOG_VIEW = "oplog.view"
    SETTINGS_MANAGE = "settings.manage"
    METERS_VIEW = "meters.view"
    METERS_CONTROL = "meters.control"
    ACCOUNTS_MANAGE = "accounts.manage"
    SALES_SELL = "sales.sell"
    SALES_REFUND = "sales.refund"
    SALES_REVERSE = "sales.reverse"
    REPORTS_VIEW = "reports.view"


class Role(StrEnum):
    ADMINISTRATOR = "administrator"
    CASHIER = "cashier"
    ENGINEER = "engineer"
    AUDITOR = "auditor"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMINISTRATOR: frozenset(Permission),
    Role.CASHIER: frozenset(
        {Permission.METERS_VIEW, Permission.ACCOUNTS_MANAGE, Permission.SALES_SELL,
         Permission.SALES_REFUND, Permission.REPORTS_VIEW}
    ),
    Role.ENGINEER: frozenset(
        {Permission.METERS_VIEW, Permission.METERS_CONTROL, Permission.SETTINGS_MANAGE,
         Permission.REPORTS_VIEW}
    ),
    Role.AUDITOR: frozenset({Permission.METERS_VIEW, Permission.REPORTS_VIEW, Permission.OPLOG_VIEW}),
}

ALL_SITES = "*"


def parse_role(text: str) -> Role:
    try:
        return Role(text)
    except ValueError:
        raise ValidationError(f"unknown role: {text!r}", field="role") from None


def parse_permissions(values: list[str]) -> frozenset[Permission]:
    try:
        return frozenset(Permission(v) for v in values)
    except ValueError as exc:
        raise ValidationError(f"unknown permission: {exc}", field="permissions") from None


@dataclass(frozen=True)
class Grant:
    """An operator's effective rights: the role's permissions plus extra grants, within a site scope."""

    role: Role
    extra: frozenset[Permission] = frozenset()
    sites: frozenset[str] = frozenset({ALL_SITES})

    @property
    def permissions(self) -> frozenset[Permission]:
        return ROLE_PERMISSIONS[self.role] | self.extra

    def allows(self, permission: Permission) -> bool:
        return permission in self.permissions

    def covers_site(self, site_id: str) -> bool:
        return ALL_SITES in self.sites or site_id in self.sites

    def require(self, permission: Permission) -> None:
        if not self.allows(permission):
            raise PermissionDenied(f"your role does not allow {permission.value}")

    def require_site(self, site_id: str) -> None:
        if not self.covers_site(site_id):
            raise PermissionDenied("this site is outside your scope")
