"""Alarm report and SMS outbox for the back office (SPEC 22 real-time alarms, 30 alarm history)."""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.domain.access import Permission
from chalicelib.domain.actor import Actor
from chalicelib.domain.alarms import Alarm, acknowledge
from chalicelib.domain.errors import NotFound
from chalicelib.domain.outbox import OutboxMessage
from chalicelib.domain.tenancy import Site
from chalicelib.ports import AlarmRepository, Clock, OperationLog, ReadingsRepository, TenancyRepository
from chalicelib.services.audit import operation
from chalicelib.services.scoping import site_in_scope


@dataclass(frozen=True)
class AlarmReport:
    site: Site
    active: list[Alarm]
    history: list[Alarm]
    outbox: list[OutboxMessage]


class AlarmQueries:
    def __init__(self, alarms: AlarmRepository, readings: ReadingsRepository,
                 tenancy: TenancyRepository, oplog: OperationLog, clock: Clock) -> None:
        self._alarms = alarms
        self._readings = readings
        self._tenancy = tenancy
        self._oplog = oplog
        self._clock = clock

    def report(self, actor: Actor, site_id: str) -> AlarmReport:
        site = self._site(actor, site_id)
        alarms = self._alarms.alarms(actor.operator_id, site_id)
        outbox = [m for m in self._alarms.outbox(actor.operator_id) if m.site_id == site_id]
        return AlarmReport(site, [a for a in alarms if a.cleared_at is None], alarms, outbox)

    def acknowledge(self, actor: Actor, site_id: str, alarm_id: str) -> Alarm:
        self._site(actor, site_id)
        alarm = next((a for a in self._alarms.alarms(actor.operator_id, site_id) if a.alarm_id == alarm_id), None)
        if alarm is None:
            raise NotFound("no such alarm")
        subject = alarm.subject.subject_id
        stored = self._readings.get_states(actor.operator_id, site_id, [subject])
        if not stored or stored[0].alarms is None:
            raise NotFound("no such alarm")
        now = self._clock.now()
        new_state, events = acknowledge(stored[0].alarms, alarm_id, actor.display_name or actor.username, now)
        self._readings.set_alarm_state(actor.operator_id, site_id, subject, new_state)
        self._alarms.save(actor.operator_id, site_id, [], [e.alarm for e in events])
        self._oplog.append(operation(actor.operator_id, actor.username, "alarm.acknowledge", f"alarm:{alarm_id}",
                                     now, source_ip=actor.source_ip))
        return events[-1].alarm if events else alarm

    def _site(self, actor: Actor, site_id: str) -> Site:
        actor.require(Permission.METERS_VIEW)
        return site_in_scope(self._tenancy, actor, site_id)
