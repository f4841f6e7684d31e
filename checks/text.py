"""Customer-facing text from the zh_CN and en catalogs (gettext .po files read with Babel).

Keys are stable ids (`disk.usage.bad`), not English source strings, so a wording change in one
language never breaks the other. Catalogs are split per family (`locale/<lang>/<family>.po`) and
merged; other packages (the collector's reports) add their own directories.
"""

from __future__ import annotations

import locale
import os
import re
from datetime import datetime, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Tuple

from babel.messages.pofile import read_po

from checks.model import CheckResult, ParamValue
from checks.units import human_bytes

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


def _number(value: object) -> str:
    """No exponents for people: 5261714.0 → '5,261,714', 97.5 → '97.5'."""
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:g}"
    return str(value)


_ISO_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:\d{2}|Z)$")


def _display(value: ParamValue, tz: Optional[tzinfo]) -> object:
    """Rules pass instants as ISO 8601 (language- and zone-neutral); people read local time."""
    if value is None:
        return "—"
    if isinstance(value, str) and _ISO_INSTANT.match(value):
        instant = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(tz)
        return instant.strftime("%Y-%m-%d %H:%M %Z").strip()
    return value


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


class Texts:
    def __init__(
        self,
        lang: str,
        directories: Iterable[Path] = (CHECKS_LOCALE,),
        tz: Optional[tzinfo] = None,
    ) -> None:
        """`tz`: the zone instants are shown in (a contract's); None is this host's own."""
        self.lang = normalize_lang(lang)
        self.tz = tz
        self._messages: Dict[str, str] = {}
        self._fallback: Dict[str, str] = {}
        for directory in directories:
            self._messages.update(_load(directory, self.lang))
            self._fallback.update(_load(directory, "en"))

    def in_zone(self, tz: Optional[tzinfo]) -> "Texts":
        """The same catalogs showing instants in `tz` (one contract's zone on a shared page)."""
        other = object.__new__(Texts)
        other.__dict__.update(self.__dict__)
        other.tz = tz
        return other

    def has(self, key: str) -> bool:
        return key in self._messages

    def unit(self, unit: Optional[str]) -> str:
        """A unit as readers of this language write it: d → 天 / days; symbols stay as they are."""
        if not unit:
            return ""
        key = f"unit.{unit}"
        return self._messages.get(key) or self._fallback.get(key) or unit

    def quantity(self, value: object, unit: Optional[str]) -> str:
        """'97.5%', '3 天', '120 ms': symbols stick to the number, words get a space."""
        if unit in ("B", "B/s") and isinstance(value, (int, float)):
            return human_bytes(value) + ("/s" if unit == "B/s" else "")
        text = _number(value)
        shown = self.unit(unit)
        if not shown:
            return text
        return f"{text}{shown}" if shown == "%" else f"{text} {shown}"

    def keys(self) -> List[str]:
        return sorted(self._messages)

    def get(self, key: str, params: Optional[Mapping[str, ParamValue]] = None) -> str:
        template = self._messages.get(key) or self._fallback.get(key)
        if template is None:
            return key
        values = _Blank({k: _display(v, self.tz) for k, v in (params or {}).items()})
        return template.format_map(values)

    __call__ = get


@lru_cache(maxsize=None)
def texts(lang: str, tz: Optional[tzinfo] = None) -> Texts:
    return Texts(lang, tz=tz)


def render(
    results: Iterable[CheckResult], lang: str, tz: Optional[tzinfo] = None
) -> List[CheckResult]:
    """Fill `summary` and `recommendation` of each result in `lang`, instants shown in `tz`."""
    t = texts(normalize_lang(lang), tz)
    out: List[CheckResult] = []
    for r in results:
        update: Dict[str, object] = {"summary": t(r.message.key, r.message.params)}
        if r.recommendation_key:
            update["recommendation"] = t(r.recommendation_key, r.message.params)
        out.append(r.model_copy(update=update))
    return out
