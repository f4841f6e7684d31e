"""Processes: zombies show a parent that no longer reaps its children; required ones must run."""

from __future__ import annotations

from typing import Dict, List, Optional

from pydantic import Field

from checks.facts import FactSet
from checks.model import Category, CheckResult, Severity
from checks.spec import CheckParams, CheckSpec, LimitParams, RuleContext

EVIDENCE_LINES = 10
COMM_LENGTH = 15
"""The kernel keeps 15 characters of a process name; ps -o comm and /proc/PID/stat show no more."""


class ZombieParams(LimitParams):
    warning: Optional[float] = Field(5, description="zombie processes")
    critical: Optional[float] = Field(50, description="zombie processes")


class RequiredProcessParams(CheckParams):
    names: List[str] = Field(default_factory=list, description="process names that must be running")


def zombies(facts: FactSet, ctx: RuleContext) -> List[CheckResult]:
    procs = facts.processes
    if procs is None:
        return [ctx.unknown(facts.missing("processes") or "")]
    evidence = [
        f"pid {z.pid} ppid {z.ppid if z.ppid is not None else '?'} {z.name}" for z in procs.zombies
    ]
    return [ctx.limit(len(procs.zombies), evidence=evidence[:EVIDENCE_LINES], total=procs.total)]


def _count(names: Dict[str, int], wanted: str) -> int:
    """Exact name, or its first 15 characters where a source could only see the truncated name."""
    count = names.get(wanted, 0)
    if not count and len(wanted) > COMM_LENGTH:
        count = names.get(wanted[:COMM_LENGTH], 0)
    return count


def required(facts: FactSet, ctx: RuleContext) -> List[CheckResult]:
    names = ctx.params().params.names
    procs = facts.processes
    if procs is None:
        reason = facts.missing("processes") or ""
        return [ctx.unknown(reason, item=name) for name in names]
    results: List[CheckResult] = []
    for name in names:
        count = _count(procs.names, name)
        if count:
            results.append(
                ctx.result(Severity.ok, "ok", item=name, value=count, name=name, count=count)
            )
        else:
            results.append(
                ctx.result(
                    Severity.critical, "missing", item=name, value=0, advice="missing", name=name
                )
            )
    return results


CHECKS = [
    CheckSpec("processes.zombie", Category.status, ZombieParams, zombies),
    CheckSpec(
        "process.required", Category.status, RequiredProcessParams, required, service_affecting=True
    ),
]
