"""Core dumps in the window: a program that dumped core crashed, whether or not it came back."""

from __future__ import annotations

from fnmatch import fnmatch
from typing import Dict, List, Optional

from pydantic import Field

from checks.facts import Coredump, FactSet
from checks.model import Category, CheckResult, Severity
from checks.spec import CheckSpec, LimitParams, RuleContext

EVIDENCE_LINES = 10


class CoredumpParams(LimitParams):
    warning: Optional[float] = Field(1, description="cores of one program in the window")
    critical: Optional[float] = Field(None, description="cores of one program in the window")
    ignore: List[str] = Field(default_factory=list, description="executable globs to leave out")


def _evidence(core: Coredump) -> str:
    parts = [core.time.isoformat(timespec="seconds"), core.exe or "?"]
    if core.pid is not None:
        parts.append(f"pid {core.pid}")
    if core.signal:
        parts.append(core.signal)
    if core.path:
        parts.append(core.path)
    return " ".join(parts)


def coredumps(facts: FactSet, ctx: RuleContext) -> List[CheckResult]:
    if facts.coredumps is None:
        return [ctx.unknown(facts.missing("coredumps") or "")]
    ignore = ctx.params().params.ignore
    by_exe: Dict[str, List[Coredump]] = {}
    for core in sorted(facts.coredumps, key=lambda c: c.time):
        name = core.exe or core.path or "?"
        if not any(fnmatch(name, pattern) for pattern in ignore):
            by_exe.setdefault(name, []).append(core)
    if not by_exe:
        return [ctx.result(Severity.ok, "none", value=0)]
    results: List[CheckResult] = []
    for exe, cores in sorted(by_exe.items()):
        last = cores[-1]
        results.append(
            ctx.limit(
                len(cores),
                item=exe,
                evidence=[_evidence(c) for c in cores[-EVIDENCE_LINES:]],
                exe=exe,
                count=len(cores),
                signal=last.signal or "?",
                last_seen=last.time.isoformat(timespec="seconds"),
            )
        )
    return results


CHECKS = [CheckSpec("errors.coredumps", Category.errors, CoredumpParams, coredumps)]
