"""Alarm state per subject, alarm records (upserted by id) and the SMS outbox, under the site's partition."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pynamodb.connection import Connection
from pynamodb.exceptions import PutError

from chalicelib.adapters.dynamodb.alarm_codec import alarm_from_dict, alarm_to_dict, state_from_dict, state_to_dict
from chalicelib.adapters.dynamodb.keys import operator_pk, site_pk
from chalicelib.adapters.dynamodb.models import AlarmItem, AlarmStateItem, OutboxItem
from chalicelib.domain.alarms import Alarm, AlarmState
from chalicelib.domain.notifications import PlannedMessage
from chalicelib.domain.outbox import OutboxMessage


class DynamoAlarmRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def get_states(self, operator_id: str, site_id: str, subject_ids: Iterable[str]) -> dict[str, AlarmState]:
        keys = [(site_pk(operator_id, site_id), f"ALARMSTATE#{s}") for s in set(subject_ids)]
        items = AlarmStateItem.batch_get(keys) if keys else []
        return {item.sk.removeprefix("ALARMSTATE#"): state_from_dict(item.state) for item in items}

    def save(self, operator_id: str, site_id: str, states: Iterable[AlarmState], alarms: Iterable[Alarm]) -> None:
        with AlarmStateItem.batch_write() as batch:
            for state in states:
                batch.save(AlarmStateItem(pk=site_pk(operator_id, site_id),
                                          sk=f"ALARMSTATE#{state.subject.subject_id}", state=state_to_dict(state)))
            for alarm in alarms:
                batch.save(AlarmItem(pk=site_pk(operator_id, site_id), sk=f"ALARM#{alarm.alarm_id}",
                                     record=alarm_to_dict(alarm), active=alarm.cleared_at is None))

    def alarms(self, operator_id: str, site_id: str) -> list[Alarm]:
        items = AlarmItem.query(site_pk(operator_id, site_id), AlarmItem.sk.startswith("ALARM#"))
        return sorted((alarm_from_dict(item.record) for item in items), key=lambda a: a.raised_at, reverse=True)

    def enqueue(self, operator_id: str, site_id: str, messages: Iterable[PlannedMessage]) -> int:
        """Queue each planned SMS once: the dedupe key is the item's key, written only if absent."""
        queued = 0
        for message in messages:
            item = OutboxItem(pk=f"{operator_pk(operator_id)}#OUTBOX", sk=f"MSG#{message.dedupe_key}",
                              site_id=site_id, recipient=message.recipient, language=message.language.value,
                              text=message.text, not_before=message.not_before, alarm_id=message.alarm_id,
                              urgent=message.urgent, status="pending")
            try:
                item.save(condition=OutboxItem.pk.does_not_exist())
                queued += 1
            except PutError as exc:
                if "ConditionalCheckFailed" not in str(exc):
                    raise
        return queued

    def outbox(self, operator_id: str) -> list[OutboxMessage]:
        items = OutboxItem.query(f"{operator_pk(operator_id)}#OUTBOX")
        return sorted((_message(item) for item in items), key=lambda m: m.not_before, reverse=True)

    def mark(self, operator_id: str, dedupe_key: str, status: str, detail: str, at: datetime) -> None:
        item = OutboxItem(pk=f"{operator_pk(operator_id)}#OUTBOX", sk=f"MSG#{dedupe_key}")
        item.update(actions=[OutboxItem.status.set(status), OutboxItem.detail.set(detail), OutboxItem.sent_at.set(at)],
                    condition=OutboxItem.status == "pending")


def _message(item: OutboxItem) -> OutboxMessage:
    return OutboxMessage(item.sk.removeprefix("MSG#"), item.site_id, item.recipient, item.language, item.text,
                         item.not_before, item.alarm_id, bool(item.urgent), item.status, item.detail or "",
                         item.sent_at)
