"""JSON API for integrations and scripts: bearer-token sessions, the same services as the pages."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint
from chalice.app import Response

from chalicelib.bootstrap import get_services

if TYPE_CHECKING:
    from chalicelib.adapters.dynamodb.tariff_repo import CommandRecord
from chalicelib.domain.access import ALL_SITES, Permission, parse_permissions, parse_role
from chalicelib.domain.actor import Actor
from chalicelib.domain.daily import RATES
from chalicelib.domain.errors import DomainError, ValidationError
from chalicelib.domain.money import format_amount
from chalicelib.services.staff_admin import StaffDraft
from chalicelib.web.guards import api, domain_error_json, json_response, signer
from chalicelib.web.http import client_ip, json_object, query_params
from chalicelib.web.http import string_list as _strings
from chalicelib.web.http import text_field as _text

bp = Blueprint(__name__)


@bp.route("/api/v1/session", methods=["POST"])
def create_session() -> Response:
    request = bp.current_request
    try:
        body = json_object(request)
        session = get_services().auth.login(_text(body, "company"), _text(body, "username"),
                                            _text(body, "password"), source_ip=client_ip(request))
    except DomainError as error:
        return domain_error_json(error)
    token = signer().session_token(session.operator_id, session.session_id)
    return json_response({"token": token, "expires_at": session.expires_at.isoformat()}, status=201)


@bp.route("/api/v1/session", methods=["DELETE"])
@api(bp)
def delete_session(actor: Actor) -> Response:
    get_services().auth.logout(actor)
    return json_response({"ok": True})


@bp.route("/api/v1/me", methods=["GET"])
@api(bp)
def me(actor: Actor) -> Response:
    return json_response({"operator_id": actor.operator_id, "username": actor.username,
                          "role": actor.grant.role.value,
                          "permissions": sorted(p.value for p in actor.grant.permissions)})


@bp.route("/api/v1/staff", methods=["GET"])
@api(bp, Permission.STAFF_MANAGE)
def list_staff(actor: Actor) -> Response:
    return json_response({"staff": [u.public_view() for u in get_services().staff_admin.list(actor)]})


@bp.route("/api/v1/staff", methods=["POST"])
@api(bp, Permission.STAFF_MANAGE)
def create_staff(actor: Actor) -> Response:
    body = json_object(bp.current_request)
    draft = StaffDraft(
        username=_text(body, "username"),
        display_name=_text(body, "display_name"),
        role=parse_role(_text(body, "role")),
        extra=parse_permissions(_strings(body, "extra_permissions")),
        sites=frozenset(_strings(body, "sites") or [ALL_SITES]),
    )
    user = get_services().staff_admin.create(actor, draft, _text(body, "password"))
    return json_response(user.public_view(), status=201)


@bp.route("/api/v1/sites", methods=["GET"])
@api(bp, Permission.METERS_VIEW)
def list_sites(actor: Actor) -> Response:
    sites = get_services().sites.sites(actor)
    return json_response({"sites": [{"site_id": s.site_id, "name": s.name, "address": s.address} for s in sites]})


@bp.route("/api/v1/sites/{site_id}/meters", methods=["GET"])
@api(bp, Permission.METERS_VIEW)
def list_meters(actor: Actor, site_id: str) -> Response:
    overview = get_services().sites.overview(actor, site_id)
    meters = [{"meter_id": m.meter_id, "serial": m.serial, "model": m.model, "collector_id": m.collector_id,
               "address": m.address, "unit_id": m.unit_id, "billing_mode": m.billing_mode.value}
              for m in overview.meters]
    return json_response({"site_id": site_id, "meters": meters})


@bp.route("/api/v1/oplog", methods=["GET"])
@api(bp, Permission.OPLOG_VIEW)
def oplog(actor: Actor) -> Response:
    params = query_params(bp.current_request)
    month, records, cursor = get_services().oplog.page(actor, params.get("month"), params.get("after"))
    entries = [{"at": r.at.isoformat(), "actor": r.actor, "action": r.action, "target": r.target,
                "before": r.before, "after": r.after, "source_ip": r.source_ip} for r in records]
    return json_response({"month": month, "entries": entries, "next": cursor})


@bp.route("/healthz", methods=["GET"])
def health() -> Response:
    return json_response({"ok": True})


@bp.route("/api/v1/sites/{site_id}/bridges", methods=["POST"])
@api(bp, Permission.SETTINGS_MANAGE)
def register_bridge(actor: Actor, site_id: str) -> Response:
    """Register the site's gateway bridge; the answer carries its secrets, shown this once."""
    from gateway_bridge.protocol import Suite  # pycryptodome stays off the cold-start path

    body = json_object(bp.current_request)
    suite_name = _text(body, "suite", required=False) or Suite.TDES_CBC_HMAC.value
    try:
        suite = Suite(suite_name)
    except ValueError:
        raise ValidationError(f"unknown suite {suite_name!r}", field="suite") from None
    bundle = get_services().bridge_admin.register(actor, site_id, _text(body, "name"), suite=suite)
    return json_response({"bridge_id": bundle.bridge_id, "site_id": bundle.site_id, "credential": bundle.credential,
                          "keyrings": bundle.keyrings}, status=201)


