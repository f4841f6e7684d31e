"""Report text: the report catalogs (locale/<lang>/report.po) over the checks' catalogs.

Check summaries and recommendations come from checks/locale; the report's own headings, labels
and sentences from collector/reports/locale, so one `Texts` renders a whole report.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from checks.text import CHECKS_LOCALE, Texts, normalize_lang

REPORT_LOCALE = Path(__file__).with_name("locale")


@lru_cache(maxsize=None)
def report_texts(lang: str) -> Texts:
    return Texts(normalize_lang(lang), [CHECKS_LOCALE, REPORT_LOCALE])
