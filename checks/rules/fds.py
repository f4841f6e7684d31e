"""System-wide file handles: when the kernel's table is full, every open() and accept() fails."""

from __future__ import annotations

from typing import List, Optional

from checks.facts import FactSet
from checks.model import Category, CheckResult
from checks.spec import CheckSpec, LimitParams, RuleContext


class FdParams(LimitParams):
    warning: Optional[float] = 80.0
    critical: Optional[float] = 90.0


def fd_usage(facts: FactSet, ctx: RuleContext) -> List[CheckResult]:
    fds = facts.fds
    if fds is None:
        return [ctx.unknown(facts.missing("fds") or "")]
    return [ctx.limit(fds.used_percent, unit="%", allocated=fds.allocated, maximum=fds.maximum)]


CHECKS = [CheckSpec("fd.usage", Category.status, FdParams, fd_usage)]
