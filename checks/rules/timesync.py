"""Time synchronisation: skewed clocks break TLS, Kerberos, cluster leases and log timelines."""

from __future__ import annotations

from typing import List, Literal, Optional

from pydantic import Field

from checks.facts import FactSet
from checks.model import Category, CheckResult, Severity
from checks.spec import CheckSpec, LimitParams, RuleContext


class TimeSyncParams(LimitParams):
    warning: Optional[float] = Field(1.0, description="seconds of clock offset")
    critical: Optional[float] = Field(10.0, description="seconds of clock offset")
    unsynchronized: Literal["info", "warning", "critical"] = Field(
        "warning", description="severity when the clock is not synchronised"
    )


def time_sync(facts: FactSet, ctx: RuleContext) -> List[CheckResult]:
    ts = facts.time_sync
    if ts is None:
        return [ctx.unknown(facts.missing("time_sync") or "")]
    if ts.tool == "none":
        return [ctx.unknown(ts.error or "no timedatectl, chronyc or ntpq on this host")]
    service = ts.ntp_service or "—"
    if ts.synchronized is False:
        severity = Severity(ctx.params().params.unsynchronized)
        return [
            ctx.result(
                severity, "unsynced", value="no", advice="unsynced", tool=ts.tool, service=service
            )
        ]
    if ts.offset_seconds is not None:
        return [
            ctx.limit(
                abs(ts.offset_seconds),
                unit="s",
                offset=f"{ts.offset_seconds:+.6f}",
                tool=ts.tool,
                service=service,
            )
        ]
    if ts.synchronized:
        return [ctx.result(Severity.ok, "synced", value="yes", tool=ts.tool, service=service)]
    return [ctx.unknown(f"{ts.tool} gave neither a sync state nor an offset")]


CHECKS = [CheckSpec("time.sync", Category.status, TimeSyncParams, time_sync)]
