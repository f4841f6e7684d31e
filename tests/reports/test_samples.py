"""Sample columns summarised with numpy say what checks.history_summary says of the same points."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import pytest

from checks.history_summary import summarize as summarize_points
from collector.reports.samples import Samples, summaries
from tests.reports.fixtures import make_samples

pytestmark = pytest.mark.py311

END = datetime(2026, 9, 30, 16, 0, tzinfo=timezone.utc)


def _rows(samples: list, drop_data_mount_every: int = 0) -> list[tuple]:
    rows = []
    for i, s in enumerate(samples):
        mounts = [m.model_dump() for m in s.mounts]
        if drop_data_mount_every and i % drop_data_mount_every == 0:
            mounts = [m for m in mounts if m["mount"] != "/data"]
        rows.append((s.at, s.cpu_percent, s.memory_percent, s.swap_percent, s.load1, mounts))
    return rows


def test_same_figures_as_the_agents_summary() -> None:
    rows = _rows(make_samples(END, seed=3), drop_data_mount_every=7)
    rows[10] = (rows[10][0], math.nan, *rows[10][2:])  # a non-finite value is skipped
    rows[20] = (rows[20][0], 97.5, *rows[20][2:])  # ties the spike: the later one is the peak
    got = summaries(Samples.from_rows(rows))
    expected = [
        summarize_points("cpu", "%", [(r[0], r[1]) for r in rows]),
        summarize_points("memory", "%", [(r[0], r[2]) for r in rows]),
        summarize_points("swap", "%", [(r[0], r[3]) for r in rows]),
        summarize_points("load1", "", [(r[0], r[4]) for r in rows]),
        *(
            summarize_points(
                f"disk:{mount}",
                "%",
                [(r[0], m["used_percent"]) for r in rows for m in r[5] if m["mount"] == mount],
            )
            for mount in ("/", "/data")
        ),
    ]
    assert got == expected
    assert got[0].samples == len(rows) - 1
    assert got[0].max == 97.5 and got[0].max_at == rows[-120][0]
    assert got[5].samples == len(rows) - len(range(0, len(rows), 7))


def test_no_samples_no_summaries() -> None:
    empty = Samples.from_rows([])
    assert len(empty) == 0 and summaries(empty) == []
