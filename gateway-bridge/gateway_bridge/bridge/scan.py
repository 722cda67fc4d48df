"""Commissioning: which slave addresses answer on a bus.

Each address gets an FC03 read of one register at 0; any well-formed answer counts, a Modbus
exception included (a prepaid meter with nothing at register 0 still says "I am here"). A garbled
answer (bad CRC) is reported but not counted: something is there, but the line needs a look.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from .. import rtu
from .bus import TIMEOUT_FLOOR_MARGIN_S
from .config import CollectorConfig
from .links import make_link


@dataclass(frozen=True)
class ScanHit:
    address: int
    answer: str  # "registers", "exception ILLEGAL_DATA_ADDRESS", or "garbled: ..."

    @property
    def counts(self) -> bool:
        return not self.answer.startswith("garbled")


def describe(request: bytes, answer: bytes) -> str:
    try:
        reply = rtu.parse_response(request, answer)
    except rtu.FrameError as exc:
        return f"garbled: {exc}"
    return f"exception {reply.name}" if isinstance(reply, rtu.ExceptionReply) else "registers"


async def scan(collector: CollectorConfig, first: int, last: int,
               progress: Callable[[int], None] | None = None) -> list[ScanHit]:
    """Probe ``first..last`` one by one; LinkError if the collector itself cannot be reached."""
    link = make_link(collector)
    floor = rtu.wire_time(rtu.READ_REQUEST_LENGTH, rtu.read_response_length(1), collector.line)
    timeout_s = max(collector.request_timeout_ms / 1000, floor + TIMEOUT_FLOOR_MARGIN_S)
    hits = []
    try:
        for address in range(first, last + 1):
            if progress is not None:
                progress(address)
            request = rtu.build_read_request(address, 0, 1)
            try:
                answer = await link.exchange(request, timeout_s)
            except TimeoutError:
                continue
            hits.append(ScanHit(address, describe(request, answer)))
    finally:
        await link.close()
    return hits


def run_scan(collector: CollectorConfig, first: int, last: int) -> list[ScanHit]:
    """``scan`` in its own event loop (the CLI); LinkError if the collector cannot be reached."""
    return asyncio.run(scan(collector, first, last))
