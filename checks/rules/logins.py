"""Log-ins in the window (24小时历史): a burst of failed log-ins is a finding, successful ones
are reported for the record.

A burst is the most failures in any `window_minutes` sliding window, judged against the
thresholds: a slow trickle of failures over a day is background noise on an Internet-facing
host, a hundred in ten minutes is someone guessing passwords. The busiest remote addresses
are the evidence, so the customer can block them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import List, Tuple

from pydantic import Field

from checks.facts import FactSet
from checks.model import Category, CheckResult, Severity
from checks.rules.logs import readable_logs
from checks.spec import CheckSpec, LimitParams, RuleContext


class LoginParams(LimitParams):
    warning: float = 20
    critical: float = 100
    window_minutes: int = Field(10, ge=1, description="length of the sliding window for a burst")
    top_sources: int = Field(5, ge=0, description="remote addresses quoted as evidence")


def _minute(key: str) -> datetime:
    return datetime.strptime(key.rstrip("Z"), "%Y-%m-%dT%H:%M")


def max_in_window(per_minute: List[Tuple[datetime, int]], minutes: int) -> int:
    """The largest sum of counts within any `minutes`-long span of consecutive minutes."""
    span = timedelta(minutes=minutes)
    best = total = start = 0
    for at, count in per_minute:
        total += count
        while at - per_minute[start][0] >= span:
            total -= per_minute[start][1]
            start += 1
        best = max(best, total)
    return best


def logins(facts: FactSet, ctx: RuleContext) -> List[CheckResult]:
    logs = readable_logs(facts)
    if isinstance(logs, str):
        return [ctx.unknown(logs)]
    params = ctx.params().params
    assert isinstance(params, LoginParams)
    per_minute = sorted((_minute(k), v) for k, v in logs.failed_login_minutes.items())
    burst = max_in_window(per_minute, params.window_minutes)
    top = sorted(logs.failed_login_sources.items(), key=lambda kv: (-kv[1], kv[0]))[
        : params.top_sources
    ]
    results = [
        ctx.limit(
            burst,
            evidence=[f"{address}: {count}" for address, count in top],
            minutes=params.window_minutes,
            total=sum(logs.failed_login_minutes.values()),
            addresses=len(logs.failed_login_sources),
        )
    ]
    if logs.successful_logins:
        results.append(
            ctx.result(
                Severity.info,
                "success",
                item="successful",
                value=logs.successful_logins,
                count=logs.successful_logins,
            )
        )
    return results


CHECKS = [
    CheckSpec("history.logins", Category.history, LoginParams, logins),
]
