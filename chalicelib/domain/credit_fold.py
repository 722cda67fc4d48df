"""Folding a meter's credit on from where the last fold stopped (the hourly reconciliation's checkpoint): entries
are immutable, so a fold that agreed once need not read them again."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib.domain.ledger import Entry, meter_credit

# Entries are ordered by posting time, but one posted at T may commit a little after T (a retry re-judging after a
# lost race; a Lambda runs at most 15 minutes). A fold only moves its checkpoint past entries older than this, so no
# entry can still arrive behind it.
SETTLED_AFTER = timedelta(minutes=20)


@dataclass(frozen=True)
class FoldCheckpoint:
    """Where a meter's credit fold stopped: the last entry folded, in posting order, and the meter-credit ledger
    account's balance through it (negative when the meter holds credit)."""

    through_at: datetime
    through_entry_id: str
    balance_minor: int


def _order(entry: Entry) -> tuple[datetime, str]:
    return entry.created_at, entry.entry_id


def entries_after(checkpoint: FoldCheckpoint | None, entries: Iterable[Entry]) -> list[Entry]:
    """The entries a fold from ``checkpoint`` has not seen yet, in posting order."""
    ordered = sorted(entries, key=_order)
    if checkpoint is None:
        return ordered
    mark = (checkpoint.through_at, checkpoint.through_entry_id)
    return [e for e in ordered if _order(e) > mark]


def credit_balance(meter_id: str, checkpoint: FoldCheckpoint | None, new_entries: Iterable[Entry]) -> int:
    """The meter-credit account's balance: the checkpoint's, plus what the entries since it post to that account."""
    account = meter_credit(meter_id)
    start = checkpoint.balance_minor if checkpoint else 0
    return start + sum(p.amount_minor for e in new_entries for p in e.postings if p.account == account)


def advanced(meter_id: str, checkpoint: FoldCheckpoint | None, new_entries: Sequence[Entry],
             now: datetime) -> FoldCheckpoint | None:
    """The checkpoint moved past the settled entries among ``new_entries`` (posting order); None when none are."""
    settled = [e for e in new_entries if e.created_at <= now - SETTLED_AFTER]
    if not settled:
        return None
    last = settled[-1]
    return FoldCheckpoint(last.created_at, last.entry_id, credit_balance(meter_id, checkpoint, settled))
