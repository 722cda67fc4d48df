"""System settings by hand (SPEC 6–10), as pages and as JSON: new sites, a site's defaults, its buildings and floors,
units, collectors and meters, and "write to meters". The rules are in services/site_settings.py.

Pages post ordinary forms and redirect after a change; a refused change shows the page again with the reason and
the values typed. The JSON routes take the same field names (PATCH changes only the fields given) and answer 400,
403, 404 or 409 with ``error``, ``field`` and, where the portal translates it, ``code``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from chalice import Blueprint
from chalice.app import Response

from chalicelib.bootstrap import get_services
from chalicelib.domain.access import Permission
from chalicelib.domain.actor import Actor
from chalicelib.domain.errors import DomainError, ValidationError
from chalicelib.domain.money import format_amount
from chalicelib.domain.settings import EffectiveSettings, effective_settings
from chalicelib.domain.tenancy import Building, Collector, Meter, Site, Transport, Unit
from chalicelib.web.guards import api, json_error, json_response, page
from chalicelib.web.http import FORM_TYPES, form_fields, json_object, query_params, redirect
from chalicelib.web.views import render

if TYPE_CHECKING:
    from chalicelib.services.site_settings import SiteSettingsService

bp = Blueprint(__name__)
View = Callable[..., Response]

SITE_FIELDS = frozenset({"name", "address", "reading_interval_s", "overload_threshold_kw", "alarm_amount_1",
                         "alarm_amount_2", "hoarding_limit", "alarm_sms_number", "default_price"})
OVERRIDE_FIELDS = frozenset({"overload_threshold_kw", "alarm_amount_1", "alarm_amount_2", "hoarding_limit"})
FIELDS = {
    "site": SITE_FIELDS,
    "new_site": frozenset({"site_id", "name", "address"}),
    "building": frozenset({"building_id", "name", "floors"}),
    "unit": frozenset({"building_id", "floor", "number"}),
    "collector": frozenset({"collector_id", "name", "transport", "host", "port", "building_id"}),
    "meter": frozenset({"meter_id", "serial", "model", "collector_id", "address", "unit_id", "ct_ratio",
                        "billing_mode"}) | OVERRIDE_FIELDS,
}


def _service() -> SiteSettingsService:
    return get_services().site_settings


# -- pages ---------------------------------------------------------------------------------------------

def _form() -> dict[str, str]:
    """A posted form as one text per field (no field here repeats), without the CSRF token."""
    return {k: v[0] for k, v in form_fields(bp.current_request).items() if k != "csrf_token" and v}


def _settings_page(actor: Actor, site_id: str, *, status: int = 200, error: DomainError | None = None,
                   form: str = "", values: Mapping[str, str] | None = None) -> Response:
    settings = _service().view(actor, site_id)
    params = query_params(bp.current_request)
    return render("site_settings.html", status=status, s=settings, error=error, form=form, values=values or {},
                  notice=params.get("saved", ""), pushed=params.get("pushed"), asked=params.get("asked"),
                  tariff_added=params.get("tariff") == "1", transports=list(Transport))


def _after(site_id: str, anchor: str, **query: str) -> Response:
    return redirect(f"/sites/{site_id}/settings?{urlencode(query)}#{anchor}")


def _changes(form: str, anchor: str) -> Callable[[View], View]:
    """A settings form: on success the view's redirect; a refusal shows the page again with the reason and what was
    typed (status 4xx), so nothing the operator entered is lost."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(actor: Actor, site_id: str, **ids: str) -> Response:
            values = _form()
            try:
                return view(actor, site_id, values, **ids)
            except DomainError as error:
                if error.status == 404:
                    raise
                which = f"{form}:{next(iter(ids.values()))}" if ids else form
                return _settings_page(actor, site_id, status=error.status, error=error, form=which, values=values)

        return wrapper

    return decorate


@bp.route("/sites/new", methods=["GET"])
@page(bp, Permission.SETTINGS_MANAGE)
def site_new(actor: Actor) -> Response:
    _service().require_site_creator(actor)
    return render("site_new.html", error=None, values={})


