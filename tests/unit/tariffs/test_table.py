"""The compiled month table prices exactly like the general pricer, reading by reading."""

from __future__ import annotations

from datetime import datetime, tzinfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.tariffs import (
    BillingMonth,
    ReadingsCost,
    TariffHistory,
    TariffPricer,
    TariffTable,
    epoch_seconds,
    price_interval,
)
from tests.unit.tariffs.sample_tariffs import (
    CHANGED_HISTORY,
    LADDER_CHANGED_HISTORY,
    LONDON,
    LONDON_HISTORY,
    SHANGHAI,
    SHANGHAI_HISTORY,
    london,
    shanghai,
)

MARCH = BillingMonth(2024, 3)
MARCH_TABLE = TariffTable.compile(CHANGED_HISTORY, SHANGHAI, MARCH)


def general_cost(history: TariffHistory, tz: tzinfo, start_s: int, end_s: int, energy: int, before: int) -> int:
    start, end = datetime.fromtimestamp(start_s, tz), datetime.fromtimestamp(end_s, tz)
    return price_interval(history, tz, start, end, energy, before).cost_micro


@pytest.mark.parametrize(
    ("start", "end", "energy", "before", "expected"),
    [
        # peak 12:00-12:30, 250 × 10000
        (shanghai(2024, 3, 5, 12), shanghai(2024, 3, 5, 12, 30), 250, 0, 2_500_000),
        # flat 150 × 6500 + sharp 150 × 12000 (see the worked examples)
        (shanghai(2024, 3, 5, 9, 45), shanghai(2024, 3, 5, 10, 15), 300, 0, 2_775_000),
        # 43 × 6500 + 57 × 12000
        (shanghai(2024, 3, 5, 9, 57), shanghai(2024, 3, 5, 10, 4), 100, 0, 963_500),
        # tier bound inside: 100 × 10000 + 400 × 10500
        (shanghai(2024, 3, 5, 12), shanghai(2024, 3, 5, 12, 30), 500, 19_900, 5_200_000),
        # tariff change inside: 300 × 10500 + 300 × 11500
        (shanghai(2024, 3, 15, 11, 40), shanghai(2024, 3, 15, 12, 20), 600, 30_000, 6_600_000),
        # three segments (flat, sharp, peak): 09:30-11:30 → 30/60/30 min of 1200: 300 × 6500 + 600 × 12000 + 300 × 10000
        (shanghai(2024, 3, 5, 9, 30), shanghai(2024, 3, 5, 11, 30), 1200, 0, 1_950_000 + 7_200_000 + 3_000_000),
    ],
)
def test_worked_examples_through_the_table(
    start: datetime, end: datetime, energy: int, before: int, expected: int
) -> None:
    cost = MARCH_TABLE.cost_interval(epoch_seconds(start), epoch_seconds(end), energy, before)
    assert cost == expected


def test_a_series_carries_the_month_energy_from_reading_to_reading() -> None:
    # three half hours of peak at 100 kWh each from 150 kWh: 5_000 in tier 1, then tier 2, then tier 3 from 400 kWh
    # 5_000 × 10000 + 5_000 × 10500 | 10_000 × 10500 | 5_000 × 10500 + 5_000 × 13000
    noon = epoch_seconds(shanghai(2024, 3, 5, 12))
    result = MARCH_TABLE.cost_series([noon + 1800 * i for i in range(4)], [10_000] * 3, 15_000)
    assert result.cost_micro == 50_000_000 + 52_500_000 + 105_000_000 + 52_500_000 + 65_000_000
    assert result.month_energy_after == 45_000
    assert result.multi_switch_readings == 0


