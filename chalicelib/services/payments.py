"""Card payments for tenants and operators (issue 8.3–8.5): start a top-up, follow it, see and set up payments.

A tenant tops up one of their own meters: the meter must be on one of the tenant's accounts (any other answers
404, like a meter that does not exist), and the top-up limits and the hoarding limit are checked before the
processor's hosted checkout is opened, on the operator's connected account. The payment itself comes back through
the webhook (services.payment_events). Operators see every payment with its channel and status, including failed,
refunded and disputed card payments, and administrators connect the operator's payout account.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from chalicelib.domain.access import Role
from chalicelib.domain.actor import Actor
from chalicelib.domain.delivery import Payment
from chalicelib.domain.errors import Conflict, NotFound, PermissionDenied, ValidationError
from chalicelib.domain.ledger import Entry, EntryKind
from chalicelib.domain.meter_money import MeterMoney
from chalicelib.domain.money import parse_amount
from chalicelib.domain.payments import PaymentRecord, PaymentSettings, TopUp, owed_a_sale
from chalicelib.domain.settings import effective_settings
from chalicelib.domain.tenancy import Meter, check_id
from chalicelib.ports import (
    CheckoutRequest,
    Clock,
    GatewayError,
    LocalCheckoutPage,
    LocalPayment,
    LocalSession,
    MoneyRepository,
    OperationLog,
    PaymentGateway,
    PaymentRepository,
    ReadingsRepository,
    TenancyRepository,
)
from chalicelib.services.audit import operation
from chalicelib.services.money_posting import spendable_balance
from chalicelib.services.sales import MAX_TOP_UP_MINOR, SalesDesk
from chalicelib.services.scoping import site_in_scope

if TYPE_CHECKING:
    from chalicelib.domain.tenants import TenantActor

QUICK_AMOUNTS = (5000, 10000, 20000)  # the top-up page's one-tap amounts, in minor units
STRIPE_LOCALES = {"zh_Hans": "zh", "en": "en"}
CLOCK_SLACK_S = 5  # the webhook's clock against the checkout's (different invocations)


@dataclass(frozen=True)
class TopUpForm:
    """What the tenant's top-up page shows before paying."""

    meter: Meter
    account_id: str
    currency: str
    balance_minor: int | None  # None: the meter has not been read yet
    most_now_minor: int | None  # the most the hoarding limit lets in now (a hint; the checks decide)
    quick_amounts: tuple[int, ...]
    offline: bool  # the local stand-in takes the card, not Stripe


@dataclass(frozen=True)
class TopUpStatus:
    """The tenant's latest payment for one meter, and how its credit is getting on."""

    meter: Meter
    payment: PaymentRecord | None
    delivery_state: str  # pending, sent, delivered, failed, not-needed, or "" before the sale is posted
    balance_minor: int | None
    relay_closed: bool | None  # None: not known from the last reading

    @property
    def settled(self) -> bool:
        """Nothing more will change by itself: the page may stop refreshing."""
        if self.payment is None:
            return False
        return self.delivery_state in ("delivered", "failed", "not-needed") or (
            self.payment.entry_id is None and self.payment.status.value in ("failed", "refunded", "refund-failed"))


@dataclass(frozen=True)
class PaymentLine:
    """One payment on an operator's page: a card payment (any status) or a sale paid at the desk."""

    at: datetime
    channel: str  # card, cash, transfer
    status: str  # a card payment's status; "paid" for desk sales
    site_id: str
    meter_id: str
    account_id: str
    amount_minor: int
    currency: str
    payer: str  # tenant:<id>, or the cashier
    detail: str  # why it failed, was refunded or disputed
    entry_id: str | None
    intent_id: str | None


@dataclass(frozen=True)
class SettingsView:
    settings: PaymentSettings | None
    offline: bool


