"""The console's catalogs: both languages complete, and every key the console asks for exists."""

from __future__ import annotations

import re
from pathlib import Path
from string import Formatter

import pytest
from babel.messages.pofile import read_po

from checks.model import Source
from collector.auth import Role
from collector.contracts import ServiceLevel
from collector.outbox import STATES
from collector.reports.score import Status
from collector.reports.store import BUILDING, BUILT, FAILED
from collector.ui.routes import UI_DIR, ui_texts

pytestmark = pytest.mark.py311

STATIC_KEY = re.compile(r"""["'](ui\.[a-z0-9_.]+[a-z0-9_])["']""")
DYNAMIC = {
    "ui.lang": ["zh_CN", "en"],
    "ui.role": [r.value for r in Role],
    "ui.level": [v.value for v in ServiceLevel],
    "ui.delivery": [*STATES, "none"],
    "ui.report_state": [BUILDING, BUILT, FAILED],
    "ui.status": [s.value for s in Status],
    "ui.source": [s.value for s in Source],
    "ui.chart": ["cpu", "memory", "load", "disk"],
    "ui.threshold": ["warning", "critical"],
    "ui.provenance": ["default", "profile", "config", "contract", "host", "item"],
}


def _catalog(lang: str) -> dict[str, str]:
    with (UI_DIR / "locale" / lang / "ui.po").open("rb") as fh:
        return {str(m.id): str(m.string) for m in read_po(fh) if m.id}


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(text) if name}


def test_both_languages_have_the_same_keys_and_placeholders() -> None:
    zh, en = _catalog("zh_CN"), _catalog("en")
    assert zh.keys() == en.keys()
    for key in zh:
        assert zh[key] and en[key], key
        assert _fields(zh[key]) == _fields(en[key]), key


def test_every_key_the_console_uses_exists() -> None:
    sources = [*UI_DIR.glob("*.py"), *(UI_DIR / "templates").glob("*.html")]
    used = {k for path in sources for k in STATIC_KEY.findall(Path(path).read_text("utf-8"))}
    used |= {f"{prefix}.{v}" for prefix, values in DYNAMIC.items() for v in values}
    known = _catalog("en").keys()
    assert sorted(used - known) == []
    for lang in ("zh_CN", "en"):
        t = ui_texts(lang)
        assert all(t.has(k) for k in used)
        assert t.has("severity.critical") and t.has("category.status")  # the checks' own texts
