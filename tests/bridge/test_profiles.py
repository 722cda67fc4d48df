"""Device profiles load, and every inconsistency is refused with a ProfileError naming the problem."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from gateway_bridge.profiles import (
    KNOWN_SCALES,
    KNOWN_UNITS,
    REGISTER_TYPES,
    ProfileError,
    available_models,
    load_profile,
    load_profile_file,
    parse_profile,
)

PACKAGED = ["ACR", "DDSY1352", "DTSF", "DTSY1352"]


def test_every_packaged_profile_loads() -> None:
    assert available_models() == PACKAGED
    for model in PACKAGED:
        profile = load_profile(model)
        assert profile.model == model
        assert profile.read_plan, "every profile has a default read plan"


@pytest.mark.parametrize("name", ["dtsy1352", "DTSY1352", " dtsy1352 "])
def test_lookup_by_model_or_file_stem_in_any_case(name: str) -> None:
    assert load_profile(name).model == "DTSY1352"
    assert load_profile("acr_multifunction").model == "ACR"


def test_unknown_model_names_the_known_ones() -> None:
    with pytest.raises(ProfileError, match=r"unknown meter model 'XYZ'.*DTSY1352"):
        load_profile("XYZ")


def test_entries_are_well_formed_and_marked() -> None:
    for model in PACKAGED:
        for entry in load_profile(model).entries:
            assert entry.count == REGISTER_TYPES[entry.type]
            assert str(entry.scale) in KNOWN_SCALES and entry.unit in KNOWN_UNITS
            assert entry.status in {"confirmed", "assumed"}


def test_dtsy1352_matches_meter_md() -> None:
    profile = load_profile("DTSY1352")
    total = profile.entry("energy_total")
    assert (total.address, total.type, total.scale, total.unit, total.status) == (
        0x0000, "UINT32", Decimal("0.01"), "kWh", "confirmed")
    assert profile.entry("active_power").type == "INT16"
    remaining = profile.entry("remaining_amount")
    assert (remaining.address, remaining.type, remaining.status) == (0x0100, "INT32", "assumed")
    assert profile.entry("price_valley").address == 0x0116
    purchase = profile.commands["purchase"]
    assert (purchase.address, purchase.count, purchase.confirms) == (0x0120, 3, "purchase_count")
    refund = profile.commands["refund"]
    assert (refund.address, refund.count) == (0x0124, 3)
    assert profile.entry("control_mode").values == {0: "prepaid control", 1: "keep power", 2: "forced trip"}
    assert profile.entry("status_bits").bits[3] == "relay opened by overload"


def test_plain_meters_have_energy_and_no_commands() -> None:
    for model in ("ACR", "DTSF"):
        profile = load_profile(model)
        assert not profile.prepaid and not profile.commands
        assert profile.entry("energy_total").unit == "kWh"
    assert {"energy_sharp", "energy_peak", "energy_flat", "energy_valley"} <= {
        e.name for e in load_profile("DTSF").entries}
    assert {"voltage_a", "current_b", "active_power_c"} <= {e.name for e in load_profile("ACR").entries}


# ---------------------------------------------------------------------------------------------------
# Validation: start from a valid profile and break one thing at a time.


def raw() -> dict[str, Any]:
    text = (resources.files("gateway_bridge") / "profiles" / "dtsy1352.json").read_text(encoding="utf-8")
    return dict(json.loads(text))


def entry_named(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(e for e in data["entries"] if e["name"] == name)


def broken(change: Any) -> dict[str, Any]:
    data = copy.deepcopy(raw())
    change(data)
    return data


CASES = {
    "type vs count": (lambda d: entry_named(d, "voltage").update(count=2), "UINT16 takes 1 register"),
    "overlap": (lambda d: entry_named(d, "voltage").update(address="0x000A"), "overlaps"),
    "unknown scale": (lambda d: entry_named(d, "voltage").update(scale="0.5"), "scale '0.5'"),
    "float scale": (lambda d: entry_named(d, "voltage").update(scale=0.1), "scale 0.1"),
    "unknown unit": (lambda d: entry_named(d, "voltage").update(unit="volts"), "unit 'volts'"),
    "no status": (lambda d: entry_named(d, "voltage").pop("status"), "missing field"),
    "bad status": (lambda d: entry_named(d, "voltage").update(status="likely"), "status 'likely'"),
    "bad access": (lambda d: entry_named(d, "voltage").update(access="X"), "access 'X'"),
    "bad type": (lambda d: entry_named(d, "voltage").update(type="FLOAT32"), "type must be one of"),
    "typo key": (lambda d: entry_named(d, "voltage").update(sacle="0.1"), "unknown field"),
    "bad address": (lambda d: entry_named(d, "voltage").update(address="0xZZ"), "not a hex number"),
    "past 0xFFFF": (lambda d: entry_named(d, "clock_second").update(address="0xFFFF", type="UINT32", count=2),
                    "past the last Modbus address"),
    "duplicate name": (lambda d: entry_named(d, "reserved_000e").update(name="voltage"), "used twice"),
    "command gap": (lambda d: d["commands"]["purchase"].update(
        entries=["purchase_command_amount", "refund_command_count"]), "contiguous"),
    "command read-only": (lambda d: d["commands"]["purchase"].update(entries=["remaining_amount"]), "writable"),
    "plan write-only": (lambda d: d["read_plan"].append("purchase_command_amount"), "not a readable entry"),
    "bad kind": (lambda d: d.update(kind="postpaid"), "kind must be"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_validation_refuses(case: str) -> None:
    change, message = CASES[case]
    with pytest.raises(ProfileError, match=message):
        parse_profile(broken(change), source="test.json")


def test_error_names_source_and_entry() -> None:
    with pytest.raises(ProfileError, match=r"^test.json \(DTSY1352\): entry 'voltage'"):
        parse_profile(broken(lambda d: entry_named(d, "voltage").update(unit="volts")), source="test.json")


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    with pytest.raises(ProfileError, match=r"bad\.json: cannot read profile"):
        load_profile_file(path)