class PaymentsService:
    def __init__(self, gateway: PaymentGateway, payments: PaymentRepository, tenancy: TenancyRepository,
                 money: MoneyRepository, readings: ReadingsRepository, sales: SalesDesk, oplog: OperationLog,
                 clock: Clock, *, public_url: str, local_page: LocalCheckoutPage | None = None) -> None:
        self._gateway = gateway
        self._payments = payments
        self._tenancy = tenancy
        self._money = money
        self._readings = readings
        self._sales = sales
        self._oplog = oplog
        self._clock = clock
        self._public_url = public_url.rstrip("/")
        self._local_page = local_page

    @property
    def gateway(self) -> PaymentGateway:
        """The processor in use (the tests and the bench watch the local stand-in's deliveries through it)."""
        return self._gateway

    # -- tenants ----------------------------------------------------------------------------------------------
    def top_up_form(self, tenant: TenantActor, meter_id: str) -> TopUpForm:
        meter, money = self._tenant_meter(tenant, meter_id)
        balance = self._balance(meter, money)
        site = self._tenancy.get_site(meter.operator_id, meter.site_id)
        limit = effective_settings(site, meter).hoarding_limit_minor if site else None  # the meter's own, or the site's
        most = None if balance is None or limit is None else max(min(limit - balance, MAX_TOP_UP_MINOR), 0)
        assert money.account_id is not None
        return TopUpForm(meter, money.account_id, self._currency(meter.operator_id), balance, most,
                         QUICK_AMOUNTS, self._gateway.offline)

    def start_top_up(self, tenant: TenantActor, meter_id: str, amount_text: str, *, request_id: str = "") -> str:
        """Check the top-up and open the processor's checkout for it; returns the URL to send the tenant to.

        ``request_id`` is the form's one-time token: the same form submitted twice opens one checkout. Without it
        the key is the tenant, meter, amount and minute, which still folds a double click into one checkout.
        """
        meter, money = self._tenant_meter(tenant, meter_id)
        amount = parse_amount((amount_text or "").strip() or "0", field="amount")
        if amount <= 0:
            raise ValidationError("enter the amount to top up", field="amount")
        self._sales.check_top_up(tenant.operator_id, meter.site_id, meter.meter_id, amount)
        assert money.account_id is not None
        top_up = TopUp(tenant.operator_id, meter.site_id, meter.meter_id, money.account_id, tenant.tenant_id)
        once = _request_token(request_id) if request_id else self._clock.now().strftime("%Y%m%d%H%M")
        key = hashlib.sha256(f"{top_up.metadata()}|{amount}|{once}".encode()).hexdigest()
        base = f"{self._base_url()}/t/{tenant.operator_id}/meters/{meter.meter_id}/top-up"
        request = CheckoutRequest(
            connected_account=self._connected_account(tenant.operator_id, tenant.username),
            amount_minor=amount, currency=self._currency(tenant.operator_id).lower(),
            description=f"Electricity credit · meter {meter.serial or meter.meter_id}", metadata=top_up.metadata(),
            success_url=f"{base}/done?after={int(self._clock.now().timestamp())}", cancel_url=f"{base}?cancelled=1",
            idempotency_key=f"voltvend-topup:{key}",
            locale=STRIPE_LOCALES.get(tenant.language, "auto"))
        try:
            return self._gateway.create_checkout(request).url
        except GatewayError as error:
            raise Conflict(f"the card payment could not be started: {error}") from error

    def top_up_status(self, tenant: TenantActor, meter_id: str, *, after: int = 0) -> TopUpStatus:
        """The tenant's latest payment for the meter seen since ``after`` (unix time: when the checkout opened, so
        an earlier top-up is not taken for this one while its webhook is still on the way)."""
        meter, money = self._tenant_meter(tenant, meter_id)
        since = after - CLOCK_SLACK_S
        mine = [r for r in self._payments.payments(tenant.operator_id)
                if r.meter_id == meter.meter_id and r.top_up.tenant_id == tenant.tenant_id
                and r.created_at.timestamp() >= since]
        latest = max(mine, key=lambda r: r.created_at) if mine else None
        states = self._readings.get_states(meter.operator_id, meter.site_id, [meter.meter_id])
        relay = states[0].values.get("relay_state") if states else None
        return TopUpStatus(meter, latest, self._delivery_state(money, latest), self._balance(meter, money),
                           None if relay is None else int(relay) == 0)

    def _tenant_meter(self, tenant: TenantActor, meter_id: str) -> tuple[Meter, MeterMoney]:
        """The tenant's own meter, or NotFound: a meter off their accounts is answered like one that is not there."""
        check_id(meter_id, field="meter_id")
        money = self._money.money(tenant.operator_id, meter_id)
        if money is None or money.account_id is None or money.account_id not in tenant.account_ids:
            raise NotFound("no such meter")
        found = self._tenancy.get_meters(tenant.operator_id, money.site_id, [meter_id])
        if not found:
            raise NotFound("no such meter")
        return found[0], money

    def _balance(self, meter: Meter, money: MeterMoney) -> int | None:
        states = self._readings.get_states(meter.operator_id, meter.site_id, [meter.meter_id])
        try:
            return spendable_balance(money, states[0] if states else None)
        except ValidationError:
            return None

    def _delivery_state(self, money: MeterMoney, payment: PaymentRecord | None) -> str:
        if payment is None or payment.entry_id is None:
            return ""
        delivery = money.delivery(payment.entry_id)
        if delivery is None:
            delivery = self._money.delivery_records(money.operator_id, [payment.entry_id]).get(payment.entry_id)
        if delivery is not None:
            return delivery.state.value
        return "pending" if money.is_prepaid else "not-needed"

    def _connected_account(self, operator_id: str, who: str) -> str:
        settings = self._payments.settings(operator_id)
        if settings is not None:
            return settings.connected_account
        if not self._gateway.offline:
            raise Conflict("card payments are not set up for this property yet; please pay at the desk")
        return self._connect(operator_id, who, "").account_id  # the local stand-in's account needs no onboarding

    # -- operators --------------------------------------------------------------------------------------------
    def settings_view(self, actor: Actor) -> SettingsView:
        _require_administrator(actor)
        return SettingsView(self._payments.settings(actor.operator_id), self._gateway.offline)

    def start_onboarding(self, actor: Actor) -> str:
        """The processor's onboarding link for the operator's connected account (created first if it has none)."""
        _require_administrator(actor)
        return self._connect(actor.operator_id, actor.username, actor.source_ip).url

    def _connect(self, operator_id: str, who: str, source_ip: str) -> _Connected:
        current = self._payments.settings(operator_id)
        back = f"{self._base_url()}/settings/payments"
        try:
            link = self._gateway.onboarding_link(operator_id, current.connected_account if current else None,
                                                 refresh_url=f"{back}?onboarding=again",
                                                 return_url=f"{back}?onboarding=done")
        except GatewayError as error:
            raise Conflict(f"the payment processor refused: {error}") from error
        if current is None or current.connected_account != link.account_id:
            now = self._clock.now()
            record = operation(operator_id, who, "payments.connect", f"account:{link.account_id}", now,
                               source_ip=source_ip, before={"account": current.connected_account if current else None},
                               after={"account": link.account_id})
            self._payments.save_settings(PaymentSettings(operator_id, link.account_id, now, who), record)
        return _Connected(link.account_id, link.url)

    def site_payments(self, actor: Actor, site_id: str, month: str) -> list[PaymentLine]:
        """A month of the site's payments, newest first: card payments in every state, and sales at the desk."""
        from chalicelib.domain.access import Permission

        actor.require(Permission.METERS_VIEW)
        site = site_in_scope(self._tenancy, actor, site_id)
        _check_month(month)
        currency = self._currency(actor.operator_id)
        # Months in UTC, as the ledger's journal (and so the sales page) has them.
        card = [_card_line(r) for r in self._payments.payments(actor.operator_id)
                if r.site_id == site.site_id and r.created_at.astimezone(UTC).strftime("%Y-%m") == month]
        meters = {m.meter_id for m in self._tenancy.list_meters(actor.operator_id, site.site_id)}
        desk = [_desk_line(e, site.site_id, currency) for e in self._money.journal(actor.operator_id, month)
                if e.meter_id in meters and e.kind is EntryKind.SALE and not e.request_id.startswith("stripe:")]
        return sorted(card + desk, key=lambda line: line.at, reverse=True)

    # -- the local stand-in's card page -------------------------------------------------------------------------
    def local_session(self, session_id: str) -> tuple[LocalSession, str]:
        """The session a local card page shows, and the operator's name; NotFound when Stripe takes the cards."""
        if self._local_page is None:
            raise NotFound("no such page")
        session = self._local_page.session(session_id)
        if session is None:
            raise NotFound("no such payment")
        operator = self._tenancy.get_operator(session.operator_id)
        return session, operator.name if operator else session.operator_id

    def local_pay(self, session_id: str, card_number: str) -> LocalPayment:
        if self._local_page is None:
            raise NotFound("no such page")
        try:
            return self._local_page.pay(session_id, card_number)
        except GatewayError as error:
            raise NotFound(str(error)) from error

    # -- reconciliation -------------------------------------------------------------------------------------------
    def card_payments(self, operator_id: str) -> dict[str, tuple[list[Entry], list[Payment]]]:
        """Per site: the processor's card sales in the ledger, and the payments that must stand behind one."""
        found: dict[str, tuple[list[Entry], list[Payment]]] = defaultdict(lambda: ([], []))
        for money in self._money.all_moneys(operator_id):
            sales = [e for e in self._money.meter_entries(operator_id, money.meter_id, with_charges=False)
                     if e.kind is EntryKind.SALE and e.request_id.startswith("stripe:")]
            if sales:
                found[money.site_id][0].extend(sales)
        for record in owed_a_sale(self._payments.payments(operator_id)):
            found[record.site_id][1].append(Payment(record.request_id, record.amount_minor))
        return dict(found)

    def _currency(self, operator_id: str) -> str:
        operator = self._tenancy.get_operator(operator_id)
        return operator.currency if operator else "CNY"

    def _base_url(self) -> str:
        if not self._public_url:
            raise Conflict("card payments need the app's public address (VOLTVEND_PUBLIC_URL)")
        return self._public_url


