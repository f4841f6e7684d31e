"""The builder's path through spawned workers says exactly what the in-process path says."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from collector.db.engine import Database
from collector.db.migrate import upgrade
from collector.periods import parse
from collector.reports.load import load_inputs
from collector.reports.render import produce
from tests.reports.helpers import EXAMPLE
from tests.reports.seed import seed

pytestmark = pytest.mark.py311

END_OF_Q3 = datetime(2026, 9, 30, 16, 0, tzinfo=timezone.utc)


def test_workers_render_the_same_report(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    upgrade(db)
    contract = seed(
        db,
        EXAMPLE,
        ["app01", "db01", "web01"],
        run_times=[END_OF_Q3 - timedelta(hours=6)],
        samples_until=END_OF_Q3 - timedelta(hours=1),
        sample_step_minutes=10,
    )
    with db.read() as session:
        inputs = load_inputs(session, contract, parse("2026-Q3", contract), now=END_OF_Q3)
    db.dispose()
    timings: dict[str, float] = {}
    pooled = produce(inputs, ["zh_CN", "en"], workers=2, timings=timings)
    local = produce(inputs, ["zh_CN", "en"], workers=0)
    assert set(timings) == {"assemble_s", "charts_s", "render_s"}
    for (data_p, out_p), (data_l, out_l) in zip(pooled, local):
        assert data_p == data_l
        assert out_p.html == out_l.html  # charts inlined as data: URIs, so the PNGs match too
        assert out_p.mail_html == out_l.mail_html
        assert out_p.mail_images == out_l.mail_images
        assert out_p.pdf.startswith(b"%PDF") and out_l.pdf.startswith(b"%PDF")
    assert "chart-cpu-" in pooled[0][1].mail_html
