"""HTTP endpoints: the contract's availability and response-time targets, seen from the host."""

from __future__ import annotations

from typing import List, Optional

from pydantic import Field

from checks.facts import FactSet, HttpProbe
from checks.model import Category, CheckResult, Severity
from checks.spec import CheckSpec, LimitParams, RuleContext

UNIT = "ms"


class HttpParams(LimitParams):
    warning: Optional[float] = Field(1000.0, description="response time in ms")
    critical: Optional[float] = Field(3000.0, description="response time in ms")


def _one(probe: HttpProbe, ctx: RuleContext) -> CheckResult:
    if probe.error is not None:
        return ctx.result(
            Severity.critical,
            "unreachable",
            item=probe.url,
            evidence=[probe.error],
            advice="unreachable",
            url=probe.url,
            error=probe.error,
        )
    if probe.status is None:
        return ctx.unknown("no answer recorded", item=probe.url)
    if not 200 <= probe.status < 400:
        return ctx.result(
            Severity.critical,
            "status",
            item=probe.url,
            value=probe.status,
            advice="status",
            url=probe.url,
            status=probe.status,
        )
    if probe.elapsed_ms is None:
        return ctx.unknown("no response time recorded", item=probe.url)
    return ctx.limit(
        probe.elapsed_ms, item=probe.url, unit=UNIT, url=probe.url, status=probe.status
    )


def endpoint(facts: FactSet, ctx: RuleContext) -> List[CheckResult]:
    if facts.http is None:
        return [ctx.unknown(facts.missing("http") or "")]
    return [_one(probe, ctx) for probe in facts.http]


CHECKS = [CheckSpec("http.endpoint", Category.status, HttpParams, endpoint, service_affecting=True)]