@bp.route("/sites/new", methods=["POST"], content_types=FORM_TYPES)
@page(bp, Permission.SETTINGS_MANAGE)
def site_create(actor: Actor) -> Response:
    values = _form()
    try:
        site = _service().create_site(actor, values)
    except DomainError as error:
        return render("site_new.html", status=error.status, error=error, values=values)
    return _after(site.site_id, "defaults", saved="site")


@bp.route("/sites/{site_id}/settings", methods=["GET"])
@page(bp, Permission.SETTINGS_MANAGE)
def settings_page(actor: Actor, site_id: str) -> Response:
    return _settings_page(actor, site_id)


@bp.route("/sites/{site_id}/settings", methods=["POST"], content_types=FORM_TYPES)
@page(bp, Permission.SETTINGS_MANAGE)
@_changes("defaults", "defaults")
def settings_save(actor: Actor, site_id: str, values: dict[str, str]) -> Response:
    saved = _service().save_defaults(actor, site_id, values)
    return _after(site_id, "defaults", saved="defaults", tariff="1" if saved.tariff_added else "0")


@bp.route("/sites/{site_id}/settings/push", methods=["POST"], content_types=FORM_TYPES)
@page(bp, Permission.SETTINGS_MANAGE)
@_changes("push", "defaults")
def settings_push(actor: Actor, site_id: str, values: dict[str, str]) -> Response:
    meter_id = values.get("meter_id")
    outcome = _service().push_settings(actor, site_id, [meter_id] if meter_id else None)
    return _after(site_id, "defaults", pushed=str(len(outcome.records)), asked=str(outcome.meters))


@bp.route("/sites/{site_id}/settings/buildings", methods=["POST"], content_types=FORM_TYPES)
@page(bp, Permission.SETTINGS_MANAGE)
@_changes("buildings", "buildings")
def building_add(actor: Actor, site_id: str, values: dict[str, str]) -> Response:
    _service().add_building(actor, site_id, values)
    return _after(site_id, "buildings", saved="buildings")


@bp.route("/sites/{site_id}/settings/buildings/{building_id}", methods=["POST"], content_types=FORM_TYPES)
@page(bp, Permission.SETTINGS_MANAGE)
@_changes("buildings", "buildings")
def building_save(actor: Actor, site_id: str, values: dict[str, str], building_id: str) -> Response:
    _service().update_building(actor, site_id, building_id, values)
    return _after(site_id, "buildings", saved="buildings")


@bp.route("/sites/{site_id}/settings/buildings/{building_id}/remove", methods=["POST"], content_types=FORM_TYPES)
@page(bp, Permission.SETTINGS_MANAGE)
@_changes("buildings", "buildings")
def building_remove(actor: Actor, site_id: str, values: dict[str, str], building_id: str) -> Response:
    _service().remove_building(actor, site_id, building_id)
    return _after(site_id, "buildings", saved="removed")


@bp.route("/sites/{site_id}/settings/units", methods=["POST"], content_types=FORM_TYPES)
@page(bp, Permission.SETTINGS_MANAGE)
@_changes("units", "units")
def unit_add(actor: Actor, site_id: str, values: dict[str, str]) -> Response:
    _service().add_unit(actor, site_id, values)
    return _after(site_id, "units", saved="units")


@bp.route("/sites/{site_id}/settings/units/{unit_id}", methods=["POST"], content_types=FORM_TYPES)
@page(bp, Permission.SETTINGS_MANAGE)
@_changes("units", "units")
def unit_save(actor: Actor, site_id: str, values: dict[str, str], unit_id: str) -> Response:
    _service().update_unit(actor, site_id, unit_id, values)
    return _after(site_id, "units", saved="units")


@bp.route("/sites/{site_id}/settings/units/{unit_id}/remove", methods=["POST"], content_types=FORM_TYPES)
@page(bp, Permission.SETTINGS_MANAGE)
@_changes("units", "units")
def unit_remove(actor: Actor, site_id: str, values: dict[str, str], unit_id: str) -> Response:
    _service().remove_unit(actor, site_id, unit_id)
    return _after(site_id, "units", saved="removed")


