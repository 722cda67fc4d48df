"""sale_to_power: a cashier's sale to a tripped meter, from the call to the credit confirmed and the relay closed.

The cashier-sale version of ``pay_to_power``: DynamoDB Local in memory, the app on a LocalHost, a simulated bus
emulating 9600-baud 8N1 wire time with a 20 ms meter turnaround, and the real bridge process. One prepaid meter on
an open account is put in arrears (balance below zero, relay open) before every sale, and read so the cloud's state
follows, so every sale has to close the relay. A sample runs from ``sales.sell(...)`` until the money repository
says the delivery is "delivered" (settled by the read-back) and the simulator says the relay is closed.

Baseline: the bus time of the two frames a delivery needs, the purchase write and the read-back, computed from the
very command the cloud builds (bytes × 10 / 9600 + 2 × 3.5 characters + the meter's turnaround, per frame).
Targets: p95 <= 1.0 s and p95 / baseline <= 4.

Each result line also says where the time goes: ``stages_p50_ms`` and ``stages_p95_ms`` from timestamps taken around
the service calls the sale passes through (and the bridge's own stamps on its bus transactions), ``db_calls``, the
repository calls (DynamoDB round trips) of a typical sale per stage, and ``db_call_p50_ms``, each call's time.
The wrappers only read the clock; they change nothing.
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from bench.stack_site import BenchSite, bench_site
from bench.timing import percentile, ratio_result

NAME = "sale_to_power"
SALES, QUICK_SALES, WARM_UP = 50, 10, 2
ARREARS = "-5.00"
SALE_AMOUNT = "50.00"
TURNAROUND_MS = 20
POLL_S = 0.01  # how often the repository is asked when no money commit wakes the bench first
TIMEOUT_S = 30.0
# Once the trip's reading is stored, its handler still acknowledges it (tunnel seal, send lease); a short pause keeps
# that tail out of the next sale's figure, as a cashier never sells in the same millisecond a reading lands.
QUIET_S = 0.2


@dataclass
class Marks:
    """Timestamps (perf_counter) of one sale's passage through the cloud; filled by the wrappers below."""

    kick: list[float] = field(default_factory=list)  # the desk hands the queued credit to the delivery pump
    posts: list[tuple[float, float]] = field(default_factory=list)  # pushes to the bridge connection
    kicked: float = 0.0  # the pump has returned (sell returns right after)
    # [message start, handler start, handler end, first bus transaction's start, last one's end (bridge's clock)]
    results: list[list[float]] = field(default_factory=list)
    calls: list[tuple[str, float, float]] = field(default_factory=list)  # repository calls (name, start, end)
    signal: threading.Event = field(default_factory=threading.Event)  # money was committed: look again
    handled: threading.Event = field(default_factory=threading.Event)  # ... and its handler has returned


