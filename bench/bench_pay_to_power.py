"""pay_to_power: a tenant's card payment, from the webhook received to the credit confirmed and the relay closed.

The card version of ``sale_to_power``, on its stack (DynamoDB Local in memory, the app on a LocalHost, a simulated
bus emulating 9600-baud 8N1 wire time with a 20 ms meter turnaround, the real bridge process) and with its helpers:
the meter is put in arrears (relay open) and read before every payment, so every payment has to close the relay.

Each sample: a tenant's top-up is checked out and paid on the local stand-in's card page, whose signed events are
held back (not timed). The clock starts as the ``payment_intent.succeeded`` event is POSTed to ``/webhooks/stripe``
over HTTP, as Stripe would: the signature is verified, the event claimed, the intent locked and re-fetched, the sale
posted through the ledger and handed to delivery. It stops when the money repository says the delivery is
"delivered" (settled by the meter's read-back of its purchase count) and the simulator says the relay is closed.
The session's ``checkout.session.completed`` follows the first event's answer, as Stripe sends both, and finds the
payment settled.

Baseline: the bus time of the delivery's write and read-back frames (``sale_to_power.baseline_seconds``).
Targets: p95 <= 1.0 s and p95 / baseline <= 4. ``stages_p50_ms`` splits the time as ``sale_to_power`` does, its
first stage being the whole webhook up to the hand-over to delivery; ``db_calls`` counts a typical payment's
repository calls per stage, the payment records' among them.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

from bench.bench_sale_to_power import (
    QUIET_S,
    TIMEOUT_S,
    TURNAROUND_MS,
    WARM_UP,
    Probe,
    await_power,
    baseline_seconds,
    open_account,
    stages,
    summarize_calls,
    trip,
)
from bench.stack_site import BenchSite, bench_site
from bench.timing import percentile, ratio_result

NAME = "pay_to_power"
PAYMENTS, QUICK_PAYMENTS = 50, 10
TOP_UP = "50.00"
POLL_S = 0.01
TEST_CARD = "4242 4242 4242 4242"
Event = tuple[bytes, dict[str, str]]


def tenant_of(site: BenchSite) -> Any:
    """The shop's tenant, as the portal's guard resolves a signed-in one (the bench needs no sign-in)."""
    from chalicelib.bootstrap import get_services
    from chalicelib.domain.tenants import TenantActor

    money = get_services().money.money(site.actor.operator_id, site.meters[0].meter_id)
    assert money is not None and money.account_id is not None
    return TenantActor(site.actor.operator_id, "tn-bench", "Bench noodle bar", "+8613800000000", (money.account_id,),
                       "bench-session", "bench-csrf", "en")


def paid_events(tenant: Any, site: BenchSite) -> tuple[str, list[Event]]:
    """Check out and pay one top-up on the local card page, holding its events back: (intent id, events)."""
    from chalicelib.bootstrap import get_services
    from chalicelib.services.sales import new_request_token

    payments = get_services().payments
    gateway: Any = payments.gateway
    held: list[Event] = []

    def hold(url: str, body: bytes, headers: dict[str, str]) -> int:
        held.append((body, headers))
        return 200

    sent, gateway.post = gateway.post, hold
    try:
        url = payments.start_top_up(tenant, site.meters[0].meter_id, TOP_UP, request_id=new_request_token())
        session_id = url.rsplit("/", 1)[1]
        if not payments.local_pay(session_id, TEST_CARD).paid:
            raise RuntimeError("the test card was not taken")
    finally:
        gateway.post = sent
    return session_id.replace("cs_local_", "pi_local_", 1), held


def post_event(base_url: str, event: Event) -> dict[str, Any]:
    body, headers = event
    request = urllib.request.Request(f"{base_url}/webhooks/stripe", data=body, method="POST", headers=headers)
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
        return dict(json.load(response))


def pay_once(site: BenchSite, probe: Probe, tenant: Any) -> tuple[float, dict[str, float], dict[str, list[str]]]:
    """One timed payment: seconds from the webhook's POST to delivered + relay closed, its stages, its calls."""
    from chalicelib.domain.ledger import entry_id_for, stripe_request_id

    op = site.actor.operator_id
    trip(site)
    intent_id, events = paid_events(tenant, site)
    first = next(e for e in events if b'"payment_intent.succeeded"' in e[0])
    rest = [e for e in events if e is not first]
    entry_id = entry_id_for(op, stripe_request_id(intent_id))
    assert site.stack.host is not None
    base_url = site.stack.host.http_url
    time.sleep(QUIET_S)
    marks = probe.reset()
    started = time.perf_counter()
    answer = post_event(base_url, first)
    answered = time.perf_counter()
    if answer.get("outcome") != "succeeded":
        raise RuntimeError(f"the webhook answered {answer}")
    later = threading.Thread(target=lambda: [post_event(base_url, e) for e in rest], daemon=True)
    later.start()  # Stripe sends the session's event too; it finds the payment settled

    confirmed, done = await_power(site, probe, marks, entry_id, f"payment {intent_id}")
    marks.handled.wait(5)
    later.join(TIMEOUT_S)
    probe.all_calls.extend(call for call in marks.calls if started <= call[1] <= done)
    split, calls = stages(marks, started, confirmed, done)
    split = {("webhook_to_sale" if name == "sale_transaction" else name): value for name, value in split.items()}
    calls = {("webhook_to_sale" if name == "sale_transaction" else name): value for name, value in calls.items()}
    split["webhook_answer"] = answered - started  # the webhook's HTTP round trip (overlaps the stages after it)
    return done - started, split, calls


def run(quick: bool) -> Iterator[dict[str, Any]]:
    from chalicelib.bootstrap import get_services

    count = QUICK_PAYMENTS if quick else PAYMENTS
    with bench_site(1, 4, turnaround_ms=TURNAROUND_MS) as site:
        open_account(site)
        tenant = tenant_of(site)
        probe = Probe()
        probe.install()
        # The payment records' repository too (shared by the webhook and the tenant's top-up).
        probe._time_calls("payments", get_services().payment_events._payments)
        for _ in range(WARM_UP):  # connections, lazy adapters, the stripe library's import: not counted
            pay_once(site, probe, tenant)
        probe.all_calls.clear()
        runs = [pay_once(site, probe, tenant) for _ in range(count)]
        baseline = baseline_seconds(site)
    samples = [seconds for seconds, _, _ in runs]
    p95 = percentile(samples, 95)
    split = {name: round(1000 * statistics.median(s[name] for _, s, _ in runs), 1) for name in runs[0][1]}
    durations: dict[str, list[float]] = {}
    for name, begin, end in probe.all_calls:
        durations.setdefault(name, []).append(end - begin)
    per_call = {name: round(1000 * statistics.median(d), 1) for name, d in sorted(durations.items())}
    yield ratio_result(p95, baseline, "s", p50=round(statistics.median(samples), 4), p95=round(p95, 4),
                       max=round(max(samples), 4), samples=len(samples), top_up=TOP_UP, line="9600 8N1",
                       turnaround_ms=TURNAROUND_MS, processor="local stand-in (Stripe-format signed events)",
                       stages_p50_ms=split, db_calls=summarize_calls([calls for _, _, calls in runs]),
                       db_call_p50_ms=per_call, target="p95 <= 1.0 s and p95/baseline <= 4")