def test_a_reading_across_several_switches_and_the_tariff_change() -> None:
    # 15 March 09:00-13:00, one reading of 2400 across flat (09-10), sharp (10-11), peak A (11-12), peak B (12-13):
    # 600 each; month at 19_800 so the first 200 are tier 1 and the rest tier 2 (+500 under both versions)
    # rates: 600 × 6500 + 600 × 12000 + 600 × 10000 + 600 × 11000 = 3_900_000 + 7_200_000 + 6_000_000 + 6_600_000
    # ladder: 2_200 × 500 = 1_100_000; total 24_800_000
    start, end = epoch_seconds(shanghai(2024, 3, 15, 9)), epoch_seconds(shanghai(2024, 3, 15, 13))
    result = MARCH_TABLE.cost_series([start - 1800, start, end], [0, 2400], 19_800)
    assert result.cost_micro == 24_800_000
    assert result.multi_switch_readings == 1
    assert general_cost(CHANGED_HISTORY, SHANGHAI, start, end, 2400, 19_800) == 24_800_000


def test_a_new_ladder_mid_month_prices_the_energy_after_the_change() -> None:
    # month at 14_000 when B (tiers at 150 / 300 kWh) takes effect at 12:00; 11:30-12:30 peak, 2000 split 1000 / 1000
    # before: 1000 under A at tier 1 (A's first bound is 200 kWh): 1000 × 10000
    # after: month goes 15_000 → 16_000, B's tier 2: 1000 × (11000 + 800)
    table = TariffTable.compile(LADDER_CHANGED_HISTORY, SHANGHAI, MARCH)
    start, end = epoch_seconds(shanghai(2024, 3, 15, 11, 30)), epoch_seconds(shanghai(2024, 3, 15, 12, 30))
    assert table.cost_interval(start, end, 2000, 14_000) == 10_000_000 + 11_800_000
    assert general_cost(LADDER_CHANGED_HISTORY, SHANGHAI, start, end, 2000, 14_000) == 21_800_000


def test_repeated_reads_at_a_tariff_change_are_priced_under_the_new_version() -> None:
    # 15 March 12:00 is peak under B: 100 × 11000 whether the series is just that instant or runs on
    change = epoch_seconds(shanghai(2024, 3, 15, 12))
    assert MARCH_TABLE.cost_series([change, change], [100], 0).cost_micro == 1_100_000
    assert MARCH_TABLE.cost_series([change - 60, change, change], [0, 100], 0).cost_micro == 1_100_000
    assert MARCH_TABLE.cost_series([change - 60, change, change, change + 60], [0, 100, 0], 0).cost_micro == 1_100_000
    assert general_cost(CHANGED_HISTORY, SHANGHAI, change, change, 100, 0) == 1_100_000


def test_table_refuses_what_it_cannot_price() -> None:
    end_of_month = epoch_seconds(shanghai(2024, 4, 1))
    with pytest.raises(ValidationError, match="price_interval"):
        MARCH_TABLE.cost_interval(end_of_month - 60, end_of_month + 60, 10, 0)
    with pytest.raises(ValidationError, match="must not go back"):
        MARCH_TABLE.cost_interval(end_of_month - 60, end_of_month - 120, 10, 0)
    with pytest.raises(ValidationError, match="repeated read at the end of 2024-03 is in the next month"):
        MARCH_TABLE.cost_series([end_of_month - 60, end_of_month, end_of_month], [1, 2], 0)
    with pytest.raises(ValidationError, match="negative"):
        MARCH_TABLE.cost_series([end_of_month - 60, end_of_month], [-1], 0)
    with pytest.raises(ValidationError, match="one more read time"):
        MARCH_TABLE.cost_series([end_of_month - 60], [5], 0)
    for start in (end_of_month - 60, end_of_month - 7200):
        with pytest.raises(ValidationError, match="integer"):
            MARCH_TABLE.cost_series([start, start + 30], [1.5], 0)  # type: ignore[list-item]
    with pytest.raises(ValidationError, match="no tariff in force in 2023-12"):
        TariffTable.compile(SHANGHAI_HISTORY, SHANGHAI, BillingMonth(2023, 12))
    assert MARCH_TABLE.cost_series([end_of_month], [], 7) == ReadingsCost(0, 7, 0)


