"""Building blocks of the meter-import tests: a site to import into, files in both formats, multipart bodies."""

from __future__ import annotations

import io
import secrets
from collections.abc import Sequence

from chalicelib.adapters.clock import SystemClock
from chalicelib.bootstrap import get_services
from chalicelib.domain.tenancy import Building, Collector, Meter, Site, Transport, Unit
from chalicelib.services.audit import operation
from tests.conftest import OperatorFixture

HEADER = ["Meter ID", "Serial", "Model", "Collector", "Modbus address", "Building", "Floor", "Unit", "CT ratio",
          "Billing mode", "New unit"]


def make_site(operator: OperatorFixture, *, collectors: int = 2) -> str:
    """Buildings A (floors 1, 2) and B (floor 1), units A101 A102 A201 B101, collectors coll_1.., and one meter
    already on coll_1 at address 1 (serial SN-EXIST, unit A101)."""
    services, op = get_services(), operator.operator_id
    site_id, now = f"site_{secrets.token_hex(4)}", SystemClock().now()
    services.tenancy.add_site(Site(op, site_id, "Import park"), operation(op, "test", "site.create", site_id, now))
    for building in (Building(op, site_id, "bldg_a", "Building A", ("1", "2")),
                     Building(op, site_id, "bldg_b", "Building B", ("1",))):
        services.tenancy.add_building(building, operation(op, "test", "building.create", building.building_id, now))
    services.tenancy.add_units([Unit(op, site_id, "unit_a101", "bldg_a", "1", "A101"),
                                Unit(op, site_id, "unit_a102", "bldg_a", "1", "A102"),
                                Unit(op, site_id, "unit_a201", "bldg_a", "2", "A201"),
                                Unit(op, site_id, "unit_b101", "bldg_b", "1", "B101")])
    services.tenancy.add_collectors([Collector(op, site_id, f"coll_{n}", f"Collector {n}", Transport.RTU_OVER_TCP,
                                               "127.0.0.1", 5020 + n) for n in range(1, collectors + 1)])
    services.tenancy.add_meters([Meter(op, site_id, "m_exist", "SN-EXIST", "DTSY1352", "coll_1", 1, "unit_a101")])
    return site_id


def csv_bytes(rows: Sequence[Sequence[object]], header: Sequence[str] = HEADER, *, bom: bool = True) -> bytes:
    lines = [",".join(str(c) for c in header), *(",".join(str(c) for c in row) for row in rows)]
    return ("\ufeff" if bom else "").encode() + "\r\n".join(lines).encode("utf-8")


def xlsx_bytes(rows: Sequence[Sequence[object]], header: Sequence[str] = HEADER) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(list(header))
    for row in rows:
        sheet.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def good_rows() -> list[list[object]]:
    """Three meters: two into existing units, one declaring a new unit A103."""
    return [["m_a102", "SN-A102", "DTSY1352", "coll_1", 2, "Building A", 1, "A102", "", "", ""],
            ["m_a201", "SN-A201", "ACR", "coll_2", 7, "", "", "A201", "200/5", "cloud-billed", ""],
            ["m_a103", "SN-A103", "dtsy1352", "Collector 2", 8, "bldg_a", 1, "A103", 1, "prepaid-meter", "yes"]]


def bad_rows() -> list[list[object]]:
    """Good rows plus one whose address duplicates the stored meter's on coll_1."""
    return [*good_rows(), ["m_bad", "SN-BAD", "DTSY1352", "coll_1", 1, "", "", "B101", "", "", ""]]


def multipart(fields: dict[str, str], file: tuple[str, str, bytes] | None = None) -> tuple[bytes, str]:
    boundary = f"----voltvend{secrets.token_hex(8)}"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    if file is not None:
        name, content_type, data = file
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
                     f"Content-Type: {content_type}\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"
