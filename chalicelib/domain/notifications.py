"""The SMS plan for alarm events: who hears about which alarm, in which language, and not before when.

Pure planning; sending, retries and delivery status belong to the SMS adapter. Only a *raised* event
is announced, and an alarm id exists once per crossing of a threshold, so the dedupe key (alarm id +
phone) lets a re-raise after a proper clear notify again while flapping inside the hysteresis band,
which raises nothing, sends nothing. Quiet hours (site-local) hold back the non-urgent messages until
the quiet period ends; urgent ones (arrears, a whole collector lost) go at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from chalicelib.domain.alarms import Alarm, AlarmEvent, AlarmKind, EventKind
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.money import format_amount


class Language(StrEnum):
    EN = "en"
    ZH_HANS = "zh_Hans"  # the portal's locale name


class Audience(StrEnum):
    TENANT = "tenant"  # the shop's own contacts
    SITE = "site"  # the site's alarm SMS number(s) (SPEC 10)


@dataclass(frozen=True)
class NotifyRule:
    urgent: bool
    audiences: tuple[Audience, ...]


# A meter or collector out of contact is the operator's to fix, so the tenant is not told about it.
DEFAULT_RULES: Mapping[AlarmKind, NotifyRule] = {
    AlarmKind.ALARM_1: NotifyRule(False, (Audience.TENANT, Audience.SITE)),
    AlarmKind.ALARM_2: NotifyRule(False, (Audience.TENANT, Audience.SITE)),
    AlarmKind.ARREARS: NotifyRule(True, (Audience.TENANT, Audience.SITE)),
    AlarmKind.METER_LOST: NotifyRule(False, (Audience.SITE,)),
    AlarmKind.COLLECTOR_LOST: NotifyRule(True, (Audience.SITE,)),
}


@dataclass(frozen=True)
class Contact:
    phone: str
    language: Language
    urgent_only: bool = False  # a tenant who turned low-credit alerts off still hears of arrears


@dataclass(frozen=True)
class Recipients:
    """Who hears about one subject's alarms, and the names the texts give it."""

    unit_label: str | None = None  # the shop number, e.g. "B2-1F-015"; None for a collector
    subject_label: str | None = None  # the meter's serial or the collector's name; falls back to its id
    tenant: tuple[Contact, ...] = ()
    site: tuple[Contact, ...] = ()

    def of(self, audience: Audience) -> tuple[Contact, ...]:
        return self.tenant if audience is Audience.TENANT else self.site


@dataclass(frozen=True)
class QuietHours:
    """Site-local quiet period; ``start`` after ``end`` spans midnight (the usual 22:00-08:00)."""

    start: time = time(22, 0)
    end: time = time(8, 0)

    def __post_init__(self) -> None:
        if self.start == self.end:
            raise ValidationError("quiet hours must start and end at different times", field="quiet_hours")

    def ends_after(self, local: datetime) -> datetime | None:
        """The end of the quiet period ``local`` falls in (same zone), or None outside quiet hours."""
        now = local.time()
        if self.start < self.end:
            inside, ends_tomorrow = self.start <= now < self.end, False
        else:
            inside, ends_tomorrow = now >= self.start or now < self.end, now >= self.start
        if not inside:
            return None
        day = local.date() + timedelta(days=1 if ends_tomorrow else 0)
        return datetime.combine(day, self.end, tzinfo=local.tzinfo)


@dataclass(frozen=True)
class NotificationPolicy:
    zone: ZoneInfo
    quiet_hours: QuietHours | None = field(default_factory=QuietHours)
    signature: str = "Voltvend"  # the name tenants know the sender by, usually the property operator's
    rules: Mapping[AlarmKind, NotifyRule] = field(default_factory=lambda: dict(DEFAULT_RULES))


@dataclass(frozen=True)
class PlannedMessage:
    recipient: str
    audience: Audience
    language: Language
    text: str
    not_before: datetime  # UTC
    dedupe_key: str  # the adapter sends each key once, however often the plan is made
    alarm_id: str
    urgent: bool


