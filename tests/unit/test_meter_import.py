"""The meter-import reader and validator: every rule, CSV and .xlsx, English and Chinese headers."""

from __future__ import annotations

import io
from collections.abc import Sequence

import pytest

from chalicelib.adapters.spreadsheets import XlsxReader
from chalicelib.domain.meter_import import (
    MAX_ROWS,
    MESSAGES,
    REFUSALS,
    Column,
    FileTooLarge,
    ImportPlan,
    ImportRefused,
    ModelInfo,
    Problem,
    SiteContext,
    cell_text,
    header_column,
    parse_billing_mode,
    parse_ct_ratio,
    plan_import,
    read_csv,
    sheet_from_rows,
    sniff_format,
    template_csv,
)
from chalicelib.domain.tenancy import BillingMode, Building, Collector, Meter, Transport, Unit

OP, SITE = "op", "site_1"
HEADER = "Meter ID,Serial,Model,Collector,Modbus address,Building,Floor,Unit,CT ratio,Billing mode,New unit"
MODELS = {"DTSY1352": ModelInfo("DTSY1352", True), "ACR": ModelInfo("ACR", False)}


def site(*, meters: Sequence[Meter] = (), elsewhere: Sequence[Meter] = ()) -> SiteContext:
    buildings = [Building(OP, SITE, "bldg_a", "Building A", ("1", "2")), Building(OP, SITE, "bldg_b", "Building B")]
    units = [Unit(OP, SITE, "unit_a101", "bldg_a", "1", "A101"), Unit(OP, SITE, "unit_a201", "bldg_a", "2", "A201"),
             Unit(OP, SITE, "unit_b101", "bldg_b", "1", "B101"), Unit(OP, SITE, "unit_x1", "bldg_a", "1", "101"),
             Unit(OP, SITE, "unit_x2", "bldg_b", "1", "101")]
    collectors = [Collector(OP, SITE, f"coll_{n}", f"Collector {n}", Transport.RTU_OVER_TCP, "h", 1) for n in (1, 2)]
    stored = [Meter(OP, SITE, "m_old", "SN-OLD", "DTSY1352", "coll_1", 1, "unit_a101"), *meters]
    return SiteContext(OP, SITE, buildings, units, collectors, stored, [*stored, *elsewhere],
                       lambda text: MODELS.get(text.strip().upper()), sorted(MODELS))


def plan(text: str, context: SiteContext | None = None) -> ImportPlan:
    ids = iter(f"unit_new{n}" for n in range(1, 1000))
    return plan_import(read_csv(text.encode("utf-8")), context or site(), lambda: next(ids))


def problems(text: str, context: SiteContext | None = None) -> list[tuple[int, str, str]]:
    return [(p.row, p.column, p.code) for p in plan(text, context).problems]


def rows(*lines: str) -> str:
    return "\n".join([HEADER, *lines])


GOOD = "m_1,SN-1,DTSY1352,coll_1,2,,,A101,,,"


def test_a_good_row_becomes_a_meter_with_defaults() -> None:
    result = plan(rows(GOOD, "m_2,SN-2,acr,Collector 2,3,Building A,2,A201,200/5,,"))
    assert result.ok and result.rows == 2 and result.units == ()
    first, second = result.meters
    assert (first.meter_id, first.collector_id, first.address, first.unit_id, first.ct_ratio, first.billing_mode) == \
        ("m_1", "coll_1", 2, "unit_a101", 1, BillingMode.PREPAID_METER)
    assert (second.model, second.collector_id, second.ct_ratio, second.billing_mode) == \
        ("ACR", "coll_2", 40, BillingMode.CLOUD_BILLED)


