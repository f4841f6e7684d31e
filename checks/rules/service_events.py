"""Units that failed or kept restarting in the window, even if they run again by now.

services.failed only sees the present; a service that crashed at 03:00 and was restarted by
systemd looks healthy at 08:00, yet its users saw an outage. Each failure is a finding; a few
automatic restarts are tolerated (that is what Restart= is for), a flapping unit is not.
"""

from __future__ import annotations

from fnmatch import fnmatch
from typing import Dict, List, Optional

from pydantic import Field

from checks.facts import FactSet, ServiceEvent
from checks.levels import above, threshold_of
from checks.model import Category, CheckResult, Severity, worst
from checks.spec import CheckParams, CheckSpec, RuleContext

FAILED = "failed"
RESTARTED = "restarted"


class ServiceEventParams(CheckParams):
    failed_warning: Optional[float] = Field(1, description="failures of one unit in the window")
    failed_critical: Optional[float] = Field(None, description="failures of one unit in the window")
    restarts_warning: Optional[float] = Field(3, description="automatic restarts of one unit")
    restarts_critical: Optional[float] = Field(10, description="automatic restarts of one unit")
    ignore: List[str] = Field(default_factory=list, description="unit name globs to leave out")


def service_events(facts: FactSet, ctx: RuleContext) -> List[CheckResult]:
    if facts.service_events is None:
        return [ctx.unknown(facts.missing("service_events") or "")]
    ignore = ctx.params().params.ignore
    by_unit: Dict[str, Dict[str, ServiceEvent]] = {}
    for event in facts.service_events:
        if not any(fnmatch(event.unit, pattern) for pattern in ignore):
            by_unit.setdefault(event.unit, {})[event.kind] = event
    if not by_unit:
        return [ctx.result(Severity.ok, "none", value=0)]
    return [_unit(unit, kinds, ctx) for unit, kinds in sorted(by_unit.items())]


def _unit(unit: str, kinds: Dict[str, ServiceEvent], ctx: RuleContext) -> CheckResult:
    resolved = ctx.params(unit)
    failed = kinds.get(FAILED)
    restarted = kinds.get(RESTARTED)
    failures = failed.count if failed else 0
    restarts = restarted.count if restarted else 0
    by_failures = threshold_of(resolved, None, "above", "failed_warning", "failed_critical")
    by_restarts = threshold_of(resolved, None, "above", "restarts_warning", "restarts_critical")
    failure_level = above(failures, by_failures.warning, by_failures.critical)
    restart_level = above(restarts, by_restarts.warning, by_restarts.critical)
    severity = worst([failure_level, restart_level])
    threshold = by_restarts if restart_level.rank > failure_level.rank else by_failures
    bad = severity in (Severity.warning, Severity.critical)
    events = [e for e in (failed, restarted) if e is not None]
    last = max((e.last_seen for e in events if e.last_seen), default=None)
    return ctx.result(
        severity,
        "bad" if bad else "ok",
        item=unit,
        value=failures,
        threshold=threshold,
        evidence=[f"{e.kind} ×{e.count}: {e.sample}" for e in events if e.sample],
        advice="bad" if bad else None,
        unit_name=unit,
        failures=failures,
        restarts=restarts,
        last_seen=last.isoformat(timespec="seconds") if last else None,
    )


CHECKS = [CheckSpec("errors.services", Category.errors, ServiceEventParams, service_events)]
