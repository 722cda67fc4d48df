"""Ledger entries, delivery queues and customer accounts to and from plain JSON (amounts stay integers)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib.domain.accounts import AccountMeter, BillingMode, ClosingRecord, Customer, CustomerAccount, MeterClosing
from chalicelib.domain.delivery import CommandKind, Delivery, DeliveryState, MeterQueue
from chalicelib.domain.ledger import AccountKind, Channel, Entry, EntryKind, LedgerAccount, Posting


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _int(value: Any) -> int:
    """JSON numbers come back as int (or Decimal for fractions, which money never has): refuse anything else."""
    if isinstance(value, bool) or int(value) != value:
        raise ValueError(f"not a whole number: {value!r}")
    return int(value)


def entry_to_dict(entry: Entry) -> dict[str, Any]:
    return {
        "entry_id": entry.entry_id, "request_id": entry.request_id, "kind": entry.kind.value,
        "operator_id": entry.operator_id, "account_id": entry.account_id, "meter_id": entry.meter_id,
        "actor": entry.actor, "channel": entry.channel.value, "created_at": entry.created_at.isoformat(),
        "amount_minor": entry.amount_minor,
        "postings": [[p.account.kind.value, p.account.key, p.amount_minor] for p in entry.postings],
        "delivers_to_meter": entry.delivers_to_meter, "reason": entry.reason, "reverses": entry.reverses,
        "reversed_kind": entry.reversed_kind.value if entry.reversed_kind else None,
        "from_meter_id": entry.from_meter_id, "energy_centi_kwh": entry.energy_centi_kwh,
        "energy_price_e4": entry.energy_price_e4,
    }


def entry_from_dict(data: dict[str, Any]) -> Entry:
    energy, price = data.get("energy_centi_kwh"), data.get("energy_price_e4")
    created = _time(data["created_at"])
    assert created is not None
    return Entry(
        entry_id=data["entry_id"], request_id=data["request_id"], kind=EntryKind(data["kind"]),
        operator_id=data["operator_id"], account_id=data["account_id"], meter_id=data.get("meter_id"),
        actor=data["actor"], channel=Channel(data["channel"]), created_at=created,
        amount_minor=_int(data["amount_minor"]),
        postings=tuple(Posting(LedgerAccount(AccountKind(kind), key), _int(amount))
                       for kind, key, amount in data["postings"]),
        delivers_to_meter=bool(data.get("delivers_to_meter")), reason=data.get("reason") or "",
        reverses=data.get("reverses"),
        reversed_kind=EntryKind(data["reversed_kind"]) if data.get("reversed_kind") else None,
        from_meter_id=data.get("from_meter_id"), energy_centi_kwh=None if energy is None else _int(energy),
        energy_price_e4=None if price is None else _int(price),
    )


def delivery_to_dict(delivery: Delivery) -> dict[str, Any]:
    return {"id": delivery.delivery_id, "command": delivery.command.value, "amount": delivery.amount_minor,
            "state": delivery.state.value, "count": delivery.count, "attempts": delivery.attempts,
            "failure": delivery.failure}


def delivery_from_dict(meter_id: str, data: dict[str, Any]) -> Delivery:
    count = data.get("count")
    return Delivery(data["id"], meter_id, CommandKind(data["command"]), _int(data["amount"]),
                    DeliveryState(data["state"]), None if count is None else _int(count), _int(data["attempts"]),
                    data.get("failure") or "")


def queue_from_parts(meter_id: str, confirmed_count: int, blocked: str | None,
                     deliveries: list[dict[str, Any]]) -> MeterQueue:
    return MeterQueue(meter_id, confirmed_count, tuple(delivery_from_dict(meter_id, d) for d in deliveries),
                      blocked or "")


def account_to_dict(account: CustomerAccount) -> dict[str, Any]:
    return {
        "account_id": account.account_id, "operator_id": account.operator_id,
        "customer": {"name": account.customer.name, "phone": account.customer.phone, "unit": account.customer.unit},
        "meters": [{"meter_id": m.meter_id, "billing_mode": m.billing_mode.value, "opened_at": m.opened_at.isoformat(),
                    "closed_at": m.closed_at.isoformat() if m.closed_at else None} for m in account.meters],
        "opened_at": account.opened_at.isoformat(),
        "closed_at": account.closed_at.isoformat() if account.closed_at else None,
    }


def account_from_dict(data: dict[str, Any]) -> CustomerAccount:
    customer = data["customer"]
    meters = tuple(AccountMeter(m["meter_id"], BillingMode(m["billing_mode"]), _required_time(m["opened_at"]),
                                _time(m.get("closed_at"))) for m in data["meters"])
    return CustomerAccount(data["account_id"], data["operator_id"],
                           Customer(customer["name"], customer.get("phone", ""), customer.get("unit", "")),
                           meters, _required_time(data["opened_at"]), _time(data.get("closed_at")))


def closing_to_dict(record: ClosingRecord) -> dict[str, Any]:
    return {"account_id": record.account_id, "closed_at": record.closed_at.isoformat(), "closed_by": record.closed_by,
            "refund_minor": record.refund_minor, "amount_due_minor": record.amount_due_minor,
            "meters": [{"meter_id": m.meter_id, "final_energy_centi_kwh": m.final_energy_centi_kwh,
                        "ledger_credit_minor": m.ledger_credit_minor, "consumption_minor": m.consumption_minor,
                        "remaining_minor": m.remaining_minor} for m in record.meters]}


def closing_from_dict(customer: Customer, data: dict[str, Any]) -> ClosingRecord:
    meters = tuple(MeterClosing(m["meter_id"], _int(m["final_energy_centi_kwh"]), _int(m["ledger_credit_minor"]),
                                _int(m["consumption_minor"]), _int(m["remaining_minor"])) for m in data["meters"])
    return ClosingRecord(data["account_id"], customer, _required_time(data["closed_at"]), data["closed_by"], meters,
                         _int(data["refund_minor"]), _int(data["amount_due_minor"]))


def _required_time(value: str) -> datetime:
    parsed = _time(value)
    if parsed is None:
        raise ValueError("a time is required")
    return parsed
