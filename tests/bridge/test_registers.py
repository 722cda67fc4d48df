"""The register image answers reads and writes as the meter would, driven by the profile."""

from __future__ import annotations

import copy
from datetime import datetime
from decimal import Decimal as D

import pytest
from gateway_bridge.codec import Value, decode_block, encode_command, encode_entries
from gateway_bridge.profiles import Profile, load_profile, parse_profile
from gateway_bridge.simulator.meter import Meter, MeterState
from gateway_bridge.simulator.registers import (
    ILLEGAL_ADDRESS,
    ILLEGAL_VALUE,
    RegisterImage,
    SimulatorError,
)


def image(model: str = "DTSY1352", balance: str = "123.45") -> RegisterImage:
    profile = load_profile(model)
    state = MeterState(serial="R-1", clock=datetime(2026, 3, 2, 9, 30, 15), balance=D(balance),
                       purchase_count=7, load_kw=D("6.9"), hoarding_limit=D("2000.00"))
    return RegisterImage(profile, Meter(state, prepaid=profile.prepaid, phases=profile.phases))


def read_values(img: RegisterImage, address: int, count: int) -> dict[str, Value]:
    words = img.read(address, count)
    assert isinstance(words, list)
    return decode_block(img.profile, address, words)


def test_reads_show_the_meter() -> None:
    img = image()
    values = read_values(img, 0x0100, 15)
    assert values["remaining_amount"] == D("123.45")
    assert values["purchase_count"] == 7 and values["relay_state"] == 0 and values["control_mode"] == 0
    measurements = read_values(img, 0x0000, 17)
    assert measurements["voltage"] == D("230.0") and measurements["active_power"] == D("6.900")
    clock = read_values(img, 0x0130, 6)
    assert [clock[f"clock_{f}"] for f in ("year", "month", "day", "hour", "minute", "second")] == [
        2026, 3, 2, 9, 30, 15]


def test_partial_reads_of_an_entry_are_allowed() -> None:
    img = image()
    assert img.read(0x0101, 1) == [12345]  # low word of remaining_amount
    assert img.read(0x0100, 1) == [0]


def test_reads_outside_readable_entries_answer_02() -> None:
    img = image()
    assert img.read(0x0011, 1) == ILLEGAL_ADDRESS  # undefined
    assert img.read(0x0010, 2) == ILLEGAL_ADDRESS  # runs into undefined
    assert img.read(0x0120, 3) == ILLEGAL_ADDRESS  # the write-only purchase command


def test_purchase_command_through_registers() -> None:
    img = image()
    profile = img.profile
    address, words = encode_command(profile, "purchase", {"purchase_command_amount": D("50.00"),
                                                           "purchase_command_count": 8})
    assert img.write(address, words) is None
    assert read_values(img, 0x0100, 5)["remaining_amount"] == D("173.45")
    before = copy.deepcopy(img.meter.state)
    assert img.write(address, words) == ILLEGAL_VALUE  # same count again: refused, nothing changed
    assert img.meter.state == before


def test_commands_must_be_written_whole() -> None:
    img = image()
    assert img.write(0x0120, [0, 5000]) == ILLEGAL_ADDRESS
    assert img.write(0x0122, [8]) == ILLEGAL_ADDRESS


def test_refund_and_relay_commands() -> None:
    img = image()
    address, words = encode_command(img.profile, "refund", {"refund_command_amount": D("23.45"),
                                                            "refund_command_count": 8})
    assert img.write(address, words) is None
    assert img.meter.remaining_amount == D("100.00")
    assert img.write(0x0057, [1, 1]) is None
    assert read_values(img, 0x010C, 2) == {"control_mode": 2, "relay_state": 1}
    assert img.write(0x0057, [1, 0]) is None
    assert read_values(img, 0x010C, 2) == {"control_mode": 0, "relay_state": 0}
    assert img.write(0x0057, [0, 1]) == ILLEGAL_VALUE


def test_settings_writes_apply_all_or_nothing() -> None:
    img = image()
    address, words = encode_entries(img.profile, {"alarm_amount_1": D("80.00"), "alarm_amount_2": D("30.00"),
                                                  "hoarding_limit": D("900.00")})
    assert img.write(address, words) is None
    assert (img.meter.state.alarm_amount_1, img.meter.state.hoarding_limit) == (D("80.00"), D("900.00"))
    before = copy.deepcopy(img.meter.state)
    assert img.write(0x010B, [500, 3]) == ILLEGAL_VALUE  # threshold fine, control mode 3 refused
    assert img.meter.state == before
    assert img.write(0x0106, [1]) == ILLEGAL_ADDRESS  # cuts alarm_amount_1 in half
    assert img.write(0x0100, [0, 1]) == ILLEGAL_ADDRESS  # read-only


def test_prices_and_clock_writes() -> None:
    img = image()
    address, words = encode_entries(img.profile, {"price_flat": D("0.6543")})
    assert img.write(address, words) is None
    assert img.meter.state.prices["flat"] == D("0.6543")
    assert img.write(0x0130, [2027, 2, 28, 23, 59, 0]) is None
    assert img.meter.state.clock == datetime(2027, 2, 28, 23, 59, 0)
    assert img.write(0x0132, [30]) == ILLEGAL_VALUE  # 30 February
    assert img.write(0x0133, [24]) == ILLEGAL_VALUE
    assert img.write(0x0132, [1]) is None  # one field alone
    assert img.meter.state.clock == datetime(2027, 2, 1, 23, 59, 0)


def test_plain_meter_image() -> None:
    img = image("ACR")
    values = read_values(img, 0, 30)
    assert values["active_power_total"] == D("6.900") and values["active_power_a"] == D("2.300")
    assert values["frequency"] == D("50.00") and values["energy_total"] == D("0.00")
    assert img.write(0x0000, [1]) == ILLEGAL_ADDRESS


def unplayable(change: str) -> Profile:
    base = load_profile("DTSF")
    entries = [{"name": e.name, "address": e.address, "count": e.count, "type": e.type, "scale": str(e.scale),
                "unit": e.unit, "access": e.access, "status": e.status, "description": e.description}
               for e in base.entries]
    entries.append({"name": change, "address": 0x50, "count": 1, "type": "UINT16", "scale": "1", "unit": "",
                    "access": "RW", "status": "assumed", "description": "x"})
    return parse_profile({"model": "X", "kind": "energy", "description": "x", "entries": entries})


def test_profiles_naming_unknown_quantities_are_refused_up_front() -> None:
    profile = unplayable("tariff_index")
    meter = Meter(MeterState(serial="x", clock=datetime(2026, 1, 1)), prepaid=False)
    with pytest.raises(SimulatorError, match="cannot produce 'tariff_index'"):
        RegisterImage(profile, meter)
