"""Fixtures' building blocks: the real app on a LocalHost, a site with meters, and a registered bridge."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from chalicelib.adapters.clock import SystemClock
from chalicelib.bootstrap import get_services
from chalicelib.domain.actor import Actor
from chalicelib.domain.tenancy import BillingMode, Collector, Meter, Site, Transport, Unit
from chalicelib.services.audit import operation
from chalicelib.services.bridge_admin import BridgeBundle
from infra.local.host import LocalHost
from infra.local.simulated_site import RunningSite, SimBus, SimMeter, start_site
from tests.conftest import OperatorFixture


@dataclass
class SiteFixture:
    operator_id: str
    site_id: str
    collector_id: str
    meters: list[Meter]
    simulator: RunningSite
    bundle: BridgeBundle

    @property
    def bus(self) -> dict[str, object]:
        return self.simulator.bus(self.collector_id)


def admin_actor(operator: OperatorFixture) -> Actor:
    auth = get_services().auth
    session = auth.login(operator.operator_id, operator.admin_username, operator.admin_password)
    actor = auth.resolve(operator.operator_id, session.session_id)
    assert actor is not None
    return actor


def build_site(operator: OperatorFixture, work_dir: Path, *, meters: int = 4, emulate_wire: bool = False,
               reading_interval_s: int = 60) -> SiteFixture:
    """A site with one collector and ``meters`` DTSY1352 meters, simulated for real, and its bridge."""
    services, op = get_services(), operator.operator_id
    site_id, collector_id = f"site_{secrets.token_hex(4)}", f"coll_{secrets.token_hex(3)}"
    now = SystemClock().now()
    services.tenancy.add_site(Site(op, site_id, "Test park", "", reading_interval_s, alarm_sms_number="+8613800000000"),
                              operation(op, "test", "site.create", f"site:{site_id}", now))
    units = [Unit(op, site_id, f"unit_{n}", "b1", "1", f"1{n:02d}") for n in range(1, meters + 1)]
    metered = [Meter(op, site_id, f"m_{n}", f"SN{n:04d}", "DTSY1352", collector_id, n, f"unit_{n}",
                     BillingMode.PREPAID_METER) for n in range(1, meters + 1)]
    sim_meters = tuple(SimMeter(n, f"SN{n:04d}", remaining_amount=f"{100 + n}.00", purchase_count=n)
                       for n in range(1, meters + 1))
    simulator = start_site(work_dir, "test park", [SimBus(collector_id, sim_meters, emulate_wire=emulate_wire)])
    bus = simulator.bus(collector_id)
    services.tenancy.add_units(units)
    services.tenancy.add_collectors([Collector(op, site_id, collector_id, "Collector", Transport.RTU_OVER_TCP,
                                               str(bus["host"]), int(bus["port"]))])
    services.tenancy.add_meters(metered)
    bundle = services.bridge_admin.register(admin_actor(operator), site_id, f"br-{secrets.token_hex(3)}")
    return SiteFixture(op, site_id, collector_id, metered, simulator, bundle)


@contextmanager
def app_with_bridge_gateway() -> Iterator[LocalHost]:
    """The app on a LocalHost with its WebSocket gateway for bridges, the app's pushes to bridges going through it;
    the previous push endpoint is put back afterwards (other hosts of the session have no bridges)."""
    from app import app
    from chalicelib.bootstrap import reset_services
    from infra.local.stack import use_management_api

    previous = os.environ.get("VOLTVEND_WS_MANAGEMENT_URL")
    host = LocalHost(app, run_schedules=False)
    host.start()
    use_management_api(host.management_url)
    try:
        yield host
    finally:
        host.stop()
        if previous is None:
            os.environ.pop("VOLTVEND_WS_MANAGEMENT_URL", None)
        else:
            os.environ["VOLTVEND_WS_MANAGEMENT_URL"] = previous
        reset_services()
