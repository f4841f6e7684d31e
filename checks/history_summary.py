"""Summaries of metric history: the same arithmetic for sysstat files and the agent's own store.

A report states min / avg / p95 / max and when the peak happened; the p95 keeps one short spike
from dominating the judgement while the max still shows it. Disk growth is a least-squares slope
of used bytes, so a few noisy samples do not swing a forecast the way first-versus-last would.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Optional

from checks.facts import DiskTrend, MetricSummary

Point = tuple[datetime, float]

SECONDS_PER_DAY = 86400.0


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), q in 0–100."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = math.floor(pos)
    high = math.ceil(pos)
    if low == high:
        return ordered[int(pos)]
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summarize(metric: str, unit: str, points: Sequence[Point]) -> Optional[MetricSummary]:
    """None for no samples: a summary of nothing would read as a calm day."""
    finite = [(t, v) for t, v in points if math.isfinite(v)]
    if not finite:
        return None
    values = [v for _, v in finite]
    peak_at, peak = max(finite, key=lambda p: (p[1], p[0]))
    return MetricSummary(
        metric=metric,
        unit=unit,
        samples=len(values),
        min=round(min(values), 2),
        avg=round(sum(values) / len(values), 2),
        p95=round(percentile(values, 95), 2),
        max=round(peak, 2),
        max_at=peak_at,
    )


def disk_trend(mount: str, used: Sequence[Point], free_bytes: int) -> Optional[DiskTrend]:
    """Least-squares growth of used bytes per day; None when fewer than two distinct times."""
    if len({t for t, _ in used}) < 2:
        return None
    t0 = min(t for t, _ in used)
    xs = [(t - t0).total_seconds() / SECONDS_PER_DAY for t, _ in used]
    ys = [float(v) for _, v in used]
    n = len(xs)
    mean_x = sum(xs) / n
    mean_y = sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys))
    span = (max(t for t, _ in used) - t0).total_seconds() / 3600.0
    return DiskTrend(
        mount=mount,
        growth_bytes_per_day=sxy / sxx,
        free_bytes=free_bytes,
        span_hours=round(span, 3),
    )
