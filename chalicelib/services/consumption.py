"""Pricing what cloud-billed (plain) meters used between two readings (ARCHITECTURE decision 6).

Each interval's energy is the difference of the energy register, priced by the site's tariff history
(time of use, ladder, versions) through the tariff engine's compiled tables. Charges come from a
per-meter-month accumulator, so posted charges always add up to the month's exact cost. The memory
(month, month energy, accumulator) travels with the meter's state; the ledger posts ``charge_minor``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from chalicelib.domain.readings import StoredState, Usage
from chalicelib.domain.tariffs import BillingMonth, ChargeAccumulator, RatePrices, TariffPricer, plan_ladder_push
from chalicelib.domain.tenancy import BillingMode, Meter
from chalicelib.ports import TariffRepository, TenancyRepository

PRICER_CACHE_S = 30.0


@dataclass(frozen=True)
class PricePush:
    meter: Meter
    prices: RatePrices


def centi_kwh(values: Mapping[str, object]) -> int | None:
    value = values.get("energy_total")
    return None if value is None else int(Decimal(str(value)) * 100)


def month_label(month: BillingMonth) -> str:
    return f"{month.year:04d}-{month.month:02d}"


class ConsumptionBilling:
    def __init__(self, tariffs: TariffRepository, tenancy: TenancyRepository) -> None:
        self._tariffs = tariffs
        self._tenancy = tenancy
        self._pricers: dict[tuple[str, str], tuple[float, dict[str, TariffPricer]]] = {}

    def bill(self, operator_id: str, site_id: str, meters: Mapping[str, Meter], befores: Mapping[str, StoredState],
             states: list[StoredState]) -> tuple[list[StoredState], list[Usage], list[PricePush]]:
        """The states with their memory moved on, the priced usage of cloud-billed meters, and the prices
        prepaid meters must get now (a ladder tier crossed, the month rolled over, the tariff changed)."""
        pricers = self._pricers_of(operator_id, site_id)
        if not pricers:
            return states, [], []
        moved: dict[str, StoredState] = {}
        usage: list[Usage] = []
        pushes: list[PricePush] = []
        for state in states:
            meter, before = meters.get(state.meter_id), befores.get(state.meter_id)
            pricer = pricers.get(f"meter:{state.meter_id}") or pricers.get("site")  # a meter's own price wins
            if meter is None or before is None or pricer is None:
                continue
            if meter.billing_mode is BillingMode.CLOUD_BILLED and (priced := self._price(pricer, before, state)):
                moved[state.meter_id], interval = priced
                usage.append(interval)
            elif meter.billing_mode is BillingMode.PREPAID_METER and (laddered := self._ladder(pricer, before, state)):
                moved[state.meter_id], push = laddered
                if push is not None:
                    pushes.append(PricePush(meter, push))
        return [moved.get(s.meter_id, s) for s in states], usage, pushes

    def _ladder(self, pricer: TariffPricer, before: StoredState,
                after: StoredState) -> tuple[StoredState, RatePrices | None] | None:
        interval = _interval(before, after)
        if interval is None:
            return None
        start_s, end_s, energy = interval
        memory = before.billing or {}
        start = datetime.fromtimestamp(start_s, pricer.tz)
        same_month = memory.get("month") == month_label(BillingMonth.of(start_s, pricer.tz))
        plan = plan_ladder_push(pricer.history, pricer.tz, start, datetime.fromtimestamp(end_s, pricer.tz), energy,
                                int(memory.get("month_energy", 0)) if same_month else 0)
        after_memory = {"month": month_label(plan.month), "month_energy": plan.month_energy_after}
        first_sight = "month" not in memory  # prices were set when the tariff was pushed; only changes matter
        return replace(after, billing=after_memory), plan.prices_now if plan.push_needed and not first_sight else None

    def _price(self, pricer: TariffPricer, before: StoredState, after: StoredState) -> tuple[StoredState, Usage] | None:
        interval = _interval(before, after)
        if interval is None:
            return None
        start_s, end_s, energy = interval
        memory = before.billing or {}
        month = BillingMonth.of(start_s, pricer.tz)
        same_month = memory.get("month") == month_label(month)
        month_energy = int(memory.get("month_energy", 0)) if same_month else 0
        accumulator = ChargeAccumulator(month, int(memory.get("exact_micro", 0)), int(memory.get("posted_minor", 0))) \
            if same_month else ChargeAccumulator(month)
        costs = pricer.cost_by_month(start_s, end_s, energy, month_energy)
        accumulator, charges = accumulator.post_all(costs)
        last_month = costs[-1][0]
        carried = month_energy + energy if last_month == month else energy  # a new month's ladder starts again
        after_memory = {"month": month_label(last_month), "month_energy": carried,
                        "exact_micro": accumulator.exact_micro, "posted_minor": accumulator.posted_minor}
        return (replace(after, billing=after_memory),
                Usage(after.meter_id, start_s * 1000, end_s * 1000, energy, sum(c for _, c in costs), sum(charges),
                      month_label(last_month)))

    def _pricers_of(self, operator_id: str, site_id: str) -> dict[str, TariffPricer]:
        """The site's pricers by scope (``site`` and overriding ``meter:<id>``), cached briefly."""
        key, now = (operator_id, site_id), time.monotonic()
        cached = self._pricers.get(key)
        if cached is None or now - cached[0] > PRICER_CACHE_S:
            operator = self._tenancy.get_operator(operator_id)
            zone = ZoneInfo(operator.timezone if operator else "UTC")
            histories = self._tariffs.histories(operator_id, site_id)
            cached = (now, {scope: TariffPricer(history, zone) for scope, history in histories.items()})
            self._pricers[key] = cached
        return cached[1]


def _interval(before: StoredState, after: StoredState) -> tuple[int, int, int] | None:
    """(start s, end s, energy in centi-kWh) between two answered readings; None when there is nothing to
    price: a silent meter, a first reading, or an energy register going backwards (a tamper hint)."""
    start_energy, end_energy = centi_kwh(before.values), centi_kwh(after.values)
    if before.last_answer_at is None or after.last_answer_at != after.read_at or start_energy is None \
            or end_energy is None or end_energy < start_energy:
        return None
    start_s, end_s = int(before.last_answer_at.timestamp()), int(after.read_at.timestamp())
    return (start_s, end_s, end_energy - start_energy) if end_s > start_s else None
