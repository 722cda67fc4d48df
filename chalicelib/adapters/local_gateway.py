"""The local stand-in for Stripe (no Stripe keys: the demo and the tests), so the whole card path runs offline.

It keeps checkout sessions and payment intents in DynamoDB, serves a card page of our own app as the checkout URL
(``/pay/local/{session id}``; test card numbers only, nothing about the card is stored), and when the page is paid
it marks the intent succeeded (or declined) and sends Stripe-format events, signed with the webhook secret exactly
as Stripe signs them (``Stripe-Signature: t=<unix time>,v1=<HMAC-SHA256(secret, "<t>.<body>")>``), by an HTTP POST
to our own webhook route. From there on nothing differs from Stripe: the same route verifies, de-duplicates,
re-fetches the intent (from here) and posts the sale.

Ids carry the operator, as bridge ids do (``cs_local_<op>_<hex>``, ``pi_local_<op>_<hex>``, the connected account
``acct_local_<op>``): a company code has no underscore, so the operator is read back from an id and every item is
stored under ``OP#<op>#LOCALPAY``, never in a global partition. A session's id is derived from its idempotency key
(with the secret, so it cannot be guessed), so a repeated create answers with the same session, as Stripe does.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from pynamodb.exceptions import PutError

from chalicelib.adapters.dynamodb.models import LocalPayItem
from chalicelib.adapters.stripe_gateway import verify_event
from chalicelib.domain.payments import CHECKOUT_COMPLETED, INTENT_FAILED, INTENT_SUCCEEDED, IntentState
from chalicelib.domain.tenancy import CODE_PATTERN
from chalicelib.ports import (
    CheckoutRequest,
    CheckoutSession,
    GatewayError,
    LocalPayment,
    LocalSession,
    OnboardingLink,
    RefundResult,
)

LOG = logging.getLogger("voltvend.payments.local")
API_VERSION = "2026-10-28.endive"  # the stripe library's own version: the events look like today's Stripe's
WEBHOOK_PATH = "/webhooks/stripe"
SEND_ATTEMPTS = 4
SEND_BACKOFF_S = (0.2, 0.5, 1.0)
# Stripe's test cards: the one that pays, and decline codes of the common refusals.
PAYING_CARDS = frozenset({"4242424242424242", "5555555555554444"})
DECLINING_CARDS = {"4000000000000002": ("card_declined", "Your card was declined."),
                   "4000000000009995": ("insufficient_funds", "Your card has insufficient funds."),
                   "4000000000000069": ("expired_card", "Your card has expired.")}
TEST_CARD_HINT = "Use a test card: 4242 4242 4242 4242 pays, 4000 0000 0000 0002 is declined."
Post = Callable[[str, bytes, dict[str, str]], int]  # (url, body, headers) -> HTTP status


def signature_header(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """Sign as Stripe signs: HMAC-SHA256 over ``"<t>.<payload>"`` with the endpoint's secret."""
    at = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{at}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