@pytest.mark.parametrize(("line", "column", "code"), [
    (",SN-1,DTSY1352,coll_1,2,,,A101,,,", "Meter ID", "required"),
    ("m 1,SN-1,DTSY1352,coll_1,2,,,A101,,,", "Meter ID", "bad_meter_id"),
    ("m_1,,DTSY1352,coll_1,2,,,A101,,,", "Serial", "required"),
    ("m_1,SN-1,,coll_1,2,,,A101,,,", "Model", "required"),
    ("m_1,SN-1,XYZ-9,coll_1,2,,,A101,,,", "Model", "unknown_model"),
    ("m_1,SN-1,DTSY1352,,2,,,A101,,,", "Collector", "required"),
    ("m_1,SN-1,DTSY1352,coll_9,2,,,A101,,,", "Collector", "unknown_collector"),
    ("m_1,SN-1,DTSY1352,coll_1,,,,A101,,,", "Modbus address", "required"),
    ("m_1,SN-1,DTSY1352,coll_1,0,,,A101,,,", "Modbus address", "bad_address"),
    ("m_1,SN-1,DTSY1352,coll_1,248,,,A101,,,", "Modbus address", "bad_address"),
    ("m_1,SN-1,DTSY1352,coll_1,2.5,,,A101,,,", "Modbus address", "bad_address"),
    ("m_1,SN-1,DTSY1352,coll_1,0x10,,,A101,,,", "Modbus address", "bad_address"),
    ("m_1,SN-1,DTSY1352,coll_1,-3,,,A101,,,", "Modbus address", "bad_address"),
    ("m_1,SN-1,DTSY1352,coll_1,2,,,,,,", "Unit", "required"),
    ("m_1,SN-1,DTSY1352,coll_1,2,,,Z999,,,", "Unit", "unknown_unit"),
    ("m_1,SN-1,DTSY1352,coll_1,2,,,101,,,", "Unit", "ambiguous_unit"),
    ("m_1,SN-1,DTSY1352,coll_1,2,Building Q,,A101,,,", "Building", "unknown_building"),
    ("m_1,SN-1,DTSY1352,coll_1,2,,2,A101,,,", "Floor", "unit_elsewhere"),
    ("m_1,SN-1,DTSY1352,coll_1,2,,,A101,0,,", "CT ratio", "bad_ct_ratio"),
    ("m_1,SN-1,DTSY1352,coll_1,2,,,A101,200/3,,", "CT ratio", "bad_ct_ratio"),
    ("m_1,SN-1,DTSY1352,coll_1,2,,,A101,10001,,", "CT ratio", "bad_ct_ratio"),
    ("m_1,SN-1,DTSY1352,coll_1,2,,,A101,-5,,", "CT ratio", "bad_ct_ratio"),
    ("m_1,SN-1,DTSY1352,coll_1,2,,,A101,,postpaid,", "Billing mode", "bad_billing_mode"),
    ("m_1,SN-1,ACR,coll_1,2,,,A101,,prepaid-meter,", "Billing mode", "model_not_prepaid"),
    ("m_1,SN-1,DTSY1352,coll_1,2,,,A101,,,perhaps", "New unit", "bad_new_unit"),
    ("m_1,SN-1,DTSY1352,coll_1,1,,,A101,,,", "Modbus address", "address_taken"),
    ("m_old,SN-1,DTSY1352,coll_1,2,,,A101,,,", "Meter ID", "meter_id_taken"),
    ("M_OLD,SN-1,DTSY1352,coll_1,2,,,A101,,,", "Meter ID", "meter_id_taken"),
    ("m_1,sn-old,DTSY1352,coll_1,2,,,A101,,,", "Serial", "serial_taken"),
    ("m_1,SN-1,DTSY1352,coll_1,2,,,A101,,," + "x" * 201, "New unit", "too_long"),
])
def test_each_rule_names_its_row_and_column(line: str, column: str, code: str) -> None:
    assert problems(rows(GOOD.replace("m_1,SN-1", "m_0,SN-0").replace(",2,", ",3,"), line)) == [(3, column, code)]


def test_every_problem_of_a_row_is_reported_not_only_the_first() -> None:
    found = problems(rows("m 1,SN-1,XYZ,coll_9,300,,,Z1,0,foo,maybe"))
    assert [c for _, c, _ in found] == ["Meter ID", "Model", "Collector", "Modbus address", "Unit", "CT ratio",
                                        "Billing mode", "New unit"]


def test_duplicates_within_the_file_point_at_the_first_row() -> None:
    result = plan(rows(GOOD, "m_1,SN-1,DTSY1352,coll_1,2,,,A101,,,", "m_3,SN-3,DTSY1352,coll_2,2,,,A101,,,"))
    assert [(p.row, p.code, p.params.get("other")) for p in result.problems] == [
        (3, "duplicate_meter_id", "2"), (3, "duplicate_serial", "2"), (3, "duplicate_address", "2")]
    assert "also on row 2" in result.problems[0].message