class Probe:
    """Records when each sale reaches each step, and every repository call it makes (DynamoDB round trips), by
    swapping timing wrappers onto the live service objects. The wrappers only look at the clock."""

    def __init__(self) -> None:
        self.marks = Marks()
        self.unwatched: dict[str, Any] = {}  # the original methods, for the bench's own look-ups
        self._local = threading.local()
        # The bridge stamps each bus transaction with its wall clock (same machine): this maps it onto perf_counter.
        self.wall_offset = time.time() - time.perf_counter()
        self.all_calls: list[tuple[str, float, float]] = []  # every repository call of the timed sales

    def reset(self) -> Marks:
        self.marks = Marks()
        return self.marks

    def install(self) -> None:
        from chalicelib.bootstrap import get_services

        services = get_services()
        link, sales = services.bridge_link, services.sales
        for label, repository in (("money", services.money), ("tenancy", services.tenancy),
                                  ("readings", services.readings), ("bridges", link._bridges)):
            self._time_calls(label, repository)
        kick, receive, results, send = sales.delivered, link.receive, link.command_results, link._send
        assert kick is not None and results is not None

        def timed_kick(operator_id: str, meter_id: str) -> object:
            self.marks.kick.append(time.perf_counter())
            try:
                return kick(operator_id, meter_id)
            finally:
                self.marks.kicked = time.perf_counter()

        def timed_send(connection_id: str, text: str) -> None:
            started = time.perf_counter()
            send(connection_id, text)
            self.marks.posts.append((started, time.perf_counter()))

        def timed_receive(connection_id: str, text: str) -> None:
            self._local.started = time.perf_counter()
            receive(connection_id, text)

        def timed_results(bridge: Any, result: Any) -> None:
            marks, started = self.marks, time.perf_counter()
            bus = [t.t0_ms / 1000 - self.wall_offset for t in result.results] + \
                [t.t1_ms / 1000 - self.wall_offset for t in result.results]
            mark = [getattr(self._local, "started", started), started, 0.0, min(bus), max(bus)]
            marks.results.append(mark)
            try:
                results(bridge, result)
            finally:
                mark[2] = time.perf_counter()
                marks.handled.set()

        sales.delivered = timed_kick
        link._send = timed_send
        link.command_results = timed_results
        link.receive = timed_receive  # type: ignore[method-assign]  # instance attribute shadows the method

    def _time_calls(self, label: str, repository: object) -> None:
        for name in dir(repository):
            method = getattr(repository, name)
            if name.startswith("_") or not callable(method):
                continue
            self.unwatched[f"{label}.{name}"] = method

            def timed(*args: Any, __method: Any = method, __name: str = f"{label}.{name}", **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return __method(*args, **kwargs)
                finally:
                    self.marks.calls.append((__name, started, time.perf_counter()))
                    if __name == "money.commit":
                        self.marks.signal.set()  # a delivery may just have been settled: look now

            setattr(repository, name, timed)


def control(site: BenchSite, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{site.simulator.control_url}{path}", data=data,
                                     method="POST" if body is not None else "GET",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return dict(json.load(response))


def wait(condition: Callable[[], bool], what: str, *, every_s: float = 0.05) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(every_s)


def trip(site: BenchSite) -> None:
    """Put the meter in arrears (the simulator opens its relay) and read it, so the cloud sees it tripped."""
    from chalicelib.bootstrap import get_services

    services, meter = get_services(), site.meters[0]
    control(site, f"/meters/{meter.collector_id}/{meter.address}/remaining", {"remaining_amount": ARREARS})
    asked = time.time()
    services.site_control.read_now(site.actor, site.site_id, meter.meter_id)

    def tripped() -> bool:
        states = services.readings.get_states(site.actor.operator_id, site.site_id, [meter.meter_id])
        return bool(states) and states[0].read_at.timestamp() >= asked - 1 and states[0].values.get("relay_state") == 1

    wait(tripped, "the cloud to see the meter tripped")


def sell_once(site: BenchSite, probe: Probe) -> tuple[float, dict[str, float], dict[str, list[str]]]:
    """One timed sale: seconds to delivered + relay closed, its stages in seconds, and its repository calls."""
    from chalicelib.bootstrap import get_services
    from chalicelib.services.sales import new_request_token

    services, meter = get_services(), site.meters[0]
    trip(site)
    time.sleep(QUIET_S)
    marks = probe.reset()
    started = time.perf_counter()
    entry = services.sales.sell(site.actor, site.site_id, meter.meter_id, request_id=new_request_token(),
                                amount=SALE_AMOUNT)
    confirmed, done = await_power(site, probe, marks, entry.entry_id, f"sale {entry.entry_id}")
    marks.handled.wait(5)  # the result's handler finishes its tail (state merge, next pump): not timed
    probe.all_calls.extend(call for call in marks.calls if started <= call[1] <= done)
    return done - started, *stages(marks, started, confirmed, done)


def await_power(site: BenchSite, probe: Probe, marks: Marks, entry_id: str, what: str) -> tuple[float, float]:
    """Wait until the entry's credit is confirmed delivered, then until the simulated relay is closed: the
    perf_counter times of both."""
    from chalicelib.domain.delivery import DeliveryState

    meter = site.meters[0]

    def delivered() -> bool:
        money = probe.unwatched["money.money"](site.actor.operator_id, meter.meter_id)
        found = money.delivery(entry_id) if money is not None else None
        if found is not None and found.state is DeliveryState.FAILED:
            raise RuntimeError(f"delivery failed: {found.failure}")
        return found is not None and found.state is DeliveryState.DELIVERED

    deadline = time.monotonic() + TIMEOUT_S
    while not delivered():  # woken by each money commit (the settling one among them), or every POLL_S
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} was not delivered within {TIMEOUT_S} s")
        marks.signal.wait(POLL_S)
        marks.signal.clear()
    confirmed = time.perf_counter()
    wait(lambda: control(site, f"/meters/{meter.collector_id}/{meter.address}")["relay"] == "closed",
         "the simulated relay to close", every_s=0.005)
    return confirmed, time.perf_counter()


def stages(marks: Marks, started: float, confirmed: float,
           done: float) -> tuple[dict[str, float], dict[str, list[str]]]:
    """Split one sale's time at the recorded steps, and name the repository calls made in each."""
    kick = marks.kick[0] if marks.kick else started
    post = next((p for p in marks.posts if p[0] >= kick), (kick, kick))
    received, handling, handled, bus_start, bus_end = next((r for r in marks.results if r[0] >= post[1]),
                                                           [confirmed] * 5)
    settled = next((end for name, begin, end in marks.calls if name == "money.commit" and begin >= handling),
                   confirmed)
    bounds = {
        "sale_transaction": (started, kick),  # checks, reads and the one DynamoDB transaction of the sale
        "pump_to_post": (kick, post[0]),  # queue read, route, mark sent (commit), send lease, tunnel seal
        "post": (post[0], post[1]),  # the management API's post to the bridge's connection
        "to_bridge": (post[1], bus_start),  # WebSocket, envelope opened, command recorded (SQLite), job started
        "bus": (bus_start, bus_end),  # the write and the read-back on the emulated line, as the bridge timed them
        "from_bridge": (bus_end, received),  # result stored (SQLite), sealed, WebSocket, the gateway's handler
        "receive_open": (received, handling),  # connection and bridge lookups, tunnel opened, its state saved
        "settle": (handling, settled),  # the read-back judged and committed
        "observe": (settled, confirmed),  # until this bench's own read of the repository saw it
        "relay_check": (confirmed, done),  # the simulator's control API asked
    }
    calls = {name: [call for call, begin, _ in marks.calls if low <= begin < high]
             for name, (low, high) in bounds.items()}
    calls["after_settle_in_handler"] = [call for call, begin, _ in marks.calls if settled <= begin < handled]
    calls["sell_after_post"] = [call for call, begin, _ in marks.calls if post[1] <= begin < marks.kicked]
    return {name: high - low for name, (low, high) in bounds.items()}, calls


def summarize_calls(runs: list[dict[str, list[str]]]) -> dict[str, str]:
    """The repository calls of a typical sale per stage, e.g. "money.money, money.commit x2"."""
    typical = runs[len(runs) // 2]
    out: dict[str, str] = {}
    for stage, calls in typical.items():
        counts: dict[str, int] = {}
        for call in calls:
            counts[call] = counts.get(call, 0) + 1
        out[stage] = ", ".join(f"{call} x{n}" if n > 1 else call for call, n in counts.items())
    return out


def baseline_seconds(site: BenchSite) -> float:
    """Wire time of the delivery command's two frames, built exactly as the cloud builds them."""
    from gateway_bridge.rtu import LineSettings, expected_response_length, wire_time

    from chalicelib.domain.delivery import CommandKind, Delivery, DeliveryState
    from chalicelib.services.credit_delivery import delivery_command

    line = LineSettings(baud=9600, parity="N", stop_bits=1, turnaround_ms=TURNAROUND_MS)
    sample = Delivery("baseline", site.meters[0].meter_id, CommandKind.PURCHASE, 5000, DeliveryState.SENT, 2, 1)
    command = delivery_command(site.meters[0], sample)
    return sum(wire_time(len(t.req), expected_response_length(t.req), line) for t in command.txns)


def open_account(site: BenchSite) -> None:
    from chalicelib.bootstrap import get_services
    from chalicelib.services.sales import new_request_token

    services, meter = get_services(), site.meters[0]
    asked = time.time()
    services.site_control.read_now(site.actor, site.site_id, meter.meter_id)  # opening needs a reading
    wait(lambda: any(s.read_at.timestamp() >= asked - 1 for s in services.readings.get_states(
        site.actor.operator_id, site.site_id, [meter.meter_id])), "the first reading")
    services.sales.open_account(site.actor, site.site_id, "Bench noodle bar", [meter.meter_id], unit="B-101",
                                request_id=new_request_token())


def run(quick: bool) -> Iterator[dict[str, Any]]:
    count = QUICK_SALES if quick else SALES
    with bench_site(1, 4, turnaround_ms=TURNAROUND_MS) as site:
        open_account(site)
        probe = Probe()
        probe.install()
        for _ in range(WARM_UP):  # connections, lazy adapters, DynamoDB Local's JIT: not counted
            sell_once(site, probe)
        probe.all_calls.clear()
        runs = [sell_once(site, probe) for _ in range(count)]
        baseline = baseline_seconds(site)
    samples = [seconds for seconds, _, _ in runs]
    p95 = percentile(samples, 95)
    split = {name: round(1000 * statistics.median(s[name] for _, s, _ in runs), 1) for name in runs[0][1]}
    tail = {name: round(1000 * percentile([s[name] for _, s, _ in runs], 95), 1) for name in runs[0][1]}
    durations: dict[str, list[float]] = {}
    for name, begin, end in probe.all_calls:
        durations.setdefault(name, []).append(end - begin)
    per_call = {name: round(1000 * statistics.median(d), 1) for name, d in sorted(durations.items())}
    yield ratio_result(p95, baseline, "s", p50=round(statistics.median(samples), 4), p95=round(p95, 4),
                       max=round(max(samples), 4), samples=len(samples), sale=SALE_AMOUNT, line="9600 8N1",
                       turnaround_ms=TURNAROUND_MS, stages_p50_ms=split, stages_p95_ms=tail,
                       db_calls=summarize_calls([calls for _, _, calls in runs]), db_call_p50_ms=per_call,
                       load_1m=round(os.getloadavg()[0], 2),  # 2 shared cores: how busy the machine was
                       target="p95 <= 1.0 s and p95/baseline <= 4")
