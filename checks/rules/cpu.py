"""CPU busy time and load per core: a host that cannot keep up answers its users late."""

from __future__ import annotations

from typing import List

from checks.facts import FactSet
from checks.model import Category, CheckResult
from checks.spec import CheckSpec, LimitParams, RuleContext


class CpuUsageParams(LimitParams):
    warning: float = 85.0
    critical: float = 95.0


class LoadParams(LimitParams):
    warning: float = 1.5
    critical: float = 3.0


def cpu_usage(facts: FactSet, ctx: RuleContext) -> List[CheckResult]:
    if facts.cpu is None:
        return [ctx.unknown(facts.missing("cpu") or "")]
    return [ctx.limit(facts.cpu.usage_percent, unit="%")]


def load_per_core(facts: FactSet, ctx: RuleContext) -> List[CheckResult]:
    """Judged on the 5-minute load so a single burst does not raise an alarm."""
    cpu = facts.cpu
    if cpu is None:
        return [ctx.unknown(facts.missing("cpu") or "")]
    per_core = cpu.load5 / cpu.logical_cores
    return [
        ctx.limit(
            per_core,
            load1=round(cpu.load1, 2),
            load5=round(cpu.load5, 2),
            load15=round(cpu.load15, 2),
            cores=cpu.logical_cores,
        )
    ]


CHECKS = [
    CheckSpec("cpu.usage", Category.status, CpuUsageParams, cpu_usage),
    CheckSpec("load.per_core", Category.status, LoadParams, load_per_core),
]