def test_meter_ids_and_serials_of_other_sites_count_too() -> None:
    elsewhere = [Meter(OP, "site_2", "m_far", "SN-FAR", "DTSY1352", "coll_x", 1, "u")]
    found = problems(rows("m_far,SN-FAR,DTSY1352,coll_1,2,,,A101,,,"), site(elsewhere=elsewhere))
    assert found == [(2, "Meter ID", "meter_id_taken"), (2, "Serial", "serial_taken")]


def test_a_bus_carries_at_most_32_meters() -> None:
    lines = [f"m_{n},SN-{n},DTSY1352,coll_1,{n},,,A101,,," for n in range(2, 34)]  # 32 more on a bus holding one
    result = plan(rows(*lines))
    assert [(p.row, p.code) for p in result.problems] == [(33, "bus_full")]
    assert result.problems[0].params["count"] == "33"
    assert plan(rows(*lines[:-1])).ok


def test_a_declared_unit_is_created_once_and_usable_by_other_rows() -> None:
    result = plan(rows("m_1,SN-1,DTSY1352,coll_1,2,,,A105,,,",
                       "m_2,SN-2,DTSY1352,coll_1,3,Building A,1,A105,,,yes",
                       "m_3,SN-3,DTSY1352,coll_1,4,bldg_a,1,a105,,,是"))
    assert result.ok
    assert [(u.unit_id, u.building_id, u.floor, u.number) for u in result.units] == [
        ("unit_new1", "bldg_a", "1", "A105")]
    assert {m.unit_id for m in result.meters} == {"unit_new1"}


def test_declaring_an_existing_unit_uses_it() -> None:
    result = plan(rows("m_1,SN-1,DTSY1352,coll_1,2,Building A,1,A101,,,yes"))
    assert result.ok and result.units == () and result.meters[0].unit_id == "unit_a101"


@pytest.mark.parametrize(("line", "expected"), [
    ("m_1,SN-1,DTSY1352,coll_1,2,,1,A105,,,yes", [(2, "Building", "required")]),
    ("m_1,SN-1,DTSY1352,coll_1,2,Building A,,A105,,,yes", [(2, "Floor", "required")]),
    ("m_1,SN-1,DTSY1352,coll_1,2,Building A,9,A105,,,yes", [(2, "Floor", "unknown_floor")]),
    ("m_1,SN-1,DTSY1352,coll_1,2,Building Q,1,A105,,,yes", [(2, "Building", "unknown_building")]),
    ("m_1,SN-1,DTSY1352,coll_1,2,Building A,2,A101,,,yes", [(2, "Floor", "unit_elsewhere")]),
])
def test_a_declared_unit_needs_an_existing_building_and_floor(line: str, expected: list[tuple[int, str, str]]) -> None:
    assert problems(rows(line)) == expected


def test_a_unit_declared_twice_with_different_floors_is_a_problem() -> None:
    found = problems(rows("m_1,SN-1,DTSY1352,coll_1,2,Building A,1,A105,,,yes",
                          "m_2,SN-2,DTSY1352,coll_1,3,Building A,2,A105,,,yes"))
    assert found == [(3, "Floor", "unit_declared_twice")]


def test_a_building_without_listed_floors_accepts_any_floor() -> None:
    assert plan(rows("m_1,SN-1,DTSY1352,coll_1,2,Building B,7,B701,,,yes")).ok


def test_the_building_resolves_a_unit_number_repeated_across_buildings() -> None:
    result = plan(rows("m_1,SN-1,DTSY1352,coll_1,2,Building B,,101,,,"))
    assert result.ok and result.meters[0].unit_id == "unit_x2"


def test_chinese_headers_and_values() -> None:
    text = ("电表编号,表号,型号,采集器,通讯地址,楼栋,楼层,户号,CT变比,计费方式,新建户号\n"
            "m_1,SN-1,DTSY1352,coll_1,2,,,A101,,预付费,否\n"
            "m_2,SN-2,ACR,coll_1,3,楼A,,A201,,云端计费,\n")
    found = plan(text)
    assert [(p.row, p.column, p.code) for p in found.problems] == [(3, "楼栋", "unknown_building")]


