"""Backup freshness: the contract makes the customer keep backups; an inspection checks they exist.

Only the newest file matching each configured glob is looked at — its age says whether the backup
job still runs. Whether the backup restores is beyond what an inspection can see.
"""

from __future__ import annotations

from typing import List, Optional

from pydantic import Field

from checks.facts import BackupFacts, FactSet
from checks.levels import threshold_of
from checks.model import Category, CheckResult, Severity
from checks.spec import CheckSpec, LimitParams, RuleContext
from checks.units import human_bytes

UNIT = "h"


class BackupParams(LimitParams):
    warning: Optional[float] = Field(
        26.0, description="hours since the newest backup (daily job + slack)"
    )
    critical: Optional[float] = Field(50.0, description="hours since the newest backup")


def _one(backup: BackupFacts, facts: FactSet, ctx: RuleContext) -> CheckResult:
    if backup.error is not None:
        return ctx.unknown(backup.error, item=backup.pattern)
    if backup.matches == 0 or backup.newest_mtime is None:
        return ctx.result(
            Severity.critical,
            "none",
            item=backup.pattern,
            threshold=threshold_of(ctx.params(backup.pattern), UNIT),
            advice="none",
            pattern=backup.pattern,
        )
    hours = (facts.collected_at - backup.newest_mtime).total_seconds() / 3600
    return ctx.limit(
        hours,
        item=backup.pattern,
        unit=UNIT,
        evidence=[f"{backup.newest_path} {backup.newest_mtime.isoformat(timespec='seconds')}"],
        pattern=backup.pattern,
        newest=backup.newest_path,
        mtime=backup.newest_mtime.isoformat(timespec="seconds"),
        size=human_bytes(backup.newest_size_bytes or 0),
        matches=backup.matches,
    )


def freshness(facts: FactSet, ctx: RuleContext) -> List[CheckResult]:
    if facts.backups is None:
        return [ctx.unknown(facts.missing("backups") or "")]
    return [_one(backup, facts, ctx) for backup in facts.backups]


CHECKS = [CheckSpec("backup.freshness", Category.status, BackupParams, freshness)]
