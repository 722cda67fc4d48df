from __future__ import annotations

import pytest

from chalicelib.domain.access import ALL_SITES, ROLE_PERMISSIONS, Grant, Permission, Role, parse_permissions, parse_role
from chalicelib.domain.errors import PermissionDenied, ValidationError


def test_administrator_has_every_permission() -> None:
    assert ROLE_PERMISSIONS[Role.ADMINISTRATOR] == frozenset(Permission)


def test_cashier_sells_but_cannot_reverse_or_manage_staff() -> None:
    grant = Grant(Role.CASHIER)
    assert grant.allows(Permission.SALES_SELL)
    assert not grant.allows(Permission.SALES_REVERSE)
    with pytest.raises(PermissionDenied):
        grant.require(Permission.STAFF_MANAGE)


def test_extra_grants_add_to_the_role() -> None:
    grant = Grant(Role.AUDITOR, extra=frozenset({Permission.METERS_CONTROL}))
    assert grant.allows(Permission.METERS_CONTROL)
    assert grant.allows(Permission.OPLOG_VIEW)
    assert not grant.allows(Permission.SALES_SELL)


def test_site_scope() -> None:
    scoped = Grant(Role.ENGINEER, sites=frozenset({"site_a"}))
    assert scoped.covers_site("site_a")
    assert not scoped.covers_site("site_b")
    with pytest.raises(PermissionDenied):
        scoped.require_site("site_b")
    assert Grant(Role.ENGINEER, sites=frozenset({ALL_SITES})).covers_site("anything")


def test_parsing_unknown_role_or_permission_is_a_validation_error() -> None:
    with pytest.raises(ValidationError):
        parse_role("superuser")
    with pytest.raises(ValidationError):
        parse_permissions(["sales.sell", "root.everything"])
    assert parse_permissions(["sales.sell"]) == {Permission.SALES_SELL}
