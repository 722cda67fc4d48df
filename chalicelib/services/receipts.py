"""A sale's, refund's or reversal's receipt (SPEC 17, 19, 21), composed from the ledger entry, its delivery, the
meter and who sold it, in the operator's time zone."""

from __future__ import annotations

from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from chalicelib.domain.errors import NotFound
from chalicelib.domain.ledger import Channel, EntryKind
from chalicelib.domain.receipts import Receipt, receipt_number_for
from chalicelib.domain.tenancy import Meter
from chalicelib.ports import MoneyRepository, TenancyRepository

if TYPE_CHECKING:
    from chalicelib.services.sales import SaleLine

RECEIPTED = frozenset({EntryKind.SALE, EntryKind.REFUND, EntryKind.REVERSAL})


def compose_receipt(tenancy: TenancyRepository, money: MoneyRepository, op: str, meter: Meter,
                    line: SaleLine) -> Receipt:
    entry = line.entry
    if entry.kind not in RECEIPTED or entry.channel is Channel.SYSTEM:
        raise NotFound("this entry has no receipt")
    operator, site = tenancy.get_operator(op), tenancy.get_site(op, meter.site_id)
    unit = next((u for u in tenancy.list_units(op, meter.site_id) if u.unit_id == meter.unit_id), None)
    stored = money.account(op, entry.account_id)
    delivery = line.delivery
    return Receipt(
        receipt_number=receipt_number_for(op, entry.entry_id), kind=entry.kind.value,
        operator_name=operator.name if operator else op, site_name=site.name if site else meter.site_id,
        unit=unit.number if unit else meter.unit_id, customer_name=stored.account.customer.name if stored else "",
        meter_id=meter.meter_id, meter_serial=meter.serial, amount_minor=entry.amount_minor,
        currency=operator.currency if operator else "CNY", energy_price_e4=entry.energy_price_e4,
        energy_centi_kwh=entry.energy_centi_kwh,
        purchase_count=delivery.count if delivery and delivery.state.value == "delivered" else None,
        # A cloud-billed meter's credit is the ledger's: it is there the moment the entry is.
        delivery_state=delivery.state.value if delivery else ("delivered" if not entry.delivers_to_meter
                                                              else "pending"),
        cashier=entry.actor, channel=entry.channel.value,
        issued_at=entry.created_at.astimezone(ZoneInfo(operator.timezone if operator else "UTC")),
        reason=entry.reason,
        reverses_receipt=receipt_number_for(op, entry.reverses) if entry.reverses else None)
