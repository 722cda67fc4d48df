"""One meter's money state, pure: the ledger's running credit for it and the queue of credit on its way to it.

It is one record on purpose: a sale changes the credit and queues the meter command together, and the delivery
worker moves the queue on, so a single versioned record lets both be written conditionally in one place (the
sale's transaction, the worker's update) without a second record drifting out of step.

The purchase count belongs to the physical meter, so this state outlives customer accounts: when a meter moves
to a new account its count (and any credit still on its way) carries on.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from chalicelib.domain.accounts import BillingMode
from chalicelib.domain.delivery import Delivery, DeliveryState, MeterQueue, MeterRegisters, command_for, enqueue
from chalicelib.domain.errors import Conflict
from chalicelib.domain.ledger import Entry

KEEP_DELIVERED = 8  # recent deliveries stay in the queue so a reading taken before they landed is judged right


@dataclass(frozen=True)
class MeterMoney:
    operator_id: str
    site_id: str
    meter_id: str
    billing_mode: BillingMode
    account_id: str | None  # None while the meter is on no open account
    credit_minor: int  # the ledger's credit for the meter, customer's view (negative = arrears)
    queue: MeterQueue
    version: int = 0  # 0: never stored; every stored change adds one, and writes are conditional on it
    updated_at: datetime | None = None
    baseline: MeterRegisters | None = None  # a prepaid meter's registers when we took it over: reconciliation's zero

    @classmethod
    def new(cls, operator_id: str, site_id: str, meter_id: str, billing_mode: BillingMode,
            purchase_count: int) -> MeterMoney:
        return cls(operator_id, site_id, meter_id, billing_mode, None, 0, MeterQueue(meter_id, purchase_count))

    @property
    def is_prepaid(self) -> bool:
        return self.billing_mode is BillingMode.PREPAID_METER

    @property
    def has_work(self) -> bool:
        """Something for the delivery worker: a delivery not yet landed, or a stop a person must look at."""
        return bool(self.queue.blocked) or bool(self.queue.undelivered())

    def posting(self, entry: Entry) -> MeterMoney:
        """The state once ``entry`` is posted: its credit change, and its meter command queued behind the rest."""
        if entry.operator_id != self.operator_id:
            raise Conflict("an entry is posted to its own operator's meters")
        # A transfer touches two meters' credit but commands only the one it is written into.
        commands_me = command_for(entry) is not None and entry.meter_id == self.meter_id
        queue = enqueue(self.queue, entry) if commands_me else self.queue
        return replace(self, credit_minor=self.credit_minor + entry.credit_change(self.meter_id), queue=queue)

    def with_queue(self, queue: MeterQueue) -> MeterMoney:
        """Keep undelivered deliveries and the last few delivered ones; older ones live in their own records."""
        delivered = [d for d in queue.deliveries if d.state is DeliveryState.DELIVERED]
        dropped = {d.delivery_id for d in delivered[:max(len(delivered) - KEEP_DELIVERED, 0)]}
        kept = tuple(d for d in queue.deliveries if d.delivery_id not in dropped)
        return replace(self, queue=replace(queue, deliveries=kept))

    def delivery(self, delivery_id: str) -> Delivery | None:
        return next((d for d in self.queue.deliveries if d.delivery_id == delivery_id), None)


def settled_since(before: MeterQueue, after: MeterQueue) -> list[Delivery]:
    """Deliveries that reached a final state (delivered or failed) between two versions of a queue."""
    was = {d.delivery_id: d.state for d in before.deliveries}
    final = (DeliveryState.DELIVERED, DeliveryState.FAILED)
    return [d for d in after.deliveries if d.state in final and was.get(d.delivery_id) != d.state]