@bp.route("/sites/{site_id}/settings/collectors", methods=["POST"], content_types=FORM_TYPES)
@page(bp, Permission.SETTINGS_MANAGE)
@_changes("collectors", "collectors")
def collector_add(actor: Actor, site_id: str, values: dict[str, str]) -> Response:
    _service().add_collector(actor, site_id, values)
    return _after(site_id, "collectors", saved="collectors")


@bp.route("/sites/{site_id}/settings/collectors/{collector_id}", methods=["POST"], content_types=FORM_TYPES)
@page(bp, Permission.SETTINGS_MANAGE)
@_changes("collectors", "collectors")
def collector_save(actor: Actor, site_id: str, values: dict[str, str], collector_id: str) -> Response:
    _service().update_collector(actor, site_id, collector_id, values)
    return _after(site_id, "collectors", saved="collectors")


@bp.route("/sites/{site_id}/settings/collectors/{collector_id}/remove", methods=["POST"],
          content_types=FORM_TYPES)
@page(bp, Permission.SETTINGS_MANAGE)
@_changes("collectors", "collectors")
def collector_remove(actor: Actor, site_id: str, values: dict[str, str], collector_id: str) -> Response:
    _service().remove_collector(actor, site_id, collector_id)
    return _after(site_id, "collectors", saved="removed")


@bp.route("/sites/{site_id}/settings/meters", methods=["POST"], content_types=FORM_TYPES)
@page(bp, Permission.SETTINGS_MANAGE)
@_changes("meters", "meters")
def meter_add(actor: Actor, site_id: str, values: dict[str, str]) -> Response:
    meter = _service().add_meter(actor, site_id, values)
    return redirect(f"/sites/{site_id}/settings/meters/{meter.meter_id}?saved=created#meter-form")


def _meter_page(actor: Actor, site_id: str, meter_id: str, *, status: int = 200, error: DomainError | None = None,
                values: Mapping[str, str] | None = None) -> Response:
    settings, meter = _service().meter(actor, site_id, meter_id)
    params = query_params(bp.current_request)
    return render("meter_settings.html", status=status, s=settings, m=meter, error=error, values=values or {},
                  notice=params.get("saved", ""), pushed=params.get("pushed"))


@bp.route("/sites/{site_id}/settings/meters/{meter_id}", methods=["GET"])
@page(bp, Permission.SETTINGS_MANAGE)
def meter_edit(actor: Actor, site_id: str, meter_id: str) -> Response:
    return _meter_page(actor, site_id, meter_id)


@bp.route("/sites/{site_id}/settings/meters/{meter_id}", methods=["POST"], content_types=FORM_TYPES)
@page(bp, Permission.SETTINGS_MANAGE)
def meter_save(actor: Actor, site_id: str, meter_id: str) -> Response:
    values = _form()
    try:
        _service().update_meter(actor, site_id, meter_id, values)
    except DomainError as error:
        if error.status == 404:
            raise
        return _meter_page(actor, site_id, meter_id, status=error.status, error=error, values=values)
    return redirect(f"/sites/{site_id}/settings/meters/{meter_id}?saved=meter#meter-form")


@bp.route("/sites/{site_id}/settings/meters/{meter_id}/push", methods=["POST"], content_types=FORM_TYPES)
@page(bp, Permission.SETTINGS_MANAGE)
def meter_push(actor: Actor, site_id: str, meter_id: str) -> Response:
    try:
        outcome = _service().push_settings(actor, site_id, [meter_id])
    except DomainError as error:
        if error.status == 404:
            raise
        return _meter_page(actor, site_id, meter_id, status=error.status, error=error)
    return redirect(f"/sites/{site_id}/settings/meters/{meter_id}?pushed={len(outcome.records)}#pushed")


@bp.route("/sites/{site_id}/settings/meters/{meter_id}/remove", methods=["POST"], content_types=FORM_TYPES)
@page(bp, Permission.SETTINGS_MANAGE)
def meter_remove(actor: Actor, site_id: str, meter_id: str) -> Response:
    """From the list or from the meter's own page (``back=meter``): a refusal shows the page it came from."""
    values = _form()
    try:
        _service().remove_meter(actor, site_id, meter_id)
    except DomainError as error:
        if error.status == 404:
            raise
        if values.get("back") == "meter":
            return _meter_page(actor, site_id, meter_id, status=error.status, error=error)
        return _settings_page(actor, site_id, status=error.status, error=error, form=f"meters:{meter_id}")
    return _after(site_id, "meters", saved="removed")


