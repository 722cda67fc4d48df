"""Writing exports as .xlsx with xlsxwriter in constant-memory mode: rows stream to the file as they come, so a
100,000-row export keeps only one row in memory. xlsxwriter is imported on the first export, never by
``import app`` (API cold starts; an architecture test checks)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path

Cell = str | int | Decimal | datetime | None
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def xlsx_bytes(sheet: str, headers: Sequence[str], rows: Iterable[Sequence[Cell]]) -> bytes:
    """One sheet: a bold header row, then the rows. Decimals are written as numbers with their own decimals
    shown, times as local wall-clock times without a zone (Excel has none)."""
    import xlsxwriter

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "export.xlsx"
        workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True, "tmpdir": folder})
        bold, when = workbook.add_format({"bold": True}), workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        decimals = {places: workbook.add_format({"num_format": "0." + "0" * places}) for places in range(1, 5)}
        page = workbook.add_worksheet(sheet[:31])
        page.write_row(0, 0, list(headers), bold)
        for r, row in enumerate(rows, start=1):
            for c, value in enumerate(row):
                if isinstance(value, datetime):
                    page.write_datetime(r, c, value.replace(tzinfo=None), when)
                elif isinstance(value, Decimal):
                    places = max(0, -int(value.as_tuple().exponent))
                    # xlsxwriter stores numbers as IEEE doubles (as Excel does): exact for these magnitudes
                    page.write_number(r, c, float(value), decimals.get(min(places, 4)))
                elif value is not None:
                    page.write(r, c, value)
        workbook.close()
        return path.read_bytes()
