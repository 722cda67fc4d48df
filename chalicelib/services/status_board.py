"""The live status board of a site: a handful of queries, then the pure rules of ``chalicelib.domain.board``.

Whatever the number of meters, one request reads the site, its buildings, units, meters, the meters' states and
the operator's money states: five queries after the scope check, none per meter. They are independent, so they go
out side by side; the board refreshes every few seconds in every open tab, and its latency is mostly these round
trips.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from chalicelib.domain.access import Permission
from chalicelib.domain.actor import Actor
from chalicelib.domain.board import BoardFilter, BoardRow, BoardView, board_rows, floors_of, parse_filter, select
from chalicelib.domain.tenancy import Building, Site, Unit
from chalicelib.ports import MoneyRepository, ReadingsRepository, TenancyRepository
from chalicelib.services.scoping import site_in_scope

# Shared by every request of the process (a Lambda container serves one request at a time; the local host a few).
_queries = ThreadPoolExecutor(max_workers=4, thread_name_prefix="board-query")


@dataclass(frozen=True)
class Board:
    site: Site
    buildings: list[Building]
    floors: list[str]  # the floors the floor filter offers (of the chosen building, or of all)
    view: BoardView


@dataclass(frozen=True)
class BoardExport:
    site: Site
    filter: BoardFilter
    rows: list[BoardRow]  # every row matching the filter, not one page


class StatusBoard:
    def __init__(self, tenancy: TenancyRepository, readings: ReadingsRepository, money: MoneyRepository) -> None:
        self._tenancy = tenancy
        self._readings = readings
        self._money = money

    def board(self, actor: Actor, site_id: str, params: Mapping[str, str]) -> Board:
        site, buildings, units, rows = self._load(actor, site_id)
        flt = parse_filter(params, buildings, units)
        return Board(site, buildings, floors_of(buildings, units, flt.building_id), select(rows, flt))

    def export(self, actor: Actor, site_id: str, params: Mapping[str, str]) -> BoardExport:
        site, buildings, units, rows = self._load(actor, site_id)
        flt = parse_filter(params, buildings, units)
        return BoardExport(site, flt, [r for r in rows if flt.matches(r)])

    def _load(self, actor: Actor, site_id: str) -> tuple[Site, list[Building], list[Unit], list[BoardRow]]:
        actor.require(Permission.METERS_VIEW)
        site = site_in_scope(self._tenancy, actor, site_id)  # first: another operator's id must cost no query
        op = actor.operator_id
        buildings = _queries.submit(self._tenancy.list_buildings, op, site_id)
        units = _queries.submit(self._tenancy.list_units, op, site_id)
        meters = _queries.submit(self._tenancy.list_meters, op, site_id)
        states = _queries.submit(self._readings.list_states, op, site_id)
        moneys = self._money.all_moneys(op)  # this thread's share of the waiting
        rows = board_rows(meters.result(), units.result(), buildings.result(), states.result(),
                          (m for m in moneys if m.site_id == site_id))
        return site, buildings.result(), units.result(), rows
