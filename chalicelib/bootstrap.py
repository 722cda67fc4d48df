"""Composition root: builds adapters and services once per process, on first use.

Importing this module touches no AWS and imports no heavy library; ``get_services()`` does the work
on the first request (or the first test that asks), so ``app.py`` stays cheap to import.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from chalicelib.config import get_settings

if TYPE_CHECKING:
    from chalicelib.adapters.dynamodb.staff_repo import DynamoStaffRepository
    from chalicelib.adapters.dynamodb.tenancy_repo import DynamoTenancyRepository
    from chalicelib.services.auth import AuthService
    from chalicelib.services.oplog_query import OperationLogQuery
    from chalicelib.services.sites import SiteQueries
    from chalicelib.services.staff_admin import StaffAdminService


@dataclass(frozen=True)
class Services:
    auth: AuthService
    staff_admin: StaffAdminService
    oplog: OperationLogQuery
    sites: SiteQueries
    tenancy: DynamoTenancyRepository
    staff_repo: DynamoStaffRepository


@lru_cache(maxsize=1)
def get_services() -> Services:
    from chalicelib.adapters.clock import SystemClock
    from chalicelib.adapters.dynamodb.binding import bind_models
    from chalicelib.adapters.dynamodb.oplog_repo import DynamoOperationLog
    from chalicelib.adapters.dynamodb.session_repo import DynamoSessionStore
    from chalicelib.adapters.dynamodb.staff_repo import DynamoStaffRepository
    from chalicelib.adapters.dynamodb.tenancy_repo import DynamoTenancyRepository
    from chalicelib.adapters.passwords import Argon2PasswordHasher
    from chalicelib.services.auth import AuthService
    from chalicelib.services.oplog_query import OperationLogQuery
    from chalicelib.services.sites import SiteQueries
    from chalicelib.services.staff_admin import StaffAdminService

    settings = get_settings()
    connection = bind_models(settings)
    clock = SystemClock()
    hasher = Argon2PasswordHasher()
    staff = DynamoStaffRepository(connection)
    sessions = DynamoSessionStore(connection)
    oplog = DynamoOperationLog(connection)
    tenancy = DynamoTenancyRepository(connection)
    return Services(
        auth=AuthService(staff, sessions, oplog, hasher, clock, settings.session_ttl_seconds),
        staff_admin=StaffAdminService(staff, sessions, hasher, clock, tenancy),
        oplog=OperationLogQuery(oplog, clock),
        sites=SiteQueries(tenancy),
        tenancy=tenancy,
        staff_repo=staff,
    )


def reset_services() -> None:
    """Forget the built services (tests that change settings call this)."""
    get_services.cache_clear()
    get_settings.cache_clear()
