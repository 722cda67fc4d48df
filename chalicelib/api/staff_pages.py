"""Operator management pages (SPEC 2 and 3): list, create, edit permissions, disable, reset."""

from __future__ import annotations

import secrets

from chalice import Blueprint
from chalice.app import Response

from chalicelib.bootstrap import get_services
from chalicelib.domain.access import ALL_SITES, Permission, Role, parse_permissions, parse_role
from chalicelib.domain.actor import Actor
from chalicelib.domain.errors import DomainError
from chalicelib.domain.staff import StaffStatus
from chalicelib.services.staff_admin import StaffDraft
from chalicelib.web.guards import page
from chalicelib.web.http import FORM_TYPES, first, form_fields, redirect
from chalicelib.web.views import render

bp = Blueprint(__name__)


def _draft(fields: dict[str, list[str]], username: str | None = None) -> StaffDraft:
    sites = fields.get("sites") or [ALL_SITES]
    return StaffDraft(
        username=username or first(fields, "username"),
        display_name=first(fields, "display_name"),
        role=parse_role(first(fields, "role")),
        extra=parse_permissions(fields.get("extra_permissions", [])),
        sites=frozenset(sites),
    )


def _form(actor: Actor, *, user: object = None, error: str | None = None, status: int = 200,
          values: dict[str, list[str]] | None = None, new_password: str | None = None) -> Response:
    return render("staff_form.html", status=status, user=user, error=error, values=values or {},
                  roles=list(Role), permissions=list(Permission), sites=get_services().sites.sites(actor),
                  suggested_password=secrets.token_urlsafe(9), new_password=new_password)


@bp.route("/staff", methods=["GET"])
@page(bp, Permission.STAFF_MANAGE)
def staff_list(actor: Actor) -> Response:
    return render("staff_list.html", users=get_services().staff_admin.list(actor))


@bp.route("/staff/new", methods=["GET"])
@page(bp, Permission.STAFF_MANAGE)
def staff_new(actor: Actor) -> Response:
    return _form(actor)


@bp.route("/staff/new", methods=["POST"], content_types=FORM_TYPES)
@page(bp, Permission.STAFF_MANAGE)
def staff_create(actor: Actor) -> Response:
    fields = form_fields(bp.current_request)
    try:
        user = get_services().staff_admin.create(actor, _draft(fields), first(fields, "password"))
    except DomainError as error:
        return _form(actor, error=error.message, status=error.status, values=fields)
    return redirect(f"/staff/{user.username}?created=1")


@bp.route("/staff/{username}", methods=["GET"])
@page(bp, Permission.STAFF_MANAGE)
def staff_edit(actor: Actor, username: str) -> Response:
    return _form(actor, user=get_services().staff_admin.get(actor, username))


@bp.route("/staff/{username}", methods=["POST"], content_types=FORM_TYPES)
@page(bp, Permission.STAFF_MANAGE)
def staff_update(actor: Actor, username: str) -> Response:
    service = get_services().staff_admin
    fields = form_fields(bp.current_request)
    try:
        service.update(actor, _draft(fields, username))
    except DomainError as error:
        return _form(actor, user=service.get(actor, username), error=error.message, status=error.status,
                     values=fields)
    return redirect(f"/staff/{username}?saved=1")


@bp.route("/staff/{username}/status", methods=["POST"], content_types=FORM_TYPES)
@page(bp, Permission.STAFF_MANAGE)
def staff_status(actor: Actor, username: str) -> Response:
    wanted = first(form_fields(bp.current_request), "status")
    status = StaffStatus.DISABLED if wanted == "disabled" else StaffStatus.ACTIVE
    get_services().staff_admin.set_status(actor, username, status)
    return redirect(f"/staff/{username}?saved=1")


@bp.route("/staff/{username}/password", methods=["POST"], content_types=FORM_TYPES)
@page(bp, Permission.STAFF_MANAGE)
def staff_reset_password(actor: Actor, username: str) -> Response:
    service = get_services().staff_admin
    temporary = first(form_fields(bp.current_request), "password")
    try:
        user = service.reset_password(actor, username, temporary)
    except DomainError as error:
        return _form(actor, user=service.get(actor, username), error=error.message, status=error.status)
    return _form(actor, user=user, new_password=temporary)
