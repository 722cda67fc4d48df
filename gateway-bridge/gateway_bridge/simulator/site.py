"""A whole simulated site: its buses, their meters, one simulated clock, and saved state."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..profiles import load_profile
from .bus import Bus, SimClock, SimulatedMeter
from .config import BusConfig, MeterConfig, SiteConfig
from .meter import WMS_PER_KWH, Meter, MeterState, Mode, zero_per_rate, zero_prices
from .registers import RegisterImage
from .servers import Endpoint, start_bus
from .state import StateError, load_state, meter_key, restore_meter, save_state
from .tou import TouPlan

log = logging.getLogger(__name__)


def build_meter(config: MeterConfig, clock: datetime, tou: TouPlan) -> SimulatedMeter:
    """A simulated meter in the state its configuration describes."""
    profile = load_profile(config.model)
    energy = zero_per_rate() | {rate: int(kwh * WMS_PER_KWH) for rate, kwh in config.energy_kwh.items()}
    state = MeterState(
        serial=config.serial, clock=clock, load_kw=config.load_kw.quantize(Decimal("0.001")),
        energy_wms=energy, balance=config.remaining_amount, total_purchased=config.total_purchased,
        purchase_count=config.purchase_count, alarm_amount_1=config.alarm_amount_1,
        alarm_amount_2=config.alarm_amount_2, hoarding_limit=config.hoarding_limit,
        overload_threshold_kw=config.overload_threshold, control_mode=Mode(config.control_mode),
        prices=zero_prices() | dict(config.prices), ct_ratio=config.ct_ratio,
    )
    meter = Meter(state, prepaid=profile.prepaid, phases=profile.phases, tou=config.tou or tou)
    return SimulatedMeter(config.address, profile.model, meter, RegisterImage(profile, meter), config.fault)


def build_bus(config: BusConfig, clock: SimClock, meter_clock: datetime, site: SiteConfig, index: int) -> Bus:
    bus = Bus(config.name, config.transport, config.line, clock, seed=site.seed + index,
              emulate_wire=config.emulate_wire)
    for meter_config in config.meters:
        bus.add(build_meter(meter_config, meter_clock, site.tou))
    return bus


class Site:
    """Buses built from a SiteConfig; ``start`` puts them on the network, ``stop`` takes them down."""

    def __init__(self, config: SiteConfig, *, speed: float | None = None, state_path: Path | None = None) -> None:
        self.config = config
        self.clock = SimClock(speed if speed is not None else config.speed)
        meter_clock = (config.clock or datetime.now()).replace(microsecond=0)
        self.buses = [build_bus(b, self.clock, meter_clock, config, i) for i, b in enumerate(config.buses)]
        self.state_path = state_path
        self.endpoints: list[Endpoint] = []
        self.restored = self._restore() if state_path else 0

    def meters(self) -> Iterator[tuple[str, SimulatedMeter]]:
        for bus in self.buses:
            for address in sorted(bus.meters):
                yield bus.name, bus.meters[address]

    def bus(self, name: str) -> Bus:
        for bus in self.buses:
            if bus.name == name:
                return bus
        raise KeyError(name)

    def meter(self, bus_name: str, address: int) -> SimulatedMeter:
        """The meter at ``address`` on bus ``bus_name``, brought up to the simulated present."""
        bus = self.bus(bus_name)
        sim = bus.meters[address]
        bus.sync(sim)
        return sim

    def sync_all(self) -> None:
        for bus in self.buses:
            bus.sync_all()

    def skip(self, seconds: Decimal) -> None:
        """Move simulated time forward for every meter (they catch up when next touched)."""
        self.clock.skip(seconds)
        self.sync_all()

    def _restore(self) -> int:
        assert self.state_path is not None
        saved = load_state(self.state_path)
        restored = 0
        for bus_name, sim in self.meters():
            data = saved.get(meter_key(bus_name, sim.address))
            if data is None:
                continue
            try:
                restore_meter(sim, data)
            except StateError as exc:
                raise StateError(f"{self.state_path}: meter {meter_key(bus_name, sim.address)}: {exc}") from exc
            restored += 1
        return restored

    def save(self) -> None:
        if self.state_path is not None:
            self.sync_all()
            save_state(self.state_path, self.meters())

    async def start(self) -> list[Endpoint]:
        try:
            for bus, bus_config in zip(self.buses, self.config.buses, strict=True):
                self.endpoints.append(await start_bus(bus, bus_config.host, bus_config.port, bus_config.link))
        except Exception:
            await self.stop()
            raise
        return self.endpoints

    async def stop(self) -> None:
        """Stop every server and socat this site started."""
        while self.endpoints:
            endpoint = self.endpoints.pop()
            with contextlib.suppress(Exception):
                await endpoint.stop()

    async def save_periodically(self) -> None:
        """Save state every ``state_save_seconds`` until cancelled."""
        while True:
            await asyncio.sleep(self.config.state_save_seconds)
            try:
                self.save()
            except OSError as exc:
                log.warning("could not save simulator state: %s", exc)

    def describe(self) -> dict[str, Any]:
        """Where everything listens: the ready file's ``buses`` list."""
        return {"buses": [_describe_endpoint(endpoint) for endpoint in self.endpoints]}


def _describe_endpoint(endpoint: Endpoint) -> dict[str, Any]:
    bus = endpoint.bus
    return {
        "name": bus.name,
        "transport": bus.transport,
        "host": endpoint.host,
        "port": endpoint.port,
        "link": str(endpoint.link) if endpoint.link else None,
        "pty_parity": "N" if endpoint.link else None,  # a pty refuses parity E: open the link at N
        "baud": bus.line.baud,
        "parity": bus.line.parity,
        "stop_bits": bus.line.stop_bits,
        "turnaround_ms": bus.line.turnaround_ms,
        "emulate_wire": bus.emulate_wire,
        "meters": [
            {"address": address, "model": sim.model, "serial": sim.meter.state.serial}
            for address, sim in sorted(bus.meters.items())
        ],
    }

