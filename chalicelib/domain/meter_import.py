"""Bulk import of meters from a spreadsheet (SPEC 8): reading the table, checking it row by row, and the plan.

Pure Python. A CSV file is read here (the standard library's ``csv``); an ``.xlsx`` workbook is turned
into rows of cell values by an adapter, and both end up as one ``Sheet`` of trimmed text cells that keep
the row numbers the operator sees in Excel, so every problem names its row and its column.

Units: a row names the shop (unit) its meter supplies by unit number, with building and floor. The unit
must exist on the site, unless the file declares it: a row whose *new unit* column says yes creates the
unit in that building and floor (the building must exist; buildings and collectors are never created by an
import, because a typo there would silently make a new building or bus). Other rows may then name the
declared unit like an existing one.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

from chalicelib.domain.errors import DomainError, ValidationError
from chalicelib.domain.oplog import OperationRecord
from chalicelib.domain.tenancy import (
    ID_PATTERN,
    MAX_METERS_PER_BUS,
    BillingMode,
    Building,
    Collector,
    Meter,
    Unit,
)

MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_ROWS = 5000
MAX_COLUMNS = 40
MAX_CELL_CHARS = 200
MAX_SERIAL_CHARS = 64
MAX_CT_RATIO = 10000
_T = TypeVar("_T")
HEADER_SEARCH_ROWS = 10  # a title row or two above the header is common in hand-made sheets

XLSX_MAGIC = b"PK\x03\x04"
OLD_XLS_MAGIC = b"\xd0\xcf\x11\xe0"


class Column(StrEnum):
    METER_ID = "meter_id"
    SERIAL = "serial"
    MODEL = "model"
    COLLECTOR = "collector"
    ADDRESS = "address"
    BUILDING = "building"
    FLOOR = "floor"
    UNIT = "unit"
    CT_RATIO = "ct_ratio"
    BILLING_MODE = "billing_mode"
    NEW_UNIT = "new_unit"


REQUIRED = (Column.METER_ID, Column.SERIAL, Column.MODEL, Column.COLLECTOR, Column.ADDRESS, Column.UNIT)

# What the template's header row says, per language; the reader accepts these and the aliases below.
TEMPLATE_HEADERS: Mapping[str, Mapping[Column, str]] = {
    "en": {Column.METER_ID: "Meter ID", Column.SERIAL: "Serial", Column.MODEL: "Model",
           Column.COLLECTOR: "Collector", Column.ADDRESS: "Modbus address", Column.BUILDING: "Building",
           Column.FLOOR: "Floor", Column.UNIT: "Unit", Column.CT_RATIO: "CT ratio",
           Column.BILLING_MODE: "Billing mode", Column.NEW_UNIT: "New unit"},
    "zh": {Column.METER_ID: "电表编号", Column.SERIAL: "表号", Column.MODEL: "型号", Column.COLLECTOR: "采集器",
           Column.ADDRESS: "通讯地址", Column.BUILDING: "楼栋", Column.FLOOR: "楼层", Column.UNIT: "户号",
           Column.CT_RATIO: "CT变比", Column.BILLING_MODE: "计费方式", Column.NEW_UNIT: "新建户号"},
}

_ALIASES: Mapping[Column, tuple[str, ...]] = {
    Column.METER_ID: ("meter", "meter id", "meter no", "电表", "电表id", "表计编号"),
    Column.SERIAL: ("serial number", "serial no", "sn", "出厂编号", "序列号", "电表表号"),
    Column.MODEL: ("profile", "model/profile", "meter model", "电表型号", "表型", "规格型号"),
    Column.COLLECTOR: ("bus", "collector id", "collector/bus", "通讯管理机", "集中器", "总线", "采集器编号"),
    Column.ADDRESS: ("address", "addr", "modbus addr", "slave id", "地址", "modbus地址", "表地址"),
    Column.BUILDING: ("building id", "楼宇", "建筑", "楼号"),
    Column.FLOOR: ("层",),
    Column.UNIT: ("shop", "shop number", "shop no", "unit number", "room", "商铺号", "铺号", "房号"),
    Column.CT_RATIO: ("ct", "变比", "互感器变比", "电流互感器变比", "倍率"),
    Column.BILLING_MODE: ("billing", "mode", "计费模式", "付费方式"),
    Column.NEW_UNIT: ("create unit", "新户号"),
}
_IGNORED_HEADERS = ("notes", "note", "remarks", "remark", "comment", "comments", "备注", "说明")

_TRUE = frozenset({"yes", "y", "true", "1", "x", "是", "新建", "新增"})
_FALSE = frozenset({"", "no", "n", "false", "0", "否"})
_PREPAID = frozenset({"prepaid", "prepaidmeter", "meter", "预付费", "预付费电能表", "表内预付费", "表计预付费"})
_CLOUD = frozenset({"cloud", "cloudbilled", "cloudbilling", "plain", "云端计费", "云计费", "平台计费", "后台计费"})
_WHOLE = re.compile(r"^\d{1,9}(\.0*)?$")
_RATIO = re.compile(r"^(\d{1,9})\s*/\s*(\d{1,9})$")
_PARENTHESISED = re.compile(r"\(.*?\)")
_INVISIBLE = dict.fromkeys(map(ord, "\ufeff\u200b\u200c\u200d\u2060"))

# English problem texts; the portal shows its own translated text per code (see meter_import.html).
MESSAGES: Mapping[str, str] = {
    "missing_column": "required column {column} is missing",
    "unknown_column": "unknown column {value}; rename it to a known column or to Notes",
    "duplicate_column": "column {column} appears twice",
    "required": "required value missing",
    "too_long": "longer than {limit} characters",
    "bad_meter_id": "{value}: a meter ID is 1-64 letters, digits, _ or -",
    "bad_serial": "{value}: a serial is 1-64 characters without control characters",
    "unknown_model": "unknown model {value}; known: {known}",
    "model_not_prepaid": "{value} is a plain meter: its billing mode must be cloud-billed",
    "bad_address": "{value}: a Modbus address is a whole number from 1 to 247",
    "duplicate_address": "address {value} on collector {collector} is also on row {other}",
    "address_taken": "address {value} on collector {collector} is already used by meter {other}",
    "duplicate_meter_id": "meter ID {value} is also on row {other}",
    "meter_id_taken": "meter ID {value} already exists",
    "duplicate_serial": "serial {value} is also on row {other}",
    "serial_taken": "serial {value} already belongs to meter {other}",
    "unknown_collector": "no collector {value} on this site; known: {known}",
    "bus_full": "collector {collector} would carry {count} meters; an RS485 bus carries at most {limit}",
    "unknown_building": "no building {value} on this site",
    "unknown_unit": "no unit {value} on this site (mark the row as a new unit to create it)",
    "ambiguous_unit": "unit {value} exists in several buildings; give the building",
    "unit_elsewhere": "unit {value} is on floor {floor} of building {building}",
    "unit_declared_twice": "unit {value} is declared on row {other} with another floor",
    "unknown_floor": "building {building} has no floor {value}",
    "bad_ct_ratio": "{value}: a CT ratio is a whole number from 1 to 10000, or primary/secondary like 200/5",
    "bad_billing_mode": "{value}: billing mode is prepaid-meter or cloud-billed",
    "bad_new_unit": "{value}: new unit is yes or no",
}

REFUSALS: Mapping[str, str] = {
    "too_large": "the file is larger than 2 MB; split it into several files",
    "too_many_rows": "the file has more than 5,000 meter rows; split it into several files",
    "too_many_columns": "the file has more than 40 columns",
    "no_file": "choose a CSV or .xlsx file first",
    "old_xls": "old .xls workbooks are not supported; save the file as .xlsx or CSV",
    "not_a_table": "the file is neither a CSV file nor an .xlsx workbook",
    "unreadable_xlsx": "the .xlsx workbook cannot be read; save it again from Excel and retry",
    "no_rows": "the file has no meter rows under its header",
}


class ImportRefused(ValidationError):
    """The file as a whole cannot be checked (too large, not a table, empty); ``code`` names why."""

    def __init__(self, code: str) -> None:
        super().__init__(REFUSALS[code], field="file")
        self.code = code


class FileTooLarge(ImportRefused):
    status = 413


@dataclass(frozen=True)
class Problem:
    row: int
    column: str  # as the file's header names it (or the template's name for a missing column)
    code: str
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def message(self) -> str:
        return MESSAGES[self.code].format(**self.params)

    def as_json(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "code": self.code, "message": self.message}


@dataclass(frozen=True)
class Sheet:
    """An uploaded table: trimmed text cells and the row numbers the operator sees (the header's included)."""

    header_row: int
    headers: tuple[str, ...]
    rows: tuple[tuple[int, tuple[str, ...]], ...]

    def to_csv(self) -> str:
        """The sheet as CSV text, blank lines kept so a re-check reports the same row numbers."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        numbered = [(self.header_row, self.headers), *self.rows]
        line = 1
        for number, cells in numbered:
            for _ in range(number - line):
                writer.writerow([])
            writer.writerow(cells)
            line = number + 1
        return out.getvalue()


@dataclass(frozen=True)
class ModelInfo:
    model: str  # the profile's own name, stored on the meter
    prepaid: bool


@dataclass(frozen=True)
class SiteContext:
    """What a file is checked against: the site's tree, and every meter of the operator (ids and serials are
    unique across sites: readings are keyed by operator and meter id)."""

    operator_id: str
    site_id: str
    buildings: Sequence[Building]
    units: Sequence[Unit]
    collectors: Sequence[Collector]
    site_meters: Sequence[Meter]
    operator_meters: Sequence[Meter]
    resolve_model: Callable[[str], ModelInfo | None]
    model_names: Sequence[str]


@dataclass(frozen=True)
class ImportPlan:
    rows: int
    meters: tuple[Meter, ...]
    units: tuple[Unit, ...]
    problems: tuple[Problem, ...]
    sheet: Sheet

    @property
    def ok(self) -> bool:
        return not self.problems


class ImportInvalid(ValidationError):
    """The file has problems; nothing was imported. Carries the report."""

    def __init__(self, plan: ImportPlan) -> None:
        super().__init__(f"the file has {len(plan.problems)} problems; nothing was imported", field="file")
        self.plan = plan


class ImportRolledBack(DomainError):
    """Storage failed part-way and what was written has been removed again: nothing was imported."""

    status = 503


@dataclass(frozen=True)
class MeterImportBatch:
    """What one import writes, all or nothing, and the log records of its outcome."""

    operator_id: str
    site_id: str
    import_id: str
    started_at: datetime
    actor: str
    units: tuple[Unit, ...]
    meters: tuple[Meter, ...]
    record: OperationRecord
    undo_record: OperationRecord


@dataclass(frozen=True)
class ImportJournal:
    """An import in progress on a site: enough to remove what it wrote if its writer died."""

    operator_id: str
    site_id: str
    import_id: str
    started_at: datetime
    actor: str
    meter_ids: tuple[str, ...]
    unit_ids: tuple[str, ...]


# -- reading ---------------------------------------------------------------------------------------

def cell_text(value: object) -> str:
    """A cell as trimmed text: Excel's 12.0 becomes 12, full-width characters become ASCII, BOMs vanish."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, datetime):
        value = value.isoformat(sep=" ")
    text = unicodedata.normalize("NFKC", str(value)).translate(_INVISIBLE)
    return " ".join(text.split()) if "\n" in text or "\t" in text else text.strip()


