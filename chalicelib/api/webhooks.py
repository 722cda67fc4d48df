"""The payment processor's webhook: ``POST /webhooks/stripe``.

No session and no CSRF token: the caller is Stripe (or the local stand-in), and what authenticates it is the
``Stripe-Signature`` header over the raw body (services.payment_events). Answers: 200 when the event was taken
(handled, a duplicate, or not ours), 400 when it does not verify (bad signature, stale timestamp, not an event),
409 while the same event or payment is being handled elsewhere, 500 on anything unexpected; the processor retries
the last two.
"""

from __future__ import annotations

import logging

from chalice import Blueprint
from chalice.app import Response

from chalicelib.bootstrap import get_services
from chalicelib.domain.errors import ValidationError
from chalicelib.web.guards import json_error, json_response

LOG = logging.getLogger("voltvend.payments.webhook")
MAX_EVENT_BYTES = 256 * 1024  # Stripe's events are a few kB; anything this large is not one

bp = Blueprint(__name__)


@bp.route("/webhooks/stripe", methods=["POST"], content_types=["application/json"])
def stripe_webhook() -> Response:
    from chalicelib.ports import BadSignature
    from chalicelib.services.payment_events import EventBusy

    request = bp.current_request
    raw = request.raw_body or b""
    payload = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)
    if len(payload) > MAX_EVENT_BYTES:
        return json_error(413, "too large for an event")
    try:
        outcome = get_services().payment_events.take(payload, request.headers.get("stripe-signature", ""))
    except (BadSignature, ValidationError) as error:
        LOG.warning("webhook refused: %s", error)
        return json_error(400, "the event did not verify")
    except EventBusy as busy:
        return json_error(409, str(busy))
    except Exception:
        LOG.exception("webhook failed")
        return json_error(500, "internal error; it has been logged")
    return json_response({"received": True, "outcome": outcome})