@pytest.mark.parametrize("header", [
    "meter_id,serial,model,collector (bus),ADDRESS,unit",
    " Meter ID * , Serial Number ,Model/Profile,Bus,Modbus Address (1-247),Shop No.",
    "电表编号,出厂编号,规格型号,通讯管理机,Modbus地址,商铺号",
    "ＭＥＴＥＲ　ＩＤ,表号,型号,采集器,通讯地址,户号",  # full-width, as Chinese input methods type it
])
def test_header_spellings(header: str) -> None:
    assert plan(f"{header}\nm_1,SN-1,DTSY1352,coll_1,2,A101\n").ok


def test_header_problems_are_reported_on_the_header_row_and_stop_there() -> None:
    found = problems("Meter ID,Serial,Serial number,Model,Colour,Notes,备注\nm_1,SN-1,SN-1,DTSY1352,red,x,y\n")
    assert found == [(1, "Serial number", "duplicate_column"), (1, "Colour", "unknown_column"),
                     (1, "Collector", "missing_column"), (1, "Modbus address", "missing_column"),
                     (1, "Unit", "missing_column")]
    chinese = problems("电表编号,表号,型号\nm_1,SN-1,DTSY1352\n")
    assert [c for _, c, _ in chinese] == ["采集器", "通讯地址", "户号"]


def test_a_title_row_above_the_header_keeps_row_numbers() -> None:
    text = "Meters for Building A,,,\n\n" + rows(GOOD, "", "m_2,SN-2,DTSY1352,coll_1,2,,,A101,,,")
    result = plan(text)
    assert result.sheet.header_row == 3
    assert [(p.row, p.code) for p in result.problems] == [(6, "duplicate_address")]


def test_a_checked_sheet_travels_as_csv_with_its_row_numbers() -> None:
    text = "Title\n\n" + rows(GOOD, "", "", "m_2,SN-2,DTSY1352,coll_1,3,,,A101,,,")
    sheet = read_csv(text.encode())
    again = read_csv(sheet.to_csv().encode())
    assert again == sheet and [n for n, _ in again.rows] == [4, 7]


@pytest.mark.parametrize(("data", "encoding_note"), [
    (("\ufeff" + rows(GOOD)).encode("utf-8"), "UTF-8 with BOM"),
    (rows(GOOD).replace("Unit", "户号").encode("gb18030"), "GB 18030 (Excel on Chinese Windows)"),
    (("\ufeff" + rows(GOOD)).encode("utf-16-le").join([b"\xff\xfe", b""]), "UTF-16 with BOM"),
    (rows(GOOD).replace(",", ";").encode(), "semicolons (European Excel)"),
    (rows(GOOD).replace(",", "\t").encode(), "tabs"),
    (rows(" m_1 , SN-1 ,\tDTSY1352 , coll_1 , 2.0 ,,,A101 ,,,").encode(), "spaces and 2.0"),
    (rows("ｍ_1,SN-1,DTSY1352,coll_1,２,,,A101,,,").encode(), "full-width characters"),
    (rows(GOOD).replace("\n", "\r\n").encode(), "CRLF"),
])
def test_csv_dialects_and_encodings(data: bytes, encoding_note: str) -> None:
    result = plan_import(read_csv(data), site(), lambda: "unit_new")
    assert result.ok, encoding_note
    assert (result.meters[0].meter_id, result.meters[0].address) == ("m_1", 2)


