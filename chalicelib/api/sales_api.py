"""JSON API of accounts and the cashier's desk. Every write carries a request id (``request_id`` in the body or an
``Idempotency-Key`` header): a retry with the same id answers with what the first call posted."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice import Blueprint
from chalice.app import Response

from chalicelib.bootstrap import get_services
from chalicelib.domain.actor import Actor
from chalicelib.domain.ledger import Entry
from chalicelib.domain.money import format_amount
from chalicelib.domain.receipts import format_energy_centi_kwh

if TYPE_CHECKING:
    from chalicelib.ports import StoredAccount
    from chalicelib.services.sales import MeterAccountView, SaleLine
from chalicelib.web.guards import api, json_response
from chalicelib.web.http import json_object, query_params, string_list, text_field

bp = Blueprint(__name__)


def _request_id(body: dict[str, object]) -> str:
    header = bp.current_request.headers.get("idempotency-key", "")
    return header or text_field(body, "request_id")


def _entry(entry: Entry) -> dict[str, Any]:
    return {"entry_id": entry.entry_id, "request_id": entry.request_id, "kind": entry.kind.value,
            "account_id": entry.account_id, "meter_id": entry.meter_id, "amount": format_amount(entry.amount_minor),
            "channel": entry.channel.value, "actor": entry.actor, "created_at": entry.created_at.isoformat(),
            "reason": entry.reason, "reverses": entry.reverses, "energy_kwh": None if entry.energy_centi_kwh is None
            else format_energy_centi_kwh(entry.energy_centi_kwh)}


def _line(line: SaleLine) -> dict[str, Any]:
    delivery = line.delivery
    return {**_entry(line.entry), "delivery": {"state": line.delivery_state,
                                                 "count": delivery.count if delivery else None,
                                                 "failure": delivery.failure if delivery else ""}}


def _account(stored: StoredAccount) -> dict[str, Any]:
    a = stored.account
    return {"account_id": a.account_id, "customer": a.customer.name, "phone": a.customer.phone,
            "unit": a.customer.unit, "open": a.is_open, "opened_at": a.opened_at.isoformat(),
            "meters": [{"meter_id": m.meter_id, "billing_mode": m.billing_mode.value, "open": m.is_open}
                       for m in a.meters]}


def _meter(view: MeterAccountView) -> dict[str, Any]:
    money = view.money
    return {"meter_id": view.meter.meter_id, "serial": view.meter.serial,
            "balance": None if view.balance_minor is None else format_amount(view.balance_minor),
            "ledger_credit": format_amount(money.credit_minor) if money else None,
            "purchase_count": money.queue.confirmed_count if money else None,
            "deliveries_stopped": money.queue.blocked if money else ""}


@bp.route("/api/v1/sites/{site_id}/accounts", methods=["GET"])
@api(bp)
def list_accounts(actor: Actor, site_id: str) -> Response:
    return json_response({"accounts": [_account(a) for a in get_services().sales.accounts(actor, site_id)]})


@bp.route("/api/v1/sites/{site_id}/accounts", methods=["POST"])
@api(bp)
def open_account(actor: Actor, site_id: str) -> Response:
    body = json_object(bp.current_request)
    stored = get_services().sales.open_account(
        actor, site_id, text_field(body, "customer"), string_list(body, "meters"),
        phone=text_field(body, "phone", required=False), unit=text_field(body, "unit", required=False),
        request_id=_request_id(body))
    return json_response(_account(stored), status=201)


@bp.route("/api/v1/sites/{site_id}/accounts/{account_id}", methods=["GET"])
@api(bp)
def get_account(actor: Actor, site_id: str, account_id: str) -> Response:
    stored, meters, lines = get_services().sales.account(actor, site_id, account_id)
    return json_response({**_account(stored), "meters": [_meter(m) for m in meters],
                          "entries": [_line(line) for line in lines]})


@bp.route("/api/v1/sites/{site_id}/meters/{meter_id}/sales", methods=["POST"])
@api(bp)
def sell(actor: Actor, site_id: str, meter_id: str) -> Response:
    body = json_object(bp.current_request)
    entry = get_services().sales.sell(actor, site_id, meter_id, request_id=_request_id(body),
                                      amount=text_field(body, "amount", required=False),
                                      energy=text_field(body, "energy_kwh", required=False),
                                      channel=text_field(body, "channel", required=False) or "cash")
    return json_response(_entry(entry), status=201)


@bp.route("/api/v1/sites/{site_id}/meters/{meter_id}/refunds", methods=["POST"])
@api(bp)
def refund(actor: Actor, site_id: str, meter_id: str) -> Response:
    body = json_object(bp.current_request)
    entry = get_services().sales.refund(actor, site_id, meter_id, request_id=_request_id(body),
                                        amount=text_field(body, "amount"),
                                        channel=text_field(body, "channel", required=False) or "cash")
    return json_response(_entry(entry), status=201)


@bp.route("/api/v1/sites/{site_id}/entries/{entry_id}/reversal", methods=["POST"])
@api(bp)
def reverse(actor: Actor, site_id: str, entry_id: str) -> Response:
    body = json_object(bp.current_request)
    entry = get_services().sales.reverse(actor, site_id, entry_id, request_id=_request_id(body),
                                         reason=text_field(body, "reason"))
    return json_response(_entry(entry), status=201)


@bp.route("/api/v1/sites/{site_id}/entries/{entry_id}", methods=["GET"])
@api(bp)
def get_entry(actor: Actor, site_id: str, entry_id: str) -> Response:
    line, _ = get_services().sales.sale(actor, site_id, entry_id)
    return json_response(_line(line))


@bp.route("/api/v1/sites/{site_id}/sales", methods=["GET"])
@api(bp)
def query_sales(actor: Actor, site_id: str) -> Response:
    params = query_params(bp.current_request)
    lines = get_services().sales.sales(actor, site_id, params.get("month", ""),
                                       **{k: params.get(k, "") for k in ("kind", "channel", "cashier", "meter_id")})
    return json_response({"entries": [_line(line) for line in lines]})


@bp.route("/api/v1/sites/{site_id}/meters/{meter_id}/sales", methods=["GET"])
@api(bp)
def meter_sales(actor: Actor, site_id: str, meter_id: str) -> Response:
    view, lines = get_services().sales.meter_sales(actor, site_id, meter_id)
    return json_response({**_meter(view), "entries": [_line(line) for line in lines]})


@bp.route("/api/v1/sites/{site_id}/accounts/{account_id}/meters", methods=["POST"])
@api(bp)
def add_meter(actor: Actor, site_id: str, account_id: str) -> Response:
    body = json_object(bp.current_request)
    get_services().account_changes.add_meter(actor, site_id, account_id, text_field(body, "meter_id"),
                                             request_id=_request_id(body))
    stored, _, _ = get_services().sales.account(actor, site_id, account_id)
    return json_response(_account(stored), status=201)


@bp.route("/api/v1/sites/{site_id}/accounts/{account_id}/transfer", methods=["POST"])
@api(bp)
def transfer(actor: Actor, site_id: str, account_id: str) -> Response:
    body = json_object(bp.current_request)
    entries = get_services().account_changes.transfer(actor, site_id, account_id, text_field(body, "from_meter"),
                                                      text_field(body, "to_meter"), request_id=_request_id(body))
    return json_response({"entries": [_entry(e) for e in entries]}, status=201)


@bp.route("/api/v1/sites/{site_id}/accounts/{account_id}/close", methods=["POST"])
@api(bp)
def close(actor: Actor, site_id: str, account_id: str) -> Response:
    body = json_object(bp.current_request)
    record = get_services().account_changes.close(actor, site_id, account_id, request_id=_request_id(body))
    return json_response({"account_id": record.account_id, "closed_at": record.closed_at.isoformat(),
                          "closed_by": record.closed_by, "refund": format_amount(record.refund_minor),
                          "amount_due": format_amount(record.amount_due_minor),
                          "meters": [{"meter_id": m.meter_id, "consumption": format_amount(m.consumption_minor),
                                      "settled": format_amount(m.remaining_minor)} for m in record.meters]})
