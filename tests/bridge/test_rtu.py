"""Modbus RTU frames, CRC, response parsing and wire time."""

from __future__ import annotations

import pytest
from gateway_bridge.rtu import (
    CrcError,
    ExceptionReply,
    LineSettings,
    MalformedFrameError,
    RegistersReply,
    WriteReply,
    build_exception_response,
    build_read_request,
    build_read_response,
    build_write_request,
    build_write_response,
    crc16,
    crc_ok,
    expected_response_length,
    parse_request,
    parse_response,
    read_wire_time,
    response_length,
    wire_time,
)
from hypothesis import given
from hypothesis import strategies as st


def test_crc_known_vectors() -> None:
    assert build_read_request(1, 0x0000, 10) == bytes.fromhex("01 03 00 00 00 0A C5 CD")
    assert crc16(b"123456789") == 0x4B37  # the CRC-16/MODBUS check value
    assert build_read_request(17, 0x006B, 3) == bytes.fromhex("11 03 00 6B 00 03 76 87")
    assert crc_ok(bytes.fromhex("01 03 00 00 00 0A C5 CD"))
    assert not crc_ok(bytes.fromhex("01 03 00 00 00 0A C5 CC"))


def test_write_request_layout() -> None:
    frame = build_write_request(5, 0x0120, [0x0000, 0x1388, 0x0007])
    assert frame[:-2] == bytes.fromhex("05 10 01 20 00 03 06 00 00 13 88 00 07")
    assert crc_ok(frame) and len(frame) == 9 + 2 * 3


@pytest.mark.parametrize(("call", "message"), [
    (lambda: build_read_request(0, 0, 1), "device id"),
    (lambda: build_read_request(248, 0, 1), "device id"),
    (lambda: build_read_request(1, 0, 126), "count"),
    (lambda: build_read_request(1, 0xFFFF, 2), "outside"),
    (lambda: build_write_request(1, 0, []), "count"),
    (lambda: build_write_request(1, 0, [0x10000]), "0..0xFFFF"),
])
def test_builders_refuse_bad_requests(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]


@given(st.integers(1, 247), st.integers(0, 0xFF00), st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=125))
def test_read_round_trip(device: int, address: int, words: list[int]) -> None:
    request = build_read_request(device, address, len(words))
    response = build_read_response(device, words)
    assert len(response) == expected_response_length(request)
    assert parse_response(request, response) == RegistersReply(device, tuple(words))


def test_write_and_exception_replies() -> None:
    request = build_write_request(3, 0x0120, [0, 5000, 2])
    assert parse_response(request, build_write_response(3, 0x0120, 3)) == WriteReply(3, 0x0120, 3)
    refused = parse_response(request, build_exception_response(3, 0x10, 3))
    assert refused == ExceptionReply(3, 0x10, 3) and refused.name == "ILLEGAL_DATA_VALUE"
    read = build_read_request(3, 0x0100, 2)
    for code, name in [(1, "ILLEGAL_FUNCTION"), (2, "ILLEGAL_DATA_ADDRESS"), (4, "SERVER_DEVICE_FAILURE")]:
        reply = parse_response(read, build_exception_response(3, 0x03, code))
        assert isinstance(reply, ExceptionReply) and reply.name == name


def test_untrustworthy_responses_raise_typed_errors() -> None:
    request = build_read_request(7, 0, 2)
    good = build_read_response(7, [1, 2])
    with pytest.raises(CrcError):
        parse_response(request, good[:-1] + bytes([good[-1] ^ 1]))
    with pytest.raises(MalformedFrameError, match="must be 9 bytes"):
        parse_response(request, good[:-1])
    with pytest.raises(MalformedFrameError, match="too short"):
        parse_response(request, good[:3])
    with pytest.raises(MalformedFrameError, match="from device 8"):
        parse_response(request, build_read_response(8, [1, 2]))
    with pytest.raises(MalformedFrameError, match="must be 9 bytes"):
        parse_response(request, build_read_response(7, [1, 2, 3]))
    with pytest.raises(MalformedFrameError, match="function"):
        parse_response(request, build_exception_response(7, 0x10, 2))
    write = build_write_request(7, 0x0120, [0, 1, 2])
    with pytest.raises(MalformedFrameError, match="write echo"):
        parse_response(write, build_write_response(7, 0x0124, 3))


def test_parse_request_and_lengths() -> None:
    request = build_write_request(2, 0x0130, [2026, 3])
    parsed = parse_request(request)
    assert (parsed.device_id, parsed.function, parsed.address, parsed.count) == (2, 0x10, 0x0130, 2)
    with pytest.raises(CrcError):
        parse_request(request[:-1] + b"\x00")
    with pytest.raises(MalformedFrameError, match="unsupported function"):
        parse_request(bytes.fromhex("01 04 00 00 00 01 31 CA"))
    read = build_read_request(1, 0, 30)
    assert expected_response_length(read) == 65
    assert response_length(read, b"\x01") is None
    assert response_length(read, b"\x01\x83") == 5
    assert response_length(read, b"\x01\x03\x3c") == 65


def test_line_settings() -> None:
    assert LineSettings(9600, "N", 1).bits_per_char == 10
    assert LineSettings(9600, "E", 1).bits_per_char == 11
    assert LineSettings(9600, "N", 2).bits_per_char == 11
    assert LineSettings(19200, "E", 1).label == "19200 8E1"
    for bad in ({"baud": 600}, {"baud": 57600}, {"parity": "O"}, {"stop_bits": 3}, {"turnaround_ms": -1}):
        with pytest.raises(ValueError):
            LineSettings(**bad)


def test_wire_time_formula() -> None:
    line = LineSettings(9600, "N", 1, turnaround_ms=20)
    # 30 registers: 8 + 65 bytes + 2 × 3.5 characters, 10 bits each, at 9600 baud, + 20 ms.
    assert wire_time(8, 65, line) == pytest.approx((8 + 65 + 7) * 10 / 9600 + 0.020)
    assert read_wire_time(30, line) == pytest.approx(0.103333, abs=1e-6)
    assert wire_time(8, 65, LineSettings(9600, "E", 1, 20)) == pytest.approx(80 * 11 / 9600 + 0.020)
    assert wire_time(8, 0, line) == pytest.approx(11.5 * 10 / 9600)  # a silent meter costs its request only
    with pytest.raises(ValueError):
        wire_time(-1, 5, line)
