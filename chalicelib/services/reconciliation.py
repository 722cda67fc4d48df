"""Reconciliation (issue 6.6): the ledger against the meters' registers, and the stored balances against the fold
of the entries. Each discrepancy becomes an alarm with its evidence, once, until a person acknowledges it.

The fold goes on from a checkpoint per meter (what it had folded, through which entry): entries are immutable, so
an hour reads only what was posted since. The checkpoint moves only past entries old enough that nothing can still
commit behind them, and only when the fold agrees with the stored credit.

A prepaid meter is compared only while nothing of ours is in flight to it, and only on a reading taken at the
count we last confirmed (otherwise a delivery landing between the reading and now would look like a fault).
Card payments: every card sale of the processor's has a payment behind it, of the same amount, and every payment
that must have become a sale is one (the payment records come from services.payments).
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from chalicelib.domain.alarms import SEVERITY, Alarm, AlarmKind, Subject, SubjectKind
from chalicelib.domain.credit_fold import advanced, credit_balance, entries_after
from chalicelib.domain.delivery import (
    DeliveryState,
    Discrepancy,
    DiscrepancyKind,
    Payment,
    reconcile_meter,
    reconcile_payments,
)
from chalicelib.domain.ledger import Entry
from chalicelib.domain.meter_money import MeterMoney
from chalicelib.domain.readings import StoredState
from chalicelib.ports import AlarmRepository, Clock, MoneyRepository, ReadingsRepository
from chalicelib.services.money_posting import registers_of

LOG = logging.getLogger("voltvend.reconciliation")


@dataclass(frozen=True)
class Finding:
    site_id: str
    discrepancy: Discrepancy


class Reconciliation:
    def __init__(self, money: MoneyRepository, readings: ReadingsRepository, alarms: AlarmRepository,
                 clock: Clock) -> None:
        self._money = money
        self._readings = readings
        self._alarms = alarms
        self._clock = clock
        # Set at start-up: per site, the processor's card sales and the payments behind them (services.payments).
        self.card_payments: Callable[[str], dict[str, tuple[list[Entry], list[Payment]]]] | None = None

    def run(self, operator_id: str) -> list[Finding]:
        """Compare every meter on an account; raise an alarm for each new discrepancy; return all found."""
        by_site: dict[str, list[MeterMoney]] = defaultdict(list)
        for money in self._money.all_moneys(operator_id):
            if money.account_id is not None:
                by_site[money.site_id].append(money)
        findings = []
        for site_id, moneys in by_site.items():
            states = {s.meter_id: s for s in self._readings.get_states(operator_id, site_id,
                                                                        [m.meter_id for m in moneys])}
            for money in moneys:
                findings += [Finding(site_id, d) for d in self._meter(money, states.get(money.meter_id))]
            self._raise(operator_id, site_id, [f.discrepancy for f in findings if f.site_id == site_id])
        for site_id, (card_sales, payments) in (self.card_payments(operator_id) if self.card_payments else {}).items():
            paid = [Finding(site_id, d) for d in reconcile_payments(card_sales, payments)]
            self._raise(operator_id, site_id, [f.discrepancy for f in paid])
            findings += paid
        return findings

    def _meter(self, money: MeterMoney, state: StoredState | None) -> list[Discrepancy]:
        found = self._stored_credit(money)
        head = money.queue.head()
        registers = registers_of(state)
        in_flight = head is not None and head.state is DeliveryState.SENT
        if not money.is_prepaid or money.baseline is None or registers is None or in_flight \
                or registers.purchase_count != money.queue.confirmed_count:
            return found
        # A prepaid meter is never charged by the cloud: its history is its sales, refunds and transfers.
        entries = self._money.meter_entries(money.operator_id, money.meter_id, with_charges=False)
        return found + reconcile_meter(money.meter_id, money.baseline, registers, entries, money.queue)

    def _stored_credit(self, money: MeterMoney) -> list[Discrepancy]:
        """The stored credit against the fold of the meter's entries, folded on from the last checkpoint: a
        cloud-billed meter gathers a charge per interval, and the hour must not re-read its years."""
        op, meter_id = money.operator_id, money.meter_id
        checkpoint = self._money.fold_checkpoint(op, meter_id)
        for start in ((checkpoint, None) if checkpoint is not None else (None,)):
            since = start.through_at if start else None
            new = entries_after(start, self._money.meter_entries(op, meter_id, since))
            again = self._money.money(op, meter_id)
            if again is None or again.version != money.version:
                LOG.info("meter %s: its money moved while its entries were read; judged next hour", meter_id)
                return []
            stored, derived = -money.credit_minor, credit_balance(meter_id, start, new)
            if stored == derived:
                moved = advanced(meter_id, start, new, self._clock.now())
                if moved is not None:
                    self._money.save_fold_checkpoint(op, meter_id, moved)
                return []
            if start is not None:
                LOG.warning("meter %s: the fold from its checkpoint disagrees; folding its whole history", meter_id)
        return [Discrepancy(DiscrepancyKind.STORED_BALANCE, meter_id,
                            message=f"stored credit {stored}, entries say {derived}",
                            evidence={"stored": stored, "derived": derived})]

    def _raise(self, operator_id: str, site_id: str, found: list[Discrepancy]) -> None:
        if not found:
            return
        active = {a.alarm_id for a in self._alarms.alarms(operator_id, site_id) if a.cleared_at is None}
        now = self._clock.now()
        fresh = []
        for discrepancy in found:
            alarm_id = _alarm_id(discrepancy)
            if alarm_id not in active:
                evidence = {k: v for k, v in discrepancy.evidence.items()} | {"check": str(discrepancy.kind),
                                                                               "message": discrepancy.message}
                fresh.append(Alarm(alarm_id, AlarmKind.LEDGER_DISCREPANCY, Subject(SubjectKind.METER,
                                                                                   discrepancy.subject),
                                   SEVERITY[AlarmKind.LEDGER_DISCREPANCY], now, evidence))
        if fresh:
            self._alarms.save(operator_id, site_id, [], fresh)


def _alarm_id(discrepancy: Discrepancy) -> str:
    """The same discrepancy seen again is the same alarm: one record until someone acknowledges it."""
    digest = hashlib.sha256(repr(sorted(discrepancy.evidence.items())).encode()).hexdigest()[:10]
    return f"{discrepancy.subject}:{AlarmKind.LEDGER_DISCREPANCY.value}:{discrepancy.kind}:{digest}"
