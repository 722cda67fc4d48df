"""The interfaces services depend on; adapters implement them (DynamoDB, argon2, the clock)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from chalicelib.domain.accounts import ClosingRecord, CustomerAccount
from chalicelib.domain.alarms import Alarm, AlarmState
from chalicelib.domain.bridges import Bridge, BridgeConnection, BridgeStatus, TunnelState
from chalicelib.domain.commands import CommandRecord
from chalicelib.domain.daily import DayFigures
from chalicelib.domain.delivery import Delivery
from chalicelib.domain.ledger import Entry
from chalicelib.domain.meter_money import MeterMoney
from chalicelib.domain.notifications import PlannedMessage
from chalicelib.domain.oplog import OperationRecord
from chalicelib.domain.outbox import OutboxMessage
from chalicelib.domain.payments import IntentState, PaymentRecord, PaymentSettings
from chalicelib.domain.readings import Reading, StoredState, Usage
from chalicelib.domain.sessions import Session
from chalicelib.domain.staff import StaffUser
from chalicelib.domain.tariffs import Tariff, TariffHistory
from chalicelib.domain.tenancy import Building, Collector, Meter, PropertyOperator, Site, SiteNode, Unit

if TYPE_CHECKING:  # the import page's module loads on its first request, not with every cold start
    from chalicelib.domain.meter_import import ImportJournal, MeterImportBatch


class Clock(Protocol):
    def now(self) -> datetime: ...


class PasswordHasher(Protocol):
    def hash(self, password: str) -> str: ...
    def verify(self, password_hash: str, password: str) -> bool: ...
    def needs_rehash(self, password_hash: str) -> bool: ...


class StaffRepository(Protocol):
    def get(self, operator_id: str, username: str) -> StaffUser | None: ...
    def list(self, operator_id: str) -> list[StaffUser]: ...
    def create(self, user: StaffUser, record: OperationRecord) -> None: ...
    def save(self, user: StaffUser, record: OperationRecord | None) -> StaffUser: ...


class SessionStore(Protocol):
    def put(self, session: Session) -> None: ...
    def get(self, operator_id: str, session_id: str) -> Session | None: ...
    def delete(self, operator_id: str, session_id: str) -> None: ...
    def delete_for_user(self, operator_id: str, username: str) -> int: ...
    def delete_expired(self, operator_id: str, now: datetime) -> int: ...


class OperationLog(Protocol):
    def append(self, record: OperationRecord) -> None: ...
    def page(self, operator_id: str, month: str, *, after: str | None = None,
             limit: int = 50) -> tuple[list[OperationRecord], str | None]: ...


class TenancyRepository(Protocol):
    def get_operator(self, operator_id: str) -> PropertyOperator | None: ...
    def operator_ids(self) -> list[str]: ...
    def list_sites(self, operator_id: str) -> list[Site]: ...
    def get_site(self, operator_id: str, site_id: str) -> Site | None: ...
    def list_buildings(self, operator_id: str, site_id: str) -> list[Building]: ...
    def list_units(self, operator_id: str, site_id: str) -> list[Unit]: ...
    def list_collectors(self, operator_id: str, site_id: str) -> list[Collector]: ...
    def list_meters(self, operator_id: str, site_id: str) -> list[Meter]: ...
    def get_meters(self, operator_id: str, site_id: str, meter_ids: Iterable[str]) -> list[Meter]: ...


class TenancyWriter(Protocol):
    def create_operator(self, operator: PropertyOperator, first_admin: StaffUser,
                        records: list[OperationRecord]) -> None: ...
    def add_site(self, site: Site, record: OperationRecord) -> None: ...
    def add_building(self, building: Building, record: OperationRecord) -> None: ...
    def add_units(self, units: Iterable[Unit]) -> None: ...
    def add_collectors(self, collectors: Iterable[Collector]) -> None: ...
    def add_meters(self, meters: Iterable[Meter]) -> None: ...
    def put_node(self, node: SiteNode, record: OperationRecord, *, create: bool) -> None:
        """One settings change and its log record, together: create (Conflict when the id is taken; a site is
        also registered for the schedulers) or replace (NotFound when it is gone)."""
        ...

    def remove_node(self, node: Building | Unit | Collector | Meter, record: OperationRecord) -> None: ...


class MeterImportWriter(Protocol):
    """Bulk meter imports, all or nothing (see services/meter_import.py for how)."""

    def import_meters(self, batch: MeterImportBatch) -> None:
        """Write every unit and meter and the log record, or nothing: raises Conflict (another import runs, or
        a key was taken meanwhile) or ImportRolledBack after removing what it wrote."""
        ...

    def running_meter_import(self, operator_id: str, site_id: str) -> ImportJournal | None: ...
    def undo_meter_import(self, journal: ImportJournal, record: OperationRecord) -> None: ...


class SpreadsheetReader(Protocol):
    def rows(self, data: bytes, *, max_rows: int, max_columns: int) -> list[list[object]]:
        """The first worksheet's rows of cell values; raises ImportRefused when the workbook cannot be read."""
        ...


