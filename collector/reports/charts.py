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
import math
import threading
from collections.abc import Sequence
from datetime import timedelta
from typing import Optional
from zoneinfo import ZoneInfo

import matplotlib

matplotlib.use("Agg")

import numpy as np
from matplotlib import font_manager, rcParams
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from collector.reports.data import chart_cid
from collector.reports.samples import Floats, Samples

log = logging.getLogger(__name__)

CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei")
MAX_POINTS = 360
MAX_MOUNTS = 6
SIZE_INCHES = (2.2, 1.1)  # four across an A4 host section
DPI = 130
KINDS = ("cpu", "memory", "load", "disk")
PNG_LEVEL = 3
"""zlib level of the PNGs: as small as the default 6 within 2 % on these flat charts, at 60 % of
its time (the PDF's copy is compressed again by WeasyPrint anyway)."""
PERCENT_TOP = 105.0
NICE_STEPS = (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)
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


def _reduce(hours: Floats, values: Floats) -> tuple[Floats, Floats]:
    """At most MAX_POINTS points: each bucket keeps its maximum (so peaks stay visible)."""
    keep = np.isfinite(values)
    xs, ys = hours[keep], values[keep]
    if ys.size <= MAX_POINTS:
        return xs, ys
    size = -(-ys.size // MAX_POINTS)
    padded = np.full(-(-ys.size // size) * size, -np.inf)
    padded[: ys.size] = ys
    rows = np.arange(padded.size // size) * size
    picks = rows + padded.reshape(-1, size).argmax(axis=1)
    return xs[picks], ys[picks]


_NONE: Floats = np.zeros(0)
_Scales = tuple[float, tuple[str, ...], float]
"""A chart's axes: the time axis's span in hours and five tick labels, the y axis's top."""


def _load_top(top: Optional[float]) -> float:
    """The top of a load chart's y axis: a round number a quarter above the highest point (room
    for the peak's label), so that hosts of similar load share one y axis."""
    if not top or top <= 0:
        return 1.0
    wanted = top * 1.25
    magnitude = 10.0 ** math.floor(math.log10(wanted))
    return next(step * magnitude for step in NICE_STEPS if step * magnitude >= wanted)


class _Canvas:
    """One figure of a chart kind, drawn again for every host: building axes, ticks and text
    objects was over half of a chart's time, updating their data costs little. The axes are
    the same for many hosts: the time axis for every host of a report (the same 24 h), the y
    axis of a percent chart (0–100 %) for all, of a load chart for hosts of similar load
    (`_load_top`). They are drawn once, kept as a background, and each host draws only what
    moves over them (the lines, the axes' edges, the peak and the legend): drawing the tick
    labels' text was most of a chart's time. A host whose axes differ from the previous one's
    has the background drawn again."""

    def __init__(self, percent: bool, lines: int) -> None:
        self.fig = Figure(figsize=SIZE_INCHES, dpi=DPI)
        self.canvas = FigureCanvasAgg(self.fig)
        ax = self.ax = self.fig.add_axes((0.14, 0.17, 0.8, 0.77))
        self.percent = percent
        if percent:
            ax.set_ylim(0, PERCENT_TOP)
            ax.set_yticks([0, 25, 50, 75, 100], ["0%", "25%", "50%", "75%", "100%"])
        ax.tick_params(labelsize=6, length=2)
        # the axes have no labels: placed by hand, matplotlib does not measure every tick label
        # again to place them (a fifth of the drawing)
        ax.xaxis.set_label_coords(0.5, 0)
        ax.yaxis.set_label_coords(0, 0.5)
        ax.grid(True, linewidth=0.3, color="#d0d6dc")
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        colours = [LINE_COLOUR] if lines == 1 else [f"C{k}" for k in range(lines)]
        self.lines = [ax.plot([], [], linewidth=0.8, color=c)[0] for c in colours]
        (self.marker,) = ax.plot(
            [], [], marker="v", color=PEAK_COLOUR, markersize=4, linestyle="none"
        )
        self.label = ax.annotate(
            "", (0, 0), xytext=(0, 0), textcoords="offset points", fontsize=6, color=PEAK_COLOUR
        )
        self.background: Optional[object] = None
        self.scales: Optional[_Scales] = None

    def _moving(self) -> list[Artist]:
        """What a host changes, in the order a full draw paints it (by zorder)."""
        ax = self.ax
        legend = [ax.legend_] if ax.legend_ is not None else []
        return [*self.lines, self.marker, *ax.spines.values(), self.label, *legend]

    def _scale(self, scales: _Scales) -> None:
        """Set the axes (and drop the background) only where they change: new tick labels are
        new text objects to lay out."""
        if scales == self.scales:
            return
        span, labels, top = scales
        self.ax.set_xlim(0, span)
        self.ax.set_xticks([span * k / 4 for k in range(5)], list(labels))
        if not self.percent:
            self.ax.set_ylim(0, top)
        self.scales = scales
        self.background = None

    def _draw(self) -> None:
        if self.background is None:
            moving = self._moving()
            shown = [a.get_visible() for a in moving]
            for artist in moving:
                artist.set_visible(False)
            self.canvas.draw()
            self.background = self.canvas.copy_from_bbox(self.fig.bbox)
            for artist, visible in zip(moving, shown):
                artist.set_visible(visible)
        self.canvas.restore_region(self.background)
        for artist in self._moving():
            self.ax.draw_artist(artist)

    def png(
        self,
        span: float,
        tick_labels: list[str],
        lines: Sequence[tuple[str, Floats, Floats]],
        peak_format: str,
    ) -> bytes:
        ax = self.ax
        top = max((float(ys.max()) for _, _, ys in lines if ys.size), default=None)
        self._scale((span, tuple(tick_labels), PERCENT_TOP if self.percent else _load_top(top)))
        for k, line in enumerate(self.lines):
            name, xs, ys = lines[k] if k < len(lines) else ("", _NONE, _NONE)
            line.set_data(xs, ys)
            line.set_label(name)
        if len(lines) > 1:
            ax.legend(
                handles=self.lines[: len(lines)],
                fontsize=5.5,
                loc="lower left",
                ncol=3,
                frameon=False,
            )
        elif ax.legend_ is not None:  # the previous host's, naming its mounts
            ax.legend_.remove()
        self._mark_peak(lines, peak_format)
        self._draw()
        # RGB, without the alpha channel (the figure is opaque): WeasyPrint splits an RGBA PNG
        # into colour and mask and encodes both again for the PDF, an RGB one only once
        rgba = Image.frombuffer("RGBA", self.canvas.get_width_height(), self.canvas.buffer_rgba())
        buf = io.BytesIO()
        rgba.convert("RGB").save(buf, format="PNG", compress_level=PNG_LEVEL, dpi=(DPI, DPI))
        return buf.getvalue()

    def _mark_peak(self, lines: Sequence[tuple[str, Floats, Floats]], peak_format: str) -> None:
        """The highest point of the series with the highest maximum (the first on a tie)."""
        best = max((ln for ln in lines if ln[2].size), key=lambda ln: ln[2].max(), default=None)
        self.label.set_visible(best is not None)
        if best is None:
            self.marker.set_data([], [])
            return
        _, xs, ys = best
        k = int(ys.argmax())
        x, y = float(xs[k]), float(ys[k])
        self.marker.set_data([x], [y])
        right = x > 0.8 * self.ax.get_xlim()[1]  # near the right edge: label to the left
        self.label.set_text(peak_format.format(y))
        self.label.xy = (x, y)
        self.label.set_position((-4 if right else 4, -9 if y > 0.8 * self.ax.get_ylim()[1] else 3))
        self.label.set_horizontalalignment("right" if right else "left")


_canvases: dict[str, _Canvas] = {}
_draw_lock = threading.Lock()
"""The console draws from request threads; the shared figures are drawn one host at a time."""


def prepare() -> None:
    """The font and the figure of every chart kind, made and drawn once (empty) before any host
    is drawn: in a worker that forks a child per batch of hosts, the fonts are loaded and the
    fixed tick labels laid out once for all of them (a batch of 17 hosts: 1.3 -> 1.2 s)."""
    cjk_font()
    for kind in KINDS:
        _canvas(kind).canvas.draw()


def _canvas(kind: str) -> _Canvas:
    if kind not in _canvases:
        _canvases[kind] = _Canvas(percent=kind != "load", lines=MAX_MOUNTS if kind == "disk" else 1)
    return _canvases[kind]


def host_charts(host_key: str, samples: Samples, tz: ZoneInfo) -> dict[str, bytes]:
    """PNG per chart of one host, keyed by the Content-ID the report's HTML refers to."""
    cjk_font()
    hours = (samples.at_us - samples.at_us[0]) / 3.6e9
    span = max(float(hours[-1]), 1e-6)
    t0 = samples.time(0)
    labels = [
        (t0 + timedelta(hours=span * k / 4)).astimezone(tz).strftime("%H:%M") for k in range(5)
    ]
    plan: list[tuple[str, list[tuple[str, Floats]], str]] = [
        ("cpu", [("", samples.cpu)], "{:.1f}%"),
        ("memory", [("", samples.memory)], "{:.1f}%"),
        ("load", [("", samples.load1)], "{:.2f}"),
    ]
    if samples.disks:
        fullest = sorted(samples.disks.items(), key=lambda kv: -_top(kv[1]))[:MAX_MOUNTS]
        plan.append(("disk", fullest, "{:.1f}%"))
    out: dict[str, bytes] = {}
    with _draw_lock:
        for kind, series, peak_format in plan:
            lines = [(name, *_reduce(hours, values)) for name, values in series]
            out[chart_cid(host_key, kind)] = _canvas(kind).png(span, labels, lines, peak_format)
    return out


def _top(values: Floats) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.max()) if finite.size else 0.0
