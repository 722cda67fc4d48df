"""The live status board (SPEC 15.1, 15.5), pure: each meter's row and colour, the filters, counts and paging.

The service gathers five lists (buildings, units, meters, the meters' states, their accounts) in one query each;
everything after that happens here, so the board for 1,000 meters costs no call per meter and every rule can be
tested without storage. The inputs are the few facts a row shows (``ListedMeter``, ``MeterStatus``,
``MeterAccount``), so the reads can fetch just those.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Protocol

from chalicelib.domain.alarms import BALANCE_LEVELS, AlarmKind
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.meter_state import (
    LOST_AFTER_MISSED_CYCLES,
    Condition,
    ControlMode,
    MeterState,
    Value,
    condition,
    state_from_values,
)
from chalicelib.domain.readings import StoredState
from chalicelib.domain.tenancy import BillingMode, Building, Unit

PAGE_SIZE = 200
MAX_QUERY = 64
MAX_PAGE = 10_000


class BoardState(StrEnum):
    """A row's colour, in the order the legend lists them (SPEC 15: opened, alarm 1, alarm 2, arrears, not
    opened, lost contact; plus meters not read yet, which are neither fine nor silent)."""

    OPENED = "opened"
    ALARM_1 = "alarm-1"
    ALARM_2 = "alarm-2"
    ARREARS = "arrears"
    NOT_OPENED = "not-opened"
    LOST_CONTACT = "lost-contact"
    NEVER_READ = "never-read"


_LEVEL = {Condition.ARREARS: BoardState.ARREARS, Condition.ALARM_2: BoardState.ALARM_2,
          Condition.ALARM_1: BoardState.ALARM_1, Condition.NORMAL: BoardState.OPENED}
_LEDGER_LEVEL = {AlarmKind.ARREARS: BoardState.ARREARS, AlarmKind.ALARM_2: BoardState.ALARM_2,
                 AlarmKind.ALARM_1: BoardState.ALARM_1}


def board_state(meter_condition: Condition, opened: bool, billing_mode: BillingMode,
                active_alarms: Sequence[AlarmKind] = ()) -> BoardState:
    """Worst news first. A silent meter's last balance is stale, so lost contact outranks everything; a meter on
    no account has no customer to warn, so its (usually empty) balance is not an alarm. A prepaid meter's level is
    what its own status bits say; a cloud-billed meter's bits mean nothing (the ledger holds its money), so its
    level is the balance alarm the cloud raised from the ledger."""
    if meter_condition is Condition.LOST_CONTACT:
        return BoardState.LOST_CONTACT
    if not opened:
        return BoardState.NOT_OPENED
    if meter_condition is Condition.NEVER_READ:
        return BoardState.NEVER_READ
    if billing_mode is BillingMode.CLOUD_BILLED:
        worst = [kind for kind in reversed(BALANCE_LEVELS) if kind in active_alarms]
        return _LEDGER_LEVEL[worst[0]] if worst else BoardState.OPENED
    return _LEVEL[meter_condition]


class ListedMeter(Protocol):
    """What the board needs of a meter (a ``Meter`` is one)."""

    @property
    def meter_id(self) -> str: ...
    @property
    def serial(self) -> str: ...
    @property
    def unit_id(self) -> str: ...
    @property
    def billing_mode(self) -> BillingMode: ...


@dataclass(frozen=True)
class MeterListing:
    """A ``ListedMeter`` read on its own, without the meter's wiring and settings."""

    meter_id: str
    serial: str
    unit_id: str
    billing_mode: BillingMode


# The registers a row shows; naming only these keeps 1,000 rows from parsing every energy and power register.
SHOWN_REGISTERS = ("remaining_amount", "control_mode", "relay_state", "status_bits")


@dataclass(frozen=True)
class MeterStatus:
    """What the board needs of a meter's stored state: the registers it shows as last answered, how many cycles
    it has missed since, and the alarms active in the cloud's alarm memory."""

    meter_id: str
    values: Mapping[str, Value]
    last_answer_at: datetime | None
    missed_cycles: int = 0
    active_alarms: tuple[AlarmKind, ...] = ()

    @classmethod
    def of(cls, stored: StoredState) -> MeterStatus:
        active = stored.alarms.active if stored.alarms else ()
        return cls(stored.meter_id, {k: stored.values[k] for k in SHOWN_REGISTERS if k in stored.values},
                   stored.last_answer_at, stored.missed_cycles,
                   tuple(a.kind for a in active if a.cleared_at is None))


