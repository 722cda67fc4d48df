"""The live status board of a site: a handful of queries, then the pure rules of ``chalicelib.domain.board``.

Whatever the number of meters, one request reads the site (the scope check), then its buildings, units, meters,
the meters' states and their accounts: five queries, none per meter, each asking only for what a row shows. They are
independent, so they go out side by side; the board refreshes every few seconds in every open tab, and its latency is
mostly these round trips and the parsing of their answers.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from chalicelib.domain.access import Permission
from chalicelib.domain.actor import Actor
from chalicelib.domain.board import (
    BoardFilter,
    BoardRow,
    BoardView,
    ListedMeter,
    MeterAccount,
    MeterStatus,
    board_rows,
    floors_of,
    parse_filter,
    select,
)
from chalicelib.domain.tenancy import Building, Site, Unit
from chalicelib.ports import TenancyRepository
from chalicelib.services.scoping import site_in_scope

# Shared by every request of the process (a Lambda container serves one request at a time; the local host a few).
_queries = ThreadPoolExecutor(max_workers=4, thread_name_prefix="board-query")
# A site's layout (buildings, units, meters) and which meters are on accounts change rarely, while every open board
# asks every 10 s: they are kept this long per process, and only the meters' states are read on every request. A
# meter imported or an account opened shows on the board within this time (plus the board's own refresh).
LAYOUT_TTL_S = 15.0
_layouts: dict[tuple[str, str], tuple[float, list[Building], list[Unit], Sequence[ListedMeter], list[MeterAccount]]]
_layouts = {}


class BoardReads(Protocol):
    """The board's reads of one site, each one query (paged by DynamoDB, never one per meter)."""

    def buildings(self, operator_id: str, site_id: str) -> list[Building]: ...
    def units(self, operator_id: str, site_id: str) -> list[Unit]: ...
    def meters(self, operator_id: str, site_id: str) -> Sequence[ListedMeter]: ...
    def states(self, operator_id: str, site_id: str) -> list[MeterStatus]: ...
    def accounts(self, operator_id: str, site_id: str) -> list[MeterAccount]: ...


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
    def __init__(self, tenancy: TenancyRepository, reads: BoardReads) -> None:
        self._tenancy = tenancy
        self._reads = reads

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
        op, reads = actor.operator_id, self._reads
        cached = _layouts.get((op, site_id))
        if cached is not None and time.monotonic() - cached[0] < LAYOUT_TTL_S:
            _, buildings, units, meters, accounts = cached
            states = reads.states(op, site_id)
        else:
            buildings_f = _queries.submit(reads.buildings, op, site_id)
            units_f = _queries.submit(reads.units, op, site_id)
            meters_f = _queries.submit(reads.meters, op, site_id)
            accounts_f = _queries.submit(reads.accounts, op, site_id)
            states = reads.states(op, site_id)  # the largest answer: parsed here while the others are on their way
            buildings, units, meters, accounts = (buildings_f.result(), units_f.result(), meters_f.result(),
                                                  accounts_f.result())
            _layouts[(op, site_id)] = (time.monotonic(), buildings, units, meters, accounts)
        return site, buildings, units, board_rows(meters, units, buildings, states, accounts)
