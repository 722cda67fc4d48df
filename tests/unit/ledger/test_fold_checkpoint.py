"""Folding a meter's credit on from a checkpoint gives what folding its whole history gives; the checkpoint moves
only past entries old enough that nothing can still commit behind them."""

from __future__ import annotations

from datetime import timedelta

from chalicelib.domain import accounts
from chalicelib.domain.credit_fold import SETTLED_AFTER, FoldCheckpoint, advanced, credit_balance, entries_after
from chalicelib.domain.ledger import Entry, balances, meter_credit
from tests.unit.ledger.builders import POLICY, T0, cloud_billed, open_shop, request


def _history() -> list[Entry]:
    shop = open_shop(cloud_billed("m1"))
    sale = accounts.sell(shop, "m1", accounts.SaleQuantity(50_000), balance_minor=0, policy=POLICY,
                         request=request("sale-1"))
    charges = [accounts.charge(shop, "m1", 65 + n, energy_centi_kwh=100,
                               interval_start=T0 + timedelta(minutes=30 * n),
                               created_at=sale.created_at + timedelta(minutes=30 * (n + 1))) for n in range(6)]
    return [sale, *charges]


def test_folding_on_from_any_checkpoint_agrees_with_folding_everything() -> None:
    history = _history()
    whole = balances(history).by_account[meter_credit("m1")]
    assert credit_balance("m1", None, entries_after(None, reversed(history))) == whole  # any order read
    for cut in range(1, len(history)):
        last = history[cut - 1]
        through = balances(history[:cut]).by_account[meter_credit("m1")]
        checkpoint = FoldCheckpoint(last.created_at, last.entry_id, through)
        assert entries_after(checkpoint, history) == history[cut:]
        assert credit_balance("m1", checkpoint, entries_after(checkpoint, history)) == whole


def test_the_checkpoint_moves_only_past_settled_entries() -> None:
    history = _history()
    newest = history[-1].created_at
    nothing_settled = advanced("m1", None, history, history[0].created_at + SETTLED_AFTER - timedelta(seconds=1))
    assert nothing_settled is None

    # An hour after the fourth entry, the first four are settled (entries are 30 minutes apart from the sale on).
    moved = advanced("m1", None, history, history[3].created_at + SETTLED_AFTER + timedelta(minutes=5))
    assert moved is not None
    assert (moved.through_at, moved.through_entry_id) == (history[3].created_at, history[3].entry_id)
    assert moved.balance_minor == balances(history[:4]).by_account[meter_credit("m1")]

    again = advanced("m1", moved, entries_after(moved, history), newest + SETTLED_AFTER)
    assert again is not None and again.through_entry_id == history[-1].entry_id
    assert again.balance_minor == balances(history).by_account[meter_credit("m1")]