@bp.route("/api/v1/bridges", methods=["GET"])
@api(bp, Permission.METERS_VIEW)
def list_bridges(actor: Actor) -> Response:
    now = get_services().clock.now()
    bridges = [{"bridge_id": b.bridge_id, "site_id": b.site_id, "collectors": list(b.collectors),
                "status": b.status.value, "online": b.online(now),
                "last_seen": b.last_seen.isoformat() if b.last_seen else None}
               for b in get_services().bridge_admin.list(actor)]
    return json_response({"bridges": bridges})


@bp.route("/api/v1/bridges/{bridge_id}/revoke", methods=["POST"])
@api(bp, Permission.SETTINGS_MANAGE)
def revoke_bridge(actor: Actor, bridge_id: str) -> Response:
    get_services().bridge_admin.revoke(actor, bridge_id)
    return json_response({"bridge_id": bridge_id, "status": "revoked"})


@bp.route("/api/v1/sites/{site_id}/energy", methods=["GET"])
@api(bp, Permission.REPORTS_VIEW)
def energy_by_day(actor: Actor, site_id: str) -> Response:
    """Energy analysis (SPEC 28): daily roll-ups of one scope (building, floor, unit, meter) over dates."""
    params = query_params(bp.current_request)
    first, last, scope = params.get("from", ""), params.get("to", ""), params.get("scope", "")
    days = get_services().energy_report.days(actor, site_id, first, last, scope)
    return json_response({"site_id": site_id, "scope": scope, "days": [
        {"day": day, "energy_kwh": str(f.energy_kwh), "energy_by_rate": dict(zip(RATES, map(str, f.energy_by_rate),
                                                                                   strict=True)),
         "spent": None if f.spent_minor is None else format_amount(f.spent_minor),
         "purchased": None if f.purchased_minor is None else format_amount(f.purchased_minor),
         "purchases": f.purchases} for day, _, f in days]})


def _command_json(record: CommandRecord) -> dict[str, object]:
    return {"command_id": record.command_id, "kind": record.kind, "meter_id": record.meter_id, "bus": record.bus,
            "status": record.status, "detail": record.detail, "updated_at": record.updated_at.isoformat()}


@bp.route("/api/v1/sites/{site_id}/tariff", methods=["POST"])
@api(bp, Permission.SETTINGS_MANAGE)
def add_tariff_version(actor: Actor, site_id: str) -> Response:
    """A new tariff version for the site (never an edit); see tariff_codec for the format."""
    from chalicelib.domain.tariffs.json_format import tariff_to_json

    tariff = get_services().tariffs.add_site_version(actor, site_id, json_object(bp.current_request))
    return json_response(tariff_to_json(tariff), status=201)


@bp.route("/api/v1/sites/{site_id}/tariff", methods=["GET"])
@api(bp, Permission.METERS_VIEW)
def tariff_history(actor: Actor, site_id: str) -> Response:
    from chalicelib.domain.tariffs.json_format import tariff_to_json

    history = get_services().tariffs.history(actor, site_id)
    return json_response({"versions": [tariff_to_json(t) for t in history.versions] if history else []})


@bp.route("/api/v1/sites/{site_id}/tariff/push", methods=["POST"])
@api(bp, Permission.METERS_CONTROL)
def push_tariff(actor: Actor, site_id: str) -> Response:
    records = get_services().tariffs.push_prices(actor, site_id)
    return json_response({"commands": [_command_json(r) for r in records]}, status=202)


@bp.route("/api/v1/sites/{site_id}/commands", methods=["GET"])
@api(bp, Permission.METERS_VIEW)
def meter_commands(actor: Actor, site_id: str) -> Response:
    return json_response({"commands": [_command_json(r) for r in get_services().tariffs.commands(actor, site_id)]})


@bp.route("/api/v1/sites/{site_id}/meters/{meter_id}/tariff", methods=["POST"])
@api(bp, Permission.SETTINGS_MANAGE)
def add_meter_tariff_version(actor: Actor, site_id: str, meter_id: str) -> Response:
    """A meter's own price, overriding the site default from its effective time on."""
    from chalicelib.domain.tariffs.json_format import tariff_to_json

    tariff = get_services().tariffs.add_site_version(actor, site_id, json_object(bp.current_request), meter_id)
    return json_response(tariff_to_json(tariff), status=201)