def xlsx(table: Sequence[Sequence[object]]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    for row in table:
        book.active.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def xlsx_plan(table: Sequence[Sequence[object]]) -> ImportPlan:
    data = xlsx(table)
    assert sniff_format(data) == "xlsx"
    return plan_import(sheet_from_rows(XlsxReader().rows(data, max_rows=MAX_ROWS + 11, max_columns=40)), site(),
                       lambda: "unit_new")


def test_xlsx_numbers_and_empty_cells() -> None:
    result = xlsx_plan([HEADER.split(","), ["m_1", 12345678.0, "DTSY1352", "coll_1", 12.0, None, None, "A101", 40.0],
                        [], ["m_2", "SN-2", "ACR", "coll_2", 3, "Building A", 2.0, "A201", "200/5", "cloud"]])
    assert result.ok
    assert [(m.serial, m.address, m.ct_ratio) for m in result.meters] == [("12345678", 12, 40), ("SN-2", 3, 40)]


def test_xlsx_problems_use_the_spreadsheet_row_numbers() -> None:
    result = xlsx_plan([["电表清单"], HEADER.split(","),
                        ["m_1", "SN-1", "DTSY1352", "coll_1", 2.5, None, None, "A101"]])
    assert [(p.row, p.column, p.code) for p in result.problems] == [(3, "Modbus address", "bad_address")]


def test_damaged_and_hostile_workbooks_are_refused() -> None:
    good = xlsx([HEADER.split(",")])
    with pytest.raises(ImportRefused) as damaged:
        XlsxReader().rows(good[: len(good) // 2], max_rows=10, max_columns=40)
    assert damaged.value.code == "unreadable_xlsx"
    zipped = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("hello.txt", "not a workbook")
    with pytest.raises(ImportRefused) as other_zip:
        XlsxReader().rows(zipped.getvalue(), max_rows=10, max_columns=40)
    assert other_zip.value.code == "not_a_table"


def test_too_many_rows_in_a_workbook_stops_reading_early() -> None:
    table = [HEADER.split(",")] + [[f"m_{n}", f"S{n}", "DTSY1352", "coll_1", 2, "", "", "A101"] for n in range(60)]
    with pytest.raises(FileTooLarge):
        XlsxReader().rows(xlsx(table), max_rows=50, max_columns=40)


@pytest.mark.parametrize(("data", "code"), [
    (b"", "no_file"),
    (b"  \r\n ", "no_file"),
    (b"x" * (2 * 1024 * 1024 + 1), "too_large"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "old_xls"),
    (b"%PDF-1.7\n\x00\x01\x02", "not_a_table"),
])
def test_files_refused_before_reading(data: bytes, code: str) -> None:
    with pytest.raises(ImportRefused) as refused:
        sniff_format(data)
    assert refused.value.code == code
    assert refused.value.status == (413 if code == "too_large" else 400)


def test_too_many_rows_and_columns_and_no_rows_are_refused() -> None:
    with pytest.raises(FileTooLarge) as too_many:
        read_csv((HEADER + "\n" + "m,S,DTSY1352,coll_1,2,,,A101\n" * (MAX_ROWS + 1)).encode())
    assert too_many.value.code == "too_many_rows" and too_many.value.status == 413
    assert plan_import(read_csv((HEADER + "\n" + "\n".join(
        f"m_{n},S{n},DTSY1352,coll_1,2,,,A101" for n in range(MAX_ROWS))).encode()), site(), str).rows == MAX_ROWS
    with pytest.raises(ImportRefused, match="40 columns"):
        read_csv(("," * 45 + "x\n").encode())
    with pytest.raises(ImportRefused, match="no meter rows"):
        read_csv((HEADER + "\n\n,,,\n").encode())


def test_cell_text() -> None:
    assert [cell_text(v) for v in (None, 12.0, 12.5, 7, True, " \ufeffA101\u200b ", "１２", "a\nb")] == \
        ["", "12", "12.5", "7", "yes", "A101", "12", "a b"]


def test_small_parsers() -> None:
    assert [parse_ct_ratio(t) for t in ("1", "40", "40.0", "200/5", "200 / 5", "10000", "0", "3/0", "7/2")] == \
        [1, 40, 40, 40, 40, 10000, None, None, None]
    assert [parse_billing_mode(t) for t in ("Prepaid-Meter", "prepaid meter", "表内预付费", "Cloud-billed",
                                            "云端计费", "monthly")] == [BillingMode.PREPAID_METER] * 3 + \
        [BillingMode.CLOUD_BILLED] * 2 + [None]


def test_template_headers_read_back_in_both_languages() -> None:
    for language in ("en", "zh_Hans"):
        header = template_csv(language).lstrip("\ufeff").strip().split(",")
        assert [header_column(h) for h in header] == list(Column)


def test_every_code_has_a_translated_text_in_the_portal() -> None:
    from chalicelib.web.rendering import environment

    texts = environment("zh_Hans").get_template("meter_import_texts.html").module
    params = {"value": "V", "column": "C", "other": "2", "collector": "c1", "known": "K", "limit": "32",
              "count": "33", "floor": "1", "building": "B"}
    for code, english in MESSAGES.items():
        shown = str(texts.problem_text(Problem(2, "x", code, params)))
        assert shown.strip() and shown != english.format(**params), code
    for code in REFUSALS:
        assert str(texts.refusal_text(code)).strip(), code