class StaleTunnelState(Exception):
    """Another writer moved the tunnel state on since it was read; read again and retry."""


class ConnectionGone(Exception):
    """The bridge's WebSocket is closed; the caller marks the bridge offline."""


class ReadingsRepository(Protocol):
    def get_states(self, operator_id: str, site_id: str, meter_ids: Iterable[str]) -> list[StoredState]: ...
    def list_states(self, operator_id: str, site_id: str) -> list[StoredState]: ...
    def set_alarm_state(self, operator_id: str, site_id: str, meter_id: str, alarms: AlarmState) -> None: ...
    def merge_values(self, operator_id: str, site_id: str, meter_id: str, values: dict[str, Any],
                     at: datetime) -> bool:
        """Fold a few freshly read registers into the meter's state (a command's read-back); False when a newer
        reading is there already."""
        ...

    def put_run(self, operator_id: str, site_id: str, readings: Iterable[Reading], states: Iterable[StoredState],
                usage: Iterable[Usage] = ()) -> None: ...
    def last_reading_before(self, operator_id: str, meter_id: str, before_ms: int) -> dict[str, Any] | None: ...
    def readings_between(self, operator_id: str, meter_id: str, start_ms: int,
                         end_ms: int) -> list[tuple[int, dict[str, Any]]]: ...
    def readings_before(self, operator_id: str, meter_id: str, before_ms: int) -> list[tuple[int, dict[str, Any]]]: ...
    def delete_readings(self, operator_id: str, meter_id: str, times_ms: list[int]) -> None: ...


class BridgeRepository(Protocol):
    def register(self, bridge: Bridge, tunnels: list[TunnelState], record: OperationRecord) -> None: ...
    def get(self, operator_id: str, bridge_id: str) -> Bridge | None: ...
    def list(self, operator_id: str) -> list[Bridge]: ...
    def set_status(self, operator_id: str, bridge_id: str, status: BridgeStatus, record: OperationRecord) -> None: ...
    def mark_seen(self, operator_id: str, bridge_id: str, at: datetime, connection_id: str) -> None: ...
    def mark_disconnected(self, operator_id: str, bridge_id: str, connection_id: str) -> None: ...
    def put_connection(self, link: BridgeConnection, at: datetime) -> None: ...
    def get_connection(self, connection_id: str) -> BridgeConnection | None: ...
    def delete_connection(self, connection_id: str) -> None: ...
    def load_tunnel(self, operator_id: str, site_id: str, collector_id: str) -> TunnelState | None: ...
    def save_tunnel(self, operator_id: str, site_id: str, tunnel: TunnelState) -> None: ...
    def acquire_send_lock(self, operator_id: str, site_id: str, collector_id: str, holder: str,
                          now_ms: int, hold_ms: int) -> bool: ...
    def release_send_lock(self, operator_id: str, site_id: str, collector_id: str, holder: str) -> None: ...


