"""The cloud plans, the bridge executes: Modbus read plans per bus, and decoding what came back.

Plans come from each meter's device profile (register maps as data, shared with the bridge and the
simulator), so a new meter model is a data change. A transaction id names the meter and the first
register of its block, which is all the cloud needs to rebuild the request and decode the answer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache

from gateway_bridge.codec import ReadBlock, Value, plan_reads
from gateway_bridge.profiles import Entry, Profile, ProfileError, load_profile
from gateway_bridge.protocol import Batch, BatchResult, Txn
from gateway_bridge.rtu import ExceptionReply, FrameError, RegistersReply, build_read_request, parse_response

from chalicelib.domain.tenancy import Meter

READ_TIMEOUT_MS = 600


@lru_cache(maxsize=32)
def profile_for(model: str) -> Profile:
    return load_profile(model)


@lru_cache(maxsize=32)
def blocks_for(model: str) -> tuple[ReadBlock, ...]:
    return tuple(plan_reads(profile_for(model)))


@lru_cache(maxsize=256)
def entries_in(model: str, start: int, count: int) -> tuple[Entry, ...]:
    """The readable entries lying wholly inside a block (what ``codec.decode_block`` finds, looked up once)."""
    return tuple(e for e in profile_for(model).entries if e.readable and start <= e.address and e.end <= start + count)


@dataclass(frozen=True)
class FieldLayout:
    """Where an entry's value lies in a block's register bytes, and how it reads (``codec.decode``'s rule)."""

    name: str
    first: int  # byte offsets in the block's register data
    end: int
    signed: bool
    exponent: int | None  # power of ten of a scaled entry; None for a plain integer


@lru_cache(maxsize=256)
def block_layout(model: str, start: int, count: int) -> tuple[FieldLayout, ...]:
    """A block's entries compiled once: every bus run decodes the same blocks of the same models."""
    return tuple(FieldLayout(e.name, 2 * (e.address - start), 2 * (e.end - start), e.signed,
                             None if e.scale == 1 else int(e.scale.as_tuple().exponent))
                 for e in entries_in(model, start, count))


def decode_registers(layout: tuple[FieldLayout, ...], data: bytes) -> dict[str, Value]:
    """The values of a block's register bytes (big-endian words, high word first): ``codec.decode`` of each entry."""
    values: dict[str, Value] = {}
    for field_ in layout:
        raw = int.from_bytes(data[field_.first:field_.end], "big", signed=field_.signed)
        values[field_.name] = raw if field_.exponent is None else Decimal(raw).scaleb(field_.exponent)
    return values


@lru_cache(maxsize=4096)
def read_request(address: int, start: int, count: int) -> bytes:
    return build_read_request(address, start, count)


def txn_id(meter: Meter, block: ReadBlock) -> str:
    return f"{meter.meter_id}@{block.address:04x}"


def read_txns(meters: Iterable[Meter]) -> list[Txn]:
    """Every meter's read-plan blocks, in bus address order."""
    return [Txn(txn_id(m, b), build_read_request(m.address, b.address, b.count), READ_TIMEOUT_MS)
            for m in sorted(meters, key=lambda m: m.address) for b in blocks_for(m.model)]


def standing_plans(meters: Iterable[Meter], plan_id: str, every_s: int) -> list[Batch]:
    """One standing read plan per bus (collector), which the bridge repeats every ``every_s``."""
    by_bus: dict[str, list[Meter]] = defaultdict(list)
    for meter in meters:
        by_bus[meter.collector_id].append(meter)
    return [Batch(cycle=plan_id, bus=bus, txns=tuple(read_txns(bus_meters)), every_s=every_s)
            for bus, bus_meters in sorted(by_bus.items())]


@dataclass
class DecodedRead:
    """What one bus run said about one meter: merged values of its blocks, or why there are none."""

    meter_id: str
    at_ms: int
    values: dict[str, Value] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def answered(self) -> bool:
        return bool(self.values)


def meters_in(result: BatchResult, meters_by_id: dict[str, Meter]) -> list[str]:
    """The known meters a bus run speaks of, in order, read from its transaction ids without decoding."""
    named = dict.fromkeys(item.id.partition("@")[0] for item in result.results if "@" in item.id)
    return [meter_id for meter_id in named if meter_id in meters_by_id]


def decode_result(result: BatchResult, meters_by_id: dict[str, Meter]) -> list[DecodedRead]:
    """Decode a bus run's raw responses per meter; unknown ids and bad frames become problems, never errors."""
    reads: dict[str, DecodedRead] = {}
    for item in result.results:
        meter_id, _, start_hex = item.id.partition("@")
        meter = meters_by_id.get(meter_id)
        if meter is None or not start_hex:
            continue
        read = reads.setdefault(meter_id, DecodedRead(meter_id, item.t1_ms))
        read.at_ms = max(read.at_ms, item.t1_ms)
        if item.resp is None:
            read.problems.append(f"{item.id}: {item.error.value if item.error else 'no answer'}")
            continue
        _decode_into(read, meter, start_hex, item.id, item.resp)
    return list(reads.values())


def _decode_into(read: DecodedRead, meter: Meter, block_ref: str, item_id: str, response: bytes) -> None:
    try:
        profile_for(meter.model)  # an unknown model becomes a problem on the reading, not a crash
        start_hex, _, count_text = block_ref.partition(":")
        start = int(start_hex, 16)
        count = int(count_text) if count_text else next(b.count for b in blocks_for(meter.model) if b.address == start)
        reply = parse_response(read_request(meter.address, start, count), response)
    except (ProfileError, StopIteration, FrameError, ValueError) as error:
        read.problems.append(f"{item_id}: {error or 'unknown block'}")
        return
    if isinstance(reply, ExceptionReply):
        read.problems.append(f"{item_id}: exception {reply.code:02d}")
    elif isinstance(reply, RegistersReply):
        # The reply was judged against the request (length, byte count, CRC): its data bytes are the registers.
        read.values.update(decode_registers(block_layout(meter.model, start, count), response[3:-2]))
