"""Integer splits that always sum back to what was split."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

from chalicelib.domain.errors import ValidationError


def allocate_largest_remainder(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` (≥ 0) in proportion to ``weights``: everyone gets the floor of their quota and
    the units left over go to the largest remainders, ties to the earlier weight. The shares sum to
    ``total`` exactly. With two weights this is the first quota rounded half up."""
    whole = sum(weights)
    if total < 0 or whole <= 0 or any(weight < 0 for weight in weights):
        raise ValidationError("cannot apportion: need a non-negative total and positive weights")
    shares, remainders = [], []
    for weight in weights:
        share, remainder = divmod(total * weight, whole)
        shares.append(share)
        remainders.append(remainder)
    left_over = total - sum(shares)
    for index in sorted(range(len(weights)), key=lambda i: -remainders[i])[:left_over]:
        shares[index] += 1
    return shares


def split_by_tier(energy: int, month_energy_before: int, upper_bounds: Sequence[int]) -> list[tuple[int, int]]:
    """``energy`` added on top of ``month_energy_before``, cut at the ladder bounds: (tier, energy)
    pairs, tier 1 first, each non-empty. Exact in integers: the cut is where the month reaches a bound."""
    parts = []
    reached = month_energy_before
    left = energy
    while left > 0:
        tier_index = bisect_right(upper_bounds, reached)
        room = upper_bounds[tier_index] - reached if tier_index < len(upper_bounds) else left
        taken = min(left, room)
        parts.append((tier_index + 1, taken))
        reached += taken
        left -= taken
    return parts
