"""Bus runs as a bridge would report them, built from register values (for tests and the ingest bench)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway_bridge.codec import encode
from gateway_bridge.protocol import BatchResult, TxnResult
from gateway_bridge.rtu import with_crc

from chalicelib.services.reading_plan import blocks_for, profile_for, txn_id


def response_frame(address: int, words: list[int]) -> bytes:
    body = bytes([address, 3, 2 * len(words)]) + b"".join(w.to_bytes(2, "big") for w in words)
    return with_crc(body)


def block_words(profile: Any, start: int, count: int, values: dict[str, Any]) -> list[int]:
    words = [0] * count
    for entry in profile.entries:
        if entry.readable and start <= entry.address and entry.end <= start + count and entry.name in values:
            words[entry.address - start: entry.end - start] = encode(entry, values[entry.name])
    return words


def bus_run(meters: list[Any], cycle: str, bus: str, at_ms: int,
            values_of: Callable[[Any], dict[str, Any]]) -> BatchResult:
    """Every meter answering its read plan at ``at_ms`` with the registers ``values_of(meter)`` gives."""
    results = []
    for meter in meters:
        values = values_of(meter)
        for block in blocks_for(meter.model):
            words = block_words(profile_for(meter.model), block.address, block.count, values)
            results.append(TxnResult(txn_id(meter, block), response_frame(meter.address, words), None, at_ms, at_ms))
    return BatchResult(cycle, bus, tuple(results))
