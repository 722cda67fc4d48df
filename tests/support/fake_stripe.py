"""A small fake of Stripe's API for the real adapter (``chalicelib.adapters.stripe_gateway``), reached through the
library's base address setting. It keeps what the adapter uses, per connected account (the ``Stripe-Account``
header): Checkout Sessions, payment intents, refunds, accounts and account links, with idempotency keys honoured as
Stripe honours them. Tests pay a session (or have it declined) with ``pay`` and sign events with ``event``.

The npm ``stripe-stateful-mock`` has no PaymentIntents or Checkout (RECIPES.md §7), hence this one.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from chalicelib.adapters.local_gateway import signature_header

WEBHOOK_SECRET = "whsec_fake_" + "0123456789abcdef" * 2


@dataclass
class Seen:
    method: str
    path: str
    account: str
    idempotency_key: str
    form: dict[str, Any]


@dataclass
class FakeStripeState:
    sessions: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    intents: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    refunds: list[dict[str, Any]] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)
    replies: dict[tuple[str, str, str], tuple[int, dict[str, Any]]] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def nested(form: list[tuple[str, str]]) -> dict[str, Any]:
    """``a[b][0][c]=v`` form fields as nested dicts (list indexes stay string keys)."""
    out: dict[str, Any] = {}
    for key, value in form:
        parts = key.replace("]", "").split("[")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def _error(status: int, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"type": "invalid_request_error", "message": message, "code": "resource_missing"}}


class FakeStripe:
    def __init__(self) -> None:
        self.state = FakeStripeState()
        state = self.state

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                self._answer({})

            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                self._answer(nested(parse_qsl(self.rfile.read(size).decode(), keep_blank_values=True)))

            def _answer(self, form: dict[str, Any]) -> None:
                account = self.headers.get("Stripe-Account") or ""
                key = self.headers.get("Idempotency-Key") or ""
                with state.lock:
                    state.requests.append(Seen(self.command, self.path, account, key, form))
                    replay = (account, self.path, key)
                    if key and replay in state.replies:
                        status, body = state.replies[replay]
                    else:
                        status, body = _route(state, self.command, self.path, account, form)
                        if key and self.command == "POST":
                            state.replies[replay] = (status, body)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Request-Id", f"req_{secrets.token_hex(6)}")
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeStripe:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # -- what a test does -------------------------------------------------------------------------------------------
    def pay(self, account: str, session_id: str, *, declined: bool = False) -> str:
        """The payer completes (or fails) the hosted page: the session's intent comes to life; returns its id."""
        with self.state.lock:
            session = self.state.sessions[(account, session_id)]
            intent_id = session["payment_intent"] or f"pi_test_{secrets.token_hex(8)}"
            session["payment_intent"] = intent_id
            intent = self.state.intents.setdefault((account, intent_id), {
                "id": intent_id, "object": "payment_intent", "amount": session["amount_total"],
                "currency": session["currency"], "metadata": session["intent_metadata"], "status": "processing",
                "last_payment_error": None, "livemode": False})
            if declined:
                intent.update(status="requires_payment_method", last_payment_error={
                    "type": "card_error", "code": "card_declined", "message": "Your card was declined."})
            else:
                intent.update(status="succeeded", last_payment_error=None, amount_received=intent["amount"])
                session.update(status="complete", payment_status="paid")
            return intent_id

    def intent(self, account: str, intent_id: str) -> dict[str, Any]:
        with self.state.lock:
            return dict(self.state.intents[(account, intent_id)])

    def session(self, account: str, session_id: str) -> dict[str, Any]:
        with self.state.lock:
            return {k: v for k, v in self.state.sessions[(account, session_id)].items() if k != "intent_metadata"}

    def refund_in_dashboard(self, account: str, intent_id: str, amount_minor: int) -> dict[str, Any]:
        """The operator refunds the card in Stripe's own dashboard (no metadata of ours): returns the charge a
        ``charge.refunded`` event carries."""
        with self.state.lock:
            status, refund = _refund(self.state, account, {"payment_intent": intent_id, "amount": str(amount_minor)})
            assert status == 200, refund
            intent = self.state.intents[(account, intent_id)]
            refunded = sum(r["amount"] for r in self.state.refunds if r["payment_intent"] == intent_id)
            return {"id": f"ch_{intent_id}", "object": "charge", "payment_intent": intent_id,
                    "amount": intent["amount"], "amount_refunded": refunded, "refunded": True,
                    "metadata": intent["metadata"]}

    def event(self, event_type: str, obj: dict[str, Any], account: str, *, secret: str = WEBHOOK_SECRET,
              at: int | None = None) -> tuple[bytes, str]:
        body = json.dumps({"id": f"evt_{secrets.token_hex(10)}", "object": "event", "type": event_type,
                           "account": account, "created": int(time.time()), "livemode": False,
                           "data": {"object": obj}}).encode()
        return body, signature_header(body, secret, at)


