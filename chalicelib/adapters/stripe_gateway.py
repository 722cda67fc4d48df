"""PaymentGateway on Stripe: hosted Checkout and direct charges on each operator's connected account (Connect).

Direct charges: the Checkout Session, and the payment intent it creates, live on the operator's own connected
account (the ``Stripe-Account`` header), so each operator is paid for its own tenants and sees them in its own
Stripe dashboard, and card data never touches us (PCI SAQ A). The platform's webhook endpoint for connected
accounts then delivers their events with the account's id in ``account``.

The library is imported inside the functions that use it: ``import app`` must never load it (the API's cold start
stays small; tests/unit/test_architecture.py checks). Every request that creates something carries an idempotency
key, so a retry after a lost answer creates nothing twice. ``api_base`` points the client at a local fake server in
tests.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from chalicelib.domain.payments import IntentState
from chalicelib.ports import (
    BadSignature,
    CheckoutRequest,
    CheckoutSession,
    GatewayError,
    OnboardingLink,
    RefundResult,
)

if TYPE_CHECKING:
    from stripe import StripeClient

WEBHOOK_TOLERANCE_S = 300  # Stripe's own default: an event signed longer ago than this is refused as a replay
NETWORK_RETRIES = 2  # the library retries connection errors with the same idempotency key
REFUND_MARK = "voltvend"  # metadata "by" on every refund we make: a refund without it was made elsewhere


def verify_event(payload: bytes, signature_header: str, secret: str) -> dict[str, Any]:
    """The event as a plain dict, once ``Stripe-Signature`` verifies over the raw body within the tolerance.

    Used by both gateways: the local stand-in signs exactly as Stripe does, so one check serves both.
    """
    import stripe

    if not secret:
        raise BadSignature("no webhook secret is configured: every event is refused")
    try:
        stripe.Webhook.construct_event(payload, signature_header, secret, tolerance=WEBHOOK_TOLERANCE_S)
    except stripe.SignatureVerificationError as error:
        raise BadSignature(str(error)) from error
    except ValueError as error:  # not JSON
        raise BadSignature(f"invalid payload: {error}") from error
    event = json.loads(payload)  # the very bytes just verified
    if not isinstance(event, dict):
        raise BadSignature("the payload is not a JSON object")
    return event


def _ours(refund: dict[str, Any]) -> bool:
    """A refund Voltvend made: marked as ours, or (made before the mark existed) carrying our reason."""
    metadata = refund.get("metadata") or {}
    return metadata.get("by") == REFUND_MARK or "why" in metadata


class StripeGateway:
    offline = False

    def __init__(self, secret_key: str, webhook_secret: str, *, api_base: str | None = None) -> None:
        if not webhook_secret:
            raise RuntimeError("VOLTVEND_STRIPE_WEBHOOK_SECRET must be set with VOLTVEND_STRIPE_SECRET_KEY")
        self._secret_key = secret_key
        self._webhook_secret = webhook_secret
        self._api_base = api_base
        self._client: StripeClient | None = None

    def _stripe(self) -> StripeClient:
        if self._client is None:
            import stripe

            addresses = {"api": self._api_base, "connect": self._api_base} if self._api_base else {}
            self._client = stripe.StripeClient(self._secret_key, base_addresses=addresses,  # type: ignore[arg-type]
                                               max_network_retries=NETWORK_RETRIES)
        return self._client

    def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        params: dict[str, Any] = {
            "mode": "payment",
            "line_items": [{"quantity": 1, "price_data": {
                "currency": request.currency, "unit_amount": request.amount_minor,
                "product_data": {"name": request.description}}}],
            "payment_method_types": ["card"],
            "metadata": request.metadata,
            "payment_intent_data": {"metadata": request.metadata, "description": request.description},
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
            "locale": request.locale,
        }
        if request.metadata.get("tenant_id"):
            params["client_reference_id"] = request.metadata["tenant_id"]
        session = self._call(lambda client: client.v1.checkout.sessions.create(
            params=params,  # the library's TypedDicts are not checked here: Stripe checks them
            options={"stripe_account": request.connected_account, "idempotency_key": request.idempotency_key}))
        return CheckoutSession(str(session["id"]), str(session["url"]))

    def payment_intent(self, intent_id: str, connected_account: str) -> IntentState:
        options = {"stripe_account": connected_account}
        intent = self._call(lambda client: client.v1.payment_intents.retrieve(intent_id, options=options))
        error = intent.get("last_payment_error") or {}
        outside = self._refunded_outside(intent_id, options) if intent["status"] == "succeeded" else 0
        return IntentState(str(intent["id"]), str(intent["status"]), int(intent["amount"]),
                           str(intent["currency"]).lower(),
                           {str(k): str(v) for k, v in (intent.get("metadata") or {}).items()},
                           failure_reason=str(error.get("message") or error.get("code") or ""),
                           refunded_outside_minor=outside)

    def _refunded_outside(self, intent_id: str, options: dict[str, Any]) -> int:
        """What the intent's succeeded refunds not made by us add up to (a pending one counts once it succeeds: the
        processor sends another event then)."""
        total, params = 0, {"payment_intent": intent_id, "limit": 100}
        while True:
            page = self._call(lambda client, params=dict(params): client.v1.refunds.list(params=params,
                                                                                       options=options))
            refunds = list(page.get("data") or [])
            total += sum(int(r["amount"]) for r in refunds if r.get("status") == "succeeded" and not _ours(r))
            if not page.get("has_more") or not refunds:
                return total
            params["starting_after"] = refunds[-1]["id"]

    def refund(self, intent_id: str, connected_account: str, *, amount_minor: int | None, idempotency_key: str,
               reason: str) -> RefundResult:
        params: dict[str, Any] = {"payment_intent": intent_id, "reason": "requested_by_customer",
                                  "metadata": {"why": reason[:500], "by": REFUND_MARK}}
        if amount_minor is not None:
            params["amount"] = amount_minor
        refund = self._call(lambda client: client.v1.refunds.create(
            params=params,
            options={"stripe_account": connected_account, "idempotency_key": idempotency_key}))
        return RefundResult(str(refund["id"]), str(refund["status"]), int(refund["amount"]))

    def onboarding_link(self, operator_id: str, connected_account: str | None, *, refresh_url: str,
                        return_url: str) -> OnboardingLink:
        account = connected_account
        if account is None:  # a Standard account: the operator's own Stripe dashboard, its own disputes and payouts
            created = self._call(lambda client: client.v1.accounts.create(
                params={"type": "standard", "metadata": {"operator_id": operator_id}},
                options={"idempotency_key": f"voltvend-account:{operator_id}"}))
            account = str(created["id"])
        link = self._call(lambda client: client.v1.account_links.create(params={
            "account": account, "type": "account_onboarding", "refresh_url": refresh_url,
            "return_url": return_url}))
        return OnboardingLink(account, str(link["url"]))

    def parse_event(self, payload: bytes, signature_header: str) -> dict[str, Any]:
        return verify_event(payload, signature_header, self._webhook_secret)

    def _call(self, request: Any) -> dict[str, Any]:
        """Run one API request; Stripe's errors become GatewayError, its objects plain dicts."""
        import stripe

        try:
            found = request(self._stripe())
        except stripe.StripeError as error:
            raise GatewayError(error.user_message or str(error)) from error
        return dict(found.to_dict())
