"""24-hour history charts (CPU, memory, load, disk) as PNG, drawn with matplotlib's Agg backend.

The images carry no words: titles, units and the peak's description are captions from the
catalogs in the HTML around them. So one PNG per host and metric serves the Chinese and English
report and the mail alike, and a 100-host report draws its charts once. Inside the image are
only numbers, local clock times and mount points; the font is still a CJK one (found through
font_manager) because mount points and hostnames may be Chinese.

Series are reduced to at most MAX_POINTS by taking each bucket's maximum, so peaks survive the
reduction and a day of 60 s samples draws as fast as a sparse one.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Sequence
from datetime import timedelta
from typing import Optional
from zoneinfo import ZoneInfo

import matplotlib

matplotlib.use("Agg")

from matplotlib import font_manager, rcParams
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from collector.reports.data import Series, chart_cid

log = logging.getLogger(__name__)

CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei")
MAX_POINTS = 360
MAX_MOUNTS = 6
SIZE_INCHES = (3.6, 1.55)
DPI = 110
PEAK_COLOUR = "#b00020"
LINE_COLOUR = "#1f5f99"

_fonts_lock = threading.Lock()
_font_family: Optional[str] = None


def cjk_font() -> Optional[str]:
    """Name matplotlib's rcParams after the first installed CJK family (once per process)."""
    global _font_family
    with _fonts_lock:
        if _font_family is None:
            for family in CJK_FAMILIES:
                try:
                    font_manager.findfont(family, fallback_to_default=False)
                except ValueError:
                    continue
                _font_family = family
                break
            else:
                log.warning(
                    "no CJK font found (install fonts-noto-cjk); chart labels may lack glyphs"
                )
                _font_family = ""
            if _font_family:
                rcParams["font.family"] = [_font_family, "DejaVu Sans"]
            rcParams["axes.unicode_minus"] = False
        return _font_family or None


def _reduce(
    hours: Sequence[float], values: Sequence[Optional[float]]
) -> tuple[list[float], list[float]]:
    """At most MAX_POINTS points: each bucket keeps its maximum (so peaks stay visible)."""
    pairs = [(h, v) for h, v in zip(hours, values) if v is not None]
    if len(pairs) <= MAX_POINTS:
        return [h for h, _ in pairs], [v for _, v in pairs]
    size = -(-len(pairs) // MAX_POINTS)
    xs: list[float] = []
    ys: list[float] = []
    for i in range(0, len(pairs), size):
        bucket = pairs[i : i + size]
        h, v = max(bucket, key=lambda p: p[1])
        xs.append(h)
        ys.append(v)
    return xs, ys


def _axes(span_hours: float, tick_labels: list[str], percent: bool) -> tuple[Figure, Axes]:
    fig = Figure(figsize=SIZE_INCHES, dpi=DPI)
    ax = fig.add_axes((0.09, 0.16, 0.84, 0.78))
    ax.set_xlim(0, span_hours)
    ticks = [span_hours * k / 4 for k in range(5)]
    ax.set_xticks(ticks, tick_labels)
    if percent:
        ax.set_ylim(0, 105)
        ax.set_yticks([0, 25, 50, 75, 100], ["0%", "25%", "50%", "75%", "100%"])
    ax.tick_params(labelsize=6, length=2)
    ax.grid(True, linewidth=0.3, color="#d0d6dc")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig, ax


def _mark_peak(ax: Axes, xs: Sequence[float], ys: Sequence[float], text: str) -> None:
    if not ys:
        return
    k = max(range(len(ys)), key=lambda i: ys[i])
    ax.plot([xs[k]], [ys[k]], marker="v", color=PEAK_COLOUR, markersize=4, linestyle="none")
    right = xs[k] > 0.8 * ax.get_xlim()[1]  # near the right edge: label to the left
    ax.annotate(
        text.format(ys[k]),
        (xs[k], ys[k]),
        xytext=(-4 if right else 4, -9 if ys[k] > 0.8 * ax.get_ylim()[1] else 3),
        textcoords="offset points",
        horizontalalignment="right" if right else "left",
        fontsize=6,
        color=PEAK_COLOUR,
    )


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buf)
    return buf.getvalue()


def host_charts(host_key: str, series: Series, tz: ZoneInfo) -> dict[str, bytes]:
    """PNG per chart of one host, keyed by the Content-ID the report's HTML refers to."""
    cjk_font()
    t0 = series.times[0]
    hours = [(t - t0).total_seconds() / 3600 for t in series.times]
    span = max(hours[-1], 1e-6)
    labels = [
        (t0 + timedelta(hours=span * k / 4)).astimezone(tz).strftime("%H:%M") for k in range(5)
    ]
    out: dict[str, bytes] = {}
    line: tuple[str, Sequence[Optional[float]], bool]
    for line in (
        ("cpu", series.cpu, True),
        ("memory", series.memory, True),
        ("load", series.load1, False),
    ):
        kind, values, percent = line
        fig, ax = _axes(span, labels, percent)
        xs, ys = _reduce(hours, values)
        ax.plot(xs, ys, linewidth=0.8, color=LINE_COLOUR)
        if not percent:
            ax.set_ylim(0, max(ys or [1.0]) * 1.25 or 1.0)
        _mark_peak(ax, xs, ys, "{:.1f}%" if percent else "{:.2f}")
        out[chart_cid(host_key, kind)] = _png(fig)
    if series.disks:
        fig, ax = _axes(span, labels, True)
        ranked = sorted(
            series.disks.items(),
            key=lambda kv: -max((v for v in kv[1] if v is not None), default=0.0),
        )
        best_x: list[float] = []
        best_y: list[float] = []
        for mount, used in ranked[:MAX_MOUNTS]:
            xs, ys = _reduce(hours, used)
            ax.plot(xs, ys, linewidth=0.8, label=mount)
            if not best_y or (ys and max(ys) > max(best_y)):
                best_x, best_y = xs, ys
        ax.legend(fontsize=5.5, loc="lower left", ncol=3, frameon=False)
        _mark_peak(ax, best_x, best_y, "{:.1f}%")
        out[chart_cid(host_key, "disk")] = _png(fig)
    return out
