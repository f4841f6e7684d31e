"""Alarm rules compiled for the scan.

Python's `re` needs about 5 µs per rule on a 100-byte line (alternations have no literal prefix
to skip ahead with), which would make the Python side slower than grep by orders of magnitude.
So each rule also gets its *needles*: literal strings of which every match must contain one,
read off the parsed pattern. `bytes.find` runs at memory speed, so
- deciding which rules match a line costs a few `in` tests and one regex per plausible rule;
- the pure-Python fallback finds candidate lines by searching whole 1 MiB chunks for needles
  instead of running a regex per line.
A rule without usable needles (say `^[A-Z]+$`) is simply run on every line, slower but exact.

grep (where present) passes every line some rule matches; Python then decides each line, so
the grep and pure-Python paths reach the same verdicts by construction.
"""

from __future__ import annotations

import re
from typing import Any, Dict, FrozenSet, List, Optional, Sequence, Tuple

from checks.alarms import AlarmRule, claim

try:  # the regex parser moved in 3.11; both expose the same tree
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python < 3.11
    import sre_parse

MIN_NEEDLE = 2
Needles = FrozenSet[bytes]


def _best(candidates: List[Needles]) -> Optional[Needles]:
    good = [c for c in candidates if c and min(len(n) for n in c) >= MIN_NEEDLE]
    return max(good, key=lambda c: (min(len(n) for n in c), -len(c))) if good else None


def _needles(seq: Any) -> Optional[Needles]:
    """Literals one of which every match of the parsed sequence `seq` contains (or None)."""
    candidates: List[Needles] = []
    run = bytearray()
    for op, av in seq:
        name = str(op)
        if name == "LITERAL" and av < 256:
            run.append(av)
            continue
        if run:
            candidates.append(frozenset([bytes(run)]))
            run = bytearray()
        if name == "SUBPATTERN":
            inner = _needles(av[-1])
            if inner:
                candidates.append(inner)
        elif name == "BRANCH":
            branches = [_needles(b) for b in av[1]]
            if all(branches):
                candidates.append(frozenset().union(*branches))  # type: ignore[arg-type]
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT") and av[0] >= 1:
            inner = _needles(av[2])
            if inner:
                candidates.append(inner)
    if run:
        candidates.append(frozenset([bytes(run)]))
    return _best(candidates)


def needles_of(rule: AlarmRule) -> Optional[Needles]:
    try:
        found = _needles(sre_parse.parse(rule.pattern.encode("utf-8")))
    except Exception:  # an exotic pattern: no shortcut, the regex alone decides
        return None
    if found and rule.ignore_case:
        return frozenset(n.lower() for n in found)
    return found


def _cover(needles: Sequence[bytes]) -> Tuple[bytes, ...]:
    """The needles not containing another one: a line with "errors" also contains "err"."""
    return tuple(n for n in needles if not any(o != n and o in n for o in needles))


class Matcher:
    def __init__(self, rules: Sequence[AlarmRule]) -> None:
        self.rules = list(rules)
        self._each: List[Tuple[AlarmRule, "re.Pattern[bytes]", Optional[Needles]]] = [
            (r, r.compiled(), needles_of(r)) for r in self.rules
        ]
        self.ignore_case = any(r.ignore_case for r in self.rules)
        # literals that make a line a candidate in the pure-Python pass (folded: ignore_case rules)
        self.needles: Tuple[bytes, ...] = tuple(
            sorted({n for r, _, ns in self._each if ns and not r.ignore_case for n in ns})
        )
        self.folded_needles: Tuple[bytes, ...] = tuple(
            sorted({n for r, _, ns in self._each if ns and r.ignore_case for n in ns})
        )
        self.cover = _cover(self.needles)
        self.folded_cover = _cover(self.folded_needles)
        self._owners: Dict[bytes, List[int]] = {}
        self._folded_owners: Dict[bytes, List[int]] = {}
        for index, (rule, _, needles) in enumerate(self._each):
            owners = self._folded_owners if rule.ignore_case else self._owners
            for needle in needles or ():
                owners.setdefault(needle, []).append(index)
        self._always = [i for i, (_, _, needles) in enumerate(self._each) if needles is None]
        unguarded = [r for r, _, ns in self._each if ns is None]
        self.unguarded: Optional["re.Pattern[bytes]"] = (
            re.compile(
                b"|".join(
                    b"(?i:%s)" % r.compiled().pattern
                    if r.ignore_case
                    else b"(?:%s)" % r.compiled().pattern
                    for r in unguarded
                )
            )
            if unguarded
            else None
        )

    def grep_argv(self, grep: str) -> List[str]:
        """Fixed argv for the prefilter: no shell, the pattern is one argument. Case-insensitive
        as a whole when any rule is (a superset is all a prefilter must give)."""
        pattern = "|".join(f"({r.pattern})" for r in self.rules)
        return [grep, "-a", "-b", "-E", *(["-i"] if self.ignore_case else []), "-e", pattern]

    def match(self, line: bytes) -> List[AlarmRule]:
        """The rules `line` counts for: only rules with a needle in the line run their regex."""
        plausible = set(self._always)
        for needle in [n for n in self.needles if n in line]:
            plausible.update(self._owners[needle])
        if self.folded_needles:
            folded = line.lower()
            for needle in [n for n in self.folded_needles if n in folded]:
                plausible.update(self._folded_owners[needle])
        matched = [self._each[i][0] for i in sorted(plausible) if self._each[i][1].search(line)]
        return claim(matched)
