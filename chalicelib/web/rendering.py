"""Server-side pages: Jinja2 templates from ``portal/``, translated with Babel gettext catalogues.

The portal folder sits beside ``app.py`` locally and in the Lambda package (the build copies it into
``vendor/``, whose contents land at the package root). Catalogues are compiled from the ``.po``
files in memory on first use, so there is no build step that could leave a stale ``.mo`` behind.
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path
from typing import Any

from chalice.app import Response

LOCALES = {"en": "English", "zh_Hans": "简体中文"}
DEFAULT_LOCALE = "en"
PORTAL_DIR = Path(__file__).resolve().parents[2] / "portal"


def pick_locale(cookie_value: str | None, accept_language: str | None) -> str:
    """The user's choice (cookie), else the browser's first supported language, else English."""
    if cookie_value in LOCALES:
        return str(cookie_value)
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh_Hans"
        if tag.startswith("en"):
            return "en"
    return DEFAULT_LOCALE


@lru_cache(maxsize=len(LOCALES))
def _translations(locale: str) -> Any:
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po
    from babel.support import NullTranslations, Translations

    po_path = PORTAL_DIR / "locale" / locale / "LC_MESSAGES" / "messages.po"
    if not po_path.exists():
        return NullTranslations()
    with po_path.open("rb") as handle:
        catalog = read_po(handle, locale=locale.replace("_Hans", "_Hans_CN"))
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer)


@lru_cache(maxsize=len(LOCALES))
def environment(locale: str) -> Any:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=FileSystemLoader(str(PORTAL_DIR / "templates")),
        autoescape=select_autoescape(["html", "xml", "svg"]),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    translations = _translations(locale)
    env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
    env.globals["gettext"] = _gettext(translations)  # what ``_()`` in a template calls
    env.filters["amount"] = _amount
    env.filters["when"] = _when
    env.filters["price"] = _price
    return env


def _gettext(translations: Any) -> Any:
    """What ``_()`` in a template calls. Unlike Jinja's new-style gettext, a message without variables is returned
    as plain text, so autoescaping escapes it: templates pass error messages through ``_()``, and those can carry
    what someone typed (Jinja marks every message safe, which let such text into the page as HTML). And only a
    message given variables is %-formatted: a "%" in someone's text is no placeholder. Our catalogue holds no
    markup, so escaping a translation changes nothing."""
    from jinja2 import pass_context
    from markupsafe import Markup

    @pass_context
    def gettext(context: Any, message: str, **variables: Any) -> str:
        text = translations.gettext(message)
        if not variables:
            return str(text)
        if context.eval_ctx.autoescape:
            return Markup(text) % variables  # the template's own message; the values are escaped into it
        return str(text % variables)

    return gettext


def _amount(minor: int | None) -> str:
    from chalicelib.domain.money import format_amount

    return "" if minor is None else format_amount(minor)


def _price(price_e4: int | None) -> str:
    """A price per kWh as the meter holds it (1/10000 of the currency), with its four decimals."""
    from chalicelib.domain.receipts import format_price_e4

    return "" if price_e4 is None else format_price_e4(price_e4)


def _when(moment: Any) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")


def render_html(template: str, context: dict[str, Any], locale: str) -> str:
    return str(environment(locale).get_template(template).render(**context))


def html_response(body: str, status: int = 200, headers: dict[str, Any] | None = None) -> Response:
    all_headers: dict[str, Any] = {
        "Content-Type": "text/html; charset=utf-8",
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
        "Content-Security-Policy": "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:",
    }
    all_headers.update(headers or {})
    return Response(body=body, status_code=status, headers=all_headers)
