"""Pure Modbus RTU frames: CRC16, FC03/FC16 requests, response parsing, and RS485 wire time.

Shared by the cloud (which builds and checks the frames it tunnels) and the bridge (which puts them on
the line), so nothing here does I/O. A response is parsed *against its request*: a frame that is
well formed but answers another device, function or length is an error, never a silent mismatch.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

READ_HOLDING_REGISTERS = 0x03
WRITE_MULTIPLE_REGISTERS = 0x10
EXCEPTION_FLAG = 0x80
MAX_READ_COUNT = 125
MAX_WRITE_COUNT = 123

READ_REQUEST_LENGTH = 8  # id, fc, address(2), count(2), crc(2)
WRITE_RESPONSE_LENGTH = 8  # id, fc, address(2), count(2), crc(2)
EXCEPTION_RESPONSE_LENGTH = 5  # id, fc|0x80, code, crc(2)

EXCEPTION_NAMES = {
    1: "ILLEGAL_FUNCTION",
    2: "ILLEGAL_DATA_ADDRESS",
    3: "ILLEGAL_DATA_VALUE",
    4: "SERVER_DEVICE_FAILURE",
}


class FrameError(ValueError):
    """A response that cannot be trusted: the caller treats the meter as unanswered this time."""


class CrcError(FrameError):
    """The frame arrived whole but its CRC is wrong (line noise)."""


class MalformedFrameError(FrameError):
    """The bytes are not a valid response to the request (length, device, function or echo)."""


# ----------------------------------------------------------------------------------------------
# CRC and line settings


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    """Modbus CRC-16 (poly 0xA001 reflected, init 0xFFFF); sent low byte first."""
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ byte) & 0xFF]
    return crc


def with_crc(body: bytes) -> bytes:
    """``body`` followed by its CRC, low byte first."""
    return body + struct.pack("<H", crc16(body))


def crc_ok(frame: bytes) -> bool:
    """True when the frame's last two bytes are the CRC of the rest."""
    return len(frame) >= 3 and crc16(frame[:-2]) == struct.unpack("<H", frame[-2:])[0]


@dataclass(frozen=True)
class LineSettings:
    """An RS485 line: 8 data bits, ``parity`` N or E, 1 or 2 stop bits, and the meters' turnaround."""

    baud: int = 9600
    parity: str = "N"
    stop_bits: int = 1
    turnaround_ms: float = 0.0

    def __post_init__(self) -> None:
        if not 1200 <= self.baud <= 38400:
            raise ValueError(f"baud must be 1200..38400, got {self.baud}")
        if self.parity not in ("N", "E"):
            raise ValueError(f"parity must be 'N' or 'E', got {self.parity!r}")
        if self.stop_bits not in (1, 2):
            raise ValueError(f"stop bits must be 1 or 2, got {self.stop_bits}")
        if not 0 <= self.turnaround_ms <= 10_000:
            raise ValueError(f"turnaround must be 0..10000 ms, got {self.turnaround_ms}")

    @property
    def bits_per_char(self) -> int:
        """Start bit + 8 data bits + parity bit if any + stop bits: 10 at 8N1, 11 at 8E1 or 8N2."""
        return 1 + 8 + (1 if self.parity == "E" else 0) + self.stop_bits

    @property
    def char_time(self) -> float:
        """Seconds one character occupies the line."""
        return self.bits_per_char / self.baud

    @property
    def label(self) -> str:
        """The usual short form, e.g. "9600 8N1"."""
        return f"{self.baud} 8{self.parity}{self.stop_bits}"


def wire_time(request_len: int, response_len: int, line: LineSettings) -> float:
    """Seconds one transaction holds the bus (the TARGETS.md ``bus_scan`` formula).

    Both frames' bytes, the 3.5-character silence that ends each frame, and the meter's turnaround.
    A silent meter still costs its request: pass ``response_len=0`` and no turnaround is counted.
    """
    if request_len < 0 or response_len < 0:
        raise ValueError("frame lengths cannot be negative")
    characters = request_len + 3.5
    if response_len:
        characters += response_len + 3.5
    turnaround = line.turnaround_ms / 1000 if response_len else 0.0
    return characters * line.char_time + turnaround


def read_response_length(count: int) -> int:
    """Bytes of a normal FC03 response carrying ``count`` registers."""
    return 5 + 2 * count


def write_request_length(count: int) -> int:
    """Bytes of an FC16 request writing ``count`` registers."""
    return 9 + 2 * count


def read_wire_time(count: int, line: LineSettings) -> float:
    """Seconds one successful FC03 read of ``count`` registers holds the bus."""
    return wire_time(READ_REQUEST_LENGTH, read_response_length(count), line)


# ----------------------------------------------------------------------------------------------
# Requests


def _check_device(device_id: int) -> None:
    if not 1 <= device_id <= 247:
        raise ValueError(f"device id must be 1..247, got {device_id}")


def _check_span(address: int, count: int, limit: int) -> None:
    if not 1 <= count <= limit:
        raise ValueError(f"count must be 1..{limit}, got {count}")
    if address < 0 or address + count > 0x10000:
        raise ValueError(f"registers 0x{address:X}+{count} fall outside 0..0xFFFF")


def build_read_request(device_id: int, address: int, count: int) -> bytes:
    """FC03 read-holding-registers request frame."""
    _check_device(device_id)
    _check_span(address, count, MAX_READ_COUNT)
    return with_crc(struct.pack(">BBHH", device_id, READ_HOLDING_REGISTERS, address, count))


