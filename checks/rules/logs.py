"""Alarm logs (报警日志): the templates of lines the generic alarm rules matched in the window.

Each template is one finding at the severity its rule gives, once it occurred often enough
(`min_count_<severity>`), so a single stray "error" need not be a warning where a contract's
customer says so. The helpers here are shared by the other log-based checks (errors.app).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import List, Optional, Union

from pydantic import Field

from checks.alarms import GENERIC_FAMILY
from checks.facts import FactSet, LogFacts
from checks.model import Category, CheckResult, Severity, Threshold
from checks.spec import CheckParams, CheckSpec, RuleContext


class TemplateParams(CheckParams):
    min_count_info: int = Field(
        1, ge=1, description="occurrences before an info template is reported"
    )
    min_count_warning: int = Field(
        1, ge=1, description="occurrences before a warning template is reported"
    )
    min_count_critical: int = Field(
        1, ge=1, description="occurrences before a critical template is reported"
    )
    ignore: List[str] = Field(default_factory=list, description="alarm rule ids not to report")


def when(t: Optional[datetime]) -> Optional[str]:
    return t.astimezone(timezone.utc).isoformat(timespec="seconds") if t else None


def readable_logs(facts: FactSet) -> Union[LogFacts, str]:
    """The log facts, or why no log could be read (a check on nothing read is unknown)."""
    logs = facts.logs
    if logs is None:
        return facts.missing("logs") or ""
    if not logs.sources:
        return "no log source found"
    if all(s.error is not None for s in logs.sources):
        return "; ".join(s.error or "" for s in logs.sources)
    return logs


def template_results(facts: FactSet, ctx: RuleContext, family: str) -> List[CheckResult]:
    """One finding per template of `family` at its rule's severity, or one ok finding."""
    logs = readable_logs(facts)
    if isinstance(logs, str):
        return [ctx.unknown(logs)]
    resolved = ctx.params()
    params = resolved.params
    assert isinstance(params, TemplateParams)
    results: List[CheckResult] = []
    for t in logs.templates:
        if t.family != family or t.rule in params.ignore:
            continue
        field = f"min_count_{t.severity}"
        need = getattr(params, field)
        if t.count < need:
            continue
        threshold = Threshold(
            **{t.severity: float(need)} if t.severity in ("warning", "critical") else {},
            unit="lines",
            provenance=resolved.source_of(field),
        )
        results.append(
            ctx.result(
                Severity(t.severity),
                "match",
                item=f"{t.rule}:{t.template_id}",
                value=t.count,
                unit="lines",
                threshold=threshold,
                evidence=t.samples,
                advice="match",
                template=t.template,
                rule=t.rule,
                source=t.source,
                count=t.count,
                first=when(t.first_seen),
                last=when(t.last_seen),
            )
        )
    if not results:
        read = [s for s in logs.sources if s.error is None]
        results.append(
            ctx.result(
                Severity.ok,
                "ok",
                value=0,
                lines=sum(s.lines_in_window for s in read),
                sources=len(read),
            )
        )
    return results


def alarms(facts: FactSet, ctx: RuleContext) -> List[CheckResult]:
    results = template_results(facts, ctx, GENERIC_FAMILY)
    if facts.logs is None or (results and results[0].severity == Severity.unknown):
        return results
    for source in facts.logs.sources:
        if source.error is not None:
            results.append(ctx.unknown(source.error, item=source.source))
        elif source.truncated:
            results.append(
                ctx.result(
                    Severity.info,
                    "truncated",
                    item=source.source,
                    value=source.bytes_read,
                    unit="bytes",
                    advice="truncated",
                    source=source.source,
                    bytes=source.bytes_read,
                )
            )
    return results


CHECKS = [
    CheckSpec("logs.alarms", Category.alarm_logs, TemplateParams, alarms),
]
