"""Pure framing helpers for the links: where an RTU answer ends, and RTU <-> Modbus TCP (MBAP) translation.

The bridge does not interpret Modbus; it only needs to know when an answer is complete, so it can hand
the bytes back without waiting for the line to fall silent, and how to carry an RTU request over a
Modbus TCP collector so the cloud always sees RTU frames.
"""

from __future__ import annotations

import struct

from .. import rtu

MBAP_HEADER = 7  # transaction id, protocol id, length, unit id
_READS_WITH_BYTE_COUNT = (1, 2, 3, 4)
_WRITES_ECHOED = (5, 6, 15, 16)


class UnknownFraming(Exception):
    """The answer's length cannot be known from its function code: read until the line is quiet."""


class MbapError(Exception):
    """A Modbus TCP answer that cannot be turned back into an RTU frame."""


def rtu_answer_length(request: bytes, head: bytes) -> int | None:
    """Total bytes of the RTU answer starting with ``head``; None while too few bytes are in.

    FC03/FC16 lengths come from the request (``rtu.response_length``), so a corrupted byte count
    cannot make the bridge wait for bytes that never come; other common functions from the answer.
    """
    if len(head) < 2:
        return None
    try:
        return rtu.response_length(request, head)
    except rtu.FrameError:
        pass
    function = head[1]
    if function & rtu.EXCEPTION_FLAG:
        return rtu.EXCEPTION_RESPONSE_LENGTH
    if function in _READS_WITH_BYTE_COUNT:
        return None if len(head) < 3 else 5 + head[2]
    if function in _WRITES_ECHOED:
        return 8
    raise UnknownFraming(f"function 0x{function:02X}")


def expected_answer_length(request: bytes) -> int:
    """Bytes of the normal answer to ``request`` if known, else the longest RTU frame (for timeouts)."""
    try:
        return rtu.expected_response_length(request)
    except rtu.FrameError:
        return 256


def rtu_to_mbap(request: bytes, transaction_id: int) -> bytes:
    """The Modbus TCP form of an RTU request: MBAP header, unit id = slave address, no CRC."""
    unit_and_pdu = request[:-2]
    return struct.pack(">HHH", transaction_id & 0xFFFF, 0, len(unit_and_pdu)) + unit_and_pdu


def mbap_length(head: bytes) -> int | None:
    """Total bytes of the MBAP answer starting with ``head``; None until its header is in."""
    if len(head) < 6:
        return None
    length = struct.unpack(">H", head[4:6])[0]
    if not 2 <= length <= 254:
        raise MbapError(f"MBAP length {length} out of range")
    return 6 + length


def mbap_transaction_id(frame: bytes) -> int:
    return int(struct.unpack(">H", frame[:2])[0])


def mbap_to_rtu(frame: bytes) -> bytes:
    """The RTU frame the meter would have sent: unit id + PDU + a fresh CRC."""
    if struct.unpack(">H", frame[2:4])[0] != 0:
        raise MbapError("MBAP protocol id is not 0 (not Modbus)")
    return rtu.with_crc(frame[6:])
