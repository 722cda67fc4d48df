"""Composition root: builds adapters and services once per process, on first use.

Importing this module touches no AWS and imports no heavy library; ``get_services()`` does the work
on the first request (or the first test that asks), so ``app.py`` stays cheap to import.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from chalicelib.config import Settings, get_settings

if TYPE_CHECKING:
    from gateway_bridge.protocol import BatchResult

    from chalicelib.adapters.clock import SystemClock
    from chalicelib.adapters.dynamodb.alarm_repo import DynamoAlarmRepository
    from chalicelib.adapters.dynamodb.bridge_repo import DynamoBridgeRepository
    from chalicelib.adapters.dynamodb.money_repo import DynamoMoneyRepository
    from chalicelib.adapters.dynamodb.oplog_repo import DynamoOperationLog
    from chalicelib.adapters.dynamodb.payment_repo import DynamoPaymentRepository
    from chalicelib.adapters.dynamodb.readings_repo import DynamoReadingsRepository
    from chalicelib.adapters.dynamodb.rollup_repo import DynamoRollupRepository
    from chalicelib.adapters.dynamodb.session_repo import DynamoSessionStore
    from chalicelib.adapters.dynamodb.staff_repo import DynamoStaffRepository
    from chalicelib.adapters.dynamodb.tariff_repo import DynamoTariffRepository
    from chalicelib.adapters.dynamodb.tenancy_repo import DynamoTenancyRepository
    from chalicelib.adapters.dynamodb.tenant_repo import DynamoTenantRepository
    from chalicelib.domain.bridges import Bridge
    from chalicelib.domain.tenancy import Meter
    from chalicelib.ports import EmailSender, LocalCheckoutPage, PaymentGateway, SmsSender
    from chalicelib.services.account_changes import AccountChanges
    from chalicelib.services.alarm_queries import AlarmQueries
    from chalicelib.services.alarm_watch import AlarmWatch
    from chalicelib.services.auth import AuthService
    from chalicelib.services.bridge_admin import BridgeAdmin
    from chalicelib.services.bridge_link import BridgeLink
    from chalicelib.services.credit_delivery import CreditDelivery
    from chalicelib.services.energy_report import EnergyReport
    from chalicelib.services.meter_commands import MeterCommands
    from chalicelib.services.meter_control import MeterControl
    from chalicelib.services.meter_import import MeterImportService
    from chalicelib.services.meter_page import MeterPages
    from chalicelib.services.notifier import Notifier
    from chalicelib.services.oplog_query import OperationLogQuery
    from chalicelib.services.payment_events import PaymentEvents
    from chalicelib.services.payments import PaymentsService
    from chalicelib.services.reconciliation import Reconciliation
    from chalicelib.services.rollups import DailyRollups
    from chalicelib.services.sales import SalesDesk
    from chalicelib.services.site_control import SiteControl
    from chalicelib.services.site_settings import SiteSettingsService
    from chalicelib.services.sites import SiteQueries
    from chalicelib.services.staff_admin import StaffAdminService
    from chalicelib.services.tariffs import TariffService
    from chalicelib.services.tenant_auth import TenantAuth
    from chalicelib.services.tenant_portal import TenantPortal


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
    sales: SalesDesk
    account_changes: AccountChanges
    meter_control: MeterControl
    meter_pages: MeterPages
    tenant_auth: TenantAuth
    tenant_portal: TenantPortal
    credit_delivery: CreditDelivery
    money: DynamoMoneyRepository
    reconciliation: Reconciliation
    clock: SystemClock
    meter_import: MeterImportService
    site_settings: SiteSettingsService
    payments: PaymentsService
    payment_events: PaymentEvents


@dataclass(frozen=True)
class Repositories:
    """Every DynamoDB adapter, sharing one botocore connection."""

    staff: DynamoStaffRepository
    sessions: DynamoSessionStore
    oplog: DynamoOperationLog
    tenancy: DynamoTenancyRepository
    bridges: DynamoBridgeRepository
    readings: DynamoReadingsRepository
    alarms: DynamoAlarmRepository
    rollups: DynamoRollupRepository
    tariffs: DynamoTariffRepository
    money: DynamoMoneyRepository
    tenants: DynamoTenantRepository
    payments: DynamoPaymentRepository


def _repositories(settings: Settings) -> Repositories:
    from chalicelib.adapters.dynamodb.alarm_repo import DynamoAlarmRepository
    from chalicelib.adapters.dynamodb.binding import bind_models
    from chalicelib.adapters.dynamodb.bridge_repo import DynamoBridgeRepository
    from chalicelib.adapters.dynamodb.money_repo import DynamoMoneyRepository
    from chalicelib.adapters.dynamodb.oplog_repo import DynamoOperationLog
    from chalicelib.adapters.dynamodb.payment_repo import DynamoPaymentRepository
    from chalicelib.adapters.dynamodb.readings_repo import DynamoReadingsRepository
    from chalicelib.adapters.dynamodb.rollup_repo import DynamoRollupRepository
    from chalicelib.adapters.dynamodb.session_repo import DynamoSessionStore
    from chalicelib.adapters.dynamodb.staff_repo import DynamoStaffRepository
    from chalicelib.adapters.dynamodb.tariff_repo import DynamoTariffRepository
    from chalicelib.adapters.dynamodb.tenancy_repo import DynamoTenancyRepository
    from chalicelib.adapters.dynamodb.tenant_repo import DynamoTenantRepository

    connection = bind_models(settings)
    return Repositories(
        DynamoStaffRepository(connection), DynamoSessionStore(connection), DynamoOperationLog(connection),
        DynamoTenancyRepository(connection), DynamoBridgeRepository(connection), DynamoReadingsRepository(connection),
        DynamoAlarmRepository(connection), DynamoRollupRepository(connection), DynamoTariffRepository(connection),
        DynamoMoneyRepository(connection), DynamoTenantRepository(connection), DynamoPaymentRepository(connection))


def _bridge_side(repos: Repositories, settings: Settings,
                 clock: SystemClock) -> tuple[BridgeLink, AlarmWatch, MeterCommands, CreditDelivery, MeterControl]:
    """The bridge link and what it feeds: ingestion (alarms, billing), meter commands and credit delivery."""
    from chalicelib.services.alarm_watch import AlarmWatch
    from chalicelib.services.bridge_link import BridgeLink
    from chalicelib.services.charges import ChargePosting
    from chalicelib.services.consumption import ConsumptionBilling
    from chalicelib.services.credit_delivery import CreditDelivery, is_delivery_result
    from chalicelib.services.ingest import ReadingIngest
    from chalicelib.services.meter_commands import MeterCommands
    from chalicelib.services.meter_control import MeterControl
    from chalicelib.services.tenant_contacts import TenantContacts

    alarm_watch = AlarmWatch(repos.alarms, repos.tenancy)
    alarm_watch.tenant_contacts = TenantContacts(repos.money, repos.tenants).contacts
    ingest = ReadingIngest(repos.readings, alarm_watch, ConsumptionBilling(repos.tariffs, repos.tenancy))
    bridge_link = BridgeLink(repos.bridges, repos.tenancy, ingest, _sender(settings), clock)
    meter_commands = MeterCommands(bridge_link, repos.tariffs, repos.tenancy, clock)
    credit_delivery = CreditDelivery(repos.money, repos.tenancy, bridge_link, repos.readings, clock)

    def command_result(bridge: Bridge, result: BatchResult) -> None:
        handler = credit_delivery.take_result if is_delivery_result(result) else meter_commands.take_result
        handler(bridge, result)

    bridge_link.command_results = command_result
    bridge_link.price_pusher = meter_commands.push_prices
    bridge_link.bridge_ready = credit_delivery.on_bridge_back
    charges = ChargePosting(repos.money, clock)
    bridge_link.charge_poster = charges.post
    ingest.ledger_balances = charges.balances
    meter_control = MeterControl(repos.tenancy, bridge_link, meter_commands, repos.tariffs, repos.oplog, clock)
    charges.balance_moved = meter_control.supply_for_balance
    return bridge_link, alarm_watch, meter_commands, credit_delivery, meter_control


@lru_cache(maxsize=1)
def get_services() -> Services:
    from chalicelib.adapters.clock import SystemClock
    from chalicelib.adapters.passwords import Argon2PasswordHasher
    from chalicelib.adapters.spreadsheets import XlsxReader  # openpyxl itself loads on the first .xlsx upload
    from chalicelib.services.account_changes import AccountChanges
    from chalicelib.services.alarm_queries import AlarmQueries
    from chalicelib.services.auth import AuthService
    from chalicelib.services.bridge_admin import BridgeAdmin
    from chalicelib.services.energy_report import EnergyReport
    from chalicelib.services.meter_import import MeterImportService
    from chalicelib.services.meter_page import MeterPages
    from chalicelib.services.notifier import Notifier
    from chalicelib.services.oplog_query import OperationLogQuery
    from chalicelib.services.reconciliation import Reconciliation
    from chalicelib.services.rollups import DailyRollups
    from chalicelib.services.sales import SalesDesk
    from chalicelib.services.site_control import SiteControl
    from chalicelib.services.site_settings import SiteSettingsService
    from chalicelib.services.sites import SiteQueries
    from chalicelib.services.staff_admin import StaffAdminService
    from chalicelib.services.tariffs import TariffService
    from chalicelib.services.tenant_auth import TenantAuth
    from chalicelib.services.tenant_portal import TenantPortal

    settings, clock, hasher = get_settings(), SystemClock(), Argon2PasswordHasher()
    r = _repositories(settings)
    bridge_link, alarm_watch, meter_commands, credit_delivery, meter_control = _bridge_side(r, settings, clock)
    tariffs = TariffService(r.tariffs, meter_commands, bridge_link, r.tenancy, r.readings, r.oplog, clock)
    sales = SalesDesk(r.tenancy, r.money, r.readings, clock, tariffs.price_now)
    sales.delivered = credit_delivery.pump
    sales.balance_moved = meter_control.supply_for_balance
    meter_control.prices_for = tariffs.prices_for

    def meters_joined(meters: list[Meter]) -> None:
        tariffs.push_to_meters(meters)
        meter_control.push_settings(meters)

    sales.meters_joined = meters_joined
    account_changes = AccountChanges(r.tenancy, r.money, r.readings, clock)
    account_changes.delivered = credit_delivery.pump
    meter_pages = MeterPages(r.tenancy, r.readings, r.money, r.tariffs, clock)
    tenant_portal = TenantPortal(r.tenancy, r.money, r.readings, r.alarms, meter_pages, sales, clock)
    tenant_portal.prices_for = tariffs.prices_for
    tenant_auth = TenantAuth(r.tenants, r.sessions, r.money, r.oplog, hasher, r.alarms, clock,
                             session_ttl=timedelta(seconds=settings.session_ttl_seconds), tenancy=r.tenancy)
    payments, payment_events = _payment_side(r, settings, sales, clock)
    reconciliation = Reconciliation(r.money, r.readings, r.alarms, clock)
    reconciliation.card_payments = payments.card_payments
    return Services(
        auth=AuthService(r.staff, r.sessions, r.oplog, hasher, clock, settings.session_ttl_seconds),
        staff_admin=StaffAdminService(r.staff, r.sessions, hasher, clock, r.tenancy),
        oplog=OperationLogQuery(r.oplog, clock),
        sites=SiteQueries(r.tenancy, r.readings, r.bridges),
        tenancy=r.tenancy,
        staff_repo=r.staff,
        bridge_link=bridge_link,
        bridge_admin=BridgeAdmin(r.bridges, r.tenancy, clock),
        site_control=SiteControl(bridge_link, r.tenancy, r.oplog, clock),
        readings=r.readings,
        alarms=r.alarms,
        notifier=Notifier(r.alarms, _sms_sender(settings), clock, _email_sender(settings)),
        alarm_queries=AlarmQueries(r.alarms, r.readings, r.tenancy, r.oplog, clock),
        rollups=DailyRollups(r.readings, r.rollups, r.tenancy),
        rollup_repo=r.rollups,
        energy_report=EnergyReport(r.rollups, r.tenancy),
        alarm_watch=alarm_watch,
        tariffs=tariffs,
        sales=sales,
        account_changes=account_changes,
        meter_control=meter_control,
        meter_pages=meter_pages,
        tenant_auth=tenant_auth,
        tenant_portal=tenant_portal,
        credit_delivery=credit_delivery,
        money=r.money,
        reconciliation=reconciliation,
        clock=clock,
        meter_import=MeterImportService(r.tenancy, r.tenancy, XlsxReader(), clock),
        site_settings=SiteSettingsService(r.tenancy, r.tenancy, r.money, r.tariffs, r.oplog, clock, tariffs,
                                          meter_control, bridge_link),
        payments=payments,
        payment_events=payment_events,
    )


def _payment_side(r: Repositories, settings: Settings, sales: SalesDesk,
                  clock: SystemClock) -> tuple[PaymentsService, PaymentEvents]:
    """Card payments: Stripe when its keys are set, else the local stand-in (the demo and the tests)."""
    from chalicelib.services.payment_events import PaymentEvents
    from chalicelib.services.payments import PaymentsService

    gateway, local_page = _payment_gateway(settings)
    events = PaymentEvents(gateway, r.payments, r.tenancy, r.money, sales, clock)
    sales.card_reversed = events.card_reversed
    sales.refunded_outside = events.refunded_outside
    payments = PaymentsService(gateway, r.payments, r.tenancy, r.money, r.readings, sales, r.oplog, clock,
                               public_url=settings.public_url, local_page=local_page)
    return payments, events


def _payment_gateway(settings: Settings) -> tuple[PaymentGateway, LocalCheckoutPage | None]:
    """The gateway, and the local stand-in's card page when there is one."""
    if settings.stripe_secret_key:
        from chalicelib.adapters.stripe_gateway import StripeGateway  # stripe itself loads on the first call

        return StripeGateway(settings.stripe_secret_key, settings.stripe_webhook_secret or "",
                             api_base=settings.stripe_api_base), None
    from chalicelib.adapters.local_gateway import LocalGateway

    local = LocalGateway(settings.public_url, settings.webhook_secret)
    return local, local


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


def _email_sender(settings: Settings) -> EmailSender:
    from chalicelib.adapters.email import LocalOutboxEmailSender, SesEmailSender

    return SesEmailSender(settings.email_from) if settings.email_via_ses else LocalOutboxEmailSender()
