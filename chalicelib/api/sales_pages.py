"""Accounts, the cashier's desk, sales queries and receipts in the portal (SPEC 11–14, 17–21)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from chalice import Blueprint
from chalice.app import Response

from chalicelib.bootstrap import get_services
from chalicelib.domain.access import Permission
from chalicelib.domain.actor import Actor
from chalicelib.domain.errors import DomainError
from chalicelib.domain.ledger import EntryKind, new_request_token
from chalicelib.web.guards import page
from chalicelib.web.http import FORM_TYPES, first, form_fields, query_params, redirect
from chalicelib.web.views import render

if TYPE_CHECKING:
    from chalicelib.ports import StoredAccount

SALE_KINDS = tuple(kind.value for kind in EntryKind)

bp = Blueprint(__name__)


def _accounts_page(actor: Actor, site_id: str, *, error: str | None = None, status: int = 200,
                   values: dict[str, list[str]] | None = None) -> Response:
    services = get_services()
    site = services.sites.overview(actor, site_id)
    accounts = services.sales.accounts(actor, site_id)
    taken = _on_open_accounts(accounts)
    free = [row for row in site.rows if row.meter.meter_id not in taken]
    return render("accounts.html", status=status, site=site.site, accounts=accounts, free_rows=free, error=error,
                  values=values or {}, request_id=new_request_token())


@bp.route("/sites/{site_id}/accounts", methods=["GET"])
@page(bp, Permission.METERS_VIEW)
def accounts(actor: Actor, site_id: str) -> Response:
    return _accounts_page(actor, site_id)


@bp.route("/sites/{site_id}/accounts", methods=["POST"], content_types=FORM_TYPES)
@page(bp, Permission.ACCOUNTS_MANAGE)
def open_account(actor: Actor, site_id: str) -> Response:
    fields = form_fields(bp.current_request)
    try:
        stored = get_services().sales.open_account(
            actor, site_id, first(fields, "customer"), fields.get("meters", []), phone=first(fields, "phone"),
            unit=first(fields, "unit"), request_id=first(fields, "request_id"))
    except DomainError as error:
        return _accounts_page(actor, site_id, error=error.message, status=error.status, values=fields)
    return redirect(f"/sites/{site_id}/accounts/{stored.account.account_id}")


def _account_page(actor: Actor, site_id: str, account_id: str, *, error: str | None = None, status: int = 200,
                  notice: str | None = None) -> Response:
    services = get_services()
    stored, meters, lines = services.sales.account(actor, site_id, account_id)
    taken = _on_open_accounts(services.sales.accounts(actor, site_id))
    free = [m for m in services.tenancy.list_meters(actor.operator_id, site_id) if m.meter_id not in taken]
    return render("account.html", status=status, site_id=site_id, stored=stored, meters=meters,
                  lines=list(reversed(lines)), error=error, notice=notice if notice in NOTICES else None,
                  request_id=new_request_token(), free_meters=free)


# Only our own notices are shown, never text taken from the URL.
NOTICES = frozenset({"Meter added to the account.", "Balance transferred; the old meter left the account.",
                     "Account closed."})


def _on_open_accounts(accounts: list[StoredAccount]) -> set[str]:
    return {m.meter_id for a in accounts if a.account.is_open for m in a.account.meters if m.is_open}


@bp.route("/sites/{site_id}/accounts/{account_id}", methods=["GET"])
@page(bp, Permission.METERS_VIEW)
def account(actor: Actor, site_id: str, account_id: str) -> Response:
    return _account_page(actor, site_id, account_id, notice=query_params(bp.current_request).get("done"))


def _desk_action(actor: Actor, site_id: str, action: str, fields: dict[str, list[str]]) -> Any:
    sales = get_services().sales
    meter_id, request_id = first(fields, "meter_id"), first(fields, "request_id")
    if action == "sell":
        return sales.sell(actor, site_id, meter_id, request_id=request_id, amount=first(fields, "amount"),
                          energy=first(fields, "energy"), channel=first(fields, "channel", "cash"))
    if action == "refund":
        return sales.refund(actor, site_id, meter_id, request_id=request_id, amount=first(fields, "amount"),
                            channel=first(fields, "channel", "cash"))
    return sales.reverse(actor, site_id, first(fields, "entry_id"), request_id=request_id,
                         reason=first(fields, "reason"))


def _account_change(actor: Actor, site_id: str, account_id: str, action: str, fields: dict[str, list[str]]) -> str:
    """Add a meter, transfer a retrofitted meter's balance, or close; returns the notice to show."""
    changes, request_id = get_services().account_changes, first(fields, "request_id")
    if action == "add-meter":
        changes.add_meter(actor, site_id, account_id, first(fields, "meter_id"), request_id=request_id)
        return "Meter added to the account."
    if action == "transfer":
        changes.transfer(actor, site_id, account_id, first(fields, "from_meter"), first(fields, "to_meter"),
                         request_id=request_id)
        return "Balance transferred; the old meter left the account."
    changes.close(actor, site_id, account_id, request_id=request_id)
    return "Account closed."


