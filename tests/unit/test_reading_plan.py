"""Which meters a bus run speaks of, known before it is decoded (so their states can be fetched meanwhile)."""

from __future__ import annotations

from decimal import Decimal

from gateway_bridge.protocol import BatchResult, TxnResult

from chalicelib.domain.tenancy import BillingMode, Meter
from chalicelib.services.reading_plan import decode_result, meters_in
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
