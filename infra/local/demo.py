"""``make demo``: the whole local stack with a seeded operator, until Ctrl-C.

Data lives under ``.local/demo`` (git-ignored) and survives restarts; ``VOLTVEND_DEMO_DIR`` puts it elsewhere
(a second demo beside the usual one, or a check of start-up against a copy of existing demo data).
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.local.dynamodb_local import ROOT, DynamoDBLocalError

if TYPE_CHECKING:  # the demo modules import the app's services, which must wait until the stack configured them
    from infra.local.demo_site import SaleStory

DEMO_DIR = Path(os.environ.get("VOLTVEND_DEMO_DIR") or ROOT / ".local" / "demo").resolve()
PREFERRED_PORTS = {"ddb": 8000, "http": 8080, "ws": 8081, "management": 8082}


def port_or_free(preferred: int) -> int:
    """The preferred port if nothing listens there, else any free one."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def persistent_secret(path: Path) -> str:
    """One session secret per demo folder, so logins survive a restart."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Chalice sets the app's own logger ("voltvend") to ERROR outside debug; the demo's progress is worth showing.
    logging.getLogger("voltvend.demo").setLevel(logging.INFO)
    from infra.local.stack import start_stack

    ports = {name: port_or_free(port) for name, port in PREFERRED_PORTS.items()}
    try:
        from app import app

        stack = start_stack(data_dir=DEMO_DIR / "ddb", ddb_port=ports["ddb"], app=app,
                            host_ports=(ports["http"], ports["ws"], ports["management"]),
                            session_secret=persistent_secret(DEMO_DIR / "session-secret"))
    except DynamoDBLocalError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    from infra.local.demo_site import open_accounts_in_background, start_demo_bridge, start_demo_site
    from infra.local.seed import seed_demo

    children: list[Any] = []
    stopping = threading.Event()
    accounts: threading.Thread | None = None
    try:
        sim_ports = {"coll_a": port_or_free(5020), "coll_b": port_or_free(5021)}
        created = seed_demo({name: ("127.0.0.1", port) for name, port in sim_ports.items()})
        assert stack.host is not None
        site = start_demo_site(DEMO_DIR, sim_ports)
        children.append(site)
        children.append(start_demo_bridge(DEMO_DIR, site, stack.host.ws_url))
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stopping.set())
        story = _sale_story(site, stopping)
        accounts = open_accounts_in_background(stopping)
        _print_banner(stack.host.http_url, stack.host.ws_url, stack.ddb.endpoint, created, site, story)
        stopping.wait()
        print("\nstopping…", flush=True)
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        stopping.set()
        if accounts is not None:
            accounts.join(timeout=10)  # it stops at its next step; DynamoDB Local must outlive that step
        for child in reversed(children):
            child.stop()
        stack.stop()
    return 0


def _sale_story(site: Any, stopping: threading.Event) -> SaleStory | None:
    """One meter read and one account, a few seconds, so the banner's link works when it shows; the demo runs on
    without it if that fails."""
    from infra.local.demo_site import prepare_sale_story

    try:
        return prepare_sale_story(site, stopping)
    except Exception:
        logging.getLogger("voltvend.demo").exception("the tripped-meter sale could not be prepared")
        return None


def _buses(buses: list[dict[str, Any]]) -> str:
    return ", ".join(f"{bus['name']} at {bus['host']}:{bus['port']}" for bus in buses)


def _story_lines(http_url: str, story: SaleStory | None) -> list[str]:
    from infra.local.seed import (
        DEMO_COMPANY,
        DEMO_LOGINS,
        DEMO_SITE,
        DEMO_TENANT_LOGIN,
        DEMO_TENANT_PASSWORD,
        demo_accounts,
    )

    accounts = f"{http_url}/sites/{DEMO_SITE}/accounts"
    if story is None:
        return [f"  Sell to a tripped meter: not prepared (see the log above); accounts at {accounts}"]
    shop, cashier = story.shop, DEMO_LOGINS[1]
    how = "put in arrears for the demo" if story.forced else "in arrears"
    if story.account_id is None:
        return [f"  Sell to a tripped meter: not ready: shop {shop.unit} has no open account yet (its meter"
                f" {shop.meter_id} not read? see the bridge log); accounts at {accounts}"]
    return [f"  Sell to a tripped meter: {accounts}/{story.account_id}",
            f"                           ({shop.customer}, shop {shop.unit}, {how}, relay open;"
            f" log in as {DEMO_COMPANY} / {cashier.username})",
            f"  Shop tenant (a phone):   {http_url}/t/{DEMO_COMPANY}  sign in with {DEMO_TENANT_LOGIN} /"
            f" {DEMO_TENANT_PASSWORD} (shop {shop.unit}; top up by the local card page)",
            f"  Customer accounts:       {accounts} ({len(demo_accounts())} shops, opened as their meters are read)"]


def _print_banner(http_url: str, ws_url: str, ddb_url: str, created: bool, site: Any,
                  story: SaleStory | None) -> None:
    from infra.local.seed import DEMO_LOGINS

    lines = [
        "",
        "Voltvend demo is running" + (" (demo data created)" if created else " (existing demo data)"),
        f"  Back office:      {http_url}/login",
        f"  Bridge WebSocket: {ws_url}",
        f"  DynamoDB Local:   {ddb_url}",
        f"  Simulated meters: {_buses(site.ready['buses'])} (control API {site.control_url}/state)",
        f"  Bridge log:       {DEMO_DIR / 'bridge' / 'bridge.log'}",
        *_story_lines(http_url, story),
        "  Logins (company / username / password):",
        *[f"    {login.company} / {login.username} / {login.password}   ({login.role})" for login in DEMO_LOGINS],
        "Press Ctrl-C to stop.",
        "",
    ]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(main())
