"""Site configuration, building meters from it, and saved state."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from gateway_bridge.simulator.config import ConfigError, load_config, parse_config
from gateway_bridge.simulator.meter import Mode
from gateway_bridge.simulator.site import Site
from gateway_bridge.simulator.state import StateError, dump_meter, load_state, restore_meter, snapshot

EXAMPLE = Path(__file__).resolve().parents[2] / "gateway-bridge" / "examples" / "site.toml"


def minimal(**meter: Any) -> dict[str, Any]:
    return {"buses": [{"name": "b", "transport": "rtutcp", "meters": [{"address": 1, "model": "DTSY1352", **meter}]}]}


def test_example_config_is_valid() -> None:
    config = load_config(EXAMPLE)
    assert [b.name for b in config.buses] == ["ground-floor", "first-floor", "plant-room"]
    ground = config.buses[0]
    assert len(ground.meters) == 14 and ground.meters[0].serial == "RP-GF-001"
    assert ground.meters[0].remaining_amount == D("150.00") and isinstance(ground.meters[0].remaining_amount, D)
    assert config.buses[1].line.parity == "E" and config.buses[1].meters[-1].fault.drop_share == 0.2
    assert config.clock == datetime(2026, 3, 2, 7, 30)


def test_example_site_builds_its_meters() -> None:
    site = Site(load_config(EXAMPLE))
    meters = dict(((bus, sim.address), sim) for bus, sim in site.meters())
    assert len(meters) == 14 + 9 + 4
    shop = meters[("ground-floor", 20)]
    assert shop.meter.remaining_amount == D("12.00") and shop.meter.state.purchase_count == 4
    assert shop.meter.state.prices["sharp"] == D("1.2000")
    check_meter = meters[("ground-floor", 31)]
    assert not check_meter.meter.prepaid and check_meter.meter.energy_kwh() == D("120345.67")


@pytest.mark.parametrize(("data", "message"), [
    ({}, "buses: give at least one"),
    ({"buses": [{"name": "b", "transport": "rtutcp", "meters": []}]}, "meters: give at least one"),
    (minimal(address=0), "address: must be a whole number 1..247"),
    (minimal(count=33), "count: must be a whole number 1..32"),
    (minimal(address=240, count=10), "run past 247"),
    (minimal(remaining_amount="ten"), "is not a number"),
    (minimal(prices={"cheap": 1}), "unknown key(s) cheap"),
    (minimal(control_mode=3), "control_mode: must be a whole number 0..2"),
    (minimal(tou={"25:00": "flat"}), "is not HH:MM"),
    (minimal(fault={"drop_share": 2}), "out of range"),
    ({"buses": [{"name": "b", "transport": "tcp", "baud": 300, "meters": [{"address": 1, "model": "ACR"}]}]},
     "baud: must be a whole number 1200..38400"),
    ({"buses": [{"name": "b", "transport": "tcp", "parity": "O", "meters": [{"address": 1, "model": "ACR"}]}]},
     "parity must be 'N' or 'E'"),
    ({"buses": [{"name": "b", "transport": "tcp", "meters": [{"address": 1, "model": "ACR"},
                                                              {"address": 1, "model": "ACR"}]}]}, "used twice"),
    ({"buses": [{"name": "b", "transport": "tcp", "meters": [{"address": 1, "count": 32, "model": "ACR"},
                                                              {"address": 40, "model": "ACR"}]}]}, "at most 32"),
    ({"buses": [{"name": "b", "transport": "tcp", "port": 5020, "meters": [{"address": 1, "model": "ACR"}]},
                {"name": "c", "transport": "tcp", "port": 5020, "meters": [{"address": 1, "model": "ACR"}]}]},
     "host:port"),
])
def test_config_errors_name_the_key(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert message in str(caught.value)


def test_state_round_trip(tmp_path: Path) -> None:
    site = Site(parse_config(minimal(remaining_amount="12.34", load_kw="2")), state_path=tmp_path / "s.json")
    _, sim = next(site.meters())
    sim.meter.purchase(D("10.00"), 1)
    sim.meter.set_mode(Mode.KEEP_POWER)
    sim.meter.advance(D("1234.567"))
    site.save()
    saved = load_state(tmp_path / "s.json")["b/1"]
    assert json.loads(json.dumps(saved)) == saved and saved["balance"] == str(sim.meter.state.balance)

    again = Site(parse_config(minimal()), state_path=tmp_path / "s.json")
    _, restored = next(again.meters())
    assert again.restored == 1 and restored.meter.state == sim.meter.state


def test_restore_refuses_another_model_or_a_broken_file(tmp_path: Path) -> None:
    site = Site(parse_config(minimal()))
    _, sim = next(site.meters())
    data = dump_meter(sim)
    with pytest.raises(StateError, match="is not 'DTSY1352'"):
        restore_meter(sim, {**data, "model": "ACR"})
    with pytest.raises(StateError, match="malformed"):
        restore_meter(sim, {**data, "balance": "lots"})
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(StateError, match="cannot read"):
        load_state(broken)
    assert load_state(tmp_path / "missing.json") == {}


def test_snapshot_is_json_and_readable() -> None:
    site = Site(parse_config(minimal(remaining_amount="-1.00")))
    bus, sim = next(site.meters())
    view = snapshot(bus, sim)
    assert json.loads(json.dumps(view)) == view
    assert (view["remaining_amount"], view["relay"], view["status"]) == (
        "-1.00", "open", ["ALARM_1", "ALARM_2", "EXHAUSTED"])