def _route(state: FakeStripeState, method: str, path: str, account: str,
           form: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    if method == "POST" and path == "/v1/checkout/sessions":
        return _create_session(state, account, form)
    path, _, query = path.partition("?")
    if method == "GET" and path.startswith("/v1/payment_intents/"):
        found = state.intents.get((account, path.rsplit("/", 1)[1]))
        return (200, found) if found else _error(404, f"No such payment_intent: '{path.rsplit('/', 1)[1]}'")
    if method == "GET" and path == "/v1/refunds":
        asked = dict(parse_qsl(query))
        data = [r for r in state.refunds
                if r["account"] == account and r["payment_intent"] == asked.get("payment_intent")]
        return 200, {"object": "list", "url": "/v1/refunds", "has_more": False, "data": data}
    if method == "POST" and path == "/v1/refunds":
        return _refund(state, account, form)
    if method == "POST" and path == "/v1/accounts":
        account_id = f"acct_test_{secrets.token_hex(8)}"
        state.accounts.append(account_id)
        return 200, {"id": account_id, "object": "account", "type": form.get("type"), "metadata": form.get("metadata")}
    if method == "POST" and path == "/v1/account_links":
        return 200, {"object": "account_link", "url": f"https://connect.stripe.test/setup/{form['account']}",
                     "created": int(time.time()), "expires_at": int(time.time()) + 300}
    return _error(404, f"Unrecognized request URL ({method}: {path})")


def _create_session(state: FakeStripeState, account: str, form: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    if not account:
        return _error(400, "this fake takes direct charges only: a Stripe-Account header is required")
    price = form["line_items"]["0"]["price_data"]
    session_id = f"cs_test_{secrets.token_hex(12)}"
    session = {"id": session_id, "object": "checkout.session", "amount_total": int(price["unit_amount"]),
               "currency": price["currency"], "metadata": form.get("metadata", {}), "mode": form.get("mode"),
               "payment_intent": None, "payment_status": "unpaid", "status": "open",
               "success_url": form["success_url"], "cancel_url": form["cancel_url"], "locale": form.get("locale"),
               "url": f"https://checkout.stripe.test/c/pay/{session_id}", "livemode": False,
               "intent_metadata": form.get("payment_intent_data", {}).get("metadata", {})}
    state.sessions[(account, session_id)] = session
    return 200, {k: v for k, v in session.items() if k != "intent_metadata"}


def _refund(state: FakeStripeState, account: str, form: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    intent = state.intents.get((account, form.get("payment_intent", "")))
    if intent is None or intent["status"] != "succeeded":
        return _error(400, "This PaymentIntent does not have a successful charge to refund.")
    done = sum(r["amount"] for r in state.refunds if r["payment_intent"] == intent["id"])
    amount = int(form.get("amount") or intent["amount"] - done)
    if amount + done > intent["amount"]:
        return _error(400, "Refund amount is greater than unrefunded amount on charge")
    refund = {"id": f"re_test_{secrets.token_hex(8)}", "object": "refund", "amount": amount, "status": "succeeded",
              "payment_intent": intent["id"], "metadata": form.get("metadata", {}), "account": account}
    state.refunds.append(refund)
    return 200, refund
