"""Posting whole minor units without drift: the sub-minor remainder is carried, never dropped."""

from __future__ import annotations

from dataclasses import dataclass, replace

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.tariffs.pricing import MICRO_PER_MINOR, micro_to_minor
from chalicelib.domain.tariffs.timeline import BillingMonth


@dataclass(frozen=True)
class ChargeAccumulator:
    """One meter's charges in one billing month. After every post, the posted charges add up to the
    month's exact cost rounded (banker's rounding): each post is that rounded running total minus what
    was already posted. Persist the three fields with the meter; a later month starts afresh."""

    month: BillingMonth
    exact_micro: int = 0  # exact costs posted this month, in 1/1,000,000 of the currency
    posted_minor: int = 0  # charges posted this month, in minor units

    @property
    def carried_micro(self) -> int:
        """The exact cost not yet charged (negative: charged ahead); never more than half a minor unit."""
        return self.exact_micro - self.posted_minor * MICRO_PER_MINOR

    def post(self, month: BillingMonth, cost_micro: int) -> tuple[ChargeAccumulator, int]:
        """Add an exact cost to ``month``; the charge to post now (minor units) and the new state."""
        if month < self.month:
            raise ValidationError(f"{month} is closed: this meter is already charging {self.month}", field="month")
        current = self if month == self.month else ChargeAccumulator(month)
        exact = current.exact_micro + cost_micro
        due = micro_to_minor(exact)
        return replace(current, exact_micro=exact, posted_minor=due), due - current.posted_minor

    def post_all(
        self, costs_by_month: tuple[tuple[BillingMonth, int], ...]
    ) -> tuple[ChargeAccumulator, tuple[int, ...]]:
        """Post an interval's per-month costs in order (``PricedInterval.cost_micro_by_month()`` or
        ``TariffPricer.cost_by_month``); one charge per month, in the same order."""
        state, charges = self, []
        for month, cost_micro in costs_by_month:
            state, charge = state.post(month, cost_micro)
            charges.append(charge)
        return state, tuple(charges)
