"""Onboarding a property operator (a SaaS tenant) with its first administrator."""

from __future__ import annotations

from chalicelib.domain.access import Grant, Role
from chalicelib.domain.staff import StaffUser, validate_display_name, validate_new_password, validate_username
from chalicelib.domain.tenancy import PropertyOperator, validate_code, validate_name
from chalicelib.ports import Clock, PasswordHasher, TenancyWriter
from chalicelib.services.audit import operation

PLATFORM_ACTOR = "platform"


class OperatorOnboarding:
    def __init__(self, tenancy: TenancyWriter, hasher: PasswordHasher, clock: Clock) -> None:
        self._tenancy = tenancy
        self._hasher = hasher
        self._clock = clock

    def onboard(self, code: str, name: str, admin_username: str, admin_password: str, *,
                currency: str = "CNY", timezone: str = "Asia/Shanghai") -> PropertyOperator:
        operator = PropertyOperator(validate_code(code), validate_code(code), validate_name(name), currency, timezone)
        username = validate_username(admin_username)
        validate_new_password(admin_password, username=username)
        now = self._clock.now()
        admin = StaffUser(operator.operator_id, username, validate_display_name("Administrator"),
                          self._hasher.hash(admin_password), Grant(Role.ADMINISTRATOR), created_at=now)
        records = [
            operation(operator.operator_id, PLATFORM_ACTOR, "operator.create", f"operator:{operator.operator_id}",
                      now, after={"name": operator.name}),
            operation(operator.operator_id, PLATFORM_ACTOR, "staff.create", f"staff:{username}", now,
                      after=admin.public_view()),
        ]
        self._tenancy.create_operator(operator, admin, records)
        return operator

