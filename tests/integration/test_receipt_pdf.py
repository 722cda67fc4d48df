"""Receipts rendered for real: the printable page through the portal's Jinja environment, and the PDF through
WeasyPrint, read back with poppler (pdftotext, pdfinfo, pdffonts)."""

from __future__ import annotations

import re
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.receipt_pdf import receipt_html, render_receipt_pdf
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.receipts import Receipt, receipt_number_for
from chalicelib.web.rendering import render_html

SALE = Receipt(
    receipt_number=receipt_number_for("riverside", "e-sale-1"), kind="sale", operator_name="Riverside Property",
    site_name="Riverside Business Park", unit="B2-0315", customer_name="Noodle House 面馆", meter_id="m-0003",
    meter_serial="000012345678", amount_minor=12550, currency="CNY", energy_price_e4=12345, energy_centi_kwh=10166,
    purchase_count=17, delivery_state="delivered", cashier="li.cashier", channel="cash",
    issued_at=datetime(2026, 11, 23, 14, 5, 9, tzinfo=timezone(timedelta(hours=8))))
REVERSAL = Receipt(
    receipt_number=receipt_number_for("riverside", "e-rev-1"), kind="reversal", operator_name="Riverside Property",
    site_name="Riverside Business Park", unit="B2-0315", customer_name="Noodle House 面馆", meter_id="m-0003",
    meter_serial="000012345678", amount_minor=12550, currency="CNY", energy_price_e4=None, energy_centi_kwh=None,
    purchase_count=None, delivery_state="pending", cashier="wang.admin", channel="cash",
    issued_at=datetime(2026, 11, 23, 15, 0, 0, tzinfo=timezone(timedelta(hours=8))),
    reason="sold to the wrong meter", reverses_receipt=SALE.receipt_number)


def page(receipt: Receipt, locale: str) -> str:
    # The context views.render() gives every page, with a stand-in url() that needs no settings.
    context: dict[str, Any] = {"receipt": receipt, "locale": locale, "url": lambda path: f"/api{path}",
                               "pdf_url": f"/api/receipts/{receipt.receipt_number}.pdf"}
    return render_html("receipt.html", context, locale)


def pdf_text(tmp_path: Path, receipt: Receipt, language: str) -> tuple[str, str, str]:
    pdf = tmp_path / f"{receipt.receipt_number}-{language}.pdf"
    pdf.write_bytes(render_receipt_pdf(receipt, language))
    outputs = [subprocess.run([tool, str(pdf), *extra], capture_output=True, text=True, check=True, timeout=30).stdout
               for tool, extra in (("/usr/bin/pdftotext", ["-"]), ("/usr/bin/pdfinfo", []), ("/usr/bin/pdffonts", []))]
    return outputs[0], outputs[1], outputs[2]


# -- the page --------------------------------------------------------------------------------------------------


def test_the_page_shows_every_field_with_its_label() -> None:
    html = page(SALE, "en")
    for text in (SALE.receipt_number, "Sale receipt", "Riverside Property", "Riverside Business Park", "B2-0315",
                 "Noodle House 面馆", "m-0003", "000012345678", "CNY 125.50", "101.66 kWh", "1.2345 CNY/kWh",
                 "Written into the meter", "Purchase count", ">17<", "li.cashier", ">Cash<",
                 "2026-11-23 14:05:09+08:00", "Meter serial number", "Cashier", "Payment method"):
        assert text in html, text
    assert 'href="/api/receipts/' + SALE.receipt_number + '.pdf"' in html
    assert 'id="print-receipt"' in html and 'src="/api/static/receipt.js"' in html
    assert "Reverses receipt" not in html and "Reason" not in html


def test_a_reversal_page_in_chinese_says_what_it_reverses_and_why() -> None:
    html = page(REVERSAL, "zh_Hans")
    for text in ("冲正小票", "冲正金额", "被冲正单据号", SALE.receipt_number, "原因", "sold to the wrong meter",
                 "等待发送到电表", "电表确认后生成", "收费员", "wang.admin", 'lang="zh-Hans"', "打印", "下载 PDF"):
        assert text in html, text
    assert "kWh" not in html  # sold by amount: no energy or price lines


def test_the_pdf_html_has_no_buttons_links_or_scripts() -> None:
    html = receipt_html(SALE, "en")
    assert SALE.receipt_number in html
    assert "<script" not in html and "print-receipt" not in html and "<a " not in html and "<link" not in html


def test_an_unknown_language_is_refused() -> None:
    with pytest.raises(ValidationError):
        render_receipt_pdf(SALE, "fr")


# -- the PDF ---------------------------------------------------------------------------------------------------


def test_english_pdf_is_one_roll_width_page_with_the_receipt(tmp_path: Path) -> None:
    text, info, _ = pdf_text(tmp_path, SALE, "en")
    for expected in (SALE.receipt_number, "CNY 125.50", "000012345678", "li.cashier", "Sale receipt"):
        assert expected in text, expected
    assert re.search(r"^Pages:\s+1$", info, re.MULTILINE)
    width, height = map(float, re.search(r"Page size:\s+([\d.]+) x ([\d.]+) pts", info).groups())  # type: ignore[union-attr]
    assert abs(width - 80 / 25.4 * 72) < 0.5  # 80 mm roll
    assert 90 / 25.4 * 72 < height < 200 / 25.4 * 72  # cut to the receipt, not the 2 m layout length


def test_chinese_pdf_embeds_the_cjk_font(tmp_path: Path) -> None:
    text, info, fonts = pdf_text(tmp_path, REVERSAL, "zh_Hans")
    for expected in (REVERSAL.receipt_number, "CNY 125.50", "000012345678", "wang.admin", "冲正小票", "面馆",
                     SALE.receipt_number):
        assert expected in text, expected
    assert re.search(r"^Pages:\s+1$", info, re.MULTILINE)
    cjk = [line for line in fonts.splitlines() if "WenQuanYi" in line]
    assert cjk and all(line.split()[-5:-3] == ["yes", "yes"] for line in cjk)  # embedded, subset
