"""The demo's simulated meters and its real bridge, matching the seeded site (64 DTSY1352 meters on two buses), and
the "sell to a tripped meter" story: a shop in arrears whose account is open by the time the banner shows."""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from chalicelib.bootstrap import get_services
from chalicelib.domain.actor import Actor
from chalicelib.domain.errors import Conflict
from infra.local.bridge_process import BridgeProcess, start_bridge, write_bridge_config
from infra.local.seed import (
    DEMO_COMPANY,
    DEMO_LOGINS,
    DEMO_SITE,
    DemoAccount,
    account_of,
    demo_accounts,
    demo_admin,
    demo_meters,
    ensure_demo_tenant,
    open_demo_accounts,
)
from infra.local.simulated_site import RunningSite, SimBus, SimMeter, start_site

BRIDGE_NAME = "main"
SIM_SPEED = 60.0  # one real second is one simulated minute, so balances visibly fall in the demo
STARTING_BALANCES = ("320.00", "150.00", "95.00", "64.00", "48.00", "25.00", "12.00", "3.50")
# These shops start in arrears with their relay open, so a cashier can sell to a tripped meter at once. Both have
# accounts in the demo; the balance is what a meter shows after running on into arrears with its load on.
ARREARS_METERS = ("m_a104", "m_b102")
ARREARS_BALANCE = "-4.20"
STORY_WAIT_S = 25.0  # the bridge connects and reads one meter in a few seconds; past this the banner goes on
ACCOUNTS_WAIT_S = 150.0  # the rest of the accounts: a read of every meter, or else the minute cycles, fill states
LOG = logging.getLogger("voltvend.demo")


@dataclass(frozen=True)
class SaleStory:
    shop: DemoAccount
    account_id: str | None  # None: the meter was not read in time, so its account is not open yet
    forced: bool  # no shop was in arrears at start, so this one was put there through the simulator


def simulated_buses(ports: dict[str, int]) -> list[SimBus]:
    buses: dict[str, list[SimMeter]] = {}
    for index, meter in enumerate(demo_meters()):
        balance = STARTING_BALANCES[index % len(STARTING_BALANCES)]
        extra: dict[str, Any] = {"alarm_amount_1": "50.00", "alarm_amount_2": "20.00",
                                 "prices": {"sharp": "1.2000", "peak": "0.9500", "flat": "0.6500",
                                            "valley": "0.3500"}}
        if meter.meter_id in ARREARS_METERS:
            balance, extra["total_purchased"] = ARREARS_BALANCE, "120.00"  # bought before, and used up
        buses.setdefault(meter.collector_id, []).append(SimMeter(
            meter.address, meter.serial, remaining_amount=balance, purchase_count=1,
            load_kw=f"{1 + index % 5}.5", extra=extra))
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


# -- the "sell to a tripped meter" story -------------------------------------------------------------------------
def _simulated(site: RunningSite, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{site.control_url}{path}", data=data, method="POST" if data else "GET",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return dict(json.load(response))


def tripped_shop(site: RunningSite) -> tuple[DemoAccount, bool]:
    """A shop with an account whose simulated meter is in arrears now (the designated ones first, then any). Demo
    data survives restarts and someone may have sold to those already: then the first designated shop is put back
    in arrears through the simulator, so the story works on every start."""
    shops = {a.meter_id: a for a in demo_accounts()}
    where = {(m.collector_id, m.address): m.meter_id for m in demo_meters()}
    truth = _simulated(site, "/state")
    tripped = {where[(bus["name"], meter["address"])] for bus in truth["buses"] for meter in bus["meters"]
               if meter.get("relay") == "open" and Decimal(meter.get("remaining_amount") or "0") <= 0}
    order = [*ARREARS_METERS, *(m for m in shops if m not in ARREARS_METERS)]
    found = next((m for m in order if m in tripped), None)
    if found is not None:
        return shops[found], False
    meter = next(m for m in demo_meters() if m.meter_id == ARREARS_METERS[0])
    _simulated(site, f"/meters/{meter.collector_id}/{meter.address}/remaining", {"remaining_amount": ARREARS_BALANCE})
    return shops[meter.meter_id], True


def read_now(actor: Actor, meter_id: str | None, deadline: float, stopping: threading.Event) -> float | None:
    """Ask the bridge for a reading as soon as it is connected; returns when it was asked (None: it never was)."""
    while time.monotonic() < deadline and not stopping.is_set():
        asked = time.time()
        try:
            get_services().site_control.read_now(actor, DEMO_SITE, meter_id)
            return asked
        except Conflict:  # the bridge is not connected yet (or its last connection went stale)
            stopping.wait(0.3)
    return None


def _read_since(meter_id: str, asked: float) -> bool:
    states = get_services().readings.get_states(DEMO_COMPANY, DEMO_SITE, [meter_id])
    return bool(states) and states[0].read_at.timestamp() >= asked - 1


def prepare_sale_story(site: RunningSite, stopping: threading.Event) -> SaleStory:
    """Read the tripped shop's meter and open its account, so the banner can point at a page that works now."""
    shop, forced = tripped_shop(site)
    actor, deadline = demo_admin(), time.monotonic() + STORY_WAIT_S
    asked = read_now(actor, shop.meter_id, deadline, stopping)
    while asked is not None and time.monotonic() < deadline and not stopping.is_set() \
            and not _read_since(shop.meter_id, asked):
        stopping.wait(0.2)
    if account_of(actor, shop.meter_id) is None:
        open_demo_accounts(actor, [shop])
    account_id = account_of(actor, shop.meter_id)
    if account_id is not None:
        ensure_demo_tenant(account_id)
    return SaleStory(shop, account_id, forced)


def open_accounts_in_background(stopping: threading.Event) -> threading.Thread:
    """The other shops' accounts, once their meters have been read: a read of every meter is asked at once rather
    than waiting up to a minute for the first cycle, and the shops are retried until every one is read, as states
    land, so a slow bus or a meter that missed a cycle only delays its own shop."""

    def work() -> None:
        try:
            actor, deadline = demo_admin(), time.monotonic() + ACCOUNTS_WAIT_S
            read_now(actor, None, deadline, stopping)
            waiting = demo_accounts()
            while waiting and not stopping.is_set() and time.monotonic() < deadline:
                waiting = open_demo_accounts(actor, waiting)
                stopping.wait(1.0)
            opened = len(demo_accounts()) - len(waiting)
            LOG.info("demo accounts: %d shops have an open account%s", opened,
                     f"; {len(waiting)} wait for their meter's first reading" if waiting else "")
        except Exception:  # the demo goes on without the remaining accounts; stopping mid-way is not an error
            if not stopping.is_set():
                LOG.exception("opening the demo accounts failed")

    thread = threading.Thread(target=work, name="demo-accounts", daemon=True)
    thread.start()
    return thread