@dataclass(frozen=True)
class _Connected:
    account_id: str
    url: str


def _require_administrator(actor: Actor) -> None:
    if actor.grant.role is not Role.ADMINISTRATOR:
        raise PermissionDenied("only administrators manage card payments")


def _request_token(text: str) -> str:
    token = text.strip()
    if not 8 <= len(token) <= 80 or not all(c.isalnum() or c in "-_:." for c in token):
        raise ValidationError("the form expired; reload it and try again", field="request_id")
    return token


def _check_month(month: str) -> None:
    try:
        datetime.strptime(month, "%Y-%m")
    except ValueError as error:
        raise ValidationError("month as YYYY-MM", field="month") from error


def _card_line(record: PaymentRecord) -> PaymentLine:
    detail = record.dispute_reason or record.failure_reason
    return PaymentLine(record.created_at, "card", record.status.value, record.site_id, record.meter_id,
                       record.top_up.account_id, record.amount_minor, record.currency.upper(),
                       f"tenant:{record.top_up.tenant_id}", detail, record.entry_id, record.intent_id)


def _desk_line(entry: Entry, site_id: str, currency: str) -> PaymentLine:
    return PaymentLine(entry.created_at, entry.channel.value, "paid", site_id, entry.meter_id or "", entry.account_id,
                       entry.amount_minor, currency, entry.actor, "", entry.entry_id, None)
