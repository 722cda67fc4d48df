"""A zone with daylight saving: the band follows the wall clock, so a 23-hour day has one valley hour
fewer and a 25-hour day one more; a switch inside the repeated hour happens twice."""

from __future__ import annotations

from chalicelib.domain.tariffs import DailyPlan, Rate, Tariff, TariffHistory, TouSchedule, epoch_seconds, price_interval
from tests.unit.tariffs.sample_tariffs import LONDON, LONDON_HISTORY, LONDON_PRICES, london


def test_spring_forward_day_has_23_hours_and_six_valley_hours() -> None:
    # 31 March 2024: 01:00 GMT becomes 02:00 BST. Valley by the wall clock 00:00-07:00 is
    # 00:00-01:00 GMT (1 h) + 02:00-07:00 BST (5 h) = 6 h; flat 07:00-24:00 = 17 h; 23 h in all.
    # 23 kWh at 1 kWh an hour: valley 600, flat 1700
    # 600 × 1500 + 1700 × 3000 = 900_000 + 5_100_000 = 6_000_000 → 6.00
    start, end = london(2024, 3, 31), london(2024, 4, 1)
    assert epoch_seconds(end) - epoch_seconds(start) == 23 * 3600
    priced = price_interval(LONDON_HISTORY, LONDON, start, end, 2300, 0)
    assert priced.energy_by_rate()[Rate.VALLEY] == 600
    assert priced.energy_by_rate()[Rate.FLAT] == 1700
    assert priced.cost_micro == 6_000_000


def test_fall_back_day_has_25_hours_and_eight_valley_hours() -> None:
    # 27 October 2024: 02:00 BST becomes 01:00 GMT. Valley 00:00-02:00 BST (2 h) + 01:00-07:00 GMT (6 h) = 8 h;
    # flat 17 h; 25 h. 25 kWh: valley 800, flat 1700
    # 800 × 1500 + 1700 × 3000 = 1_200_000 + 5_100_000 = 6_300_000 → 6.30
    start, end = london(2024, 10, 27), london(2024, 10, 28)
    assert epoch_seconds(end) - epoch_seconds(start) == 25 * 3600
    priced = price_interval(LONDON_HISTORY, LONDON, start, end, 2500, 0)
    assert priced.energy_by_rate()[Rate.VALLEY] == 800
    assert priced.cost_micro == 6_300_000


def test_switch_inside_the_repeated_hour_happens_twice() -> None:
    # flat until 01:30, valley from 01:30, flat from 06:00. On 27 October, 00:00 BST to 03:00 GMT (4 real hours):
    # 00:00-01:30 BST flat (1.5 h), 01:30-02:00 BST valley (0.5 h), clocks back to 01:00 GMT,
    # 01:00-01:30 GMT flat again (0.5 h), 01:30-03:00 GMT valley (1.5 h): flat 2 h, valley 2 h
    # 400: flat 200, valley 200 → 200 × 3000 + 200 × 1500 = 600_000 + 300_000 = 900_000
    plan = DailyPlan.of(("00:00", "flat"), ("01:30", "valley"), ("06:00", "flat"))
    history = TariffHistory((Tariff(london(2024, 1, 1), LONDON_PRICES, TouSchedule.year_round(plan)),))
    start, end = london(2024, 10, 27), london(2024, 10, 27, 3)
    priced = price_interval(history, LONDON, start, end, 400, 0)
    assert priced.energy_by_rate() == {Rate.SHARP: 0, Rate.PEAK: 0, Rate.FLAT: 200, Rate.VALLEY: 200}
    assert priced.cost_micro == 900_000


def test_repeated_hour_told_apart_by_fold() -> None:
    # 01:00-01:30 BST (fold 0) and 01:00-01:30 GMT (fold 1) are different half hours, both valley
    first = price_interval(LONDON_HISTORY, LONDON, london(2024, 10, 27, 1), london(2024, 10, 27, 1, 30), 50, 0)
    second = price_interval(
        LONDON_HISTORY, LONDON, london(2024, 10, 27, 1, fold=1), london(2024, 10, 27, 1, 30, fold=1), 50, 0
    )
    assert first.cost_micro == second.cost_micro == 50 * 1500
    assert epoch_seconds(london(2024, 10, 27, 1, fold=1)) - epoch_seconds(london(2024, 10, 27, 1)) == 3600


def test_switch_in_the_skipped_hour_takes_effect_at_the_jump() -> None:
    # valley until 01:30, flat after; on 31 March 01:30 never shows: at 01:00 UTC the clock reads 02:00 BST.
    # 00:00-02:00 UTC: 1 h valley (00:00-01:00 GMT), 1 h flat (02:00-03:00 BST) → 200 splits 100 / 100
    plan = DailyPlan.of(("00:00", "valley"), ("01:30", "flat"))
    history = TariffHistory((Tariff(london(2024, 1, 1), LONDON_PRICES, TouSchedule.year_round(plan)),))
    priced = price_interval(history, LONDON, london(2024, 3, 31), london(2024, 3, 31, 3), 200, 0)
    assert priced.energy_by_rate()[Rate.VALLEY] == 100
    assert priced.energy_by_rate()[Rate.FLAT] == 100