class AlarmRepository(Protocol):
    def get_states(self, operator_id: str, site_id: str, subject_ids: Iterable[str]) -> dict[str, AlarmState]: ...
    def save(self, operator_id: str, site_id: str, states: Iterable[AlarmState], alarms: Iterable[Alarm]) -> None: ...
    def alarms(self, operator_id: str, site_id: str) -> list[Alarm]: ...
    def enqueue(self, operator_id: str, site_id: str, messages: Iterable[PlannedMessage]) -> int: ...
    def outbox(self, operator_id: str) -> list[OutboxMessage]: ...
    def mark(self, operator_id: str, dedupe_key: str, status: str, detail: str, at: datetime) -> None: ...


class TariffRepository(Protocol):
    def add_version(self, operator_id: str, site_id: str, scope: str, tariff: Tariff) -> None: ...
    def history(self, operator_id: str, site_id: str, scope: str = "site") -> TariffHistory | None: ...
    def histories(self, operator_id: str, site_id: str) -> dict[str, TariffHistory]: ...
    def record_command(self, operator_id: str, site_id: str, record: CommandRecord) -> None: ...
    def command(self, operator_id: str, site_id: str, command_id: str) -> CommandRecord | None: ...
    def commands(self, operator_id: str, site_id: str) -> list[CommandRecord]: ...


class RollupRepository(Protocol):
    def put_days(self, operator_id: str, site_id: str, rows: Iterable[tuple[str, str, DayFigures]]) -> None: ...
    def days(self, operator_id: str, site_id: str, first: str, last: str,
             scope: str | None = None) -> list[tuple[str, str, DayFigures]]: ...


class ArchiveStore(Protocol):
    def put(self, key: str, data: bytes) -> None: ...
    def get(self, key: str) -> bytes: ...
    def keys(self, prefix: str) -> list[str]: ...


class SmsSender(Protocol):
    def send(self, phone: str, text: str) -> str:
        """Hand one SMS over; returns the provider's message id (raises on refusal)."""
        ...


class AlreadyPosted(Exception):
    """An entry with this id is stored already: the request was seen before (nothing was written now)."""

    def __init__(self, entry_ids: list[str]) -> None:
        super().__init__(f"already posted: {', '.join(entry_ids)}")
        self.entry_ids = entry_ids


class StaleMoney(Exception):
    """A meter's money state or an account changed since it was read; read again and re-judge."""


@dataclass(frozen=True)
class StoredAccount:
    account: CustomerAccount
    version: int  # as read; the next write is conditional on it
    closing: ClosingRecord | None = None


@dataclass(frozen=True)
class MoneyChange:
    """What one money operation writes, all or nothing: new entries, the meters' new money states (each
    conditional on the version it was read at), the account, the operation log record and finished deliveries."""

    entries: tuple[Entry, ...] = ()
    moneys: tuple[MeterMoney, ...] = ()
    account: StoredAccount | None = None
    record: OperationRecord | None = None
    settled: tuple[Delivery, ...] = ()
    at: datetime | None = None


class MoneyRepository(Protocol):
    def commit(self, change: MoneyChange) -> None:
        """Write the change in one transaction; raises AlreadyPosted or StaleMoney and writes nothing then."""
        ...

    def money(self, operator_id: str, meter_id: str) -> MeterMoney | None: ...
    def moneys(self, operator_id: str, meter_ids: Iterable[str]) -> list[MeterMoney]: ...
    def moneys_with_work(self, operator_id: str) -> list[MeterMoney]: ...
    def all_moneys(self, operator_id: str) -> list[MeterMoney]: ...
    def entry(self, operator_id: str, entry_id: str) -> Entry | None: ...
    def meter_entries(self, operator_id: str, meter_id: str) -> list[Entry]: ...
    def account_entries(self, operator_id: str, account_id: str) -> list[Entry]: ...
    def journal(self, operator_id: str, month: str) -> list[Entry]: ...
    def delivery_records(self, operator_id: str, entry_ids: Iterable[str]) -> dict[str, Delivery]: ...
    def account(self, operator_id: str, account_id: str) -> StoredAccount | None: ...
    def accounts(self, operator_id: str) -> list[StoredAccount]: ...


# -- card payments (issue 8): the processor, and what we keep of its payments --------------------------------------


