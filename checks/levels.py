"""Threshold helpers shared by the rules: one place decides what 'crossed a limit' means."""

from __future__ import annotations

from typing import Optional

from checks.model import Severity, Threshold
from checks.params import Resolved


def above(value: float, warning: Optional[float], critical: Optional[float]) -> Severity:
    """Higher is worse (usage %, load, latency). Reaching the limit counts as crossing it."""
    if critical is not None and value >= critical:
        return Severity.critical
    if warning is not None and value >= warning:
        return Severity.warning
    return Severity.ok


def below(value: float, warning: Optional[float], critical: Optional[float]) -> Severity:
    """Lower is worse (days to certificate expiry, days until a disk is full)."""
    if critical is not None and value <= critical:
        return Severity.critical
    if warning is not None and value <= warning:
        return Severity.warning
    return Severity.ok


def threshold_of(
    resolved: Resolved,
    unit: Optional[str],
    direction: str = "above",
    warning_field: str = "warning",
    critical_field: str = "critical",
) -> Threshold:
    params = resolved.params
    return Threshold(
        warning=getattr(params, warning_field, None),
        critical=getattr(params, critical_field, None),
        direction=direction,
        unit=unit,
        provenance=resolved.source_of(warning_field, critical_field),
    )


def judge(value: float, threshold: Threshold) -> Severity:
    if threshold.direction == "below":
        return below(value, threshold.warning, threshold.critical)
    return above(value, threshold.warning, threshold.critical)
