"""AlarmState and Alarm records to JSON-safe dicts and back (Decimals as text, times as ISO 8601)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from chalicelib.domain.alarms import Alarm, AlarmKind, AlarmState, RegisterBaseline, Severity, Subject, SubjectKind


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def alarm_to_dict(alarm: Alarm) -> dict[str, Any]:
    return {"alarm_id": alarm.alarm_id, "kind": alarm.kind.value, "subject_kind": alarm.subject.kind.value,
            "subject_id": alarm.subject.subject_id, "level": alarm.level.value, "raised_at": _time(alarm.raised_at),
            "evidence": {k: str(v) for k, v in alarm.evidence.items()}, "cleared_at": _time(alarm.cleared_at),
            "acknowledged_by": alarm.acknowledged_by, "acknowledged_at": _time(alarm.acknowledged_at)}


def alarm_from_dict(data: dict[str, Any]) -> Alarm:
    raised = _parse_time(data["raised_at"])
    assert raised is not None
    subject = Subject(SubjectKind(data["subject_kind"]), data["subject_id"])
    return Alarm(data["alarm_id"], AlarmKind(data["kind"]), subject, Severity(data["level"]), raised,
                 dict(data.get("evidence") or {}), _parse_time(data.get("cleared_at")),
                 data.get("acknowledged_by"), _parse_time(data.get("acknowledged_at")))


def _baseline_to_dict(baseline: RegisterBaseline | None) -> dict[str, Any] | None:
    if baseline is None:
        return None
    rates = None if baseline.energy_by_rate is None else [str(v) for v in baseline.energy_by_rate]
    energy = None if baseline.energy_kwh is None else str(baseline.energy_kwh)
    return {"energy_kwh": energy, "energy_by_rate": rates, "purchase_count": baseline.purchase_count}


def _baseline_from_dict(data: dict[str, Any] | None) -> RegisterBaseline | None:
    if data is None:
        return None
    rates = data.get("energy_by_rate")
    energy = data.get("energy_kwh")
    return RegisterBaseline(None if energy is None else Decimal(energy),
                            None if rates is None else tuple(Decimal(v) for v in rates), data.get("purchase_count"))


def state_to_dict(state: AlarmState) -> dict[str, Any]:
    return {"subject_kind": state.subject.kind.value, "subject_id": state.subject.subject_id,
            "active": [alarm_to_dict(a) for a in state.active], "baseline": _baseline_to_dict(state.baseline),
            "observed_at": _time(state.observed_at)}


def state_from_dict(data: dict[str, Any]) -> AlarmState:
    return AlarmState(Subject(SubjectKind(data["subject_kind"]), data["subject_id"]),
                      tuple(alarm_from_dict(a) for a in data.get("active") or []),
                      _baseline_from_dict(data.get("baseline")), _parse_time(data.get("observed_at")))
