"""Meter state as JSON: a snapshot for the control endpoint, and save/restore across restarts.

Decimals travel as strings so no amount passes through float. Saving is atomic (write, then
rename), so a crash mid-save leaves the previous file intact.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from .bus import SimulatedMeter
from .meter import Mode, Status
from .tou import RATES

STATE_VERSION = 1
_MONEY_FIELDS = ("balance", "total_purchased", "alarm_amount_1", "alarm_amount_2", "hoarding_limit",
                 "overload_threshold_kw", "load_kw")


class StateError(ValueError):
    """A saved state file cannot be used."""


def meter_key(bus_name: str, address: int) -> str:
    return f"{bus_name}/{address}"


def dump_meter(sim: SimulatedMeter) -> dict[str, Any]:
    """What the meter remembers, JSON-ready."""
    state = sim.meter.state
    return {
        "model": sim.model,
        "serial": state.serial,
        "clock": state.clock.isoformat(),
        "energy_wms": dict(state.energy_wms),
        "purchase_count": state.purchase_count,
        "control_mode": int(state.control_mode),
        "ct_ratio": state.ct_ratio,
        "prices": {rate: str(price) for rate, price in state.prices.items()},
        **{name: str(getattr(state, name)) for name in _MONEY_FIELDS},
    }


def restore_meter(sim: SimulatedMeter, saved: Mapping[str, Any]) -> None:
    """Put saved state back into a meter of the same model; StateError if it does not fit."""
    if saved.get("model") != sim.model:
        raise StateError(f"saved model {saved.get('model')!r} is not {sim.model!r}")
    state = sim.meter.state
    try:
        state.serial = str(saved["serial"])
        state.clock = datetime.fromisoformat(saved["clock"])
        state.energy_wms = {rate: int(saved["energy_wms"][rate]) for rate in RATES}
        state.purchase_count = int(saved["purchase_count"])
        state.control_mode = Mode(int(saved["control_mode"]))
        state.ct_ratio = int(saved["ct_ratio"])
        state.prices = {rate: Decimal(saved["prices"][rate]) for rate in RATES}
        for name in _MONEY_FIELDS:
            setattr(state, name, Decimal(saved[name]))
    except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
        raise StateError(f"saved state is incomplete or malformed: {exc!r}") from exc


def snapshot(bus_name: str, sim: SimulatedMeter) -> dict[str, Any]:
    """A readable view for the control endpoint: the saved fields plus what the registers show."""
    meter = sim.meter
    now = meter.electrical()
    return {
        "bus": bus_name,
        "address": sim.address,
        "prepaid": meter.prepaid,
        **dump_meter(sim),
        "remaining_amount": str(meter.remaining_amount) if meter.prepaid else None,
        "relay": ("open" if meter.relay_open else "closed") if meter.prepaid else None,
        "status_bits": int(meter.status),
        "status": [flag.name for flag in Status if flag in meter.status],
        "rate": meter.tou.rate_at(meter.state.clock),
        "energy_kwh": {"total": str(meter.energy_kwh()), **{r: str(meter.energy_kwh(r)) for r in RATES}},
        "power_kw": str(now.power_kw),
        "fault": asdict(sim.fault),
    }


def save_state(path: Path, meters: Iterable[tuple[str, SimulatedMeter]]) -> None:
    """Write every meter's state to ``path`` atomically."""
    document = {
        "version": STATE_VERSION,
        "saved_at": datetime.now().isoformat(timespec="seconds"),
        "meters": {meter_key(bus, sim.address): dump_meter(sim) for bus, sim in meters},
    }
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(document, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(temporary, path)


def load_state(path: Path) -> dict[str, Any]:
    """The saved meters by ``bus/address``; empty if there is no file yet."""
    if not path.exists():
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise StateError(f"{path}: cannot read saved state: {exc}") from exc
    if not isinstance(document, dict) or document.get("version") != STATE_VERSION:
        raise StateError(f"{path}: not a version {STATE_VERSION} simulator state file")
    meters = document.get("meters")
    if not isinstance(meters, dict):
        raise StateError(f"{path}: no meters in saved state")
    return meters
