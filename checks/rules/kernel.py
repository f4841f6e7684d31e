"""Kernel errors (故障错误信息): OOM kills, segfaults, hung tasks, hardware (MCE/EDAC), I/O,
filesystem and NFS errors, one finding per kind of event with its count and samples.

The check is service-affecting: its critical findings (OOM kills, I/O and filesystem errors by
default) map to P1, since each of them takes a service down or loses data. The other kinds are
warnings by default, so they stay P2 unless a site raises them.
"""

from __future__ import annotations

from typing import Dict, List

from pydantic import Field

from checks.alarms import SEVERITIES
from checks.facts import FactSet, LogTemplate
from checks.model import Category, CheckResult, Severity
from checks.rules.logs import readable_logs, when
from checks.spec import CheckParams, CheckSpec, RuleContext

KINDS = ("oom", "segfault", "hung_task", "mce", "io_error", "fs_error", "nfs_timeout")
"""Kinds with their own text and advice; a site's own kernel.* rule is reported as 'other'."""
MAX_EVIDENCE = 3


class KernelParams(CheckParams):
    min_count: int = Field(1, ge=1, description="events of one kind before it is reported")
    ignore: List[str] = Field(
        default_factory=list, description="rule ids not to report, e.g. kernel.segfault"
    )


def kernel_errors(facts: FactSet, ctx: RuleContext) -> List[CheckResult]:
    logs = readable_logs(facts)
    if isinstance(logs, str):
        return [ctx.unknown(logs)]
    params = ctx.params().params
    assert isinstance(params, KernelParams)
    by_rule: Dict[str, List[LogTemplate]] = {}
    for t in logs.templates:
        if t.family == "kernel" and t.rule not in params.ignore:
            by_rule.setdefault(t.rule, []).append(t)
    results: List[CheckResult] = []
    for rule, templates in sorted(by_rule.items()):
        count = sum(t.count for t in templates)
        if count < params.min_count:
            continue
        templates.sort(key=lambda t: -t.count)
        kind = rule.split(".", 1)[-1]
        kind = kind if kind in KINDS else "other"
        severity = max((t.severity for t in templates), key=SEVERITIES.index)
        firsts = [t.first_seen for t in templates if t.first_seen]
        lasts = [t.last_seen for t in templates if t.last_seen]
        results.append(
            ctx.result(
                Severity(severity),
                kind,
                item=rule,
                value=count,
                unit="events",
                evidence=[s for t in templates for s in t.samples][:MAX_EVIDENCE],
                advice=kind,
                rule=rule,
                count=count,
                first=when(min(firsts) if firsts else None),
                last=when(max(lasts) if lasts else None),
            )
        )
    if not results:
        results.append(ctx.result(Severity.ok, "ok", value=0))
    return results


CHECKS = [
    CheckSpec(
        "errors.kernel", Category.errors, KernelParams, kernel_errors, service_affecting=True
    ),
]