@dataclass(frozen=True)
class MeterAccount:
    """What the board needs of a meter's money state: the account it is on (None: on none) and the ledger's credit."""

    meter_id: str
    account_id: str | None
    credit_minor: int


@dataclass(frozen=True)
class BoardRow:
    meter_id: str
    serial: str
    building_id: str
    building: str  # the building's name, or its id when the unit names a building the site no longer has
    floor: str
    unit: str  # the unit (shop) number
    billing_mode: BillingMode
    state: BoardState
    remaining_minor: int | None  # the meter's register (prepaid) or the ledger's credit (cloud-billed)
    relay_open: bool | None
    mode: ControlMode | None
    alarms: tuple[AlarmKind, ...]  # active alarms in the cloud's alarm memory, in AlarmKind order
    read_at: datetime | None  # the last time the meter answered


@lru_cache(maxsize=8192)  # a site's few floor and building names recur on every row and every refresh
def _natural(text: str) -> tuple[tuple[int, int | str], ...]:
    """Sort "2" before "10" and "B2" before "B10", as people number floors and shops."""
    return tuple((0, int(part)) if part.isdigit() else (1, part.lower()) for part in re.split(r"(\d+)", text) if part)


def _last_answer(status: MeterStatus | None) -> MeterState | None:
    """The meter as it last answered (its time is the answer's), or None if it never has."""
    if status is None or status.last_answer_at is None:
        return None
    return state_from_values(status.meter_id, status.last_answer_at,
                             {name: status.values[name] for name in SHOWN_REGISTERS if name in status.values})


def _condition(state: MeterState | None, missed_cycles: int) -> Condition:
    """As the site page judges, except that a meter which has never answered in three cycles is lost, not merely
    unread: a wrong address or a cut cable must not hide among the meters just imported."""
    if state is None and missed_cycles >= LOST_AFTER_MISSED_CYCLES:
        return Condition.LOST_CONTACT
    return condition(state, missed_cycles)


def _row(meter: ListedMeter, unit: Unit | None, building: Building | None, status: MeterStatus | None,
         money: MeterAccount | None) -> BoardRow:
    state = _last_answer(status)
    alarms = status.active_alarms if status is not None else ()
    opened = money is not None and money.account_id is not None
    if meter.billing_mode is BillingMode.CLOUD_BILLED:  # no balance register: the ledger's credit is the balance
        remaining = money.credit_minor if money is not None and opened else None
    else:
        remaining = state.remaining_minor if state else None
    building_id = unit.building_id if unit else ""
    return BoardRow(
        meter_id=meter.meter_id, serial=meter.serial, building_id=building_id,
        building=building.name if building else building_id, floor=unit.floor if unit else "",
        unit=unit.number if unit else meter.unit_id, billing_mode=meter.billing_mode,
        state=board_state(_condition(state, status.missed_cycles if status else 0), opened, meter.billing_mode,
                          alarms),
        remaining_minor=remaining, relay_open=state.relay_open if state else None,
        mode=state.control_mode if state else None, alarms=alarms, read_at=state.read_at if state else None)


def board_rows(meters: Iterable[ListedMeter], units: Iterable[Unit], buildings: Iterable[Building],
               statuses: Iterable[MeterStatus], moneys: Iterable[MeterAccount]) -> list[BoardRow]:
    """Every meter of a site as a board row, by building, floor, unit and serial. ``moneys`` may hold other
    sites' meters (the money states are kept per operator): only this site's meters are looked up."""
    units_by_id = {u.unit_id: u for u in units}
    buildings_by_id = {b.building_id: b for b in buildings}
    statuses_by_id = {s.meter_id: s for s in statuses}
    moneys_by_id = {m.meter_id: m for m in moneys}
    rows = []
    for meter in meters:
        unit = units_by_id.get(meter.unit_id)
        building = buildings_by_id.get(unit.building_id) if unit else None
        rows.append(_row(meter, unit, building, statuses_by_id.get(meter.meter_id), moneys_by_id.get(meter.meter_id)))
    return sorted(rows, key=lambda r: (_natural(r.building), _natural(r.floor), _natural(r.unit), r.serial))


