"""Decoding bus runs: which meters a run speaks of (known before decoding, so their states can be fetched
meanwhile), and the compiled block decoders agreeing with the register codec."""

from __future__ import annotations

from decimal import Decimal

import pytest
from gateway_bridge.codec import decode_block
from gateway_bridge.protocol import BatchResult, TxnResult
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.tenancy import BillingMode, Meter
from chalicelib.services.reading_plan import (
    block_layout,
    blocks_for,
    decode_registers,
    decode_result,
    entries_in,
    meters_in,
    profile_for,
)
from tests.support.bus_runs import bus_run


def _meter(meter_id: str, address: int) -> Meter:
    return Meter("op", "site", meter_id, f"S{address}", "DTSY1352", "bus0", address, "u1", BillingMode.PREPAID_METER)


def test_meters_in_a_run_are_the_decoded_ones_in_order() -> None:
    meters = [_meter("m7", 7), _meter("m2", 2), _meter("m5", 5)]
    run = bus_run(meters, "c1", "bus0", 1_700_000_000_000, lambda m: {"remaining_amount": Decimal("12.50")})
    known = {m.meter_id: m for m in meters}

    assert meters_in(run, known) == ["m7", "m2", "m5"]
    assert meters_in(run, known) == [read.meter_id for read in decode_result(run, known)]


def test_unknown_meters_and_odd_transaction_ids_are_left_out() -> None:
    known = {"m1": _meter("m1", 1)}
    run = BatchResult("c1", "bus0", (TxnResult("ghost@0000", None, None, 1, 1), TxnResult("m1#w0010", None, None, 1, 1),
                                     TxnResult("m1@0000", None, None, 1, 1), TxnResult("m1@0100", None, None, 1, 1)))

    assert meters_in(run, known) == ["m1"]
    assert meters_in(run, {}) == []


# -- the compiled block decoders give what the register codec gives ----------------------------------

@pytest.mark.parametrize("model", ["DTSY1352", "DDSY1352", "DTSF", "ACR"])
@given(data=st.data())
@settings(max_examples=200, deadline=None)
def test_a_compiled_block_decodes_as_the_codec_does(model: str, data: st.DataObject) -> None:
    profile = profile_for(model)
    for block in blocks_for(model):
        words = data.draw(st.lists(st.integers(0, 0xFFFF), min_size=block.count, max_size=block.count))
        register_bytes = b"".join(w.to_bytes(2, "big") for w in words)

        decoded = decode_registers(block_layout(model, block.address, block.count), register_bytes)

        assert decoded == decode_block(profile, block.address, words)
        # Exact to the digit: the same Decimal, trailing zeros and all, or the same int.
        assert {k: (type(v), str(v)) for k, v in decoded.items()} == {
            k: (type(v), str(v)) for k, v in decode_block(profile, block.address, words).items()}


def test_a_bad_frame_is_a_problem_on_the_reading_not_values() -> None:
    meter = _meter("m1", 1)
    good = bus_run([meter], "c1", "bus0", 1_700_000_000_000, lambda m: {"remaining_amount": Decimal("12.50")})
    first = good.results[0]
    corrupted = first.resp[:-1] + bytes([first.resp[-1] ^ 0xFF])  # the CRC no longer matches
    run = BatchResult("c1", "bus0", (TxnResult(first.id, corrupted, None, first.t0_ms, first.t1_ms), *good.results[1:]))

    [read] = decode_result(run, {"m1": meter})
    [whole] = decode_result(good, {"m1": meter})

    first_block = {e.name for e in entries_in("DTSY1352", *_block_of(first.id))}
    assert read.problems == [f"{first.id}: response CRC mismatch from device 1"]
    assert first_block and not first_block & read.values.keys()
    assert read.values == {k: v for k, v in whole.values.items() if k not in first_block}


def _block_of(txn_id: str) -> tuple[int, int]:
    start = int(txn_id.partition("@")[2], 16)
    return start, next(b.count for b in blocks_for("DTSY1352") if b.address == start)
