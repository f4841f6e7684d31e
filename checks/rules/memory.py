"""Memory and swap: a host short of memory swaps, slows down, and finally OOM-kills processes."""

from __future__ import annotations

from typing import List, Optional

from checks.facts import FactSet
from checks.model import Category, CheckResult, Severity
from checks.spec import CheckSpec, LimitParams, RuleContext
from checks.units import human_bytes


class MemoryParams(LimitParams):
    warning: Optional[float] = 90.0
    critical: Optional[float] = 95.0


class SwapParams(LimitParams):
    warning: Optional[float] = 50.0
    critical: Optional[float] = 80.0


def memory_usage(facts: FactSet, ctx: RuleContext) -> List[CheckResult]:
    """Judged on 'available' (what the kernel can hand out without swapping), not on 'free'."""
    mem = facts.memory
    if mem is None:
        return [ctx.unknown(facts.missing("memory") or "")]
    return [
        ctx.limit(
            mem.used_percent,
            unit="%",
            used=human_bytes(mem.total_bytes - mem.available_bytes),
            total=human_bytes(mem.total_bytes),
            available=human_bytes(mem.available_bytes),
        )
    ]


def swap_usage(facts: FactSet, ctx: RuleContext) -> List[CheckResult]:
    """A host without swap is a deliberate choice (databases, Kubernetes nodes), not a finding."""
    mem = facts.memory
    if mem is None:
        return [ctx.unknown(facts.missing("memory") or "")]
    if mem.swap_total_bytes <= 0:
        return [ctx.result(Severity.ok, "none")]
    return [
        ctx.limit(
            mem.swap_used_percent,
            unit="%",
            used=human_bytes(mem.swap_used_bytes),
            total=human_bytes(mem.swap_total_bytes),
        )
    ]


CHECKS = [
    CheckSpec("memory.usage", Category.status, MemoryParams, memory_usage),
    CheckSpec("swap.usage", Category.status, SwapParams, swap_usage),
]
