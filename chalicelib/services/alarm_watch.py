"""After each bus run: judge every meter's alarms, store what changed, and queue the SMS to send.

The rules are the pure ones in ``domain/alarms.py`` and ``domain/notifications.py``; this service
only loads what they remember, saves what they return and addresses the messages.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from chalicelib.domain.alarms import (
    AlarmEvent,
    AlarmPolicy,
    AlarmState,
    BalanceThresholds,
    MeterObservation,
    evaluate_collector,
    evaluate_meter,
    observe_reading,
    observe_silence,
)
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.meter_state import state_from_values
from chalicelib.domain.notifications import Contact, Language, NotificationPolicy, Recipients, plan_notifications
from chalicelib.domain.settings import effective_settings, has_overrides
from chalicelib.domain.tenancy import Meter, Site
from chalicelib.ports import AlarmRepository, TenancyRepository

SITE_CACHE_S = 30.0


@dataclass(frozen=True)
class MeterSighting:
    """What one run said of one meter: its decoded values (empty when silent) and silent cycles so far."""

    meter_id: str
    at: datetime
    values: dict[str, object]
    missed_cycles: int
    previous: AlarmState | None = None
    ledger_balance_minor: int | None = None  # cloud-billed meters on an account: the balance is the ledger's


def policy_for(site: Site, meter: Meter | None = None) -> AlarmPolicy:
    """The site's alarm policy; with ``meter``, its own alarm amounts and overload threshold where it overrides the
    site's defaults (SPEC 10; domain/settings.py resolves the two)."""
    settings = effective_settings(site, meter)
    try:
        thresholds = BalanceThresholds(settings.alarm_amount_1_minor, settings.alarm_amount_2_minor)
    except ValidationError:  # overrides that no longer fit the site's amounts (the settings pages refuse those)
        thresholds = BalanceThresholds(site.alarm_amount_1_minor, site.alarm_amount_2_minor)
    return AlarmPolicy(thresholds=thresholds, overload_kw=settings.overload_threshold_kw)


def observation(sighting: MeterSighting) -> MeterObservation:
    if not sighting.values:
        return observe_silence(sighting.meter_id, sighting.at, sighting.missed_cycles,
                               ledger_balance_minor=sighting.ledger_balance_minor)
    return observe_reading(state_from_values(sighting.meter_id, sighting.at, sighting.values),  # type: ignore[arg-type]
                           ledger_balance_minor=sighting.ledger_balance_minor)


class AlarmWatch:
    def __init__(self, alarms: AlarmRepository, tenancy: TenancyRepository) -> None:
        self._alarms = alarms
        self._tenancy = tenancy
        self._sites: dict[tuple[str, str], tuple[float, Site | None]] = {}
        # Set at start-up: each meter's tenant contacts (the account's phone, signed-up tenants' phones).
        self.tenant_contacts: Callable[[str, list[str]], dict[str, tuple[Contact, ...]]] | None = None
        self._overrides: dict[tuple[str, str], tuple[float, dict[str, Meter]]] = {}

    def judge(self, operator_id: str, site_id: str, sightings: list[MeterSighting],
              now: datetime) -> dict[str, AlarmState]:
        """Each meter's next alarm state (the caller stores it with the meter's state); records and SMS
        of whatever was raised or cleared are stored here."""
        site = self._site(operator_id, site_id)
        if site is None or not sightings:
            return {}
        policy = policy_for(site)
        overriding = self._overriding_meters(operator_id, site_id)
        states, events = {}, []
        for sighting in sightings:
            meter = overriding.get(sighting.meter_id)
            own = policy if meter is None else policy_for(site, meter)
            state, happened = evaluate_meter(sighting.previous, observation(sighting), own, now)
            states[sighting.meter_id] = state
            events.extend(happened)
        if events:
            self._alarms.save(operator_id, site_id, [], [event.alarm for event in events])
            self._notify(operator_id, site, events, now)
        return states

    def sweep_collectors(self, operator_id: str, site_id: str, last_heard: dict[str, datetime],
                         now: datetime) -> list[AlarmEvent]:
        """Lost contact of whole collectors (SPEC 27): judged from when their bridge was last heard."""
        site = self._site(operator_id, site_id)
        if site is None or not last_heard:
            return []
        policy = policy_for(site)
        previous = self._alarms.get_states(operator_id, site_id, last_heard)
        states, events = [], []
        for collector_id, heard_at in last_heard.items():
            state, happened = evaluate_collector(previous.get(collector_id), collector_id, heard_at, policy, now)
            states.append(state)
            events.extend(happened)
        self._alarms.save(operator_id, site_id, states, [event.alarm for event in events])
        if events:
            self._notify(operator_id, site, events, now)
        return events

    def _site(self, operator_id: str, site_id: str) -> Site | None:
        """Sites' alarm settings, cached briefly: every bus run needs them, they change rarely."""
        key, now = (operator_id, site_id), time.monotonic()
        cached = self._sites.get(key)
        if cached is None or now - cached[0] > SITE_CACHE_S:
            cached = (now, self._tenancy.get_site(operator_id, site_id))
            self._sites[key] = cached
        return cached[1]

    # -- per-meter overrides of the site's alarm settings (SPEC 10) --------------------------------------
    def _overriding_meters(self, operator_id: str, site_id: str) -> dict[str, Meter]:
        """The site's meters that set their own alarm amounts or overload threshold, cached like the site."""
        key, now = (operator_id, site_id), time.monotonic()
        cached = self._overrides.get(key)
        if cached is None or now - cached[0] > SITE_CACHE_S:
            found = {m.meter_id: m for m in self._tenancy.list_meters(operator_id, site_id) if has_overrides(m)}
            cached = (now, found)
            self._overrides[key] = cached
        return cached[1]

    def _notify(self, operator_id: str, site: Site, events: list[AlarmEvent], now: datetime) -> None:
        operator = self._tenancy.get_operator(operator_id)
        zone = ZoneInfo(operator.timezone if operator else "UTC")
        notification_policy = NotificationPolicy(zone=zone, signature=operator.name if operator else "Voltvend")
        meters = {m.meter_id: m for m in self._tenancy.list_meters(operator_id, site.site_id)}
        units = {u.unit_id: u for u in self._tenancy.list_units(operator_id, site.site_id)}
        site_contacts = (Contact(site.alarm_sms_number, Language.ZH_HANS),) if site.alarm_sms_number else ()
        subjects = list({e.alarm.subject.subject_id for e in events if e.alarm.subject.subject_id in meters})
        tenants = self.tenant_contacts(operator_id, subjects) if self.tenant_contacts and subjects else {}
        for event in events:
            meter = meters.get(event.alarm.subject.subject_id)
            unit = units.get(meter.unit_id) if meter else None
            recipients = Recipients(unit_label=unit.number if unit else None,
                                    subject_label=meter.serial if meter else None,
                                    tenant=tenants.get(meter.meter_id, ()) if meter else (), site=site_contacts)
            self._alarms.enqueue(operator_id, site.site_id, plan_notifications([event], recipients,
                                                                               notification_policy, now))
