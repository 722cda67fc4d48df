"""Composition root: builds adapters and services once per process, on first use.

Importing this module touches no AWS and imports no heavy library; ``get_services()`` does the work
on the first request (or the first test that asks), so ``app.py`` stays cheap to import.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from chalicelib.config import Settings, get_settings

if TYPE_CHECKING:
    from chalicelib.adapters.clock import SystemClock
    from chalicelib.adapters.dynamodb.alarm_repo import DynamoAlarmRepository
    from chalicelib.adapters.dynamodb.readings_repo import DynamoReadingsRepository
    from chalicelib.adapters.dynamodb.rollup_repo import DynamoRollupRepository
    from chalicelib.adapters.dynamodb.staff_repo import DynamoStaffRepository
    from chalicelib.adapters.dynamodb.tenancy_repo import DynamoTenancyRepository
    from chalicelib.adapters.sms import SmsSender
    from chalicelib.services.alarm_queries import AlarmQueries
    from chalicelib.services.alarm_watch import AlarmWatch
    from chalicelib.services.auth import AuthService
    from chalicelib.services.bridge_admin import BridgeAdmin
    from chalicelib.services.bridge_link import BridgeLink
    from chalicelib.services.energy_report import EnergyReport
    from chalicelib.services.notifier import Notifier
    from chalicelib.services.oplog_query import OperationLogQuery
    from chalicelib.services.rollups import DailyRollups
    from chalicelib.services.site_control import SiteControl
    from chalicelib.services.sites import SiteQueries
    from chalicelib.services.staff_admin import StaffAdminService
    from chalicelib.services.tariffs import TariffService


@dataclass(frozen=True)
class Services:
    auth: AuthService
    staff_admin: StaffAdminService
    oplog: OperationLogQuery
    sites: SiteQueries
    tenancy: DynamoTenancyRepository
    staff_repo: DynamoStaffRepository
    bridge_link: BridgeLink
    bridge_admin: BridgeAdmin
    site_control: SiteControl
    readings: DynamoReadingsRepository
    alarms: DynamoAlarmRepository
    notifier: Notifier
    alarm_queries: AlarmQueries
    rollups: DailyRollups
    energy_report: EnergyReport
    tariffs: TariffService
    alarm_watch: AlarmWatch
    rollup_repo: DynamoRollupRepository
    clock: SystemClock


@lru_cache(maxsize=1)
def get_services() -> Services:
    from chalicelib.adapters.clock import SystemClock
    from chalicelib.adapters.dynamodb.alarm_repo import DynamoAlarmRepository
    from chalicelib.adapters.dynamodb.binding import bind_models
    from chalicelib.adapters.dynamodb.bridge_repo import DynamoBridgeRepository
    from chalicelib.adapters.dynamodb.oplog_repo import DynamoOperationLog
    from chalicelib.adapters.dynamodb.readings_repo import DynamoReadingsRepository
    from chalicelib.adapters.dynamodb.rollup_repo import DynamoRollupRepository
    from chalicelib.adapters.dynamodb.session_repo import DynamoSessionStore
    from chalicelib.adapters.dynamodb.staff_repo import DynamoStaffRepository
    from chalicelib.adapters.dynamodb.tariff_repo import DynamoTariffRepository
    from chalicelib.adapters.dynamodb.tenancy_repo import DynamoTenancyRepository
    from chalicelib.adapters.passwords import Argon2PasswordHasher
    from chalicelib.services.alarm_queries import AlarmQueries
    from chalicelib.services.alarm_watch import AlarmWatch
    from chalicelib.services.auth import AuthService
    from chalicelib.services.bridge_admin import BridgeAdmin
    from chalicelib.services.bridge_link import BridgeLink
    from chalicelib.services.consumption import ConsumptionBilling
    from chalicelib.services.energy_report import EnergyReport
    from chalicelib.services.ingest import ReadingIngest
    from chalicelib.services.meter_commands import MeterCommands
    from chalicelib.services.notifier import Notifier
    from chalicelib.services.oplog_query import OperationLogQuery
    from chalicelib.services.rollups import DailyRollups
    from chalicelib.services.site_control import SiteControl
    from chalicelib.services.sites import SiteQueries
    from chalicelib.services.staff_admin import StaffAdminService
    from chalicelib.services.tariffs import TariffService

    settings = get_settings()
    connection = bind_models(settings)
    clock = SystemClock()
    hasher = Argon2PasswordHasher()
    staff = DynamoStaffRepository(connection)
    sessions = DynamoSessionStore(connection)
    oplog = DynamoOperationLog(connection)
    tenancy = DynamoTenancyRepository(connection)
    bridges = DynamoBridgeRepository(connection)
    readings = DynamoReadingsRepository(connection)
    alarms = DynamoAlarmRepository(connection)
    rollup_repo = DynamoRollupRepository(connection)
    alarm_watch = AlarmWatch(alarms, tenancy)
    tariff_repo = DynamoTariffRepository(connection)
    ingest = ReadingIngest(readings, alarm_watch, ConsumptionBilling(tariff_repo, tenancy))
    bridge_link = BridgeLink(bridges, tenancy, ingest, _sender(settings), clock)
    meter_commands = MeterCommands(bridge_link, tariff_repo, tenancy, clock)
    bridge_link.command_results = meter_commands.take_result
    bridge_link.price_pusher = meter_commands.push_prices
    return Services(
        auth=AuthService(staff, sessions, oplog, hasher, clock, settings.session_ttl_seconds),
        staff_admin=StaffAdminService(staff, sessions, hasher, clock, tenancy),
        oplog=OperationLogQuery(oplog, clock),
        sites=SiteQueries(tenancy, readings, bridges),
        tenancy=tenancy,
        staff_repo=staff,
        bridge_link=bridge_link,
        bridge_admin=BridgeAdmin(bridges, tenancy, clock),
        site_control=SiteControl(bridge_link, tenancy, oplog, clock),
        readings=readings,
        alarms=alarms,
        notifier=Notifier(alarms, _sms_sender(settings), clock),
        alarm_queries=AlarmQueries(alarms, readings, tenancy, oplog, clock),
        rollups=DailyRollups(readings, rollup_repo, tenancy),
        rollup_repo=rollup_repo,
        energy_report=EnergyReport(rollup_repo, tenancy),
        alarm_watch=alarm_watch,
        tariffs=TariffService(tariff_repo, meter_commands, bridge_link, tenancy, readings, oplog, clock),
        clock=clock,
    )


def _sender(settings: Settings) -> Callable[[str, str], None]:
    """Pushes to bridge connections through the management API; built on first push, not at start."""
    state: dict[str, Any] = {}

    def send(connection_id: str, text: str) -> None:
        from chalicelib.adapters.bridge_sender import ManagementApiSender

        if "sender" not in state:
            if not settings.ws_management_url:
                raise RuntimeError("VOLTVEND_WS_MANAGEMENT_URL is not configured")
            state["sender"] = ManagementApiSender(settings.ws_management_url, settings.region)
        state["sender"].send(connection_id, text)

    return send


def reset_services() -> None:
    """Forget the built services (tests that change settings call this)."""
    get_services.cache_clear()
    get_settings.cache_clear()


def _sms_sender(settings: Settings) -> SmsSender:
    from chalicelib.adapters.sms import LocalOutboxSender, SnsSmsSender

    return SnsSmsSender() if settings.sms_via_sns else LocalOutboxSender()
