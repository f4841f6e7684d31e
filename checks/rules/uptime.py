"""Uptime: a reboot nobody planned is worth a question even when everything came back up."""

from __future__ import annotations

from typing import List, Literal, Optional

from pydantic import Field

from checks.facts import FactSet
from checks.model import Category, CheckResult, Severity
from checks.spec import CheckSpec, LimitParams, RuleContext


class UptimeParams(LimitParams):
    warning: Optional[float] = Field(
        24.0, description="hours: a boot more recent than this is reported"
    )
    critical: Optional[float] = Field(None, description="hours")
    reported_as: Literal["info", "warning"] = Field(
        "warning", description="'info' where reboots are routine (patch windows) and need no action"
    )


def uptime(facts: FactSet, ctx: RuleContext) -> List[CheckResult]:
    up = facts.uptime
    if up is None:
        return [ctx.unknown(facts.missing("uptime") or "")]
    result = ctx.limit(
        up.uptime_seconds / 3600,
        unit="h",
        direction="below",
        days=int(up.uptime_seconds // 86400),
        boot_time=up.boot_time.isoformat(timespec="seconds"),
    )
    if result.severity is Severity.warning and ctx.params().params.reported_as == "info":
        result = result.model_copy(update={"severity": Severity.info})
    return [result]


CHECKS = [CheckSpec("uptime", Category.status, UptimeParams, uptime)]
