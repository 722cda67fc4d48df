"""A whole local site for benchmarks: DynamoDB Local, the app on a LocalHost, the simulator and a real bridge."""

from __future__ import annotations

import secrets
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from chalicelib.domain.actor import Actor
from chalicelib.domain.tenancy import BillingMode, Collector, Meter, Site, Transport, Unit
from infra.local.bridge_process import BridgeProcess, start_bridge, write_bridge_config
from infra.local.simulated_site import RunningSite, SimBus, SimMeter, start_site
from infra.local.stack import LocalStack, start_stack

BENCH_OPERATOR = "bench"
ADMIN_PASSWORD = "bench-password-2026"


@dataclass
class BenchSite:
    stack: LocalStack
    simulator: RunningSite
    bridge: BridgeProcess
    actor: Actor
    site_id: str
    meters: list[Meter]


def _meters(site_id: str, buses: int, per_bus: int) -> list[Meter]:
    return [Meter(BENCH_OPERATOR, site_id, f"m_{b}_{a}", f"SN{b:02d}{a:03d}", "DTSY1352", f"bus{b}", a, f"u_{b}_{a}",
                  BillingMode.PREPAID_METER) for b in range(buses) for a in range(1, per_bus + 1)]


def _provision(site_id: str, meters: list[Meter], simulator: RunningSite, interval_s: int) -> Actor:
    from chalicelib.adapters.clock import SystemClock
    from chalicelib.adapters.passwords import Argon2PasswordHasher
    from chalicelib.bootstrap import get_services
    from chalicelib.services.audit import operation
    from chalicelib.services.provisioning import OperatorOnboarding

    services, now = get_services(), datetime.now(UTC)
    OperatorOnboarding(services.tenancy, Argon2PasswordHasher(), SystemClock()).onboard(
        BENCH_OPERATOR, "Bench operator", "admin", ADMIN_PASSWORD)
    services.tenancy.add_site(Site(BENCH_OPERATOR, site_id, "Bench site", "", interval_s),
                              operation(BENCH_OPERATOR, "bench", "site.create", site_id, now))
    services.tenancy.add_units(Unit(BENCH_OPERATOR, site_id, m.unit_id, "b", "1", m.unit_id) for m in meters)
    services.tenancy.add_collectors(
        Collector(BENCH_OPERATOR, site_id, bus["name"], bus["name"], Transport.RTU_OVER_TCP, bus["host"], bus["port"])
        for bus in simulator.ready["buses"])
    services.tenancy.add_meters(meters)
    session = services.auth.login(BENCH_OPERATOR, "admin", ADMIN_PASSWORD)
    actor = services.auth.resolve(BENCH_OPERATOR, session.session_id)
    assert actor is not None
    return actor


@contextmanager
def bench_site(buses: int, per_bus: int, *, turnaround_ms: int = 20, interval_s: int = 3600) -> Iterator[BenchSite]:
    from app import app
    from chalicelib.bootstrap import get_services

    work = Path(tempfile.mkdtemp(prefix="voltvend-bench-"))
    stack = start_stack(app=app, run_schedules=False)
    simulator = bridge = None
    try:
        site_id = f"site_{secrets.token_hex(3)}"
        meters = _meters(site_id, buses, per_bus)
        sim_buses = [SimBus(f"bus{b}", tuple(SimMeter(m.address, m.serial) for m in meters
                                             if m.collector_id == f"bus{b}"), turnaround_ms=turnaround_ms)
                     for b in range(buses)]
        simulator = start_site(work / "sim", "bench", sim_buses)
        actor = _provision(site_id, meters, simulator, interval_s)
        bundle = get_services().bridge_admin.register(actor, site_id, "bench")
        assert stack.host is not None
        config = write_bridge_config(work / "bridge", cloud_url=stack.host.ws_url, bridge_id=bundle.bridge_id,
                                     site_id=site_id, credential=bundle.credential, keyrings=bundle.keyrings,
                                     buses=simulator.ready["buses"])
        bridge = start_bridge(config)
        wait_connected(bundle.bridge_id)
        yield BenchSite(stack, simulator, bridge, actor, site_id, meters)
    finally:
        for child in (bridge, simulator):
            if child is not None:
                child.stop()
        stack.stop()


def wait_connected(bridge_id: str, timeout_s: float = 30.0) -> None:
    from chalicelib.bootstrap import get_services

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        bridge = get_services().bridge_link.bridge(BENCH_OPERATOR, bridge_id)
        if bridge is not None and bridge.connection_id:
            return
        time.sleep(0.1)
    raise TimeoutError(f"bridge {bridge_id} did not connect within {timeout_s} s")