# -- JSON ----------------------------------------------------------------------------------------------

def _body(kind: str, actor: Actor | None = None, site_id: str | None = None) -> dict[str, Any]:
    """The JSON object, with only the fields ``kind`` knows: a misspelt field is a 400, not silently ignored. The
    site is checked first, so another operator's site answers 404 whatever the body says."""
    if actor is not None and site_id is not None:
        _service().site(actor, site_id)
    body = json_object(bp.current_request)
    unknown = sorted(set(body) - FIELDS[kind])
    if unknown:
        raise ValidationError(f"unknown field {unknown[0]}; known: {', '.join(sorted(FIELDS[kind]))}",
                              field=unknown[0])
    return body


def _coded(view: View) -> View:
    """Refusals the portal translates carry their ``code``; a meter's import-rule problems come as a list."""

    @functools.wraps(view)
    def wrapper(actor: Actor, **kwargs: str) -> Response:
        from chalicelib.domain.meter_form import MeterInvalid

        try:
            return view(actor, **kwargs)
        except MeterInvalid as invalid:
            return json_error(invalid.status, invalid.message, field=invalid.field, problems=invalid.as_json())
        except DomainError as error:
            code = getattr(error, "code", None)
            if code is None:
                raise
            return json_error(error.status, error.message, field=error.field, code=code,
                              params=dict(getattr(error, "params", {})))

    return wrapper


def site_json(site: Site) -> dict[str, Any]:
    return {"site_id": site.site_id, "name": site.name, "address": site.address,
            "reading_interval_s": site.reading_interval_s,
            "overload_threshold_kw": _text(site.overload_threshold_kw),
            "alarm_amount_1": format_amount(site.alarm_amount_1_minor),
            "alarm_amount_2": format_amount(site.alarm_amount_2_minor),
            "hoarding_limit": format_amount(site.hoarding_limit_minor), "alarm_sms_number": site.alarm_sms_number}


def building_json(building: Building) -> dict[str, Any]:
    return {"building_id": building.building_id, "name": building.name, "floors": list(building.floors)}


def unit_json(unit: Unit) -> dict[str, Any]:
    return {"unit_id": unit.unit_id, "building_id": unit.building_id, "floor": unit.floor, "number": unit.number}


def collector_json(collector: Collector) -> dict[str, Any]:
    return {"collector_id": collector.collector_id, "name": collector.name, "transport": collector.transport.value,
            "host": collector.host, "port": collector.port, "building_id": collector.building_id}


def meter_json(meter: Meter, effective: EffectiveSettings) -> dict[str, Any]:
    own = {"overload_threshold_kw": _text(meter.overload_threshold_kw),
           "alarm_amount_1": _amount(meter.alarm_amount_1_minor), "alarm_amount_2": _amount(meter.alarm_amount_2_minor),
           "hoarding_limit": _amount(meter.hoarding_limit_minor)}
    return {"meter_id": meter.meter_id, "serial": meter.serial, "model": meter.model,
            "collector_id": meter.collector_id, "address": meter.address, "unit_id": meter.unit_id,
            "ct_ratio": meter.ct_ratio, "billing_mode": meter.billing_mode.value, "overrides": own,
            "effective": {"overload_threshold_kw": _text(effective.overload_threshold_kw),
                          "alarm_amount_1": format_amount(effective.alarm_amount_1_minor),
                          "alarm_amount_2": format_amount(effective.alarm_amount_2_minor),
                          "hoarding_limit": format_amount(effective.hoarding_limit_minor)}}


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _amount(minor: int | None) -> str | None:
    return None if minor is None else format_amount(minor)


@bp.route("/api/v1/sites", methods=["POST"])
@api(bp, Permission.SETTINGS_MANAGE)
@_coded
def api_create_site(actor: Actor) -> Response:
    return json_response(site_json(_service().create_site(actor, _body("new_site"))), status=201)


