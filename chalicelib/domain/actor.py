"""Who is calling: resolved once per request from the session, then passed to every service."""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.domain.access import Grant, Permission


@dataclass(frozen=True)
class Actor:
    operator_id: str
    username: str
    display_name: str
    grant: Grant
    session_id: str
    csrf_token: str
    must_change_password: bool = False
    source_ip: str = ""

    def require(self, permission: Permission) -> None:
        self.grant.require(permission)

    def can(self, permission: Permission) -> bool:
        return self.grant.allows(permission)
