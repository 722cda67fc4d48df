"""Reading uploaded .xlsx workbooks into rows of cell values, with openpyxl.

openpyxl is imported inside the method, on the first upload: ``import app`` must never load it (API cold
starts; an architecture test checks). A workbook is a zip archive, and 2 MB of zip can unpack to gigabytes
of XML, so the archive's declared sizes are checked before openpyxl opens it, and rows are read lazily
(read-only mode) with a cap on how many, blank ones included, are looked at.
"""

from __future__ import annotations

import io
import zipfile

from chalicelib.domain.meter_import import FileTooLarge, ImportRefused

MAX_UNPACKED_BYTES = 64 * 1024 * 1024
MAX_SCANNED_ROWS = 100_000  # blank but formatted rows count here; real rows are capped far lower by the caller


class XlsxReader:
    def rows(self, data: bytes, *, max_rows: int, max_columns: int) -> list[list[object]]:
        _check_archive(data)
        from openpyxl import load_workbook

        try:
            workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception as error:  # openpyxl raises anything from KeyError to XML errors on a damaged file
            raise ImportRefused("unreadable_xlsx") from error
        try:
            if not workbook.worksheets:
                raise ImportRefused("no_rows")
            return _read_rows(workbook.worksheets[0], max_rows, max_columns)
        finally:
            workbook.close()


def _check_archive(data: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, ValueError):
        raise ImportRefused("unreadable_xlsx") from None
    if not any(e.filename == "xl/workbook.xml" for e in entries):
        raise ImportRefused("not_a_table")
    if sum(e.file_size for e in entries) > MAX_UNPACKED_BYTES:
        raise FileTooLarge("too_large")


def _read_rows(sheet: object, max_rows: int, max_columns: int) -> list[list[object]]:
    rows: list[list[object]] = []
    filled = 0
    try:
        for scanned, values in enumerate(sheet.iter_rows(values_only=True), start=1):  # type: ignore[attr-defined]
            row = list(values)
            if len(row) > max_columns and any(v not in (None, "") for v in row[max_columns:]):
                raise ImportRefused("too_many_columns")
            rows.append(row[:max_columns])
            filled += any(v not in (None, "") for v in row)
            if filled > max_rows or scanned > MAX_SCANNED_ROWS:
                raise FileTooLarge("too_many_rows")
    except ImportRefused:
        raise
    except Exception as error:  # a damaged sheet fails while it is read, not only when opened
        raise ImportRefused("unreadable_xlsx") from error
    return rows
