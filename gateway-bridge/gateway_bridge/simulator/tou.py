"""A meter's daily time-of-use plan: which of the four rates is in force at a given time."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

RATES = ("sharp", "peak", "flat", "valley")
MS_PER_DAY = 86_400_000
_HH_MM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class TouError(ValueError):
    """A time-of-use plan is malformed."""


@dataclass(frozen=True)
class TouPlan:
    """Rate segments of one day: (start in ms after midnight, rate), sorted by start.

    If the first segment starts after midnight, the last segment runs on past midnight into it,
    as on a meter whose plan is a ring of switch times.
    """

    segments: tuple[tuple[int, str], ...]

    @classmethod
    def from_mapping(cls, switch_times: Mapping[str, str]) -> TouPlan:
        """Build from {"HH:MM": rate}, e.g. {"00:00": "valley", "08:00": "flat"}."""
        segments = []
        for when, rate in switch_times.items():
            match = _HH_MM.match(str(when))
            if not match:
                raise TouError(f"time-of-use switch time {when!r} is not HH:MM")
            if rate not in RATES:
                raise TouError(f"time-of-use rate {rate!r} at {when} is not one of {', '.join(RATES)}")
            segments.append(((int(match[1]) * 60 + int(match[2])) * 60_000, str(rate)))
        if not segments:
            raise TouError("a time-of-use plan needs at least one switch time")
        return cls(tuple(sorted(segments)))

    def as_mapping(self) -> dict[str, str]:
        """The plan as {"HH:MM": rate}, the form it is configured in."""
        return {f"{start // 3_600_000:02d}:{start // 60_000 % 60:02d}": rate for start, rate in self.segments}

    def rate_at(self, moment: datetime) -> str:
        """The rate in force at ``moment``."""
        now = _ms_of_day(moment)
        rate = self.segments[-1][1]
        for start, segment_rate in self.segments:
            if start <= now:
                rate = segment_rate
        return rate

    def ms_to_next_switch(self, moment: datetime) -> int:
        """Milliseconds from ``moment`` until the next switch time (at least 1)."""
        now = _ms_of_day(moment)
        later = [start for start, _ in self.segments if start > now]
        next_start = later[0] if later else self.segments[0][0] + MS_PER_DAY
        return max(1, next_start - now)


def _ms_of_day(moment: datetime) -> int:
    return ((moment.hour * 60 + moment.minute) * 60 + moment.second) * 1000 + moment.microsecond // 1000


DEFAULT_TOU = TouPlan.from_mapping(
    {
        "00:00": "valley",
        "08:00": "flat",
        "10:00": "peak",
        "12:00": "flat",
        "17:00": "sharp",
        "19:00": "peak",
        "22:00": "valley",
    }
)
