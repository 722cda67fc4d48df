"""The demo's simulated meters and its real bridge, matching the seeded site (64 DTSY1352 meters on two buses)."""

from __future__ import annotations

from pathlib import Path

from chalicelib.bootstrap import get_services
from infra.local.bridge_process import BridgeProcess, start_bridge, write_bridge_config
from infra.local.seed import DEMO_COMPANY, DEMO_LOGINS, DEMO_SITE, demo_meters
from infra.local.simulated_site import RunningSite, SimBus, SimMeter, start_site

BRIDGE_NAME = "main"
SIM_SPEED = 60.0  # one real second is one simulated minute, so balances visibly fall in the demo
STARTING_BALANCES = ("320.00", "150.00", "95.00", "64.00", "48.00", "25.00", "12.00", "3.50")


def simulated_buses(ports: dict[str, int]) -> list[SimBus]:
    buses: dict[str, list[SimMeter]] = {}
    for index, meter in enumerate(demo_meters()):
        balance = STARTING_BALANCES[index % len(STARTING_BALANCES)]
        buses.setdefault(meter.collector_id, []).append(SimMeter(
            meter.address, meter.serial, remaining_amount=balance, purchase_count=1,
            load_kw=f"{1 + index % 5}.5", extra={"alarm_amount_1": "50.00", "alarm_amount_2": "20.00",
                                                "prices": {"sharp": "1.2000", "peak": "0.9500", "flat": "0.6500",
                                                           "valley": "0.3500"}}))
    return [SimBus(name, tuple(meters), port=ports.get(name, 0)) for name, meters in sorted(buses.items())]


def start_demo_site(demo_dir: Path, ports: dict[str, int]) -> RunningSite:
    return start_site(demo_dir / "simulator", "Riverside Business Park", simulated_buses(ports),
                      state_file=demo_dir / "simulator" / "state.json", speed=SIM_SPEED)


def start_demo_bridge(demo_dir: Path, site: RunningSite, cloud_ws_url: str) -> BridgeProcess:
    """Register the demo bridge the first time (its secrets are shown once), then run it."""
    bridge_dir = demo_dir / "bridge"
    services = get_services()
    bridge_id = f"{DEMO_COMPANY}.{BRIDGE_NAME}"
    credential, keyrings = "", {}
    registered = services.bridge_link.bridge(DEMO_COMPANY, bridge_id) is not None
    if registered and not (bridge_dir / "credential").exists():
        raise RuntimeError(f"the demo bridge is registered but {bridge_dir} lost its secrets; rm -rf {demo_dir}")
    if not registered:
        admin = DEMO_LOGINS[0]
        session = services.auth.login(DEMO_COMPANY, admin.username, admin.password)
        actor = services.auth.resolve(DEMO_COMPANY, session.session_id)
        assert actor is not None
        bundle = services.bridge_admin.register(actor, DEMO_SITE, BRIDGE_NAME)
        credential, keyrings = bundle.credential, bundle.keyrings
    config = write_bridge_config(bridge_dir, cloud_url=cloud_ws_url, bridge_id=bridge_id, site_id=DEMO_SITE,
                                 credential=credential, keyrings=keyrings, buses=site.ready["buses"])
    return start_bridge(config)
