"""Charts drawn on figures shared by every host: what a host's chart shows depends on that host
alone, and the kept background with the moving parts over it is what a full draw paints."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from collector.reports import charts
from collector.reports.samples import Samples
from tests.reports.fixtures import make_samples

pytestmark = pytest.mark.py311

END = datetime(2026, 9, 30, 16, 0, tzinfo=timezone.utc)
TZ = ZoneInfo("Asia/Shanghai")


def _samples(seed: int, mounts: tuple[str, ...], end: datetime = END) -> Samples:
    rows = [
        (
            s.at,
            s.cpu_percent,
            s.memory_percent,
            s.swap_percent,
            s.load1,
            json.dumps([m.model_dump() for m in s.mounts if m.mount in mounts]),
        )
        for s in make_samples(end, step_minutes=5, seed=seed)
    ]
    return Samples.from_rows(rows)


def test_a_chart_does_not_keep_the_host_drawn_before(monkeypatch: pytest.MonkeyPatch) -> None:
    two_mounts, one_mount = _samples(1, ("/", "/data")), _samples(2, ("/",))
    monkeypatch.setattr(charts, "_canvases", {})
    charts.host_charts("a", two_mounts, TZ)  # a legend naming / and /data
    after = charts.host_charts("b", one_mount, TZ)
    monkeypatch.setattr(charts, "_canvases", {})
    fresh = charts.host_charts("b", one_mount, TZ)
    assert after.keys() == fresh.keys() and len(fresh) == 4
    for cid in fresh:
        assert after[cid] == fresh[cid], cid


def test_a_host_with_another_day_gets_its_own_time_axis(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hosts of a report share a time axis, kept in the background: a host whose day ends
    elsewhere (a period still running, a host gone silent) has the background drawn again."""
    same_day, other_day = _samples(1, ("/",)), _samples(2, ("/",), END - timedelta(hours=7))
    monkeypatch.setattr(charts, "_canvases", {})
    charts.host_charts("a", same_day, TZ)
    after = charts.host_charts("b", other_day, TZ)
    again = charts.host_charts("a", same_day, TZ)
    for host, samples, drawn in (("b", other_day, after), ("a", same_day, again)):
        monkeypatch.setattr(charts, "_canvases", {})
        fresh = charts.host_charts(host, samples, TZ)
        assert drawn.keys() == fresh.keys() and len(fresh) == 4
        for cid in fresh:
            assert drawn[cid] == fresh[cid], cid


def test_load_charts_of_similar_load_share_a_round_y_axis() -> None:
    assert charts._load_top(None) == charts._load_top(0.0) == 1.0
    assert charts._load_top(1.9) == charts._load_top(1.7) == 2.5  # 1.25 × 1.9 = 2.375
    assert charts._load_top(0.07) == pytest.approx(0.1)
    assert charts._load_top(7.9) == 10.0 and charts._load_top(8.1) == 12.0
    assert charts._load_top(100.0) == 150.0


@pytest.mark.parametrize("kind", ["cpu", "disk", "load"])
def test_background_and_moving_parts_paint_what_a_full_draw_paints(kind: str) -> None:
    canvas = charts._Canvas(
        percent=kind != "load", lines=charts.MAX_MOUNTS if kind == "disk" else 1
    )
    hours = np.linspace(0, 23.9, 288)
    ys = 50 + 40 * np.sin(hours)
    if kind == "load":
        ys = ys / 40
    lines = [("/", hours, ys), ("/data", hours, ys / 2)] if kind == "disk" else [("", hours, ys)]
    labels = ["00:00", "06:00", "12:00", "18:00", "24:00"]
    canvas.png(23.9, labels, lines, "{:.1f}%")  # the background is kept from this first host
    canvas.png(23.9, labels, lines, "{:.1f}%")
    blitted = np.asarray(canvas.canvas.buffer_rgba()).copy()
    canvas.canvas.draw()
    full = np.asarray(canvas.canvas.buffer_rgba())
    assert (blitted == full).all()
