"""Days until a filesystem is full at the growth seen in its history.

A full disk stops databases and logging without warning, and usage alone says nothing about
speed: 80 % that grows 5 % a day is more urgent than 90 % that is flat. The forecast needs a
span of history long enough to smooth out a day's rhythm (log rotation, nightly dumps), so a
short history gives an informational result, not a guess.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from pydantic import Field

from checks.facts import DiskTrend, FactSet
from checks.levels import threshold_of
from checks.model import Category, CheckResult, Severity
from checks.spec import CheckSpec, LimitParams, RuleContext
from checks.units import human_bytes

UNIT = "d"


class ForecastParams(LimitParams):
    warning: Optional[float] = Field(30.0, description="days until full")
    critical: Optional[float] = Field(7.0, description="days until full")
    min_hours: float = Field(12.0, gt=0, description="history needed before forecasting")


def disk_forecast(facts: FactSet, ctx: RuleContext) -> List[CheckResult]:
    if facts.history is None:
        return [ctx.unknown(facts.missing("history") or "")]
    if not facts.history.disk_trends:
        return [ctx.unknown(f"no filesystem usage in the {facts.history.source} history")]
    return [_trend(t, ctx) for t in sorted(facts.history.disk_trends, key=lambda t: t.mount)]


def _trend(trend: DiskTrend, ctx: RuleContext) -> CheckResult:
    params = ctx.params(trend.mount).params
    common: Dict[str, Any] = {
        "mount": trend.mount,
        "growth": human_bytes(trend.growth_bytes_per_day),
        "free": human_bytes(trend.free_bytes),
        "hours": round(trend.span_hours, 1),
    }
    if trend.span_hours < params.min_hours:
        return ctx.result(
            Severity.info, "short", item=trend.mount, needed=params.min_hours, **common
        )
    if trend.growth_bytes_per_day <= 0:
        return ctx.result(
            Severity.ok,
            "stable",
            item=trend.mount,
            threshold=threshold_of(ctx.params(trend.mount), UNIT, "below"),
            **common,
        )
    days = trend.free_bytes / trend.growth_bytes_per_day
    return ctx.limit(
        round(days, 1), item=trend.mount, unit=UNIT, direction="below", days=int(days), **common
    )


CHECKS = [CheckSpec("disk.forecast", Category.history, ForecastParams, disk_forecast)]
