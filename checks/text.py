"""Customer-facing text from the zh_CN and en catalogs (gettext .po files read with Babel).

Keys are stable ids (`disk.usage.bad`), not English source strings, so a wording change in one
language never breaks the other. Catalogs are split per family (`locale/<lang>/<family>.po`) and
merged; other packages (the collector's reports) add their own directories.
"""

from __future__ import annotations

import locale
import os
from functools import lru_cache
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Tuple

from babel.messages.pofile import read_po

from checks.model import CheckResult, ParamValue

LANGS = ("zh_CN", "en")
DEFAULT_LANG = "zh_CN"
CHECKS_LOCALE = Path(__file__).with_name("locale")


def normalize_lang(lang: Optional[str]) -> str:
    """'zh', 'zh-CN', 'zh_CN.UTF-8' → 'zh_CN'; 'en_US' → 'en'; anything else → the default."""
    if not lang:
        return DEFAULT_LANG
    low = lang.lower().replace("-", "_")
    if low.startswith("zh"):
        return "zh_CN"
    if low.startswith("en") or low in ("c", "posix", "c.utf_8", "c.utf8"):
        return "en"
    return DEFAULT_LANG


def lang_from_environment() -> str:
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(var)
        if value:
            return normalize_lang(value)
    try:
        code = locale.getlocale()[0]
    except ValueError:
        code = None
    return normalize_lang(code)


@lru_cache(maxsize=None)
def _load(directory: Path, lang: str) -> Tuple[Tuple[str, str], ...]:
    merged: Dict[str, str] = {}
    folder = directory / lang
    for po in sorted(folder.glob("*.po")):
        with po.open("rb") as fh:
            catalog = read_po(fh, locale=lang)
        for message in catalog:
            if message.id and isinstance(message.id, str) and message.string:
                merged[message.id] = str(message.string)
    return tuple(merged.items())


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


class Texts:
    def __init__(self, lang: str, directories: Iterable[Path] = (CHECKS_LOCALE,)) -> None:
        self.lang = normalize_lang(lang)
        self._messages: Dict[str, str] = {}
        self._fallback: Dict[str, str] = {}
        for directory in directories:
            self._messages.update(_load(directory, self.lang))
            self._fallback.update(_load(directory, "en"))

    def has(self, key: str) -> bool:
        return key in self._messages

    def keys(self) -> List[str]:
        return sorted(self._messages)

    def get(self, key: str, params: Optional[Mapping[str, ParamValue]] = None) -> str:
        template = self._messages.get(key) or self._fallback.get(key)
        if template is None:
            return key
        values = _Blank({k: ("—" if v is None else v) for k, v in (params or {}).items()})
        return template.format_map(values)

    __call__ = get


@lru_cache(maxsize=None)
def texts(lang: str) -> Texts:
    return Texts(lang)


def render(results: Iterable[CheckResult], lang: str) -> List[CheckResult]:
    """Fill `summary` and `recommendation` of each result in `lang`."""
    t = texts(normalize_lang(lang))
    out: List[CheckResult] = []
    for r in results:
        update: Dict[str, object] = {"summary": t(r.message.key, r.message.params)}
        if r.recommendation_key:
            update["recommendation"] = t(r.recommendation_key, r.message.params)
        out.append(r.model_copy(update=update))
    return out
