"""Alarm rules: which log lines an inspection reports, as data rather than code.

A rule is an extended regular expression that must mean the same to `grep -E` (the agent's
fast prefilter, run with LC_ALL=C) and to Python's `re` (which makes the final decision on
every line grep passes, and is the whole matcher where grep is missing). The validator therefore
refuses the constructs on which the two disagree (`\\d`, `(?…)`, lazy quantifiers, POSIX
classes, anchors like `\\A`), so a rule can never match differently on two hosts.

The built-in set lives in `checks/data/alarms.toml` (shown as `config/alarms/default.toml`).
A local config may replace it (`logs.rules_file`) and add rules (`logs.rules`); a rule with the
same id replaces the built-in one, so a site can retune a single rule without copying the set.

Families say which part of the report a match feeds: `alarm` (logs.alarms), `kernel`
(errors.kernel), `app` (errors.app), `login.failed` / `login.ok` (history.logins). A line that a
specific family claims is not counted again by the generic `alarm` rules, and a line counts
for one generic rule at most (see `claim`).
"""

from __future__ import annotations

import re
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.9
    import tomli as tomllib

BUILTIN_RULES = Path(__file__).with_name("data") / "alarms.toml"
SEVERITIES = ("info", "warning", "critical")
GENERIC_FAMILY = "alarm"

# Constructs that Python's re and POSIX ERE (GNU grep -E, C locale) read differently or not at all.
_NOT_ERE = re.compile(r"\\[dDAZzGhHN]|\(\?|[*+?}]\?|\[:[a-z]+:\]|\\[0-9]")


class AlarmRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(..., min_length=1, description="stable id, e.g. kernel.oom")
    pattern: str = Field(..., min_length=1, description="extended regular expression (grep -E)")
    severity: str = Field("warning", description="info | warning | critical")
    family: str = Field(
        GENERIC_FAMILY, description="alarm | kernel | app | login.failed | login.ok …"
    )
    ignore_case: bool = False

    @field_validator("severity")
    @classmethod
    def _severity(cls, v: str) -> str:
        if v not in SEVERITIES:
            raise ValueError(f"must be one of {', '.join(SEVERITIES)}")
        return v

    @field_validator("pattern")
    @classmethod
    def _portable(cls, v: str) -> str:
        bad = _NOT_ERE.search(v)
        if bad:
            raise ValueError(
                f"{bad.group(0)!r} is not portable between grep -E and Python re; "
                "use [0-9], [[] or plain groups instead"
            )
        if "\n" in v:
            raise ValueError("a pattern matches within one line; it may not contain a newline")
        try:
            re.compile(v.encode("utf-8"))
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from exc
        return v

    def compiled(self) -> "re.Pattern[bytes]":
        """Bytes regex: lines are matched as bytes, like grep in the C locale, so invalid UTF-8
        never hides an alarm."""
        return re.compile(self.pattern.encode("utf-8"), re.IGNORECASE if self.ignore_case else 0)


class RulesError(ValueError):
    """A rule file that cannot be used; the message names the file, the rule and the field."""


def parse_rules(data: Mapping[str, Any], origin: str) -> List[AlarmRule]:
    """Rules from a parsed TOML document with `[[rule]]` tables."""
    raw = data.get("rule", [])
    if not isinstance(raw, list):
        raise RulesError(f"{origin}: 'rule' must be an array of tables ([[rule]])")
    rules: List[AlarmRule] = []
    for index, entry in enumerate(raw):
        try:
            rules.append(AlarmRule.model_validate(entry))
        except ValidationError as exc:
            name = entry.get("id", f"#{index + 1}") if isinstance(entry, dict) else f"#{index + 1}"
            problems = "; ".join(
                f"{'.'.join(str(x) for x in e['loc']) or 'rule'}: {e['msg']}" for e in exc.errors()
            )
            raise RulesError(f"{origin}: rule {name}: {problems}") from exc
    return merge_rules([], rules)


def load_rules_file(path: Path) -> List[AlarmRule]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise RulesError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{path}: not valid TOML: {exc}") from exc
    return parse_rules(data, str(path))


@lru_cache(maxsize=1)
def _builtin() -> tuple[AlarmRule, ...]:
    return tuple(load_rules_file(BUILTIN_RULES))


def builtin_rules() -> List[AlarmRule]:
    return list(_builtin())


def merge_rules(base: Iterable[AlarmRule], extra: Iterable[AlarmRule]) -> List[AlarmRule]:
    """`base` then `extra`; a rule whose id is already present replaces it in place."""
    merged: Dict[str, AlarmRule] = {}
    for rule in [*base, *extra]:
        merged[rule.id] = rule
    return list(merged.values())


def claim(matched: Sequence[AlarmRule]) -> List[AlarmRule]:
    """The rules a line counts for. A specific family (kernel, app, login …) claims the line, so
    the generic alarm rules do not report the same event again; among generic rules only the
    most severe (the first of equals) counts, so "fatal: write failed" is one finding, not two."""
    specific = [r for r in matched if r.family != GENERIC_FAMILY]
    if specific or not matched:
        return specific
    return [max(matched, key=lambda r: SEVERITIES.index(r.severity))]
