"""Uptime: a reboot nobody planned is worth a question even when everything came back up."""

from __future__ import annotations

from typing import List, Optional

from pydantic import Field

from checks.facts import FactSet
from checks.model import Category, CheckResult
from checks.spec import CheckSpec, LimitParams, RuleContext


class UptimeParams(LimitParams):
    warning: Optional[float] = Field(
        24.0, description="hours: a boot more recent than this is reported"
    )
    critical: Optional[float] = Field(None, description="hours")


def uptime(facts: FactSet, ctx: RuleContext) -> List[CheckResult]:
    up = facts.uptime
    if up is None:
        return [ctx.unknown(facts.missing("uptime") or "")]
    hours = up.uptime_seconds / 3600
    return [
        ctx.limit(
            hours,
            unit="h",
            direction="below",
            days=int(up.uptime_seconds // 86400),
            boot_time=up.boot_time.isoformat(timespec="seconds"),
        )
    ]


CHECKS = [CheckSpec("uptime", Category.status, UptimeParams, uptime)]
