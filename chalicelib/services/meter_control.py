"""Remote control of meters' supply (SPEC 15.2–15.4): trip, keep power, back to prepaid control — one meter or
a batch, each write confirmed by reading the mode back. Also the cloud's own supply control of cloud-billed meters:
opened at arrears, closed again when a sale lifts the balance (issue 6.5).

The meter's control-mode register carries all three: 0 prepaid control (the meter trips itself at zero),
1 keep power, 2 forced trip (METER.md). A cloud-billed meter holds no balance of its own, so the cloud keeps it on
"keep power" and forces a trip while its ledger balance is in arrears.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from chalicelib.domain.access import Permission
from chalicelib.domain.actor import Actor
from chalicelib.domain.bridges import Bridge
from chalicelib.domain.commands import CommandRecord
from chalicelib.domain.errors import NotFound, ValidationError
from chalicelib.domain.oplog import OperationRecord
from chalicelib.domain.remote_ops import MODE_REGISTER, Operation, SupplyMode, parse_operation
from chalicelib.domain.settings import effective_settings
from chalicelib.domain.tariffs import RatePrices
from chalicelib.domain.tenancy import BillingMode, Meter, Site, check_id
from chalicelib.ports import Clock, OperationLog, TariffRepository, TenancyRepository
from chalicelib.services.audit import operation
from chalicelib.services.bridge_link import BridgeLink
from chalicelib.services.meter_commands import MeterCommands
from chalicelib.services.reading_plan import profile_for
from chalicelib.services.scoping import site_in_scope

LOG = logging.getLogger("voltvend.meter_control")
SettingsValues = Callable[[Site, Meter], dict[str, Decimal | int]]  # one meter's settings registers
MAX_BATCH = 1000


PricesFor = Callable[[list[Meter]], dict[str, RatePrices]]




@dataclass(frozen=True)
class BatchOutcome:
    batch_id: str
    records: list[CommandRecord]
    skipped: dict[str, str]  # meter id → why no command was sent


class MeterControl:
    def __init__(self, tenancy: TenancyRepository, link: BridgeLink, commands: MeterCommands,
                 records: TariffRepository, oplog: OperationLog, clock: Clock) -> None:
        self._tenancy = tenancy
        self._link = link
        self._commands = commands
        self._records = records
        self._oplog = oplog
        self._clock = clock
        self.prices_for: PricesFor | None = None  # set at start-up: the tariff service's prices in force now

    def set_mode(self, actor: Actor, site_id: str, meter_ids: list[str], mode: SupplyMode) -> BatchOutcome:
        return self.run(actor, site_id, meter_ids, Operation(mode.value))

    def run(self, actor: Actor, site_id: str, meter_ids: list[str], operation: Operation) -> BatchOutcome:
        """Do ``operation`` to every meter named, as one batch; meters that cannot take it are listed with why."""
        actor.require(Permission.METERS_CONTROL)
        site = site_in_scope(self._tenancy, actor, site_id)
        if not meter_ids or len(meter_ids) > MAX_BATCH:
            raise ValidationError(f"choose 1 to {MAX_BATCH} meters", field="meters")
        for meter_id in meter_ids:
            check_id(meter_id, field="meter_id")
        meters = {m.meter_id: m for m in self._tenancy.get_meters(actor.operator_id, site.site_id, meter_ids)}
        missing = [m for m in meter_ids if m not in meters]
        if missing:
            raise NotFound(f"no such meter on this site: {', '.join(missing[:5])}")
        batch_id = f"batch-{secrets.token_hex(6)}"
        chosen = [meters[m] for m in dict.fromkeys(meter_ids)]
        if operation.mode is not None:
            records, skipped = self._send_all(chosen, operation.mode, batch_id)
        else:
            records, skipped = self._write_values(chosen, operation, batch_id)
        self._oplog.append(operation_record(actor, f"meter.{operation.value}", site_id, self._clock.now(),
                                            batch=batch_id, meters=len(records), skipped=len(skipped)))
        return BatchOutcome(batch_id, records, skipped)

    def batch(self, actor: Actor, site_id: str, batch_id: str) -> list[CommandRecord]:
        """Each meter's command of one batch, as it stands now (for live progress)."""
        actor.require(Permission.METERS_VIEW)
        site_in_scope(self._tenancy, actor, site_id)
        check_id(batch_id, field="batch_id")
        found = [r for r in self._records.commands(actor.operator_id, site_id) if r.batch_id == batch_id]
        if not found:
            raise NotFound("no such batch")
        return found

    def retry_failed(self, actor: Actor, site_id: str, batch_id: str) -> BatchOutcome:
        records = self.batch(actor, site_id, batch_id)
        again = [r.meter_id for r in records if r.status in ("failed", "pending")]
        if not again:
            raise ValidationError("nothing failed in this batch", field="batch_id")
        kind = records[0].kind.removeprefix("mode:")
        return self.run(actor, site_id, again, parse_operation(kind))

    def supply_for_balance(self, operator_id: str, site_id: str, meter_id: str, before_minor: int,
                           after_minor: int) -> None:
        """A cloud-billed meter's ledger balance moved: trip it on entering arrears, restore it on leaving."""
        if (before_minor > 0) == (after_minor > 0):
            return
        meters = self._tenancy.get_meters(operator_id, site_id, [meter_id])
        if not meters or meters[0].billing_mode is not BillingMode.CLOUD_BILLED:
            return
        mode = SupplyMode.KEEP_POWER if after_minor > 0 else SupplyMode.TRIP
        _, skipped = self._send_all(meters[:1], mode, "")
        LOG.info("meter %s balance %d -> %d: %s (%s)", meter_id, before_minor, after_minor, mode.value,
                 skipped.get(meter_id, "sent"))

    def push_settings(self, meters: list[Meter], values_for: SettingsValues | None = None) -> list[CommandRecord]:
        """Write the site's alarm amounts and hoarding limit into prepaid meters (when they join an account).
        ``values_for`` gives each meter's own register values instead (the settings page: a meter's overrides of
        the site defaults, and the overload threshold)."""
        return self._write_values(meters, Operation.SETTINGS, "", values_for)[0]

    def _write_values(self, meters: list[Meter], operation: Operation, batch_id: str,
                      values_for: SettingsValues | None = None) -> tuple[list[CommandRecord], dict[str, str]]:
        """Settings or prices, into the prepaid meters among ``meters`` (plain meters hold neither)."""
        skipped = {m.meter_id: "not a prepaid meter" for m in meters if m.billing_mode is not BillingMode.PREPAID_METER}
        prepaid = [m for m in meters if m.meter_id not in skipped]
        site = self._tenancy.get_site(prepaid[0].operator_id, prepaid[0].site_id) if prepaid else None
        if site is None:
            return [], skipped
        bridges, records = self._bridges(prepaid), []
        prices = self.prices_for(prepaid) if operation is Operation.PRICES and self.prices_for else {}
        for meter in prepaid:
            bridge = bridges.get((meter.site_id, meter.collector_id))
            if bridge is None:
                skipped[meter.meter_id] = "no bridge serves its collector"
            elif operation is Operation.SETTINGS:
                values = values_for(site, meter) if values_for is not None else \
                    effective_settings(site, meter).register_values()
                records.append(self._commands.write_registers(bridge, meter, "settings", values, batch_id=batch_id))
            elif meter.meter_id in prices:
                records.append(self._commands.push_prices(bridge, meter, prices[meter.meter_id], batch_id=batch_id))
            else:
                skipped[meter.meter_id] = "the site has no tariff"
        return records, skipped

    def _send_all(self, meters: list[Meter], mode: SupplyMode,
                  batch_id: str) -> tuple[list[CommandRecord], dict[str, str]]:
        bridges = self._bridges(meters)
        records, skipped = [], {}
        for meter in meters:
            bridge = bridges.get((meter.site_id, meter.collector_id))
            if "control_mode" not in {e.name for e in profile_for(meter.model).entries if e.writable}:
                skipped[meter.meter_id] = f"{meter.model} has no relay control"
            elif bridge is None:
                skipped[meter.meter_id] = "no bridge serves its collector"
            else:
                records.append(self._commands.write_registers(bridge, meter, f"mode:{mode.value}",
                                                              {"control_mode": MODE_REGISTER[mode]},
                                                              batch_id=batch_id))
        return records, skipped

    def _bridges(self, meters: list[Meter]) -> dict[tuple[str, str], Bridge]:
        found: dict[tuple[str, str], Bridge] = {}
        for site_id in {m.site_id for m in meters}:
            for bridge in self._link.bridges_of(meters[0].operator_id, site_id):
                found.update({(site_id, c): bridge for c in bridge.collectors})
        return found


def operation_record(actor: Actor, action: str, site_id: str, at: datetime, **details: Any) -> OperationRecord:
    return operation(actor.operator_id, actor.username, action, f"site:{site_id}", at, source_ip=actor.source_ip,
                     **details)
