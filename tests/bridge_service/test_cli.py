"""The command line: configuration errors, check-config, scan over RTU-over-TCP and a serial pty."""

from __future__ import annotations

import os
from pathlib import Path

import gateway_bridge.cli as cli
import pytest
from gateway_bridge.protocol import KeyRing, generate_key

from .conftest import Stack, write_keyring
from .fake_cloud import FakeCloud

GOOD = """
cloud_url = "wss://bridge.example.com/prod"
bridge_id = "op-1.main"
credential = "a-long-enough-credential"
site_id = "site-1"
state_dir = "state"
{extra}
[[collectors]]
id = "gf"
transport = "rtutcp"
host = "192.0.2.10"
port = 502
keyring = "gf.json"
{collector}
"""


def secret(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o600)


def write_config(folder: Path, extra: str = "", collector: str = "", text: str | None = None) -> Path:
    ring = folder / "gf.json"
    if not ring.exists():
        write_keyring(ring, KeyRing(current=generate_key(1)))
    path = folder / "bridge.toml"
    path.write_text(text if text is not None else GOOD.format(extra=extra, collector=collector))
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as leaving:
        raise SystemExit(cli.main(list(argv)))
    captured = capsys.readouterr()
    return int(leaving.value.code or 0), captured.out, captured.err


def test_check_config_accepts_the_example_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "check-config", "--config", str(write_config(tmp_path)))
    assert (code, err) == (0, "")
    assert "config OK: bridge op-1.main" in out and "collector gf: rtutcp 192.0.2.10:502, 9600 8N1" in out
    assert "buffer: up to 47520 result sets (30 days every 60 s)" in out


def test_the_shipped_example_config_is_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (Path(__file__).parents[2] / "gateway-bridge" / "examples" / "bridge.toml").read_text()
    text = text.replace("/etc/voltvend-bridge/", "").replace("/var/lib/voltvend-bridge", "state")
    for name in ("ground-floor", "first-floor", "plant-room"):
        write_keyring(tmp_path / "keys" / f"{name}.json", KeyRing(current=generate_key(1)))
    secret(tmp_path / "credential", "a-long-enough-credential\n")
    code, out, err = run_cli(capsys, "check-config", "--config", str(write_config(tmp_path, text=text)))
    assert (code, err) == (0, ""), err
    assert out.count("  collector ") == 3


BASE = GOOD.format(extra="", collector="")
BAD_CONFIGS = [
    ({"extra": 'heartbeat_s = 600'}, "heartbeat_s must be an integer 1..599"),
    ({"extra": 'planned_reconnect_s = 7200'}, "planned_reconnect_s must be an integer 10..7199"),
    ({"extra": '[buffer]\ndays = 10'}, "buffer.days must be an integer 30..3650"),
    ({"extra": '[buffer]\ninterval_s = 60\nmax_rows = 1000'}, "buffer.max_rows = 1000 holds less than"),
    ({"extra": 'colour = "blue"'}, "unknown key 'colour'"),
    ({"collector": 'device = "/dev/ttyUSB0"'}, "device is only for transport serial"),
    ({"collector": 'parity = "O"'}, "collectors[0].parity must be one of N, E"),
    ({"collector": 'baud = 115200'}, "baud must be 1200..38400"),
    ({"collector": 'request_timeout_ms = 5'}, "request_timeout_ms must be an integer 20..60000"),
    ({"extra": 'credential_file = "secret"'}, "exactly one of credential or credential_file"),
    ({"text": BASE.replace("wss://bridge", "https://bridge")}, "cloud_url must be a ws:// or wss:// URL"),
    ({"text": BASE.replace('transport = "rtutcp"', 'transport = "serial"')}, "a serial collector takes device"),
    ({"text": BASE.replace("[[collectors]]", "[[collectors]]\nid = 'x'\n[[collectors]]").replace('id = "gf"', "")},
     "collectors[0].transport must be one of"),
    ({"text": BASE + '[[collectors]]\nid = "gf"\ntransport = "tcp"\nhost = "h"\nport = 1\nkeyring = "gf.json"\n'},
     "id 'gf' appears more than once"),
    ({"text": BASE.replace('keyring = "gf.json"', 'keyring = "missing.json"')}, "cannot read"),
    ({"text": "this is = = not toml"}, "not valid TOML"),
]


@pytest.mark.parametrize(("change", "message"), BAD_CONFIGS)
def test_bad_config_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict[str, str],
                                      message: str) -> None:
    config = write_config(tmp_path, **change)
    for command in ("check-config", "run", "status"):
        code, out, err = run_cli(capsys, command, "--config", str(config))
        assert code == 2 and out == ""
        assert err.count("\n") == 1 and err.startswith("error: ") and message in err, err
        assert "Traceback" not in err


def test_secrets_readable_by_others_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    os.chmod(tmp_path / "gf.json", 0o644)
    code, _, err = run_cli(capsys, "check-config", "--config", str(config))
    assert code == 2 and "readable by others (chmod 600" in err


@pytest.mark.parametrize("argv", [[], ["fly"], ["run"], ["scan", "--config", "x.toml"],
                                  ["status", "--config", "x.toml", "--verbose"]])
def test_bad_arguments_are_one_error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, _out, err = run_cli(capsys, *argv)
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ")


def test_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "check-config", "--config", str(tmp_path / "nope.toml"))
    assert code == 2 and err.startswith("error: cannot read") and err.count("\n") == 1


def test_scan_range_and_bus_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(write_config(tmp_path))
    assert run_cli(capsys, "scan", "--config", config, "--bus", "gf", "--from", "0")[0] == 2
    assert run_cli(capsys, "scan", "--config", config, "--bus", "gf", "--from", "9", "--to", "3")[0] == 2
    code, _, err = run_cli(capsys, "scan", "--config", config, "--bus", "nope")
    assert code == 2 and "no collector 'nope' (configured: gf)" in err


def test_status_when_the_bridge_never_ran(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "status", "--config", str(write_config(tmp_path)))
    assert code == 3 and out.startswith("not running")


SCAN_SITE = """
[site]
name = "scan"
""" + "".join(f"""
[[buses]]
name = "{transport}"
transport = "{transport}"
baud = 38400
turnaround_ms = 0
emulate_wire = false
[[buses.meters]]
address = 2
model = "ACR"
[[buses.meters]]
address = 5
count = 2
model = "ACR"
[[buses.meters]]
address = 17
model = "DTSY1352"
prices = {{ valley = 0.3000, flat = 0.6000, peak = 0.9000, sharp = 1.2000 }}
""" for transport in ("rtutcp", "serial"))


def test_scan_finds_exactly_the_configured_addresses(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    sim = stack.simulator(SCAN_SITE)
    cloud: FakeCloud = stack.cloud(["rtutcp", "serial"])
    config = stack.config(cloud, [sim.bus("rtutcp"), sim.bus("serial")], timeout_ms=40)
    for bus in ("rtutcp", "serial"):
        code, out, err = run_cli(capsys, "scan", "--config", str(config), "--bus", bus, "--from", "1", "--to", "24")
        assert (code, err) == (0, "")
        assert out.splitlines()[-1] == "found 4: 2 5 6 17", out
        assert "address 17: registers" in out and "address 2: registers" in out