@bp.route("/api/v1/sites/{site_id}/settings", methods=["GET"])
@api(bp, Permission.SETTINGS_MANAGE)
def api_settings(actor: Actor, site_id: str) -> Response:
    s = _service().view(actor, site_id)
    return json_response({"site": site_json(s.site), "tariff_versions": s.tariff_versions,
                          "buildings": [building_json(b) for b in s.buildings],
                          "units": [unit_json(u) for u in s.units],
                          "collectors": [collector_json(c) for c in s.collectors],
                          "meters": [meter_json(m, s.effective[m.meter_id]) for m in s.meters]})


@bp.route("/api/v1/sites/{site_id}/settings", methods=["PATCH"])
@api(bp, Permission.SETTINGS_MANAGE)
@_coded
def api_save_settings(actor: Actor, site_id: str) -> Response:
    saved = _service().save_defaults(actor, site_id, _body("site", actor, site_id))
    return json_response({**site_json(saved.site), "tariff_added": saved.tariff_added})


@bp.route("/api/v1/sites/{site_id}/settings/push", methods=["POST"])
@api(bp, Permission.SETTINGS_MANAGE)
def api_push_settings(actor: Actor, site_id: str) -> Response:
    """Write the effective settings into the site's meters, or into ``{"meter_ids": [...]}`` only."""
    body = json_object(bp.current_request)
    wanted = body.get("meter_ids")
    if wanted is not None and (not isinstance(wanted, list) or not all(isinstance(m, str) for m in wanted)):
        raise ValidationError("meter_ids: a list of meter ids", field="meter_ids")
    outcome = _service().push_settings(actor, site_id, wanted)
    return json_response({"meters": outcome.meters, "commands": [
        {"command_id": r.command_id, "meter_id": r.meter_id, "status": r.status, "detail": r.detail}
        for r in outcome.records]}, status=202)


def _crud_routes(kind: str, singular: str, to_json: Callable[[Any], dict[str, Any]]) -> None:
    """POST /api/v1/sites/{site}/<kind>, and PATCH and DELETE /api/v1/sites/{site}/<kind>/{<singular>_id}."""
    id_name = f"{singular}_id"

    @bp.route(f"/api/v1/sites/{{site_id}}/{kind}", methods=["POST"], name=f"api_add_{singular}")
    @api(bp, Permission.SETTINGS_MANAGE)
    @_coded
    def add(actor: Actor, site_id: str) -> Response:
        body = _body(singular, actor, site_id)
        return json_response(to_json(getattr(_service(), f"add_{singular}")(actor, site_id, body)), status=201)

    @bp.route(f"/api/v1/sites/{{site_id}}/{kind}/{{{id_name}}}", methods=["PATCH"], name=f"api_save_{singular}")
    @api(bp, Permission.SETTINGS_MANAGE)
    @_coded
    def save(actor: Actor, site_id: str, **ids: str) -> Response:
        body = _body(singular, actor, site_id)
        return json_response(to_json(getattr(_service(), f"update_{singular}")(actor, site_id, ids[id_name], body)))

    @bp.route(f"/api/v1/sites/{{site_id}}/{kind}/{{{id_name}}}", methods=["DELETE"], name=f"api_remove_{singular}")
    @api(bp, Permission.SETTINGS_MANAGE)
    @_coded
    def remove(actor: Actor, site_id: str, **ids: str) -> Response:
        getattr(_service(), f"remove_{singular}")(actor, site_id, ids[id_name])
        return json_response({id_name: ids[id_name], "removed": True})


def _meter_with_effective(meter: Meter) -> dict[str, Any]:
    site = get_services().tenancy.get_site(meter.operator_id, meter.site_id)
    assert site is not None  # the service found the site a moment ago
    return meter_json(meter, effective_settings(site, meter))


_crud_routes("buildings", "building", building_json)
_crud_routes("units", "unit", unit_json)
_crud_routes("collectors", "collector", collector_json)
_crud_routes("meters", "meter", _meter_with_effective)
