"""One simulated RS485 bus: up to 32 meters sharing one line that is no faster than the real one.

Every request holds the line (an ``asyncio.Lock``) for the wire time of the frames it exchanges,
computed by ``rtu.wire_time`` from the bus's line settings and the meter's turnaround, so several
clients on one bus are served one after the other, as on a real line. Faults per meter: dead
(silent), slow (extra turnaround), flaky (processes the request, then loses a share of its
answers: the "acknowledgement lost" case), corrupt (a share of answers with a bad CRC, RTU only).
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypeVar

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.simulator import DataType, SimData, SimDevice
from pymodbus.simulator.simcore import SimCore
from pymodbus.simulator.simruntime import SimRuntime

from ..rtu import (
    EXCEPTION_RESPONSE_LENGTH,
    READ_REQUEST_LENGTH,
    WRITE_RESPONSE_LENGTH,
    LineSettings,
    read_response_length,
    wire_time,
    write_request_length,
)
from .meter import Meter
from .registers import ILLEGAL_FUNCTION, RegisterImage, SimulatorError

MAX_METERS_PER_BUS = 32
TRANSPORTS = ("tcp", "rtutcp", "serial")
SUPPORTED_FUNCTIONS = (3, 6, 16)
MAX_WAKE_MARGIN = 0.005  # seconds a hold may spend yielding instead of sleeping
MAX_HANDOVER_DELAY = 0.050  # an arrival older than this belongs to some other request
Result = TypeVar("Result")


@dataclass
class Fault:
    """Injected misbehaviour of one meter (shares are probabilities 0..1, drawn from the bus's seeded RNG)."""

    dead: bool = False
    slow_ms: float = 0.0
    drop_share: float = 0.0
    corrupt_share: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.slow_ms <= 60_000 or not 0 <= self.drop_share <= 1 or not 0 <= self.corrupt_share <= 1:
            raise SimulatorError("fault: slow_ms must be 0..60000 and shares within 0..1")


class SimClock:
    """Simulated time in integer milliseconds: real time × ``speed``, plus any skipped time."""

    def __init__(self, speed: float = 1.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        if speed <= 0:
            raise SimulatorError("clock speed must be positive")
        self.speed = speed
        self._monotonic = monotonic
        self._start = monotonic()
        self._skipped_ms = 0

    def now_ms(self) -> int:
        return int((self._monotonic() - self._start) * self.speed * 1000) + self._skipped_ms

    def skip(self, seconds: Decimal) -> None:
        """Jump simulated time forward (demos and tests: "an hour later")."""
        if seconds < 0:
            raise SimulatorError("time only moves forward")
        self._skipped_ms += int(seconds * 1000)


@dataclass
class SimulatedMeter:
    """A meter on a bus: its model, register image, faults and how far its time has been advanced."""

    address: int
    model: str
    meter: Meter
    image: RegisterImage
    fault: Fault = field(default_factory=Fault)
    synced_ms: int = 0


class Bus:
    """The meters of one bus, their shared line, and its wire-time emulation."""

    def __init__(
        self,
        name: str,
        transport: str,
        line: LineSettings,
        clock: SimClock,
        *,
        seed: int = 0,
        emulate_wire: bool = True,
    ) -> None:
        if transport not in TRANSPORTS:
            raise SimulatorError(f"bus {name}: transport must be one of {TRANSPORTS}")
        self.name, self.transport, self.line, self.clock = name, transport, line, clock
        self.emulate_wire = emulate_wire
        self.meters: dict[int, SimulatedMeter] = {}
        self.rng = random.Random(seed)
        self.lock = asyncio.Lock()
        self._oversleep = self._wake_margin = 0.002  # learned by _hold; 2 ms is typical
        self._last_arrival = self._line_free_at = 0.0

    @property
    def rtu_framing(self) -> bool:
        return self.transport != "tcp"

    def add(self, meter: SimulatedMeter) -> None:
        if not 1 <= meter.address <= 247 or meter.address in self.meters:
            raise SimulatorError(f"bus {self.name}: address {meter.address} is invalid or taken")
        if len(self.meters) >= MAX_METERS_PER_BUS:
            raise SimulatorError(f"bus {self.name}: at most {MAX_METERS_PER_BUS} meters on one bus")
        meter.synced_ms = self.clock.now_ms()
        self.meters[meter.address] = meter

    def set_fault(self, address: int, fault: Fault) -> None:
        if fault.corrupt_share and not self.rtu_framing:
            raise SimulatorError(f"bus {self.name}: CRC corruption needs an RTU transport, not {self.transport}")
        self.meters[address].fault = fault

    def sync(self, meter: SimulatedMeter) -> None:
        """Bring the meter's model up to the simulated present."""
        now = self.clock.now_ms()
        if now > meter.synced_ms:
            meter.meter.advance(Decimal(now - meter.synced_ms) / 1000)
            meter.synced_ms = now

    def sync_all(self) -> None:
        for meter in self.meters.values():
            self.sync(meter)

    # -- the pymodbus side -------------------------------------------------------------------------

    def sim_devices(self) -> list[SimDevice]:
        """One pymodbus SimDevice per meter; its action answers from the meter's register image."""
        return [
            SimDevice(
                id=address,
                simdata=[SimData(0, count=meter.image.span, values=0, datatype=DataType.REGISTERS)],
                action=functools.partial(_meter_action, meter),
            )
            for address, meter in sorted(self.meters.items())
        ]

    def trace_packet(self, sending: bool, frame: bytes) -> bytes:
        """pymodbus hook on every frame: notes when requests arrive; spoils answers of corrupt meters."""
        if not sending:
            self._last_arrival = asyncio.get_running_loop().time()
            return frame
        if not (self.rtu_framing and len(frame) >= 4):
            return frame
        meter = self.meters.get(frame[0])
        if meter is None or not meter.fault.corrupt_share or self.rng.random() >= meter.fault.corrupt_share:
            return frame
        return frame[:-1] + bytes([frame[-1] ^ 0xFF])

    async def transact(
        self,
        device_id: int,
        request_len: int,
        serve: Callable[[], Awaitable[Result]],
        response_len: Callable[[Result], int],
    ) -> Result:
        """Serve one request while holding the line for its wire time; NoSuchIdException = stay silent."""
        async with self.lock:
            started = self._transaction_start()
            meter = self.meters.get(device_id)
            if meter is None or meter.fault.dead:
                await self._hold(started, wire_time(request_len, 0, self.line))
                raise NoSuchIdException(f"device {device_id} is silent")
            self.sync(meter)
            result = await serve()
            extra = meter.fault.slow_ms / 1000
            await self._hold(started, wire_time(request_len, response_len(result), self.line) + extra)
            if meter.fault.drop_share and self.rng.random() < meter.fault.drop_share:
                raise NoSuchIdException(f"device {device_id}: answer lost")
            return result

    def _transaction_start(self) -> float:
        """When this transaction took the line: its request's arrival, if that is recent, but never
        before the previous transaction let go of the line.

        pymodbus hands a request over two event-loop hops after its bytes arrive; on a busy machine
        that delay would count as extra wire time. The latest arrival is never earlier than this
        request's own, so anchoring there never makes the line faster than physics.
        """
        now = asyncio.get_running_loop().time()
        arrival = self._last_arrival if now - self._last_arrival <= MAX_HANDOVER_DELAY else now
        return max(arrival, self._line_free_at)

    async def _hold(self, started: float, seconds: float) -> None:
        """Return at ``started + seconds``: never earlier (no faster than the line), rarely later.

        asyncio.sleep wakes a few ms late on a busy machine, which would inflate every transaction,
        so sleep until a learned margin before the deadline and yield to the loop for the rest.
        """
        if not self.emulate_wire:
            return
        loop = asyncio.get_running_loop()
        deadline = self._line_free_at = started + seconds
        wake_at = deadline - self._wake_margin
        if wake_at > loop.time():
            await asyncio.sleep(wake_at - loop.time())
            self._learn_oversleep(loop.time() - wake_at)
        while loop.time() < deadline:
            await asyncio.sleep(0)

    def _learn_oversleep(self, oversleep: float) -> None:
        self._oversleep = 0.8 * self._oversleep + 0.2 * max(0.0, oversleep)
        self._wake_margin = min(MAX_WAKE_MARGIN, 1.5 * self._oversleep)


async def _meter_action(
    meter: SimulatedMeter,
    function_code: int,
    start_address: int,
    address: int,
    count: int,
    registers: list[int],
    set_values: list[int] | list[bool] | None,
) -> ExcCodes | None:
    """SimDevice action: the register image answers, pymodbus frames the answer."""
    if function_code not in SUPPORTED_FUNCTIONS:
        return ExcCodes(ILLEGAL_FUNCTION)
    if set_values is None:
        words = meter.image.read(address, count)
        if isinstance(words, int):
            return ExcCodes(words)
        registers[address - start_address : address - start_address + count] = words
        return None
    refused = meter.image.write(address, [int(value) for value in set_values])
    return ExcCodes(refused) if refused else None


def _exception_or(normal: int) -> Callable[[object], int]:
    return lambda result: EXCEPTION_RESPONSE_LENGTH if isinstance(result, ExcCodes) else normal


class BusCore(SimCore):
    """pymodbus's SimCore with the bus's line in front of it.

    Also the documented fix for unknown device ids: stock SimCore raises KeyError (answered as
    exception 04); raising NoSuchIdException instead, with ``ignore_missing_devices=True`` on the
    server, keeps them silent like a real RS485 bus. Overriding the name-mangled method in this
    subclass scopes the fix to our servers instead of patching pymodbus for the whole process.
    """

    def __init__(self, bus: Bus) -> None:
        super().__init__(bus.sim_devices())
        self.bus = bus

    def _SimCore__get_device(self, device_id: int) -> SimRuntime:
        if device_id not in self.devices:
            raise NoSuchIdException(f"device {device_id} is not on this bus")
        return self.devices[device_id]

    async def async_getValues(
        self, device_id: int, func_code: int, address: int, count: int = 1
    ) -> list[int] | list[bool] | ExcCodes:
        read = functools.partial(SimCore.async_getValues, self, device_id, func_code, address, count)
        if func_code in (6, 16, 23):
            return await read()  # the read-back half of a write, whose request already held the line
        return await self.bus.transact(device_id, READ_REQUEST_LENGTH, read, _exception_or(read_response_length(count)))

    async def async_setValues(
        self, device_id: int, func_code: int, address: int, values: list[int] | list[bool]
    ) -> ExcCodes | None:
        write = functools.partial(SimCore.async_setValues, self, device_id, func_code, address, values)
        request_len = READ_REQUEST_LENGTH if func_code == 6 else write_request_length(len(values))
        return await self.bus.transact(device_id, request_len, write, _exception_or(WRITE_RESPONSE_LENGTH))
