"""Commands to one meter through its bridge: a write, then a read-back that decides the outcome.

A lost acknowledgement is never resent blindly: the read-back of the same registers says whether the
write landed (METER.md). Used for price pushes now; credit delivery and relay control follow the same way.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from gateway_bridge.codec import encode_entries
from gateway_bridge.protocol import BatchResult, Command, Txn
from gateway_bridge.rtu import ExceptionReply, FrameError, build_read_request, build_write_request, parse_response

from chalicelib.domain.bridges import Bridge
from chalicelib.domain.commands import CommandRecord
from chalicelib.domain.tariffs import RatePrices
from chalicelib.domain.tenancy import Meter
from chalicelib.ports import Clock, TariffRepository, TenancyRepository
from chalicelib.services.bridge_link import BridgeLink
from chalicelib.services.reading_plan import DecodedRead, decode_result, profile_for

PRICE_ENTRIES = ("price_sharp", "price_peak", "price_flat", "price_valley")
WRITE_TIMEOUT_MS = 1000


def price_values(prices: RatePrices) -> dict[str, Decimal]:
    return {name: Decimal(value).scaleb(-4) for name, value in zip(PRICE_ENTRIES, prices.as_tuple(), strict=True)}


class MeterCommands:
    def __init__(self, link: BridgeLink, records: TariffRepository, tenancy: TenancyRepository,
                 clock: Clock) -> None:
        self._link = link
        self._records = records
        self._tenancy = tenancy
        self._clock = clock

    def push_prices(self, bridge: Bridge, meter: Meter, prices: RatePrices, *, batch_id: str = "") -> CommandRecord:
        return self.write_registers(bridge, meter, "prices", price_values(prices), batch_id=batch_id)

    def write_registers(self, bridge: Bridge, meter: Meter, kind: str, values: Mapping[str, Decimal | int], *,
                        batch_id: str = "") -> CommandRecord:
        """Write contiguous registers of one meter, then read them back: the read-back decides the outcome."""
        start, words = encode_entries(profile_for(meter.model), values)
        command_id = f"cmd-{secrets.token_hex(8)}"
        write = build_write_request(meter.address, start, words)
        read_back = build_read_request(meter.address, start, len(words))
        txns = (Txn(f"{meter.meter_id}#w{start:04x}:{len(words)}", write, WRITE_TIMEOUT_MS),
                Txn(f"{meter.meter_id}@{start:04x}:{len(words)}", read_back))
        now = self._clock.now()
        # Recorded before it leaves, so an answer arriving at once finds its record.
        record = CommandRecord(command_id, kind, meter.meter_id, meter.collector_id, "sent", "", now, now,
                               {k: str(v) for k, v in values.items()}, batch_id)
        self._records.record_command(meter.operator_id, meter.site_id, record)
        if not self._link.send(bridge, meter.collector_id, [Command(command_id, meter.collector_id, txns)]):
            record = _updated(record, "pending", "the bridge is offline", self._clock.now())
            self._records.record_command(meter.operator_id, meter.site_id, record)
        return record

    def take_result(self, bridge: Bridge, result: BatchResult) -> None:
        """A command's answer from the bridge: judge it by its read-back and record the outcome."""
        meter_ids = {t.id.partition("@")[0].partition("#")[0] for t in result.results}
        meters = {m.meter_id: m for m in self._tenancy.get_meters(bridge.operator_id, bridge.site_id, meter_ids)}
        self.on_result(bridge.operator_id, bridge.site_id, result, meters)

    def on_result(self, operator_id: str, site_id: str, result: BatchResult, meters: dict[str, Meter]) -> None:
        record = self._records.command(operator_id, site_id, result.cycle)
        if record is None or record.status == "delivered":
            return
        status, detail = judge(record, result, meters)
        self._records.record_command(operator_id, site_id, _updated(record, status, detail, self._clock.now()))


def judge(record: CommandRecord, result: BatchResult, meters: dict[str, Meter]) -> tuple[str, str]:
    """The read-back decides: registers as written → delivered, whatever the write's own answer was."""
    reads = [r for r in decode_result(result, meters) if r.meter_id == record.meter_id]
    if reads and reads[0].answered and _matches(reads[0], record.expected or {}):
        return "delivered", "read back as written"
    write_note = _write_note(record, result, meters)
    if reads and reads[0].answered:
        return "failed", f"read back differs from what was written ({write_note})"
    return "failed", f"no read-back ({write_note}); read the meter before sending again"


def _matches(read: DecodedRead, expected: dict[str, str]) -> bool:
    return all(str(read.values.get(name)) == value for name, value in expected.items())


def _write_note(record: CommandRecord, result: BatchResult, meters: dict[str, Meter]) -> str:
    write = next((t for t in result.results if "#w" in t.id), None)
    meter = meters.get(record.meter_id)
    if write is None or meter is None or write.resp is None:
        return f"write: {write.error.value if write and write.error else 'no answer'}"
    try:
        reply = parse_response(write_request_for(write.id, meter), write.resp)
    except FrameError as error:
        return f"write: {error}"
    return f"write: exception {reply.code:02d}" if isinstance(reply, ExceptionReply) else "write acknowledged"


def write_request_for(txn_id: str, meter: Meter) -> bytes:
    """Only the function, address and count matter when judging a write's answer; the words are not echoed."""
    start_hex, _, count = txn_id.rpartition("#w")[2].partition(":")
    words = int(count) if count else 2 * len(PRICE_ENTRIES)  # ids without a count are price pushes
    return build_write_request(meter.address, int(start_hex, 16), [0] * words)


def _updated(record: CommandRecord, status: str, detail: str, at: datetime) -> CommandRecord:
    return replace(record, status=status, detail=detail, updated_at=at)