def sniff_format(data: bytes) -> str:
    """``xlsx`` or ``csv`` from the content itself (names and content types from browsers vary too much)."""
    if not data.strip():
        raise ImportRefused("no_file")
    if len(data) > MAX_FILE_BYTES:
        raise FileTooLarge("too_large")
    if data.startswith(XLSX_MAGIC):
        return "xlsx"
    if data.startswith(OLD_XLS_MAGIC):
        raise ImportRefused("old_xls")
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ImportRefused("not_a_table")
    return "csv"


def decode_csv(data: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 with BOM (Excel's Unicode text), else GB 18030 (Excel on Chinese
    Windows saves CSV in the local code page)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise ImportRefused("not_a_table") from None
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ImportRefused("not_a_table")


def read_csv(data: bytes) -> Sheet:
    text = decode_csv(data)
    first_line = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first_line.count)
    try:
        return sheet_from_rows(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error:
        raise ImportRefused("not_a_table") from None


def sheet_from_rows(rows: Iterable[Sequence[object]]) -> Sheet:
    """Header and data rows of a table; blank rows skipped (their numbers kept), limits enforced as it reads."""
    kept: list[tuple[int, tuple[str, ...]]] = []
    for number, raw in enumerate(rows, start=1):
        cells = tuple(cell_text(v) for v in raw)
        while cells and not cells[-1]:
            cells = cells[:-1]
        if not cells:
            continue
        if len(cells) > MAX_COLUMNS:
            raise ImportRefused("too_many_columns")
        kept.append((number, cells))
        if len(kept) > MAX_ROWS + HEADER_SEARCH_ROWS + 1:
            raise FileTooLarge("too_many_rows")
    header_at = _header_index(kept)
    data_rows = tuple(kept[header_at + 1:])
    if not data_rows:
        raise ImportRefused("no_rows")
    if len(data_rows) > MAX_ROWS:
        raise FileTooLarge("too_many_rows")
    header_row, headers = kept[header_at]
    return Sheet(header_row, headers, data_rows)


def _header_index(kept: list[tuple[int, tuple[str, ...]]]) -> int:
    """The first of the leading rows naming at least three known columns, else the first row."""
    for index, (_, cells) in enumerate(kept[:HEADER_SEARCH_ROWS]):
        if sum(1 for c in cells if header_column(c) is not None) >= 3:
            return index
    if not kept:
        raise ImportRefused("no_rows")
    return 0


def _header_key(text: str) -> str:
    folded = _PARENTHESISED.sub("", unicodedata.normalize("NFKC", text).casefold())
    return re.sub(r"[\s_\-.*:：]", "", folded)


_HEADER_INDEX: dict[str, Column] = {
    _header_key(name): column
    for column in Column
    for name in (column.value, *(h[column] for h in TEMPLATE_HEADERS.values()), *_ALIASES[column])
}
_IGNORED_KEYS = frozenset(_header_key(h) for h in _IGNORED_HEADERS)


def header_column(text: str) -> Column | None:
    return _HEADER_INDEX.get(_header_key(text))


def template_csv(language: str) -> str:
    """The downloadable template: the header row in the operator's language, with a BOM so Excel reads UTF-8."""
    names = TEMPLATE_HEADERS["zh" if language.startswith("zh") else "en"]
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow([names[c] for c in Column])
    return "\ufeff" + out.getvalue()


# -- checking --------------------------------------------------------------------------------------

@dataclass
class _Row:
    """One data row as far as it could be read; ``None`` where the cell had a problem."""

    number: int
    meter_id: str | None = None
    serial: str | None = None
    model: ModelInfo | None = None
    collector: Collector | None = None
    address: int | None = None
    building: Building | None = None
    floor: str = ""
    unit_ref: str = ""
    ct_ratio: int | None = 1
    billing: BillingMode | None = None
    new_unit: bool = False
    unit: Unit | None = None


def plan_import(sheet: Sheet, site: SiteContext, new_unit_id: Callable[[], str]) -> ImportPlan:
    """Check every row against the rules and the site; the plan is importable only without problems."""
    checker = _Checker(sheet, site, new_unit_id)
    return checker.run()


class _Checker:
    def __init__(self, sheet: Sheet, site: SiteContext, new_unit_id: Callable[[], str]) -> None:
        self.sheet = sheet
        self.site = site
        self.new_unit_id = new_unit_id
        self.problems: list[Problem] = []
        self.columns: dict[Column, int] = {}
        self.language = _language(sheet.headers)
        self.new_units: dict[tuple[str, str], tuple[Unit, int]] = {}

    def run(self) -> ImportPlan:
        self._map_headers()
        if self.problems:
            return self._plan([])
        rows = [self._read_row(number, cells) for number, cells in self.sheet.rows]
        for row in rows:
            if row.new_unit:
                self._declare_unit(row)
        for row in rows:
            if not row.new_unit:
                self._resolve_unit(row)
        _Uniqueness(self).check(rows)
        return self._plan(rows)

    def _plan(self, rows: list[_Row]) -> ImportPlan:
        order = {c: i for i, c in enumerate(self.sheet.headers)}
        problems = sorted(self.problems, key=lambda p: (p.row, order.get(p.column, len(order)), p.code))
        meters = () if problems else tuple(self._meter(r) for r in rows)
        units = () if problems else tuple(unit for unit, _ in self.new_units.values())
        return ImportPlan(len(self.sheet.rows), meters, units, tuple(problems), self.sheet)

    def _meter(self, row: _Row) -> Meter:
        assert row.meter_id and row.serial and row.model and row.collector and row.address and row.unit
        assert row.ct_ratio and row.billing
        return Meter(self.site.operator_id, self.site.site_id, row.meter_id, row.serial, row.model.model,
                     row.collector.collector_id, row.address, row.unit.unit_id, row.billing, row.ct_ratio)

    # -- headers --
    def _map_headers(self) -> None:
        for index, text in enumerate(self.sheet.headers):
            column = header_column(text)
            if column is None:
                if text and _header_key(text) not in _IGNORED_KEYS:
                    self.report(self.sheet.header_row, text, "unknown_column", value=text)
            elif column in self.columns:
                self.report(self.sheet.header_row, text, "duplicate_column", column=text)
            else:
                self.columns[column] = index
        for column in REQUIRED:
            if column not in self.columns:
                name = TEMPLATE_HEADERS[self.language][column]
                self.report(self.sheet.header_row, name, "missing_column", column=name)

    def name(self, column: Column) -> str:
        index = self.columns.get(column)
        return self.sheet.headers[index] if index is not None else TEMPLATE_HEADERS[self.language][column]

    def report(self, row: int, where: str, code: str, **params: object) -> None:
        self.problems.append(Problem(row, where, code, {k: str(v) for k, v in params.items()}))

    # -- one row --
    def _read_row(self, number: int, cells: tuple[str, ...]) -> _Row:
        values = {c: (cells[i] if i < len(cells) else "") for c, i in self.columns.items()}
        row = _Row(number)
        for column, text in values.items():
            if len(text) > MAX_CELL_CHARS:
                self.report(number, self.name(column), "too_long", limit=MAX_CELL_CHARS)
                values[column] = ""
            elif column in REQUIRED and not text:
                self.report(number, self.name(column), "required")
        _CellReader(self, row).read(values)
        return row

    # -- units --
    def _declare_unit(self, row: _Row) -> None:
        """A row marked as a new unit: use the unit if it exists just so, else create it once."""
        if not self._declaration_complete(row):
            return
        assert row.building is not None
        existing = self._units_named(row.unit_ref, row.building)
        if existing:
            self._check_floor(row, existing[0])
            row.unit = existing[0]
            return
        key = (row.building.building_id, _fold(row.unit_ref))
        declared = self.new_units.get(key)
        if declared is None:
            unit = Unit(self.site.operator_id, self.site.site_id, self.new_unit_id(), row.building.building_id,
                        row.floor, row.unit_ref)
            self.new_units[key] = (unit, row.number)
            row.unit = unit
        elif _fold(declared[0].floor) != _fold(row.floor):
            self.report(row.number, self.name(Column.FLOOR), "unit_declared_twice", value=row.unit_ref,
                        other=declared[1])
        else:
            row.unit = declared[0]

    def _declaration_complete(self, row: _Row) -> bool:
        if not row.unit_ref:
            return False
        complete = True
        for column, present in ((Column.BUILDING, row.building is not None), (Column.FLOOR, bool(row.floor))):
            if not present:
                complete = False
                if self._cell_was_blank(row, column):
                    self.report(row.number, self.name(column), "required")
        building = row.building
        if complete and building is not None and building.floors and \
                _fold(row.floor) not in {_fold(f) for f in building.floors}:
            self.report(row.number, self.name(Column.FLOOR), "unknown_floor", value=row.floor, building=building.name)
            return False
        return complete

    def _cell_was_blank(self, row: _Row, column: Column) -> bool:
        """True unless the cell already has a problem of its own (an unknown building, say)."""
        name = self.name(column)
        return not any(p.row == row.number and p.column == name for p in self.problems)

    def _resolve_unit(self, row: _Row) -> None:
        if not row.unit_ref or (row.building is None and self._has_problem(row, Column.BUILDING)):
            return
        candidates = self._units_named(row.unit_ref, row.building)
        candidates += [u for (b, n), (u, _) in self.new_units.items()
                       if n == _fold(row.unit_ref) and (row.building is None or b == row.building.building_id)]
        if not candidates:
            candidates = [u for u in self.site.units if u.unit_id == row.unit_ref]
        if not candidates:
            self.report(row.number, self.name(Column.UNIT), "unknown_unit", value=row.unit_ref)
        elif len(candidates) > 1:
            self.report(row.number, self.name(Column.UNIT), "ambiguous_unit", value=row.unit_ref)
        else:
            self._check_floor(row, candidates[0])
            row.unit = candidates[0]

    def _has_problem(self, row: _Row, column: Column) -> bool:
        return not self._cell_was_blank(row, column)

    def _units_named(self, number: str, building: Building | None) -> list[Unit]:
        return [u for u in self.site.units if _fold(u.number) == _fold(number)
                and (building is None or u.building_id == building.building_id)]

    def _check_floor(self, row: _Row, unit: Unit) -> None:
        if row.floor and _fold(row.floor) != _fold(unit.floor):
            building = next((b.name for b in self.site.buildings if b.building_id == unit.building_id),
                            unit.building_id)
            self.report(row.number, self.name(Column.FLOOR), "unit_elsewhere", value=row.unit_ref, floor=unit.floor,
                        building=building)


class _CellReader:
    """Reads one row's cells into a ``_Row``, reporting each cell's own problems."""

    def __init__(self, checker: _Checker, row: _Row) -> None:
        self.checker = checker
        self.site = checker.site
        self.row = row

    def problem(self, column: Column, code: str, **params: object) -> None:
        self.checker.report(self.row.number, self.checker.name(column), code, **params)

    def read(self, values: Mapping[Column, str]) -> None:
        readers: dict[Column, Callable[[str], None]] = {
            Column.METER_ID: self.meter_id, Column.SERIAL: self.serial, Column.MODEL: self.model,
            Column.COLLECTOR: self.collector, Column.ADDRESS: self.address, Column.BUILDING: self.building,
            Column.CT_RATIO: self.ct_ratio, Column.NEW_UNIT: self.new_unit,
        }
        for column, reader in readers.items():
            if values.get(column):
                reader(values[column])
        self.row.floor = values.get(Column.FLOOR, "")
        self.row.unit_ref = values.get(Column.UNIT, "")
        self.billing(values.get(Column.BILLING_MODE, ""))

    def meter_id(self, text: str) -> None:
        if ID_PATTERN.match(text):
            self.row.meter_id = text
        else:
            self.problem(Column.METER_ID, "bad_meter_id", value=text)

    def serial(self, text: str) -> None:
        if len(text) <= MAX_SERIAL_CHARS and text.isprintable():
            self.row.serial = text
        else:
            self.problem(Column.SERIAL, "bad_serial", value=text[:MAX_SERIAL_CHARS])

    def model(self, text: str) -> None:
        self.row.model = self.site.resolve_model(text)
        if self.row.model is None:
            self.problem(Column.MODEL, "unknown_model", value=text, known=", ".join(self.site.model_names))

    def collector(self, text: str) -> None:
        found = _pick(self.site.collectors, text, lambda c: (c.collector_id, c.name))
        if found is None:
            known = ", ".join(sorted(c.collector_id for c in self.site.collectors)) or "-"
            self.problem(Column.COLLECTOR, "unknown_collector", value=text, known=known)
        self.row.collector = found

    def address(self, text: str) -> None:
        number = int(Decimal(text)) if _WHOLE.match(text) else 0
        if 1 <= number <= 247:
            self.row.address = number
        else:
            self.problem(Column.ADDRESS, "bad_address", value=text)

    def building(self, text: str) -> None:
        self.row.building = _pick(self.site.buildings, text, lambda b: (b.building_id, b.name))
        if self.row.building is None:
            self.problem(Column.BUILDING, "unknown_building", value=text)

    def ct_ratio(self, text: str) -> None:
        self.row.ct_ratio = parse_ct_ratio(text)
        if self.row.ct_ratio is None:
            self.problem(Column.CT_RATIO, "bad_ct_ratio", value=text)

    def new_unit(self, text: str) -> None:
        folded = _fold(text)
        self.row.new_unit = folded in _TRUE
        if folded not in _TRUE | _FALSE:
            self.problem(Column.NEW_UNIT, "bad_new_unit", value=text)

    def billing(self, text: str) -> None:
        mode = parse_billing_mode(text) if text else None
        if text and mode is None:
            self.problem(Column.BILLING_MODE, "bad_billing_mode", value=text)
            return
        model = self.row.model
        if mode is None and model is not None:
            mode = BillingMode.PREPAID_METER if model.prepaid else BillingMode.CLOUD_BILLED
        if mode is BillingMode.PREPAID_METER and model is not None and not model.prepaid:
            self.problem(Column.BILLING_MODE, "model_not_prepaid", value=model.model)
            return
        self.row.billing = mode


class _Uniqueness:
    """Meter ids, serials and bus addresses are unique within the file and against what is stored;
    a bus carries at most 32 meters."""

    def __init__(self, checker: _Checker) -> None:
        self.checker = checker
        self.site = checker.site

    def check(self, rows: list[_Row]) -> None:
        taken_ids = {_fold(m.meter_id): m.meter_id for m in self.site.operator_meters}
        taken_serials = {_fold(m.serial): m.meter_id for m in self.site.operator_meters}
        self._unique(rows, Column.METER_ID, lambda r: r.meter_id, taken_ids, "duplicate_meter_id", "meter_id_taken")
        self._unique(rows, Column.SERIAL, lambda r: r.serial, taken_serials, "duplicate_serial", "serial_taken")
        self._addresses(rows)
        self._bus_capacity(rows)

    def _unique(self, rows: list[_Row], column: Column, value: Callable[[_Row], str | None],
                taken: Mapping[str, str], in_file: str, stored: str) -> None:
        first_row: dict[str, int] = {}
        for row in rows:
            text = value(row)
            if text is None:
                continue
            key = _fold(text)
            if key in taken:
                self.checker.report(row.number, self.checker.name(column), stored, value=text, other=taken[key])
            elif key in first_row:
                self.checker.report(row.number, self.checker.name(column), in_file, value=text,
                                    other=first_row[key])
            else:
                first_row[key] = row.number

    def _addresses(self, rows: list[_Row]) -> None:
        stored = {(m.collector_id, m.address): m.meter_id for m in self.site.site_meters}
        first_row: dict[tuple[str, int], int] = {}
        name = self.checker.name(Column.ADDRESS)
        for row in rows:
            if row.collector is None or row.address is None:
                continue
            key = (row.collector.collector_id, row.address)
            if key in stored:
                self.checker.report(row.number, name, "address_taken", value=row.address, collector=key[0],
                                    other=stored[key])
            elif key in first_row:
                self.checker.report(row.number, name, "duplicate_address", value=row.address, collector=key[0],
                                    other=first_row[key])
            else:
                first_row[key] = row.number

    def _bus_capacity(self, rows: list[_Row]) -> None:
        on_bus = Counter(m.collector_id for m in self.site.site_meters)
        wanted = Counter(r.collector.collector_id for r in rows if r.collector is not None)
        seen: dict[str, int] = defaultdict(int)
        for row in rows:
            if row.collector is None:
                continue
            bus = row.collector.collector_id
            seen[bus] += 1
            if on_bus[bus] + seen[bus] > MAX_METERS_PER_BUS:
                self.checker.report(row.number, self.checker.name(Column.COLLECTOR), "bus_full", collector=bus,
                                    count=on_bus[bus] + wanted[bus], limit=MAX_METERS_PER_BUS)


# -- small parsers ---------------------------------------------------------------------------------

def parse_ct_ratio(text: str) -> int | None:
    """``200`` or ``200/5`` (primary over secondary, which must divide exactly) → 40; 1-10000."""
    ratio: int | None = None
    if _WHOLE.match(text):
        ratio = int(Decimal(text))
    elif match := _RATIO.match(text):
        primary, secondary = int(match[1]), int(match[2])
        ratio = primary // secondary if secondary and primary % secondary == 0 else None
    return ratio if ratio is not None and 1 <= ratio <= MAX_CT_RATIO else None


def parse_billing_mode(text: str) -> BillingMode | None:
    key = re.sub(r"[\s_\-]", "", _fold(text))
    if key in _PREPAID:
        return BillingMode.PREPAID_METER
    if key in _CLOUD:
        return BillingMode.CLOUD_BILLED
    return None


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


def _pick(items: Sequence[_T], text: str, names: Callable[[_T], tuple[str, str]]) -> _T | None:
    """The item whose id is ``text``, else the only one whose id or name matches it ignoring case."""
    exact = [i for i in items if names(i)[0] == text]
    if exact:
        return exact[0]
    folded = [i for i in items if _fold(text) in (_fold(names(i)[0]), _fold(names(i)[1]))]
    return folded[0] if len(folded) == 1 else None


def _language(headers: Sequence[str]) -> str:
    """The language most of the recognised headers are in, for naming the columns a file lacks."""
    known = [h for h in headers if header_column(h) is not None] or list(headers)
    return "zh" if 2 * sum(1 for h in known if _is_cjk(h)) > len(known) else "en"


def _is_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)