class BadSignature(Exception):
    """A webhook whose signature, timestamp or body does not verify: answered 400, never acted on."""


class GatewayError(Exception):
    """The payment processor refused a request or could not be reached."""


@dataclass(frozen=True)
class CheckoutRequest:
    """One top-up's hosted checkout, on the operator's connected account."""

    connected_account: str
    amount_minor: int
    currency: str  # ISO 4217, lower case
    description: str  # the line the payer sees
    metadata: dict[str, str]  # the top-up (domain.payments.TopUp), also put on the payment intent
    success_url: str
    cancel_url: str
    idempotency_key: str  # the same key returns the same session: a double submit opens one checkout
    locale: str = "auto"


@dataclass(frozen=True)
class CheckoutSession:
    session_id: str
    url: str


@dataclass(frozen=True)
class RefundResult:
    refund_id: str
    status: str
    amount_minor: int


@dataclass(frozen=True)
class OnboardingLink:
    account_id: str  # the connected account (created with the link when the operator had none)
    url: str


class PaymentGateway(Protocol):
    """Stripe with Connect (direct charges on each operator's connected account), or the local stand-in."""

    offline: bool  # True for the local stand-in: no real money moves, accounts need no onboarding

    def create_checkout(self, request: CheckoutRequest) -> CheckoutSession: ...
    def payment_intent(self, intent_id: str, connected_account: str) -> IntentState: ...
    def refund(self, intent_id: str, connected_account: str, *, amount_minor: int | None, idempotency_key: str,
               reason: str) -> RefundResult:
        """Refund all (``amount_minor`` None) or part of a payment; the same key refunds once."""
        ...

    def onboarding_link(self, operator_id: str, connected_account: str | None, *, refresh_url: str,
                        return_url: str) -> OnboardingLink: ...
    def parse_event(self, payload: bytes, signature_header: str) -> dict[str, Any]:
        """The event, once its signature over the raw body and its timestamp verify (BadSignature otherwise)."""
        ...


@dataclass(frozen=True)
class LocalSession:
    """A local stand-in checkout, as its card page shows it."""

    session_id: str
    operator_id: str
    amount_minor: int
    currency: str
    description: str
    status: str  # open, complete
    cancel_url: str
    success_url: str


@dataclass(frozen=True)
class LocalPayment:
    paid: bool
    message: str  # the decline message when not paid
    redirect_url: str  # where the page goes next (the success URL once paid)


class LocalCheckoutPage(Protocol):
    """The local stand-in's card page (no Stripe keys): look a session up, and pay it with a test card."""

    def session(self, session_id: str) -> LocalSession | None: ...
    def pay(self, session_id: str, card_number: str) -> LocalPayment: ...


class EventClaim(StrEnum):
    NEW = "new"  # first sight (or its earlier handler died): handle it
    DONE = "done"  # handled before: a duplicate delivery
    BUSY = "busy"  # being handled right now by another invocation


class StalePayment(Exception):
    """A payment record changed since it was read."""


class PaymentRepository(Protocol):
    def claim_event(self, operator_id: str, event_id: str, event_type: str, now: datetime) -> EventClaim: ...
    def finish_event(self, operator_id: str, event_id: str, outcome: str, now: datetime) -> None: ...
    def release_event(self, operator_id: str, event_id: str) -> None: ...
    def lock_payment(self, operator_id: str, intent_id: str, holder: str, now_ms: int, hold_ms: int) -> bool: ...
    def unlock_payment(self, operator_id: str, intent_id: str, holder: str) -> None: ...
    def payment(self, operator_id: str, intent_id: str) -> PaymentRecord | None: ...
    def save_payment(self, record: PaymentRecord) -> PaymentRecord:
        """Store the record, conditional on the version it was read at (StalePayment otherwise)."""
        ...

    def payments(self, operator_id: str) -> list[PaymentRecord]: ...
    def settings(self, operator_id: str) -> PaymentSettings | None: ...
    def save_settings(self, settings: PaymentSettings, record: OperationRecord) -> None: ...
