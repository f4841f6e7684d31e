"""Sample columns summarised with numpy say what checks.history_summary says of the same points."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from checks.history_summary import summarize as summarize_points
from collector.db.engine import Database
from collector.db.models import Host
from collector.reports.load import load_samples
from collector.reports.samples import Samples, summaries
from tests.reports.fixtures import make_samples
from tests.reports.helpers import EXAMPLE
from tests.reports.seed import seed

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


def _stored(rows: list[tuple]) -> list[tuple]:
    """The rows as `load_samples` reads them: the mounts as the database's JSON text."""
    return [(*r[:5], json.dumps(r[5])) for r in rows]


def _expected(rows: list[tuple], mounts: tuple[str, ...] = ("/", "/data")) -> list:
    """checks.history_summary's figures for the rows' points."""
    return [
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
            for mount in mounts
        ),
    ]


def test_same_figures_as_the_agents_summary() -> None:
    rows = _rows(make_samples(END, seed=3), drop_data_mount_every=7)
    rows[10] = (rows[10][0], math.nan, *rows[10][2:])  # a non-finite value is skipped
    rows[20] = (rows[20][0], 97.5, *rows[20][2:])  # ties the spike: the later one is the peak
    got = summaries(Samples.from_rows(_stored(rows)))
    assert got == _expected(rows)
    assert got[0].samples == len(rows) - 1
    assert got[0].max == 97.5 and got[0].max_at == rows[-120][0]
    assert got[5].samples == len(rows) - len(range(0, len(rows), 7))


def test_read_from_the_database_the_same_figures(db: Database) -> None:
    """`load_samples` reads the stored mounts as text and decodes them itself: the same points,
    on SQLite and on PostgreSQL."""
    seed(db, EXAMPLE, ["app01"], run_times=[END - timedelta(hours=6)], samples_until=END)
    with db.read() as session:
        host_id = session.scalars(select(Host.id)).one()
        got = load_samples(session, host_id, END)
        earlier = load_samples(session, host_id, END - timedelta(hours=12))
    rows = _rows(make_samples(END, seed=0))
    assert len(got) == len(rows) and got.time(0) == rows[0][0] and got.time(-1) == rows[-1][0]
    assert summaries(got) == _expected(rows)
    assert len(earlier) == len(rows) // 2  # the 24 h up to `end`, `end` itself not included


def test_no_samples_no_summaries() -> None:
    empty = Samples.from_rows([])
    assert len(empty) == 0 and summaries(empty) == []