TEMPLATES: Mapping[tuple[str, Language], str] = {
    ("alarm-1", Language.EN): "[{sig}] Shop {unit}: electricity alarm 1, balance low. "
                              "Remaining amount {amount}. Please top up soon.",
    ("alarm-1", Language.ZH_HANS): "【{sig}】商铺号{unit}：电费报警1，余额偏低，剩余金额{amount}，请及时充值。",
    ("alarm-2", Language.EN): "[{sig}] Shop {unit}: electricity alarm 2, balance nearly used up. "
                              "Remaining amount {amount}. Please top up now to keep the power on.",
    ("alarm-2", Language.ZH_HANS): "【{sig}】商铺号{unit}：电费报警2，余额即将用完，"
                                   "剩余金额{amount}，请尽快充值以免拉闸断电。",
    ("arrears", Language.EN): "[{sig}] Shop {unit}: electricity account in arrears. "
                              "Remaining amount {amount}. Please top up at once.",
    ("arrears", Language.ZH_HANS): "【{sig}】商铺号{unit}：电费已欠费，剩余金额{amount}，请立即充值。",
    ("arrears-tripped", Language.EN): "[{sig}] Shop {unit}: electricity account in arrears, the power is cut off. "
                                      "Remaining amount {amount}. Top up to restore the supply.",
    ("arrears-tripped", Language.ZH_HANS): "【{sig}】商铺号{unit}：电费已欠费，已拉闸断电，"
                                           "剩余金额{amount}，充值后恢复供电。",
    ("meter-lost-contact", Language.EN): "[{sig}] Meter {subject} of shop {unit} lost contact: "
                                         "{missed} readings in a row unanswered.",
    ("meter-lost-contact", Language.ZH_HANS): "【{sig}】商铺号{unit}的电表{subject}失联：连续{missed}次抄表无应答。",
    ("collector-lost-contact", Language.EN): "[{sig}] Collector {subject} lost contact: nothing heard since {since}.",
    ("collector-lost-contact", Language.ZH_HANS): "【{sig}】通讯管理机{subject}失联：自{since}起无通讯。",
}


def _template_key(alarm: Alarm) -> str:
    if alarm.kind is AlarmKind.ARREARS and alarm.evidence.get("relay_open") is True:
        return "arrears-tripped"
    return str(alarm.kind)


def _fields(alarm: Alarm, recipients: Recipients, policy: NotificationPolicy) -> dict[str, str]:
    balance, missed, heard = (alarm.evidence.get(k) for k in ("balance_minor", "missed_cycles", "last_heard_at"))
    subject = recipients.subject_label or alarm.subject.subject_id
    return {
        "sig": policy.signature,
        "unit": recipients.unit_label or subject,
        "subject": subject,
        "amount": format_amount(balance) if isinstance(balance, int) else "-",
        "missed": str(missed) if missed is not None else "-",
        "since": _local_text(heard, policy.zone) if isinstance(heard, str) else "-",
    }


def _local_text(iso: str, zone: ZoneInfo) -> str:
    """Site-local wall time: the reader is on site, whatever zone the cloud keeps its clocks in."""
    return datetime.fromisoformat(iso).astimezone(zone).strftime("%Y-%m-%d %H:%M")


def render(alarm: Alarm, language: Language, recipients: Recipients, policy: NotificationPolicy) -> str:
    return TEMPLATES[(_template_key(alarm), language)].format(**_fields(alarm, recipients, policy))


def release_time(urgent: bool, policy: NotificationPolicy, now: datetime) -> datetime:
    """When a message may go: at once if urgent or outside quiet hours, else when the quiet period ends."""
    if now.tzinfo is None:
        raise ValidationError("planning needs an aware datetime", field="now")
    quiet_end = None if urgent or policy.quiet_hours is None else \
        policy.quiet_hours.ends_after(now.astimezone(policy.zone))
    return (quiet_end or now).astimezone(UTC)


def plan_notifications(events: Iterable[AlarmEvent], recipients: Recipients, policy: NotificationPolicy,
                       now: datetime) -> list[PlannedMessage]:
    """Messages for the raised alarms among one subject's events; other events and kinds plan nothing."""
    planned: dict[str, PlannedMessage] = {}
    for event in events:
        rule = policy.rules.get(event.alarm.kind)
        if event.kind is not EventKind.RAISED or rule is None:
            continue
        not_before = release_time(rule.urgent, policy, now)
        for audience, contact in _addressees(recipients, rule.audiences):
            key = f"sms:{event.alarm.alarm_id}:{contact.phone}"
            if key in planned or (contact.urgent_only and not rule.urgent):
                continue  # a phone on both lists gets one message
            text = render(event.alarm, contact.language, recipients, policy)
            planned[key] = PlannedMessage(contact.phone, audience, contact.language, text, not_before, key,
                                          event.alarm.alarm_id, rule.urgent)
    return list(planned.values())


def _addressees(recipients: Recipients, audiences: Iterable[Audience]) -> Iterator[tuple[Audience, Contact]]:
    for audience in audiences:
        for contact in recipients.of(audience):
            yield audience, contact


def still_worth_sending(message: PlannedMessage, alarm: Alarm | None) -> bool:
    """Check at send time: a deferred low-balance SMS is pointless once a purchase has cleared the alarm. A message
    about no alarm (a password reset) is always worth sending."""
    if not message.alarm_id:
        return True
    return alarm is not None and alarm.alarm_id == message.alarm_id and alarm.cleared_at is None
