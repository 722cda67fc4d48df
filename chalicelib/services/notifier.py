"""Sending the queued messages whose time has come (quiet hours are already in each message's not-before): SMS to
phone numbers, e-mail to addresses (a tenant who signs in by e-mail gets their password reset that way)."""

from __future__ import annotations

import logging
from datetime import datetime

from chalicelib.domain.notifications import Audience, Language, PlannedMessage, still_worth_sending
from chalicelib.domain.outbox import OutboxMessage
from chalicelib.ports import AlarmRepository, Clock, EmailSender, SmsSender

LOG = logging.getLogger("voltvend.notifier")


class Notifier:
    def __init__(self, alarms: AlarmRepository, sender: SmsSender, clock: Clock,
                 email: EmailSender | None = None) -> None:
        self._alarms = alarms
        self._sender = sender
        self._clock = clock
        self._email = email

    def send_due(self, operator_ids: list[str]) -> int:
        now, sent = self._clock.now(), 0
        for operator_id in operator_ids:
            due = [m for m in self._alarms.outbox(operator_id) if m.status == "pending" and m.not_before <= now]
            for message in due:
                sent += self._deliver(operator_id, message, now)
        return sent

    def _deliver(self, operator_id: str, message: OutboxMessage, now: datetime) -> int:
        current = {a.alarm_id: a for a in self._alarms.alarms(operator_id, message.site_id)}.get(message.alarm_id)
        planned = PlannedMessage(message.recipient, Audience.SITE, Language(message.language), message.text,
                                 message.not_before, message.dedupe_key, message.alarm_id, message.urgent)
        if not still_worth_sending(planned, current):
            self._alarms.mark(operator_id, message.dedupe_key, "skipped", "the alarm cleared before it was due",
                              self._clock.now())
            return 0
        try:
            provider_id = self._send(message)
        except Exception as error:  # a provider refusal is recorded on the message, not raised
            LOG.warning("message to %s failed: %s", message.recipient, error)
            self._alarms.mark(operator_id, message.dedupe_key, "failed", str(error)[:200], self._clock.now())
            return 0
        self._alarms.mark(operator_id, message.dedupe_key, "sent", provider_id, self._clock.now())
        return 1

    def _send(self, message: OutboxMessage) -> str:
        if "@" not in message.recipient:
            return self._sender.send(message.recipient, message.text)
        if self._email is None:
            raise RuntimeError("no e-mail channel is configured")
        return self._email.send(message.recipient, "Voltvend", message.text)
