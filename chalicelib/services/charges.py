"""Cloud-billed meters' consumption posted to the ledger (issue 6.5): each interval's priced energy becomes a
charge entry, keyed by meter and interval so a re-sent bus run or a retry never charges twice. The balance may
go below zero (arrears); the alarm rules read it from the ledger for these meters."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from chalicelib.domain import accounts as account_rules
from chalicelib.domain.ledger import Entry, charge_request_id, entry_id_for
from chalicelib.domain.meter_money import MeterMoney
from chalicelib.domain.readings import Usage
from chalicelib.ports import AlreadyPosted, Clock, MoneyChange, MoneyRepository
from chalicelib.services.money_posting import commit_judged


class ChargePosting:
    def __init__(self, money: MoneyRepository, clock: Clock) -> None:
        self._money = money
        self._clock = clock
        # Set at start-up: (operator, site, meter, balance before, after) → the supply follows the balance.
        self.balance_moved: Callable[[str, str, str, int, int], object] | None = None

    def post(self, operator_id: str, usage: Sequence[Usage]) -> list[Entry]:
        """Charge each interval of a meter on an account; meters on no account are priced but not charged."""
        posted = []
        for used in usage:
            if used.charge_minor <= 0:
                continue
            start = datetime.fromtimestamp(used.start_ms / 1000, UTC)
            if self._money.entry(operator_id, entry_id_for(operator_id, charge_request_id(used.meter_id, start))):
                continue
            try:
                entry = self._charge(operator_id, used, start)
            except AlreadyPosted:
                continue
            if entry is not None:
                posted.append(entry)
        return posted

    def _charge(self, operator_id: str, used: Usage, start: datetime) -> Entry | None:
        seen: dict[str, MeterMoney] = {}

        def judge() -> tuple[MoneyChange, Entry | None]:
            money = self._money.money(operator_id, used.meter_id)
            stored = self._money.account(operator_id, money.account_id) if money and money.account_id else None
            if money is None or stored is None or money.is_prepaid:
                return MoneyChange(), None  # nothing to write: the meter is on no account
            entry = account_rules.charge(stored.account, used.meter_id, used.charge_minor,
                                         energy_centi_kwh=used.energy_centi_kwh, interval_start=start,
                                         created_at=self._clock.now())
            seen["before"] = money
            return MoneyChange((entry,), (money.posting(entry),), at=entry.created_at), entry

        entry = commit_judged(self._money, judge)
        if entry is not None and self.balance_moved is not None:
            before = seen["before"]
            self.balance_moved(operator_id, before.site_id, used.meter_id, before.credit_minor,
                               before.credit_minor + entry.credit_change(used.meter_id))
        return entry

    def balances(self, operator_id: str, meter_ids: list[str]) -> dict[str, int]:
        """The ledger credit of those meters that are on an account (for the alarm rules)."""
        return {m.meter_id: m.credit_minor for m in self._money.moneys(operator_id, meter_ids)
                if m.account_id is not None and not m.is_prepaid}
