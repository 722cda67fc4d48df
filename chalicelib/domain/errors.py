"""Domain errors. Each maps to one HTTP status at the edge, so callers never see a traceback."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a user can cause; ``status`` is the HTTP status the edge answers with."""

    status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ValidationError(DomainError):
    """Input that cannot be accepted as given."""

    status = 400


class AuthenticationFailed(DomainError):
    """Wrong company, user or password: deliberately one message for all three."""

    status = 401


class AccountLocked(DomainError):
    """Too many failed log-ins; the caller must wait ``retry_after`` seconds."""

    status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermissionDenied(DomainError):
    """The caller is known but may not do this."""

    status = 403


class NotFound(DomainError):
    """Absent, or not the caller's: both answer the same so ids of other operators leak nothing."""

    status = 404


class Conflict(DomainError):
    """The change collides with the current state (duplicate, concurrent edit)."""

    status = 409
