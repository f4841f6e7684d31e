"""A host's stored samples as columns (numpy arrays), and their summaries.

A day of minute samples on a hundred hosts is 144,000 rows: as one Python object per sample
(and one per mount in it) they were most of a report builder's memory and a good part of its
time. The charts and the summaries need only a few columns, so they get those as arrays.

`summarize` is `checks.history_summary.summarize` on arrays: the same p95 (linear interpolation
between closest ranks), the same peak (the latest of equal maxima), non-finite values skipped,
figures rounded to two places. checks/ runs on the agent without numpy, hence two versions;
tests/reports/test_samples.py holds them to the same answers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

import numpy as np
import numpy.typing as npt

from checks.facts import MetricSummary

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


def _empty_floats() -> Floats:
    return np.zeros(0, dtype=np.float64)


@dataclass(frozen=True, eq=False)
class Samples:
    """Columns of a host's samples, oldest first (all arrays of one length)."""

    at_us: Ints = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """sample times, microseconds since the Unix epoch (UTC)"""
    cpu: Floats = field(default_factory=_empty_floats)
    memory: Floats = field(default_factory=_empty_floats)
    swap: Floats = field(default_factory=_empty_floats)
    load1: Floats = field(default_factory=_empty_floats)
    disks: dict[str, Floats] = field(default_factory=dict)
    """used % per mount point; NaN where a sample did not have that mount"""

    def __len__(self) -> int:
        return int(self.at_us.size)

    def time(self, index: int) -> datetime:
        return EPOCH + timedelta(microseconds=int(self.at_us[index]))

    @classmethod
    def from_rows(
        cls,
        rows: Iterable[Sequence[Any]],
    ) -> Samples:
        """From (at, cpu %, memory %, swap %, load1, mounts as JSON text) rows, oldest first.

        The mounts of all rows are decoded by one `json.loads`: row by row (SQLAlchemy's JSON
        type), the decoder's cost per call was a quarter of a 100-host report's load."""
        columns = list(zip(*rows))
        if not columns:
            return cls()
        when, cpu, memory, swap, load1, texts = columns
        step = timedelta(microseconds=1)
        n = len(when)
        disks: dict[str, Floats] = {}
        mounts = json.loads("[" + ",".join(text or "null" for text in texts) + "]")
        for i, ms in enumerate(mounts):
            for entry in ms or ():
                column = disks.get(entry["mount"])
                if column is None:
                    column = disks[entry["mount"]] = np.full(n, np.nan)
                column[i] = entry["used_percent"]
        return cls(
            at_us=np.array([(w - EPOCH) // step for w in when], dtype=np.int64),
            cpu=np.array(cpu, dtype=np.float64),
            memory=np.array(memory, dtype=np.float64),
            swap=np.array(swap, dtype=np.float64),
            load1=np.array(load1, dtype=np.float64),
            disks=dict(sorted(disks.items())),
        )


def summarize(metric: str, unit: str, at_us: Ints, values: Floats) -> Optional[MetricSummary]:
    """None for no finite value: a summary of nothing would read as a calm day."""
    finite = np.isfinite(values)
    if not finite.any():
        return None
    v = values[finite]
    t = at_us[finite]
    peak = v.max()
    ties = np.flatnonzero(v == peak)
    peak_at = int(t[ties[np.argmax(t[ties])]])
    return MetricSummary(
        metric=metric,
        unit=unit,
        samples=int(v.size),
        min=round(float(v.min()), 2),
        avg=round(float(v.sum()) / v.size, 2),
        p95=round(float(np.percentile(v, 95)), 2),
        max=round(float(peak), 2),
        max_at=EPOCH + timedelta(microseconds=peak_at),
    )


def summaries(samples: Samples) -> list[MetricSummary]:
    """CPU, memory, swap, load and every mount's used %, as a report's history table lists them."""
    columns = [
        ("cpu", "%", samples.cpu),
        ("memory", "%", samples.memory),
        ("swap", "%", samples.swap),
        ("load1", "", samples.load1),
        *((f"disk:{mount}", "%", used) for mount, used in samples.disks.items()),
    ]
    out = [summarize(metric, unit, samples.at_us, values) for metric, unit, values in columns]
    return [m for m in out if m is not None]