def test_a_month_starting_mid_way_is_covered_from_the_first_version() -> None:
    history = TariffHistory(CHANGED_HISTORY.versions[1:])
    table = TariffTable.compile(history, SHANGHAI, MARCH)
    assert table.covers_from_s == epoch_seconds(shanghai(2024, 3, 15, 12))
    assert not table.covers(epoch_seconds(shanghai(2024, 3, 15, 11)), epoch_seconds(shanghai(2024, 3, 15, 13)))


def test_pricer_crosses_month_ends_through_the_general_pricer() -> None:
    pricer = TariffPricer(SHANGHAI_HISTORY, SHANGHAI)
    start, end = epoch_seconds(shanghai(2024, 3, 31, 23, 30)), epoch_seconds(shanghai(2024, 4, 1, 0, 30))
    # see test_month_rollover_resets_the_ladder: 200 × 6000 in March, 200 × 3000 in April
    assert pricer.cost_by_month(start, end, 400, 45_000) == ((MARCH, 1_200_000), (BillingMonth(2024, 4), 600_000))
    inside = pricer.cost_by_month(start - 1800, start, 100, 0)  # 23:00-23:30 valley
    assert inside == ((MARCH, 100 * 3000),)


# One meter's series: reads 0 s (a repeated read) to 7 h apart, often on the hour where the switches are
series_strategy = st.lists(
    st.tuples(st.one_of(st.sampled_from([0, 1800, 3600]), st.integers(1, 7 * 3600)), st.integers(0, 3_000)),
    min_size=1,
    max_size=40,
)
starts_strategy = st.one_of(st.integers(0, 30 * 24).map(lambda hours: hours * 3600), st.integers(0, 30 * 86400))


def lay_out(first_read_s: int, month_end_s: int, shape: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    read_at, energies = [first_read_s], []
    for gap, energy in shape:
        if read_at[-1] + gap > month_end_s or read_at[-1] == month_end_s:
            break  # past the month, or a repeated read at its very end (which is the next month's)
        read_at.append(read_at[-1] + gap)
        energies.append(energy)
    return read_at, energies


@pytest.mark.parametrize(
    ("history", "tz", "month"),
    [
        (CHANGED_HISTORY, SHANGHAI, MARCH),
        (LADDER_CHANGED_HISTORY, SHANGHAI, MARCH),
        (LONDON_HISTORY, LONDON, MARCH),  # 23-hour day on the 31st
        (LONDON_HISTORY, LONDON, BillingMonth(2024, 10)),  # 25-hour day on the 27th
    ],
)
@settings(max_examples=80, deadline=None)
@given(shape=series_strategy, before=st.integers(0, 45_000), late_start=starts_strategy)
def test_table_equals_the_general_pricer(
    history: TariffHistory,
    tz: tzinfo,
    month: BillingMonth,
    shape: list[tuple[int, int]],
    before: int,
    late_start: int,
) -> None:
    table = TariffTable.compile(history, tz, month)
    first_read = min(table.covers_from_s + late_start, table.covers_until_s - 1)
    read_at, energies = lay_out(first_read, table.covers_until_s, shape)
    expected, month_energy = 0, before
    for start, end, energy in zip(read_at, read_at[1:], energies, strict=False):
        expected += general_cost(history, tz, start, end, energy, month_energy)
        month_energy += energy
    result = table.cost_series(read_at, energies, before)
    assert (result.cost_micro, result.month_energy_after) == (expected, month_energy)


def test_london_tables_know_their_month_bounds() -> None:
    table = TariffTable.compile(LONDON_HISTORY, LONDON, MARCH)
    assert table.covers_from_s == epoch_seconds(london(2024, 3, 1))
    assert table.covers_until_s == epoch_seconds(london(2024, 4, 1))
    assert table.covers_until_s - table.covers_from_s == 31 * 86400 - 3600