DESK_ACTIONS = ("sell", "refund", "reverse")
ACCOUNT_ACTIONS = ("add-meter", "transfer", "close")


@bp.route("/sites/{site_id}/accounts/{account_id}/{action}", methods=["POST"], content_types=FORM_TYPES)
@page(bp, Permission.METERS_VIEW)
def desk(actor: Actor, site_id: str, account_id: str, action: str) -> Response:
    """Sell, refund, reverse, add a meter, transfer or close from the account page; each checks its own
    permission in the service."""
    if action not in DESK_ACTIONS + ACCOUNT_ACTIONS:
        return _account_page(actor, site_id, account_id, error="no such action", status=404)
    fields = form_fields(bp.current_request)
    try:
        if action in ACCOUNT_ACTIONS:
            notice = _account_change(actor, site_id, account_id, action, fields)
            return redirect(f"/sites/{site_id}/accounts/{account_id}?done={quote(notice)}")
        entry = _desk_action(actor, site_id, action, fields)
    except DomainError as error:
        return _account_page(actor, site_id, account_id, error=error.message, status=error.status)
    return redirect(f"/sites/{site_id}/receipts/{entry.entry_id}")


@bp.route("/sites/{site_id}/sales", methods=["GET"])
@page(bp, Permission.METERS_VIEW)
def sales(actor: Actor, site_id: str) -> Response:
    params = query_params(bp.current_request)
    month = params.get("month") or datetime.now(UTC).strftime("%Y-%m")
    filters = {k: params.get(k, "") for k in ("kind", "channel", "cashier", "meter_id")}
    site = get_services().tenancy.get_site(actor.operator_id, site_id)
    lines = get_services().sales.sales(actor, site_id, month, **filters)
    return render("sales.html", site=site, site_id=site_id, month=month, filters=filters, lines=lines,
                  kinds=SALE_KINDS, total=sum(line.entry.amount_minor for line in lines
                                              if line.entry.kind.value == "sale"))


@bp.route("/sites/{site_id}/receipts/{entry_id}", methods=["GET"])
@page(bp, Permission.METERS_VIEW)
def receipt(actor: Actor, site_id: str, entry_id: str) -> Response:
    found = get_services().sales.receipt(actor, site_id, entry_id)
    line, _ = get_services().sales.sale(actor, site_id, entry_id)
    return render("receipt.html", receipt=found, pdf_url=f"/sites/{site_id}/receipts/{entry_id}/pdf",
                  back_url=f"/sites/{site_id}/accounts/{line.entry.account_id}")


@bp.route("/sites/{site_id}/receipts/{entry_id}/pdf", methods=["GET"])
@page(bp, Permission.METERS_VIEW)
def receipt_pdf(actor: Actor, site_id: str, entry_id: str) -> Response:
    from chalicelib.adapters.receipt_pdf import render_receipt_pdf
    from chalicelib.web.context import get_state

    found = get_services().sales.receipt(actor, site_id, entry_id)
    body = render_receipt_pdf(found, get_state().locale)
    return Response(body=body, status_code=200,
                    headers={"Content-Type": "application/pdf",
                             "Content-Disposition": f'inline; filename="{found.receipt_number}.pdf"'})


@bp.route("/accounts", methods=["GET"])
@page(bp, Permission.METERS_VIEW)
def accounts_choice(actor: Actor) -> Response:
    """The menu's "Accounts": straight to the site's accounts when the operator has one site, else a choice."""
    return _site_choice(actor, "accounts")


@bp.route("/sell", methods=["GET"])
@page(bp, Permission.METERS_VIEW)
def sales_choice(actor: Actor) -> Response:
    return _site_choice(actor, "sales")


def _site_choice(actor: Actor, where: str) -> Response:
    sites = get_services().sites.sites(actor)
    if len(sites) == 1:
        return redirect(f"/sites/{sites[0].site_id}/{where}")
    return render("site_choice.html", sites=sites, where=where)
