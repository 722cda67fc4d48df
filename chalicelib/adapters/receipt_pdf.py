"""A receipt as a PDF: the same ``receipt.html`` and translations as the page, laid out by WeasyPrint.

The page is 80 mm wide: the receipt printers at a cashier's desk are 80 mm thermal roll printers (72 mm
printable), and a roll has no fixed length, so the page is cut to the receipt's own height instead of
wasting paper down to an A-size bottom.

WeasyPrint is imported inside the functions: it is slow to import and needs Pango, which the plain Lambda
runtime lacks, so ``import app`` must never pull it in.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.receipts import Receipt
from chalicelib.web.rendering import LOCALES, PORTAL_DIR, render_html

TEMPLATE = "receipt.html"
END_ANCHOR = "receipt-end"  # the empty element after the receipt's last line, where the paper is cut
PAGE_MARGIN_MM = 4
# Laid out on one very long page and then cut, because CSS has no "as long as the content" page size.
LAYOUT_LENGTH_MM = 2000
MM_TO_PX = 96 / 25.4  # WeasyPrint measures pages in CSS pixels

PDF_PAGE_CSS = f"""
@page {{ size: 80mm {LAYOUT_LENGTH_MM}mm; margin: {PAGE_MARGIN_MM}mm; }}
html, body {{ margin: 0; padding: 0; background: #fff; }}
.receipt {{ width: auto; max-width: none; }}
"""


@lru_cache(maxsize=1)
def _stylesheets() -> tuple[Any, ...]:
    from weasyprint import CSS

    # Parsed once per warm container; the portal's receipt rules plus the roll's page geometry.
    return (CSS(filename=str(PORTAL_DIR / "static" / "portal.css")), CSS(string=PDF_PAGE_CSS))


def receipt_html(receipt: Receipt, language: str) -> str:
    """The HTML the PDF is made from: the receipt page without its buttons, links or script."""
    if language not in LOCALES:
        raise ValidationError(f"no such language: {language!r}", field="language")
    return render_html(TEMPLATE, {"receipt": receipt, "locale": language, "for_pdf": True}, language)


def render_receipt_pdf(receipt: Receipt, language: str) -> bytes:
    """One page, 80 mm wide and as long as the receipt, fonts embedded (WenQuanYi Micro Hei for Chinese)."""
    from weasyprint import HTML

    html = receipt_html(receipt, language)
    document = HTML(string=html, base_url=str(PORTAL_DIR)).render(stylesheets=list(_stylesheets()))
    if len(document.pages) != 1:
        raise ValueError(f"a receipt must fit on one page, this one took {len(document.pages)}")
    page = document.pages[0]
    end_y = page.anchors[END_ANCHOR][1]  # (x, y, ...) in CSS pixels from the page's top-left corner
    # Page.height is WeasyPrint's public page size; the PDF writer draws from the top, so shrinking it
    # after layout cuts the unused length off the bottom without moving anything.
    page.height = min(page.height, end_y + PAGE_MARGIN_MM * MM_TO_PX)
    return bytes(document.write_pdf())