def build_write_request(device_id: int, address: int, words: Sequence[int]) -> bytes:
    """FC16 write-multiple-registers request frame."""
    _check_device(device_id)
    _check_span(address, len(words), MAX_WRITE_COUNT)
    if not all(0 <= word <= 0xFFFF for word in words):
        raise ValueError("register words must be 0..0xFFFF")
    header = struct.pack(">BBHHB", device_id, WRITE_MULTIPLE_REGISTERS, address, len(words), 2 * len(words))
    return with_crc(header + struct.pack(f">{len(words)}H", *words))


@dataclass(frozen=True)
class Request:
    """What a request frame asks for, as needed to judge its response."""

    device_id: int
    function: int
    address: int
    count: int


def parse_request(frame: bytes) -> Request:
    """Decode an FC03 or FC16 request frame (checks length and CRC)."""
    if len(frame) < READ_REQUEST_LENGTH:
        raise MalformedFrameError(f"request of {len(frame)} bytes is too short")
    device_id, function, address, count = struct.unpack(">BBHH", frame[:6])
    if function == READ_HOLDING_REGISTERS:
        expected = READ_REQUEST_LENGTH
    elif function == WRITE_MULTIPLE_REGISTERS:
        expected = write_request_length(count)
    else:
        raise MalformedFrameError(f"unsupported function 0x{function:02X}")
    if len(frame) != expected:
        raise MalformedFrameError(f"function 0x{function:02X} request must be {expected} bytes, got {len(frame)}")
    if not crc_ok(frame):
        raise CrcError("request CRC mismatch")
    return Request(device_id, function, address, count)


def expected_response_length(request: bytes) -> int:
    """Bytes of the normal (non-exception) response to ``request``."""
    parsed = parse_request(request)
    if parsed.function == READ_HOLDING_REGISTERS:
        return read_response_length(parsed.count)
    return WRITE_RESPONSE_LENGTH


def response_length(request: bytes, head: bytes) -> int | None:
    """Total length of the response whose first bytes are ``head``; None until two bytes are in.

    Lets a serial reader know when a frame is complete without waiting for the line to fall silent.
    """
    if len(head) < 2:
        return None
    if head[1] & EXCEPTION_FLAG:
        return EXCEPTION_RESPONSE_LENGTH
    return expected_response_length(request)


# ----------------------------------------------------------------------------------------------
# Responses


@dataclass(frozen=True)
class RegistersReply:
    """A normal FC03 response."""

    device_id: int
    registers: tuple[int, ...]


@dataclass(frozen=True)
class WriteReply:
    """A normal FC16 response (the meter echoes address and count)."""

    device_id: int
    address: int
    count: int


@dataclass(frozen=True)
class ExceptionReply:
    """The meter answered with a Modbus exception (e.g. 03 when it refuses a purchase)."""

    device_id: int
    function: int
    code: int

    @property
    def name(self) -> str:
        return EXCEPTION_NAMES.get(self.code, f"EXCEPTION_{self.code}")


Reply = RegistersReply | WriteReply | ExceptionReply


def parse_response(request: bytes, response: bytes) -> Reply:
    """Judge ``response`` against ``request``; FrameError (CrcError, MalformedFrameError) if untrustworthy."""
    asked = parse_request(request)
    if len(response) < EXCEPTION_RESPONSE_LENGTH:
        raise MalformedFrameError(f"response of {len(response)} bytes is too short")
    expected = response_length(request, response)
    if len(response) != expected:
        raise MalformedFrameError(f"response must be {expected} bytes, got {len(response)}")
    if not crc_ok(response):
        raise CrcError(f"response CRC mismatch from device {response[0]}")
    if response[0] != asked.device_id:
        raise MalformedFrameError(f"response from device {response[0]}, asked {asked.device_id}")
    if response[1] & 0x7F != asked.function:
        raise MalformedFrameError(f"response function 0x{response[1]:02X} to a 0x{asked.function:02X} request")
    if response[1] & EXCEPTION_FLAG:
        return ExceptionReply(asked.device_id, asked.function, response[2])
    if asked.function == READ_HOLDING_REGISTERS:
        return _registers_reply(asked, response)
    return _write_reply(asked, response)


def _registers_reply(asked: Request, response: bytes) -> RegistersReply:
    if response[2] != 2 * asked.count:
        raise MalformedFrameError(f"byte count {response[2]}, expected {2 * asked.count}")
    registers = struct.unpack(f">{asked.count}H", response[3:-2])
    return RegistersReply(asked.device_id, registers)


def _write_reply(asked: Request, response: bytes) -> WriteReply:
    address, count = struct.unpack(">HH", response[2:6])
    if (address, count) != (asked.address, asked.count):
        raise MalformedFrameError(f"write echo 0x{address:04X}+{count}, sent 0x{asked.address:04X}+{asked.count}")
    return WriteReply(asked.device_id, address, count)


def build_exception_response(device_id: int, function: int, code: int) -> bytes:
    """An exception response frame (used by simulators and tests)."""
    return with_crc(struct.pack(">BBB", device_id, function | EXCEPTION_FLAG, code))


def build_read_response(device_id: int, words: Sequence[int]) -> bytes:
    """A normal FC03 response frame (used by simulators and tests)."""
    return with_crc(struct.pack(f">BBB{len(words)}H", device_id, READ_HOLDING_REGISTERS, 2 * len(words), *words))


def build_write_response(device_id: int, address: int, count: int) -> bytes:
    """A normal FC16 response frame (used by simulators and tests)."""
    return with_crc(struct.pack(">BBHH", device_id, WRITE_MULTIPLE_REGISTERS, address, count))
