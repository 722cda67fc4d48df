"""Changing a customer account after it is opened (SPEC 11–14): add a meter, move a retrofitted meter's balance
into its replacement, close the account. The rules are domain.accounts'; this reads the figures they rule on,
writes the result in one transaction (services.money_posting) and sends any meter command it queued."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

from chalicelib.domain import accounts as account_rules
from chalicelib.domain.access import Permission
from chalicelib.domain.actor import Actor
from chalicelib.domain.errors import Conflict, NotFound, ValidationError
from chalicelib.domain.ledger import Channel, Entry, Request, entry_id_for
from chalicelib.domain.meter_money import MeterMoney
from chalicelib.domain.readings import StoredState
from chalicelib.domain.settings import effective_settings
from chalicelib.domain.tenancy import BillingMode, Meter, Site, check_id
from chalicelib.ports import Clock, MoneyChange, MoneyRepository, ReadingsRepository, StoredAccount, TenancyRepository
from chalicelib.services.audit import operation
from chalicelib.services.money_posting import (
    commit_judged,
    fresh_money,
    register_minor,
    spendable_balance,
)
from chalicelib.services.scoping import site_in_scope

FINAL_READING_SLACK = timedelta(minutes=5)  # a final reading may be one reading interval old, plus this


def _token(text: str) -> str:
    token = (text or "").strip()
    if not 8 <= len(token) <= 80 or not all(c.isalnum() or c in "-_:." for c in token):
        raise ValidationError("request id: 8–80 letters, digits, '-', '_', ':' or '.'", field="request_id")
    return token


class AccountChanges:
    def __init__(self, tenancy: TenancyRepository, money: MoneyRepository, readings: ReadingsRepository,
                 clock: Clock) -> None:
        self._tenancy = tenancy
        self._money = money
        self._readings = readings
        self._clock = clock
        self.delivered: Callable[[str, str], object] | None = None  # the delivery worker's kick, set at start-up

    def add_meter(self, actor: Actor, site_id: str, account_id: str, meter_id: str, *, request_id: str) -> Entry | None:
        """Put one more meter on an open account; what a prepaid meter holds becomes its opening balance."""
        actor.require(Permission.ACCOUNTS_MANAGE)
        site, stored = self._account(actor, site_id, account_id)
        meter = self._meter(site, meter_id)
        token = _token(request_id)

        def judge() -> tuple[MoneyChange, Entry | None]:
            now = self._clock.now()
            state = self._state(meter)
            money = fresh_money(actor.operator_id, site.site_id, meter_id,
                                meter.billing_mode is BillingMode.PREPAID_METER, state,
                                self._money.money(actor.operator_id, meter_id))
            held = spendable_balance(money, state) - money.credit_minor if money.is_prepaid else 0
            request = Request(actor.operator_id, f"add-meter:{token}", actor.username, Channel.SYSTEM, now)
            added = account_rules.add_meter(stored.account, account_rules.MeterOpening(meter_id, meter.billing_mode,
                                                                                       held), request)
            for entry in added.entries:
                money = money.posting(entry)
            record = operation(actor.operator_id, actor.username, "account.add_meter", f"account:{account_id}", now,
                               source_ip=actor.source_ip, after={"meter": meter_id})
            change = MoneyChange(added.entries, (replace(money, account_id=account_id),),
                                 StoredAccount(added.account, stored.version), record, at=now)
            return change, added.entries[0] if added.entries else None

        return commit_judged(self._money, judge)

    def transfer(self, actor: Actor, site_id: str, account_id: str, old_meter_id: str, new_meter_id: str, *,
                 request_id: str) -> tuple[Entry, ...]:
        """Retrofit: the old meter's remaining credit moves into the new one (written into it when prepaid), the
        energy the old one used is charged, and the old meter leaves the account."""
        actor.require(Permission.ACCOUNTS_MANAGE)
        site, _ = self._account(actor, site_id, account_id)
        old, new = self._meter(site, old_meter_id), self._meter(site, new_meter_id)
        token = _token(request_id)
        if self._money.entry(actor.operator_id, entry_id_for(actor.operator_id, f"transfer:{token}/transfer")):
            raise Conflict("this transfer was made already")

        def judge() -> tuple[MoneyChange, tuple[Entry, ...]]:
            now = self._clock.now()
            _, stored = self._account(actor, site_id, account_id)
            old_money, new_money = self._joined(old), self._joined(new)
            _no_pending(old_money, new_money)
            old_remaining = self._final_remaining(old_money, self._fresh_state(site, old))
            new_balance = spendable_balance(new_money, self._state(new))
            request = Request(actor.operator_id, f"transfer:{token}", actor.username, Channel.SYSTEM, now)
            moved = account_rules.transfer_balance(
                stored.account, old.meter_id, new.meter_id, old_remaining_minor=old_remaining,
                old_ledger_credit_minor=old_money.credit_minor, new_balance_minor=new_balance,
                policy=_policy(site, new), request=request)
            moneys = _post_all({old.meter_id: old_money, new.meter_id: new_money}, moved.entries)
            moneys[old.meter_id] = replace(moneys[old.meter_id], account_id=None)
            record = operation(actor.operator_id, actor.username, "account.transfer", f"account:{account_id}", now,
                               source_ip=actor.source_ip, after={"from": old.meter_id, "to": new.meter_id,
                                                                 "amount": old_remaining})
            return MoneyChange(moved.entries, tuple(moneys.values()), StoredAccount(moved.account, stored.version),
                               record, at=now), moved.entries

        entries = commit_judged(self._money, judge)
        self._kick(actor.operator_id, [new.meter_id])
        return entries

    def close(self, actor: Actor, site_id: str, account_id: str, *,
              request_id: str) -> account_rules.ClosingRecord:
        """Close every meter at its final reading and settle: unused credit refunded (taken out of a prepaid
        meter by a refund command), arrears recorded as owed, a closing record kept."""
        actor.require(Permission.ACCOUNTS_MANAGE)
        site, stored = self._account(actor, site_id, account_id)
        if not stored.account.is_open:
            if stored.closing is not None:
                return stored.closing  # the same close submitted again
            raise Conflict(f"account {account_id} is closed")
        token = _token(request_id)
        meters = {m.meter_id: self._meter(site, m.meter_id) for m in stored.account.meters if m.is_open}

        def judge() -> tuple[MoneyChange, account_rules.ClosingRecord]:
            now = self._clock.now()
            _, current = self._account(actor, site_id, account_id)
            moneys = {m: self._joined(meter) for m, meter in meters.items()}
            pending = [m for m, money in moneys.items() if money.queue.undelivered()]
            finals = []
            for meter_id, meter in meters.items():
                state = self._fresh_state(site, meter)
                energy = register_minor(state, "energy_total") if state else None  # 0.01 kWh, like an amount
                finals.append(account_rules.FinalReading(meter_id, energy or 0,
                                                         self._final_remaining(moneys[meter_id], state)))
            request = Request(actor.operator_id, f"close:{token}", actor.username, Channel.SYSTEM, now)
            credit = {m: money.credit_minor for m, money in moneys.items()}
            closed = account_rules.close_account(current.account, finals, credit, request,
                                                 meters_with_pending_deliveries=pending)
            posted = _post_all(moneys, [e for e in closed.entries if e.meter_id])
            left = tuple(replace(money, account_id=None) for money in posted.values())
            record = operation(actor.operator_id, actor.username, "account.close", f"account:{account_id}", now,
                               source_ip=actor.source_ip, after={"refund": closed.record.refund_minor,
                                                                 "amount_due": closed.record.amount_due_minor})
            return MoneyChange(closed.entries, left, StoredAccount(closed.account, current.version, closed.record),
                               record, at=now), closed.record

        record = commit_judged(self._money, judge)
        self._kick(actor.operator_id, list(meters))
        return record

    # -- reading what the rules rule on ----------------------------------------------------------
    def _account(self, actor: Actor, site_id: str, account_id: str) -> tuple[Site, StoredAccount]:
        site = site_in_scope(self._tenancy, actor, site_id)
        check_id(account_id, field="account_id")
        stored = self._money.account(actor.operator_id, account_id)
        if stored is None:
            raise NotFound("no such account")
        on_site = {m.meter_id for m in self._tenancy.get_meters(actor.operator_id, site.site_id,
                                                                [m.meter_id for m in stored.account.meters])}
        if not on_site:
            raise NotFound("no such account on this site")
        return site, stored

    def _meter(self, site: Site, meter_id: str) -> Meter:
        check_id(meter_id, field="meter_id")
        found = self._tenancy.get_meters(site.operator_id, site.site_id, [meter_id])
        if not found:
            raise NotFound(f"no meter {meter_id} on this site")
        return found[0]

    def _joined(self, meter: Meter) -> MeterMoney:
        money = self._money.money(meter.operator_id, meter.meter_id)
        if money is None or money.account_id is None:
            raise Conflict(f"meter {meter.meter_id} is not on an open account")
        return money

    def _state(self, meter: Meter) -> StoredState | None:
        states = self._readings.get_states(meter.operator_id, meter.site_id, [meter.meter_id])
        return states[0] if states else None

    def _fresh_state(self, site: Site, meter: Meter) -> StoredState | None:
        """The final reading: a prepaid meter's must be recent, or the balance settled would be stale."""
        state = self._state(meter)
        if meter.billing_mode is not BillingMode.PREPAID_METER:
            return state
        oldest = self._clock.now() - timedelta(seconds=site.reading_interval_s) - FINAL_READING_SLACK
        if state is None or state.last_answer_at is None or state.last_answer_at < oldest:
            raise ValidationError(f"meter {meter.meter_id} needs a fresh reading first: read it now, then retry")
        return state

    def _final_remaining(self, money: MeterMoney, state: StoredState | None) -> int:
        if not money.is_prepaid:
            return money.credit_minor
        remaining = register_minor(state, "remaining_amount")
        if remaining is None:
            raise ValidationError(f"meter {money.meter_id} has no remaining amount in its last reading")
        return remaining

    def _kick(self, operator_id: str, meter_ids: list[str]) -> None:
        for meter_id in meter_ids:
            if self.delivered is not None:
                self.delivered(operator_id, meter_id)


def _no_pending(*moneys: MeterMoney) -> None:
    waiting = [m.meter_id for m in moneys if m.queue.undelivered()]
    if waiting:
        raise Conflict(f"deliveries are still on their way to {', '.join(waiting)}: wait until they land")


def _post_all(moneys: dict[str, MeterMoney], entries: tuple[Entry, ...] | list[Entry]) -> dict[str, MeterMoney]:
    """Each meter's state after every entry touching its credit (a transfer touches two)."""
    posted = dict(moneys)
    for entry in entries:
        for meter_id, money in posted.items():
            if entry.credit_change(meter_id) or entry.meter_id == meter_id:
                posted[meter_id] = money.posting(entry)
    return posted


def _policy(site: Site, meter: Meter) -> account_rules.SalesPolicy:
    return account_rules.SalesPolicy(hoarding_limit_minor=effective_settings(site, meter).hoarding_limit_minor)