@dataclass(frozen=True)
class BoardFilter:
    building_id: str = ""
    floor: str = ""
    state: BoardState | None = None
    query: str = ""
    page: int = 1

    def params(self) -> dict[str, str]:
        """The filter as query parameters (empty ones and page 1 left out), for links and the export."""
        found = {"building": self.building_id, "floor": self.floor, "state": self.state.value if self.state else "",
                 "q": self.query, "page": str(self.page) if self.page > 1 else ""}
        return {k: v for k, v in found.items() if v}

    def in_scope(self, row: BoardRow) -> bool:
        """Building, floor and search: what the per-state counts cover (they ignore the state filter, so each
        count says how many rows picking that state would show)."""
        if self.building_id and row.building_id != self.building_id:
            return False
        if self.floor and row.floor != self.floor:
            return False
        needle = self.query.casefold()
        return not needle or any(needle in text.casefold() for text in (row.unit, row.serial, row.meter_id))

    def matches(self, row: BoardRow) -> bool:
        return self.in_scope(row) and (self.state is None or row.state is self.state)


def _positive_int(text: str, name: str, highest: int) -> int:
    if not text.isdigit() or not 1 <= int(text) <= highest:
        raise ValidationError(f"{name} must be a whole number from 1 to {highest}", field=name)
    return int(text)


def parse_filter(params: Mapping[str, str], buildings: Sequence[Building], units: Sequence[Unit]) -> BoardFilter:
    """The board's query parameters, checked against the site: an unknown building, floor or state is a 400 that
    says what is allowed, not an empty board that looks like a site without meters."""
    building_id = (params.get("building") or "").strip()
    floor = (params.get("floor") or "").strip()
    state_text = (params.get("state") or "").strip()
    query = " ".join((params.get("q") or "").split())
    if building_id and building_id not in {b.building_id for b in buildings}:
        raise ValidationError(f"no building {building_id[:40]!r} on this site", field="building")
    if floor and floor not in floors_of(buildings, units, building_id):
        where = "in that building" if building_id else "on this site"
        raise ValidationError(f"no floor {floor[:40]!r} {where}", field="floor")
    if state_text and state_text not in {s.value for s in BoardState}:
        raise ValidationError(f"state must be one of {', '.join(s.value for s in BoardState)}", field="state")
    if len(query) > MAX_QUERY:
        raise ValidationError(f"search text: at most {MAX_QUERY} characters", field="q")
    page = _positive_int((params.get("page") or "1").strip(), "page", MAX_PAGE)
    return BoardFilter(building_id, floor, BoardState(state_text) if state_text else None, query, page)


def floors_of(buildings: Sequence[Building], units: Sequence[Unit], building_id: str = "") -> list[str]:
    """The floors a filter may pick: those the buildings declare and those their units are on."""
    chosen = {b.building_id for b in buildings if not building_id or b.building_id == building_id}
    floors = {f for b in buildings if b.building_id in chosen for f in b.floors}
    floors |= {u.floor for u in units if u.building_id in chosen and u.floor}
    return sorted(floors, key=_natural)


@dataclass(frozen=True)
class BoardView:
    rows: list[BoardRow]  # this page's rows
    filter: BoardFilter
    page: int  # the page shown: the one asked for, or the last one when fewer rows match now
    pages: int
    matched: int  # rows matching every filter, over all pages
    total: int  # the site's meters
    counts: dict[BoardState, int] = field(default_factory=dict)


def select(rows: Sequence[BoardRow], flt: BoardFilter, page_size: int = PAGE_SIZE) -> BoardView:
    """One page of the rows matching the filter, with the counts per state. A page past the end shows the last
    one: on a live board a filtered set can shrink between a link being drawn and it being followed."""
    scoped = [r for r in rows if flt.in_scope(r)]
    counts = dict.fromkeys(BoardState, 0)
    for row in scoped:
        counts[row.state] += 1
    matched = [r for r in scoped if flt.state is None or r.state is flt.state]
    pages = max(1, -(-len(matched) // page_size))
    page = min(flt.page, pages)
    start = (page - 1) * page_size
    return BoardView(matched[start:start + page_size], flt, page, pages, len(matched), len(rows), counts)
