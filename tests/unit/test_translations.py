"""Every message the templates show has a Simplified Chinese translation."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]


def template_messages() -> set[str]:
    found = extract_from_dir(str(ROOT / "portal" / "templates"),
                             method_map=[("**.html", "jinja2")],
                             options_map={"**.html": {"extensions": "jinja2.ext.i18n"}})
    return {message for _, _, message, _, _ in found if isinstance(message, str)}


def test_chinese_catalogue_covers_the_templates() -> None:
    with (ROOT / "portal/locale/zh_Hans/LC_MESSAGES/messages.po").open("rb") as handle:
        catalogue = {m.id: m.string for m in read_po(handle) if m.id}
    messages = template_messages()
    assert len(messages) > 50
    missing = sorted(m for m in messages if not catalogue.get(m))
    assert missing == []
