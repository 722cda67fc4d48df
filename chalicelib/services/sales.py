"""Customer accounts and the cashier's desk: open accounts, sell, refund, reverse (SPEC 11–14, 17–21).

Each operation is judged by the pure rules (domain.accounts, domain.ledger) on freshly read state and written as
one transaction: the ledger entries, the meter's new credit with its command queued for delivery, the account and
the operation log record (services.money_posting). Delivery to the meter happens after the commit
(services.credit_delivery); a crash in between leaves the command queued, and the delivery job sends it.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from chalicelib.domain import accounts as account_rules
from chalicelib.domain.access import Permission
from chalicelib.domain.actor import Actor
from chalicelib.domain.delivery import Delivery
from chalicelib.domain.errors import Conflict, DomainError, NotFound, ValidationError
from chalicelib.domain.ledger import (
    Channel,
    Entry,
    EntryKind,
    Request,
    cashier_request_id,
    entry_id_for,
    reversal_entry_id,
    stripe_request_id,
)
from chalicelib.domain.ledger import new_request_token as new_request_token  # where forms and tests get it
from chalicelib.domain.meter_money import MeterMoney
from chalicelib.domain.money import format_amount, parse_amount
from chalicelib.domain.readings import StoredState
from chalicelib.domain.receipts import Receipt
from chalicelib.domain.settings import effective_settings
from chalicelib.domain.tenancy import BillingMode, Meter, Site, check_id
from chalicelib.ports import (
    AlreadyPosted,
    Clock,
    MoneyChange,
    MoneyRepository,
    ReadingsRepository,
    StoredAccount,
    TenancyRepository,
)
from chalicelib.services.audit import operation
from chalicelib.services.money_posting import (
    commit_judged,
    fresh_money,
    posted_before,
    spendable_balance,
    stored_entry,
)
from chalicelib.services.receipts import compose_receipt
from chalicelib.services.scoping import site_in_scope

PriceNow = Callable[[Meter], int | None]  # the meter's energy price in force now, 1/10000 per kWh
Delivered = Callable[[str, str], object]  # (operator, meter): credit was queued, send it now
MAX_TOP_UP_MINOR = 10_000_000  # one sale at most 100,000.00: a typo guard, below any hoarding limit in use
_price_lookups = ThreadPoolExecutor(max_workers=4, thread_name_prefix="price-lookup")


@dataclass(frozen=True)
class Poster:
    """Who posts when no member of staff does: a tenant paying by card, the system."""

    operator_id: str
    username: str
    source_ip: str = ""


@dataclass(frozen=True)
class MeterAccountView:
    meter: Meter
    money: MeterMoney | None
    balance_minor: int | None  # what the meter holds with pending credit (prepaid), or the ledger credit


@dataclass(frozen=True)
class SaleLine:
    entry: Entry
    delivery: Delivery | None  # None: nothing to deliver (cash-less entries, cloud-billed meters)

    @property
    def delivery_state(self) -> str:
        if not self.entry.delivers_to_meter:
            return "not-needed"
        return self.delivery.state.value if self.delivery is not None else "pending"


def _token(text: str) -> str:
    token = (text or "").strip()
    if not 8 <= len(token) <= 80 or not all(c.isalnum() or c in "-_:." for c in token):
        raise ValidationError("request id: 8–80 letters, digits, '-', '_', ':' or '.'", field="request_id")
    return token


def _channel(text: str) -> Channel:
    try:
        channel = Channel((text or "cash").strip().lower())
    except ValueError:
        channel = Channel.SYSTEM
    if channel is Channel.SYSTEM:
        raise ValidationError("pay by cash, card or transfer", field="channel")
    return channel


class SalesDesk:
    def __init__(self, tenancy: TenancyRepository, money: MoneyRepository, readings: ReadingsRepository,
                 clock: Clock, price_now: PriceNow) -> None:
        self._tenancy = tenancy
        self._money = money
        self._readings = readings
        self._clock = clock
        self._price_now = price_now
        self.delivered: Delivered | None = None  # set by the composition root: the delivery worker's kick
        # Set at start-up: (operator, site, meter, balance before, after) of cloud-billed meters → supply control.
        self.balance_moved: Callable[[str, str, str, int, int], object] | None = None
        # Set at start-up: meters joining an account get the site's prices and settings written into them.
        self.meters_joined: Callable[[list[Meter]], object] | None = None
        # Set at start-up: (meter, original sale, its reversal) after a card sale's reversal is committed, so the
        # payment is refunded through the processor (services.payment_events). It must not raise.
        self.card_reversed: Callable[[Meter, Entry, Entry], object] | None = None
        # Set at start-up: how much of a card payment (operator, payment intent) was refunded in the processor's
        # dashboard; such a sale is not reversed here, or its credit would come back out twice.
        self.refunded_outside: Callable[[str, str], int] | None = None

    # -- accounts --------------------------------------------------------------------------
    def open_account(self, actor: Actor, site_id: str, customer_name: str, meter_ids: list[str], *,
                     phone: str = "", unit: str = "", request_id: str) -> StoredAccount:
        actor.require(Permission.ACCOUNTS_MANAGE)
        site = site_in_scope(self._tenancy, actor, site_id)
        token = _token(request_id)
        account_id = f"acct-{entry_id_for(actor.operator_id, f'account:{token}')[2:14]}"
        existing = self._money.account(actor.operator_id, account_id)
        if existing is not None:
            return existing  # the same form submitted twice
        meters = self._site_meters(site, meter_ids)

        def judge() -> tuple[MoneyChange, StoredAccount]:
            now = self._clock.now()
            request = Request(actor.operator_id, f"account:{token}", actor.username, Channel.SYSTEM, now)
            states = {s.meter_id: s for s in self._readings.get_states(actor.operator_id, site.site_id, meter_ids)}
            olds = {m.meter_id: m for m in self._money.moneys(actor.operator_id, meter_ids)}
            moneys = {m.meter_id: fresh_money(actor.operator_id, site.site_id, m.meter_id,
                                              m.billing_mode is BillingMode.PREPAID_METER,
                                              states.get(m.meter_id), olds.get(m.meter_id)) for m in meters}
            openings = [account_rules.MeterOpening(m.meter_id, m.billing_mode, self._opening_credit(moneys[m.meter_id],
                                                                                             states.get(m.meter_id)))
                        for m in meters]
            opened = account_rules.open_account(account_id, account_rules.Customer(customer_name.strip(), phone.strip(),
                                                                         unit.strip()), openings, request)
            for entry in opened.entries:
                assert entry.meter_id is not None
                moneys[entry.meter_id] = moneys[entry.meter_id].posting(entry)
            joined = tuple(_on_account(m, account_id) for m in moneys.values())
            stored = StoredAccount(opened.account, 0)
            record = operation(actor.operator_id, actor.username, "account.open", f"account:{account_id}", now,
                               source_ip=actor.source_ip, after={"customer": customer_name, "meters": meter_ids})
            return MoneyChange(opened.entries, joined, stored, record, at=now), StoredAccount(opened.account, 1)

        opened = commit_judged(self._money, judge)
        if self.meters_joined is not None:
            self.meters_joined(meters)
        return opened

    def _opening_credit(self, money: MeterMoney, state: StoredState | None) -> int:
        """Credit a prepaid meter already holds when it joins (an opening balance); minus what the ledger already
        gives it from before (a meter coming back from a closed account holds our own credit)."""
        if not money.is_prepaid:
            return 0
        return spendable_balance(money, state) - money.credit_minor

    def _site_meters(self, site: Site, meter_ids: list[str]) -> list[Meter]:
        if not meter_ids:
            raise ValidationError("choose at least one meter", field="meters")
        for meter_id in meter_ids:
            check_id(meter_id, field="meter_id")
        found = {m.meter_id: m for m in self._tenancy.get_meters(site.operator_id, site.site_id, meter_ids)}
        missing = [m for m in meter_ids if m not in found]
        if missing:
            raise NotFound(f"no such meter on this site: {', '.join(missing)}")
        return [found[m] for m in meter_ids]

    def accounts(self, actor: Actor, site_id: str) -> list[StoredAccount]:
        actor.require(Permission.METERS_VIEW)
        site = site_in_scope(self._tenancy, actor, site_id)
        site_meters = {m.meter_id for m in self._tenancy.list_meters(actor.operator_id, site.site_id)}
        return [a for a in self._money.accounts(actor.operator_id)
                if any(m.meter_id in site_meters for m in a.account.meters)]

    def account(self, actor: Actor, site_id: str, account_id: str) -> tuple[StoredAccount, list[MeterAccountView],
                                                                            list[SaleLine]]:
        actor.require(Permission.METERS_VIEW)
        site = site_in_scope(self._tenancy, actor, site_id)
        check_id(account_id, field="account_id")
        stored = self._money.account(actor.operator_id, account_id)
        meter_ids = [m.meter_id for m in stored.account.meters] if stored else []
        meters = {m.meter_id: m for m in self._tenancy.get_meters(actor.operator_id, site.site_id, meter_ids)}
        if stored is None or not meters:
            raise NotFound("no such account on this site")
        moneys = {m.meter_id: m for m in self._money.moneys(actor.operator_id, meter_ids)}
        states = {s.meter_id: s for s in self._readings.get_states(actor.operator_id, site.site_id, meter_ids)}
        views = [MeterAccountView(meters[m], moneys.get(m), _balance_or_none(moneys.get(m), states.get(m)))
                 for m in meter_ids if m in meters]
        return stored, views, self._lines(actor.operator_id, self._money.account_entries(actor.operator_id,
                                                                                          account_id))

    # -- the desk --------------------------------------------------------------------------
    def sell(self, actor: Actor, site_id: str, meter_id: str, *, request_id: str, amount: str = "",
             energy: str = "", channel: str = "cash") -> Entry:
        actor.require(Permission.SALES_SELL)
        meter = self._meter(actor, site_id, meter_id)
        request_id = cashier_request_id(_token(request_id))
        paid_by = _channel(channel)
        quantity, priced = self._quantity(meter, amount, energy)
        policy = self._policy(meter)

        def rule(account: account_rules.CustomerAccount, balance: int, request: Request) -> Entry:
            # A sale of an amount only records the price in force: it was looked up meanwhile (see _quantity).
            sold = quantity if priced is None else replace(quantity, price_e4=priced.result())
            return account_rules.sell(account, meter.meter_id, sold, balance_minor=balance, policy=policy,
                                      request=request)

        return self._post(actor, meter, request_id, "sale.create", quantity.amount_minor, rule, paid_by)

    def refund(self, actor: Actor, site_id: str, meter_id: str, *, request_id: str, amount: str,
               channel: str = "cash") -> Entry:
        actor.require(Permission.SALES_REFUND)
        meter = self._meter(actor, site_id, meter_id)
        amount_minor = parse_amount(amount or "", field="amount")
        return self._post(actor, meter, cashier_request_id(_token(request_id)), "refund.create", amount_minor,
                          lambda account, balance, request: account_rules.refund(
                              account, meter.meter_id, amount_minor, remaining_minor=balance, request=request),
                          _channel(channel))

    def reverse(self, actor: Actor, site_id: str, entry_id: str, *, request_id: str, reason: str) -> Entry:
        """A mistaken sale or refund undone by a new, opposite entry (administrators only)."""
        actor.require(Permission.SALES_REVERSE)
        check_id(entry_id, field="entry_id")
        original = self._money.entry(actor.operator_id, entry_id)
        if original is None or original.meter_id is None:
            raise NotFound("no such sale or refund")
        meter = self._meter(actor, site_id, original.meter_id)
        intent_id = original.request_id.removeprefix("stripe:")
        if original.kind is EntryKind.SALE and original.channel is Channel.CARD and self.refunded_outside is not None \
                and original.request_id == stripe_request_id(intent_id):
            outside = self.refunded_outside(actor.operator_id, intent_id)
            if outside:
                raise Conflict(f"{format_amount(outside)} of this card payment was refunded in the processor's "
                               f"dashboard and taken back from the meter; refund anything more at the desk")
        history = self._money.meter_entries(actor.operator_id, meter.meter_id, with_charges=False)
        reversal = self._post(actor, meter, cashier_request_id(_token(request_id)), "sale.reverse", None,
                              lambda account, balance, request: account_rules.reverse(
                                  account, original, history, reason, balance_minor=balance,
                                  policy=self._policy(meter), request=request), original.channel,
                              entry_id=reversal_entry_id(actor.operator_id, original.entry_id))
        if original.kind is EntryKind.SALE and original.channel is Channel.CARD and self.card_reversed is not None:
            self.card_reversed(meter, original, reversal)
        return reversal

    def card_sale(self, operator_id: str, site_id: str, meter_id: str, amount_minor: int, *,
                  payment_intent_id: str, payer: str) -> Entry:
        """A card payment that succeeded becomes a sale, posted and delivered like a cashier's; the payment
        intent's id is its request id, so a webhook delivered twice (or raced) posts once."""
        meter = self._meter_of(operator_id, site_id, meter_id)
        quantity = account_rules.SaleQuantity(amount_minor, price_e4=self._price_now(meter))
        return self._post(Poster(operator_id, payer), meter, stripe_request_id(payment_intent_id), "sale.card",
                          amount_minor, lambda account, balance, request: account_rules.sell(
                              account, meter.meter_id, quantity, balance_minor=balance, policy=self._policy(meter),
                              request=request), Channel.CARD)

    def card_refund(self, operator_id: str, site_id: str, meter_id: str, amount_minor: int, *, request_id: str,
                    payer: str) -> Entry:
        """Money a card payment got back outside Voltvend (the processor's dashboard) taken back out of the
        meter's credit, by the refund rules (only unused credit; a prepaid meter gets a refund command)."""
        meter = self._meter_of(operator_id, site_id, meter_id)
        return self._post(Poster(operator_id, payer), meter, request_id, "refund.card", amount_minor,
                          lambda account, balance, request: account_rules.refund(
                              account, meter.meter_id, amount_minor, remaining_minor=balance, request=request),
                          Channel.CARD)

    def check_top_up(self, operator_id: str, site_id: str, meter_id: str, amount_minor: int) -> None:
        """Before a payment is taken: the meter is on an open account and the amount passes the top-up limits and
        the hoarding limit now (ValidationError or Conflict otherwise)."""
        meter = self._meter_of(operator_id, site_id, meter_id)
        money = self._money.money(operator_id, meter_id)
        if money is None or money.account_id is None:
            raise Conflict(f"meter {meter_id} is not on an open account")
        states = self._readings.get_states(operator_id, site_id, [meter_id])
        policy = self._policy(meter)
        policy.check_top_up(amount_minor)
        policy.check_hoarding(spendable_balance(money, states[0] if states else None), amount_minor)

    def _meter_of(self, operator_id: str, site_id: str, meter_id: str) -> Meter:
        check_id(meter_id, field="meter_id")
        found = self._tenancy.get_meters(operator_id, site_id, [meter_id])
        if not found:
            raise NotFound("no such meter")
        return found[0]

    def _post(self, actor: Poster | Actor, meter: Meter, request_id: str, action: str, amount_minor: int | None,
              rule: Callable[[account_rules.CustomerAccount, int, Request], Entry], channel: Channel, *,
              entry_id: str | None = None) -> Entry:
        """Judge and post one entry. ``entry_id``: where a retry of this request would find its entry, when that
        is not derived from the request (a reversal's is derived from the entry it reverses)."""
        op = actor.operator_id
        lookup = entry_id or entry_id_for(op, request_id)

        def earlier() -> Entry | None:
            return posted_before(self._money, op, lookup, meter_id=meter.meter_id, amount_minor=amount_minor,
                                 request_id=request_id if entry_id else None)

        found = earlier()
        if found is not None:
            return found
        seen: dict[str, MeterMoney] = {}

        def judge() -> tuple[MoneyChange, Entry]:
            now = self._clock.now()
            money = self._money.money(op, meter.meter_id)
            if money is None or money.account_id is None:
                raise Conflict(f"meter {meter.meter_id} is not on an open account: open one first")
            stored = self._money.account(op, money.account_id)
            if stored is None:
                raise Conflict(f"account {money.account_id} of meter {meter.meter_id} is missing")
            states = self._readings.get_states(op, meter.site_id, [meter.meter_id])
            balance = spendable_balance(money, states[0] if states else None)
            try:
                entry = rule(stored.account, balance, Request(op, request_id, actor.username, channel, now))
            except DomainError:
                # The same request may have landed since the first look (a double submit): then the balance it
                # is judged on includes itself. Answer with what it posted rather than a refusal.
                again = earlier()
                if again is None:
                    raise
                return MoneyChange(), again
            record = operation(op, actor.username, action, f"meter:{meter.meter_id}", now, source_ip=actor.source_ip,
                               after={"entry": entry.entry_id, "amount": format_amount(entry.amount_minor),
                                      "channel": entry.channel.value, "reason": entry.reason})
            seen["before"] = money
            return MoneyChange((entry,), (money.posting(entry),), record=record, at=now), entry

        try:
            entry = commit_judged(self._money, judge)
        except AlreadyPosted as race:  # the same request, posted by a concurrent retry a moment ago
            return stored_entry(self._money, op, race)
        if "before" in seen:  # else answered with what the same request posted a moment ago
            self._after_post(meter, entry, seen["before"])
        return entry

    def _after_post(self, meter: Meter, entry: Entry, before: MeterMoney) -> None:
        """Send the credit to a prepaid meter; let a cloud-billed meter's supply follow its balance."""
        if entry.delivers_to_meter and self.delivered is not None:
            self.delivered(meter.operator_id, meter.meter_id)
        if not before.is_prepaid and self.balance_moved is not None:
            self.balance_moved(meter.operator_id, meter.site_id, meter.meter_id, before.credit_minor,
                               before.credit_minor + entry.credit_change(meter.meter_id))

    def _quantity(self, meter: Meter, amount: str,
                  energy: str) -> tuple[account_rules.SaleQuantity, Future[int | None] | None]:
        """What is sold. An amount needs the price in force only to record it, so that lookup (a few queries)
        runs beside the sale's own reads and is returned as a future; energy needs the price to know the amount."""
        if bool((amount or "").strip()) == bool((energy or "").strip()):
            raise ValidationError("give an amount or an energy, not both", field="amount")
        if (amount or "").strip():
            sold = account_rules.SaleQuantity(parse_amount(amount, field="amount"))
            return sold, _price_lookups.submit(self._price_now, meter)
        kwh = Decimal(parse_amount(energy, field="energy"))  # 0.01 kWh steps, parsed exactly like an amount
        price = self._price_now(meter)
        if price is None:
            raise ValidationError("the site has no tariff: sell an amount instead", field="energy")
        return account_rules.SaleQuantity.of_energy(int(kwh), price), None

    def _policy(self, meter: Meter) -> account_rules.SalesPolicy:
        site = self._tenancy.get_site(meter.operator_id, meter.site_id) or Site(meter.operator_id, meter.site_id, "")
        limit = effective_settings(site, meter).hoarding_limit_minor  # the meter's own limit, else the site's
        return account_rules.SalesPolicy(hoarding_limit_minor=limit, max_top_up_minor=min(MAX_TOP_UP_MINOR, limit))

    def _meter(self, actor: Actor, site_id: str, meter_id: str) -> Meter:
        return self._meter_of(actor.operator_id, site_in_scope(self._tenancy, actor, site_id).site_id, meter_id)

    # -- queries ---------------------------------------------------------------------------
    def meter_sales(self, actor: Actor, site_id: str, meter_id: str) -> tuple[MeterAccountView, list[SaleLine]]:
        actor.require(Permission.METERS_VIEW)
        meter = self._meter(actor, site_id, meter_id)
        money = self._money.money(actor.operator_id, meter_id)
        states = self._readings.get_states(actor.operator_id, meter.site_id, [meter_id])
        view = MeterAccountView(meter, money, _balance_or_none(money, states[0] if states else None))
        return view, self.lines_of(actor.operator_id, meter_id)

    def sales(self, actor: Actor, site_id: str, month: str, *, kind: str = "", channel: str = "",
              cashier: str = "", meter_id: str = "") -> list[SaleLine]:
        """One month's entries on the site's meters, newest first, filtered as the clerk asks."""
        actor.require(Permission.METERS_VIEW)
        site = site_in_scope(self._tenancy, actor, site_id)
        _check_month(month)
        site_meters = {m.meter_id for m in self._tenancy.list_meters(actor.operator_id, site.site_id)}
        entries = [e for e in self._money.journal(actor.operator_id, month)
                   if e.meter_id in site_meters and (not kind or e.kind.value == kind)
                   and (not channel or e.channel.value == channel) and (not cashier or e.actor == cashier)
                   and (not meter_id or e.meter_id == meter_id)]
        return list(reversed(self._lines(actor.operator_id, entries)))

    def sale(self, actor: Actor, site_id: str, entry_id: str) -> tuple[SaleLine, Meter]:
        actor.require(Permission.METERS_VIEW)
        check_id(entry_id, field="entry_id")
        entry = self._money.entry(actor.operator_id, entry_id)
        if entry is None or entry.meter_id is None:
            raise NotFound("no such sale")
        meter = self._meter(actor, site_id, entry.meter_id)
        return self._lines(actor.operator_id, [entry])[0], meter

    def receipt(self, actor: Actor, site_id: str, entry_id: str) -> Receipt:
        """A sale's, refund's or reversal's receipt, in the operator's time zone."""
        line, meter = self.sale(actor, site_id, entry_id)
        return self._receipt(actor.operator_id, meter, line)

    def meter_receipt(self, operator_id: str, meter: Meter, entry_id: str) -> Receipt:
        """A receipt of one meter's entry, for whoever may see that meter (a tenant of its account)."""
        check_id(entry_id, field="entry_id")
        entry = self._money.entry(operator_id, entry_id)
        if entry is None or entry.meter_id != meter.meter_id:
            raise NotFound("no such receipt")
        return self._receipt(operator_id, meter, self._lines(operator_id, [entry])[0])

    def _receipt(self, op: str, meter: Meter, line: SaleLine) -> Receipt:
        return compose_receipt(self._tenancy, self._money, op, meter, line)

    def lines_of(self, operator_id: str, meter_id: str) -> list[SaleLine]:
        """A meter's entries but its interval charges, with their delivery states, oldest first (callers check who
        may see them)."""
        return self._lines(operator_id, self._money.meter_entries(operator_id, meter_id, with_charges=False))

    def _lines(self, operator_id: str, entries: list[Entry]) -> list[SaleLine]:
        delivering = [e for e in entries if e.delivers_to_meter and e.meter_id]
        in_queues = {d.delivery_id: d for m in self._money.moneys(operator_id, {e.meter_id for e in delivering
                                                                                 if e.meter_id})
                     for d in m.queue.deliveries}
        missing = [e.entry_id for e in delivering if e.entry_id not in in_queues]
        finished = self._money.delivery_records(operator_id, missing) if missing else {}
        return [SaleLine(e, in_queues.get(e.entry_id) or finished.get(e.entry_id)) for e in entries]


def _on_account(money: MeterMoney, account_id: str) -> MeterMoney:
    return replace(money, account_id=account_id)


def _balance_or_none(money: MeterMoney | None, state: StoredState | None) -> int | None:
    if money is None:
        return None
    try:
        return spendable_balance(money, state)
    except ValidationError:
        return None


def _check_month(month: str) -> None:
    try:
        datetime.strptime(month, "%Y-%m")
    except ValueError as error:
        raise ValidationError("month as YYYY-MM", field="month") from error


