"""Pricing what cloud-billed (plain) meters used between two readings (ARCHITECTURE decision 6).

Each interval's energy is the difference of the energy register, priced by the site's tariff history
(time of use, ladder, versions) through the tariff engine's compiled tables. Charges come from a
per-meter-month accumulator, so posted charges always add up to the month's exact cost. The memory
(month, month energy, accumulator) travels with the meter's state; the ledger posts ``charge_minor``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal
from zoneinfo import ZoneInfo

from chalicelib.adapters.dynamodb.readings_repo import StoredState, Usage
from chalicelib.adapters.dynamodb.tariff_repo import DynamoTariffRepository
from chalicelib.domain.tariffs import BillingMonth, ChargeAccumulator, TariffPricer
from chalicelib.domain.tenancy import BillingMode, Meter
from chalicelib.ports import TenancyRepository

PRICER_CACHE_S = 30.0


def centi_kwh(values: Mapping[str, object]) -> int | None:
    value = values.get("energy_total")
    return None if value is None else int(Decimal(str(value)) * 100)


def month_label(month: BillingMonth) -> str:
    return f"{month.year:04d}-{month.month:02d}"


class ConsumptionBilling:
    def __init__(self, tariffs: DynamoTariffRepository, tenancy: TenancyRepository) -> None:
        self._tariffs = tariffs
        self._tenancy = tenancy
        self._pricers: dict[tuple[str, str], tuple[float, TariffPricer | None]] = {}

    def bill(self, operator_id: str, site_id: str, meters: Mapping[str, Meter],
             befores: Mapping[str, StoredState], states: list[StoredState]) -> tuple[list[StoredState], list[Usage]]:
        """The states with their billing memory moved on, and the priced usage of each interval."""
        cloud_billed = {m.meter_id for m in meters.values() if m.billing_mode is BillingMode.CLOUD_BILLED}
        cloud = [s for s in states if s.meter_id in cloud_billed]
        if not cloud:
            return states, []
        pricer = self._pricer(operator_id, site_id)
        billed: dict[str, StoredState] = {}
        usage: list[Usage] = []
        for state in cloud:
            before = befores.get(state.meter_id)
            priced = self._price(pricer, before, state) if pricer is not None and before is not None else None
            if priced is not None:
                billed[state.meter_id], interval = priced
                usage.append(interval)
        return [billed.get(s.meter_id, s) for s in states], usage

    def _price(self, pricer: TariffPricer, before: StoredState, after: StoredState) -> tuple[StoredState, Usage] | None:
        start_energy, end_energy = centi_kwh(before.values), centi_kwh(after.values)
        if before.last_answer_at is None or after.last_answer_at != after.read_at or start_energy is None \
                or end_energy is None or end_energy < start_energy:
            return None  # silent, first or backwards (a tamper hint, judged by the alarms): nothing to price
        start_s, end_s = int(before.last_answer_at.timestamp()), int(after.read_at.timestamp())
        if end_s <= start_s:
            return None
        energy = end_energy - start_energy
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

    def _pricer(self, operator_id: str, site_id: str) -> TariffPricer | None:
        key, now = (operator_id, site_id), time.monotonic()
        cached = self._pricers.get(key)
        if cached is None or now - cached[0] > PRICER_CACHE_S:
            history = self._tariffs.history(operator_id, site_id)
            operator = self._tenancy.get_operator(operator_id)
            zone = ZoneInfo(operator.timezone if operator else "UTC")
            cached = (now, TariffPricer(history, zone) if history is not None else None)
            self._pricers[key] = cached
        return cached[1]