def stripe_event(event_type: str, obj: dict[str, Any], account: str) -> dict[str, Any]:
    """An event as Stripe's endpoint for connected accounts delivers it."""
    return {"id": f"evt_local_{secrets.token_hex(12)}", "object": "event", "api_version": API_VERSION,
            "created": int(time.time()), "type": event_type, "account": account, "livemode": False,
            "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None}, "data": {"object": obj}}


def http_post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def local_account(operator_id: str) -> str:
    return f"acct_local_{operator_id}"


def _operator_of(object_id: str, prefix: str) -> str:
    """The operator an id of ours names (``<prefix>_<op>_<hex>``), or GatewayError as Stripe's "No such …"."""
    head, _, token = object_id.removeprefix(f"{prefix}_local_").rpartition("_")
    if not object_id.startswith(f"{prefix}_local_") or not CODE_PATTERN.match(head) or not token.isalnum():
        raise GatewayError(f"No such object: '{object_id}'")
    return head


def _pk(operator_id: str) -> str:
    return f"OP#{operator_id}#LOCALPAY"


def _card_verdict(card_number: str) -> tuple[bool, str, str] | None:
    """(paid, decline code, message) for a test card; None for a number that is no test card."""
    digits = "".join(c for c in card_number if c.isdigit())
    if digits in PAYING_CARDS:
        return True, "", ""
    if digits in DECLINING_CARDS:
        code, message = DECLINING_CARDS[digits]
        return False, code, message
    return None


class LocalGateway:
    offline = True

    def __init__(self, public_url: str, webhook_secret: str, *, post: Post = http_post) -> None:
        self._public_url = public_url.rstrip("/")
        self._secret = webhook_secret
        self.post = post  # replaceable: tests and the bench observe or stop the webhook deliveries

    # -- PaymentGateway -------------------------------------------------------------------------------------------
    def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        op = self._account_operator(request.connected_account)
        if not self._public_url:
            raise GatewayError("VOLTVEND_PUBLIC_URL is not set: the local card page has no address")
        # Keyed by the secret too: the id opens the card page, so nobody may work it out from a top-up's details.
        token = hmac.new(self._secret.encode(), f"{op}\x1f{request.idempotency_key}".encode(),
                         hashlib.sha256).hexdigest()[:20]
        session_id, intent_id = f"cs_local_{op}_{token}", f"pi_local_{op}_{token}"
        now = int(time.time())
        session = {"id": session_id, "object": "checkout.session", "amount_total": request.amount_minor,
                   "currency": request.currency, "metadata": request.metadata, "mode": "payment",
                   "payment_intent": intent_id, "payment_status": "unpaid", "status": "open",
                   "success_url": request.success_url, "cancel_url": request.cancel_url, "created": now,
                   "client_reference_id": request.metadata.get("tenant_id"), "livemode": False,
                   "description": request.description, "url": f"{self._public_url}/pay/local/{session_id}"}
        intent = {"id": intent_id, "object": "payment_intent", "amount": request.amount_minor, "amount_received": 0,
                  "currency": request.currency, "metadata": request.metadata, "status": "requires_payment_method",
                  "last_payment_error": None, "latest_charge": None, "created": now, "livemode": False,
                  "description": request.description, "refunds": {}}
        self._put_new(op, f"INTENT#{intent_id}", intent)  # first: a session is never stored without its intent
        if not self._put_new(op, f"SESSION#{session_id}", session):
            earlier = self._get(op, f"SESSION#{session_id}")
            if earlier is None or (earlier["amount_total"], earlier["currency"], earlier["metadata"]) != (
                    request.amount_minor, request.currency, request.metadata):
                raise GatewayError("Keys for idempotent requests can only be used with the same parameters")
            return CheckoutSession(session_id, str(earlier["url"]))
        return CheckoutSession(session_id, str(session["url"]))

    def payment_intent(self, intent_id: str, connected_account: str) -> IntentState:
        op = self._account_operator(connected_account)
        intent = self._intent(op, intent_id)
        error = intent.get("last_payment_error") or {}
        # The local stand-in has no dashboard of its own: every refund in it is one of ours.
        return IntentState(intent_id, str(intent["status"]), int(intent["amount"]), str(intent["currency"]),
                           {str(k): str(v) for k, v in dict(intent["metadata"]).items()},
                           failure_reason=str(error.get("message") or ""))

    def refund(self, intent_id: str, connected_account: str, *, amount_minor: int | None, idempotency_key: str,
               reason: str) -> RefundResult:
        op = self._account_operator(connected_account)
        for _ in range(5):  # a concurrent change to the intent: read again
            item = self._item(op, f"INTENT#{intent_id}")
            intent = dict(item.body)
            refunds = dict(intent.get("refunds") or {})
            if idempotency_key in refunds:
                done = refunds[idempotency_key]
                return RefundResult(done["id"], "succeeded", int(done["amount"]))
            if intent["status"] != "succeeded":
                raise GatewayError(f"This PaymentIntent ({intent_id}) does not have a successful charge to refund.")
            left = int(intent["amount"]) - sum(int(r["amount"]) for r in refunds.values())
            amount = left if amount_minor is None else amount_minor
            if not 0 < amount <= left:
                raise GatewayError(f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})")
            refunds[idempotency_key] = {"id": f"re_local_{secrets.token_hex(10)}", "amount": amount, "reason": reason}
            item.body = {**intent, "refunds": refunds}
            if self._save(item):
                return RefundResult(refunds[idempotency_key]["id"], "succeeded", amount)
        raise GatewayError("the payment is busy; try again")

    def onboarding_link(self, operator_id: str, connected_account: str | None, *, refresh_url: str,
                        return_url: str) -> OnboardingLink:
        """A local account needs no onboarding: it exists at once, and the link just comes back."""
        return OnboardingLink(local_account(operator_id), return_url)

    def parse_event(self, payload: bytes, signature_header: str) -> dict[str, Any]:
        return verify_event(payload, signature_header, self._secret)

    # -- the card page --------------------------------------------------------------------------------------------
    def session(self, session_id: str) -> LocalSession | None:
        try:
            op = _operator_of(session_id, "cs")
        except GatewayError:
            return None
        found = self._get(op, f"SESSION#{session_id}")
        if found is None:
            return None
        return LocalSession(session_id, op, int(found["amount_total"]), str(found["currency"]),
                            str(found["description"]), str(found["status"]), str(found["cancel_url"]),
                            str(found["success_url"]))

    def pay(self, session_id: str, card_number: str) -> LocalPayment:
        """Pay the session with a test card: the intent moves on and the events go to the webhook."""
        session = self.session(session_id)
        if session is None:
            raise GatewayError("No such checkout session")
        if session.status == "complete":
            return LocalPayment(True, "", session.success_url)  # paid before (a double submit): nothing more
        verdict = _card_verdict(card_number)
        if verdict is None:
            return LocalPayment(False, TEST_CARD_HINT, "")
        paid, code, message = verdict
        op, intent_id = session.operator_id, session_id.replace("cs_local_", "pi_local_", 1)
        intent = self._settle_intent(op, intent_id, paid, code, message)
        account = local_account(op)
        if not paid:
            self._deliver(stripe_event(INTENT_FAILED, _public(intent), account))
            return LocalPayment(False, message, "")
        stored = self._item(op, f"SESSION#{session_id}")
        completed = {**dict(stored.body), "status": "complete", "payment_status": "paid"}
        stored.body = completed
        self._save(stored)
        # Stripe does not order its events; sending the intent's first exercises the webhook's indifference to it.
        self._deliver(stripe_event(INTENT_SUCCEEDED, _public(intent), account))
        self._deliver(stripe_event(CHECKOUT_COMPLETED, completed, account))
        return LocalPayment(True, "", session.success_url)

    def _settle_intent(self, op: str, intent_id: str, paid: bool, code: str, message: str) -> dict[str, Any]:
        for _ in range(5):
            item = self._item(op, f"INTENT#{intent_id}")
            intent = dict(item.body)
            if intent["status"] == "succeeded":
                return intent
            if paid:
                intent.update(status="succeeded", amount_received=intent["amount"], last_payment_error=None,
                              latest_charge=f"ch_local_{secrets.token_hex(10)}")
            else:
                intent.update(status="requires_payment_method", last_payment_error={
                    "type": "card_error", "code": code, "decline_code": code, "message": message})
            item.body = intent
            if self._save(item):
                return intent
        raise GatewayError("the payment is busy; try again")

    def _deliver(self, event: dict[str, Any]) -> None:
        """POST the event to our webhook until it is taken (2xx), as Stripe retries; log when it never is."""
        body = json.dumps(event, separators=(",", ":")).encode()
        url = f"{self._public_url}{WEBHOOK_PATH}"
        for attempt in range(SEND_ATTEMPTS):
            headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "Voltvend local payments",
                       "Stripe-Signature": signature_header(body, self._secret)}
            try:
                status = self.post(url, body, headers)
            except OSError as error:
                LOG.warning("webhook %s unreachable: %s", url, error)
                status = 0
            if 200 <= status < 300:
                return
            if attempt < len(SEND_BACKOFF_S):
                time.sleep(SEND_BACKOFF_S[attempt])
        LOG.error("event %s (%s) was not taken by %s after %d attempts", event["id"], event["type"], url,
                  SEND_ATTEMPTS)

    # -- storage ----------------------------------------------------------------------------------------------
    def _account_operator(self, account: str) -> str:
        op = account.removeprefix("acct_local_")
        if not account.startswith("acct_local_") or not CODE_PATTERN.match(op):
            raise GatewayError(f"No such account: '{account}'")
        return op

    def _intent(self, op: str, intent_id: str) -> dict[str, Any]:
        if _operator_of(intent_id, "pi") != op:
            raise GatewayError(f"No such payment_intent: '{intent_id}'")  # another account's intent: not found
        return dict(self._item(op, f"INTENT#{intent_id}").body)

    def _item(self, op: str, sk: str) -> LocalPayItem:
        try:
            return LocalPayItem.get(_pk(op), sk, consistent_read=True)
        except LocalPayItem.DoesNotExist:
            raise GatewayError(f"No such object: '{sk.split('#', 1)[1]}'") from None

    def _get(self, op: str, sk: str) -> dict[str, Any] | None:
        try:
            return dict(LocalPayItem.get(_pk(op), sk, consistent_read=True).body)
        except LocalPayItem.DoesNotExist:
            return None

    def _put_new(self, op: str, sk: str, body: dict[str, Any]) -> bool:
        try:
            LocalPayItem(pk=_pk(op), sk=sk, body=body).save(condition=LocalPayItem.pk.does_not_exist())
        except PutError as error:
            if "ConditionalCheckFailed" in str(error):
                return False
            raise
        return True

    @staticmethod
    def _save(item: LocalPayItem) -> bool:
        """Save conditional on the version read; False when another writer came first."""
        try:
            item.save()
        except PutError as error:
            if "ConditionalCheckFailed" in str(error):
                return False
            raise
        return True


def _public(intent: dict[str, Any]) -> dict[str, Any]:
    """The intent as Stripe shows it (our refund book-keeping stays inside)."""
    return {k: v for k, v in intent.items() if k != "refunds"}
