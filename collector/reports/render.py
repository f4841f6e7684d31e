"""ReportData → HTML, PDF (WeasyPrint) and the mail body, all from the same Jinja2 templates.

- `report.html` is the report: rendered once with charts as `data:` URIs (the standalone HTML
  the API serves) and once with `cid:` URIs for WeasyPrint, whose URL fetcher hands it the PNGs
  from memory — it never fetches anything from the network or the file system.
- `mail.html` reuses the report's macros (summary, host status, key findings, charts) with
  `cid:` references that the mail's multipart/related parts resolve; `mail.txt` is the plain
  alternative.
The PDF is A4 with the contract number and customer in the running header and page numbers in
the footer (`@page` margin boxes; `font-family` is set on `html` so they inherit the CJK font).
A report of more than HOSTS_PER_PART hosts is laid out in parts, one after the other and each
in a child process of its own (`render_pdf`), so that no process holds the layout of all its
pages at once; the parts' PDFs are joined by `pdfjoin`.
"""

from __future__ import annotations

import base64
import gc
import multiprocessing
import os
import pickle
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from multiprocessing.pool import Pool
from pathlib import Path
from typing import Any, Optional, TypeVar, cast
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from collector.reports.data import (
    FindingView,
    HostSection,
    ReportData,
    ReportInputs,
    assemble,
    metric_series,
)
from collector.reports.pdfjoin import PT_PER_PX, Mark, Piece, join
from collector.reports.samples import Samples
from collector.reports.score import Status
from collector.reports.texts import report_texts

T = TypeVar("T")
TEMPLATES = Path(__file__).with_name("templates")
POOL_WORKERS = 2
POOL_MIN_HOSTS = 10
"""Smaller reports are drawn and rendered in the calling process: a spawned worker first spends
about a second importing matplotlib and WeasyPrint, more than a few hosts take to draw."""
GC_THRESHOLD_RENDER = 50_000
"""Allocations between young-generation collections while WeasyPrint renders (default 700)."""
HOSTS_PER_PART = 34
"""Host sections per WeasyPrint layout. A layout stays whole in memory until its PDF is written:
100 hosts in one took a worker to 555 MB; in 3 parts no process passes 350 MB (in 4, 325 MB,
but each part costs a font subsetting, a page that ends early and ~0.2 s)."""
MAIL_CHART_HOSTS = 3
"""Hosts whose charts the mail shows inline (the worst first); the PDF has them all."""
CHANGES_SHOWN = 15
"""Rows of each change list (new / persisting / resolved) in the summary, the worst first. Every
finding is in its host's section; on a hundred hosts the full lists were twenty pages that said
the same again."""


@dataclass(frozen=True)
class Part:
    """A slice of the report laid out on its own: the host sections [first, stop), with the front
    matter (cover, sections 1 and 2) before the first and the back matter (sections 4 to 6) after
    the last. Each part starts on a new page."""

    first: int
    stop: int
    front: bool = True
    back: bool = True


def split(hosts: int, per_part: int) -> list[Part]:
    """As few parts as hold at most `per_part` hosts each, as even as they come."""
    count = max(1, -(-hosts // per_part))
    bounds = [hosts * k // count for k in range(count + 1)]
    return [Part(bounds[k], bounds[k + 1], front=k == 0, back=k == count - 1) for k in range(count)]


@dataclass
class Rendered:
    html: str
    pdf: bytes
    mail_html: str
    mail_text: str
    mail_images: dict[str, bytes]
    subject: str
    attachment_name: str
    attachment_ascii: str


def css_string(value: str) -> Markup:
    """Text for a CSS string literal inside <style> (quotes, backslashes, `<` escaped)."""
    out = []
    for ch in str(value):
        if ch in '"\\<>&' or ord(ch) < 0x20:
            out.append(f"\\{ord(ch):x} ")
        else:
            out.append(ch)
    return Markup("".join(out))


def css_counter(label: str) -> Markup:
    """'第 {page} 页 / 共 {pages} 页' → `"第 " counter(page) " 页 / 共 " counter(pages) " 页"`."""
    parts = []
    for piece in re.split(r"(\{pages?\})", label):
        if piece in ("{page}", "{pages}"):
            parts.append(f"counter({piece[1:-1]})")
        elif piece:
            parts.append(f'"{css_string(piece)}"')
    return Markup(" ".join(parts) or '""')


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(enabled_extensions=("html",), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["css_string"] = css_string
    env.filters["css_counter"] = css_counter
    return env


def _worst(items: Sequence[FindingView]) -> list[FindingView]:
    return sorted(items, key=lambda f: (-f.severity.rank, f.priority or "P9"))[:CHANGES_SHOWN]


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def _mail_hosts(data: ReportData) -> list[HostSection]:
    rank = {Status.abnormal: 0, Status.attention: 1, Status.ok: 2}
    charted = [h for h in data.hosts if h.charts]
    return sorted(charted, key=lambda h: (rank[h.status], h.score, h.hostname))[:MAIL_CHART_HOSTS]


def _draw(batch: list[tuple[str, Samples]], tz: str) -> dict[str, bytes]:
    from collector.reports import charts  # matplotlib only when there is something to draw

    out: dict[str, bytes] = {}
    for key, series in batch:
        out.update(charts.host_charts(key, series, ZoneInfo(tz)))
    return out


def _chart_batch(inputs: ReportInputs) -> list[tuple[str, Samples]]:
    hosts = inputs.hosts
    return [
        (h.host_id or h.hostname, h.samples) for h in hosts if metric_series(h.samples) is not None
    ]


def produce(
    inputs: ReportInputs,
    langs: Sequence[str],
    *,
    workers: Optional[int] = None,
    timings: Optional[dict[str, float]] = None,
) -> list[tuple[ReportData, Rendered]]:
    """The report in each of `langs`: assembled here, charts drawn once for all languages,
    HTML and PDF rendered per language.

    With workers (default: POOL_WORKERS for a report of POOL_MIN_HOSTS hosts or more) the
    charts and the renderings run in spawned processes, so the memory of matplotlib and of a
    WeasyPrint layout (~5 MB a page) returns to the system when the pool ends, instead of
    staying with the collector that built the report; the parent assembles while the workers
    draw. `timings` receives seconds per stage; with workers `charts_s` counts from the start,
    since assembly overlaps the drawing."""
    clock = timings if timings is not None else {}
    if workers is None:
        workers = POOL_WORKERS if len(inputs.hosts) >= POOL_MIN_HOSTS else 0
    charts: dict[str, bytes] = {}
    t = time.perf_counter()
    if workers < 1:
        datas = [assemble(inputs, lang) for lang in langs]
        clock["assemble_s"] = time.perf_counter() - t
        t = time.perf_counter()
        if datas:
            charts = _draw(_chart_batch(inputs), datas[0].cover.timezone)
        clock["charts_s"] = time.perf_counter() - t
        t = time.perf_counter()
        out = [render(d, charts) for d in datas]
        clock["render_s"] = time.perf_counter() - t
        return list(zip(datas, out))
    with _pool(workers) as pool:
        first = assemble(inputs, langs[0])
        batch = _chart_batch(inputs)
        drawing = pool.starmap_async(
            _draw, [(batch[k::workers], first.cover.timezone) for k in range(workers)]
        )
        datas = [first] + [assemble(inputs, lang) for lang in langs[1:]]
        clock["assemble_s"] = time.perf_counter() - t
        for part in drawing.get():
            charts.update(part)
        clock["charts_s"] = time.perf_counter() - t
        t = time.perf_counter()
        out = pool.starmap(render, [(d, charts) for d in datas])
        clock["render_s"] = time.perf_counter() - t
        return list(zip(datas, out))


def _pool(workers: int) -> Pool:
    """Spawned, not forked: the collector runs threads (uvicorn, the scheduler) that a fork would
    copy mid-flight; a worker's memory returns to the system when it ends. A worker takes one task
    and is replaced, so a rendering starts in a fresh process instead of one still holding the
    matplotlib figures and PNGs it drew (100 hosts: largest worker 674 → 553 MB, about 0.3 s of
    spawning)."""
    return multiprocessing.get_context("spawn").Pool(workers, maxtasksperchild=1)


def safe_name(text: str) -> str:
    return re.sub(r'[\\/:*?"<>|\s]+', "-", text).strip("-")


def _page_context(data: ReportData, *, header: bool = True, footer: bool = True) -> dict[str, Any]:
    """What report.css needs: the running header and the page numbers, each drawn or not."""
    t = report_texts(data.lang)
    return {
        "d": data,
        "t": t,
        "html_lang": "zh-CN" if data.lang == "zh_CN" else "en",
        "header": header,
        "footer": footer,
        "header_left": f"{data.cover.number} · {data.cover.customer.name}",
        "header_right": t("report.header_right", {"period": data.cover.period_key}),
        "page_label": t("report.page_label"),
    }


def render_html(
    data: ReportData,
    images: Mapping[str, bytes],
    *,
    inline: bool,
    part: Optional[Part] = None,
) -> str:
    """The report as HTML: charts as data: URIs (`inline`) or cid: references (for the PDF);
    the whole report, or one `part` of it for the PDF, without page numbers (`render_pdf`)."""

    def img(cid: str) -> str:
        png = images.get(cid)
        if png is None:
            return ""
        return _data_uri(png) if inline else f"cid:{cid}"

    context = _page_context(data, footer=part is None)
    context.update(img=img, worst=_worst, part=part or Part(0, len(data.hosts)))
    return environment().get_template("report.html").render(context)


def _layout(html_with_cids: str, images: Mapping[str, bytes]) -> Any:
    """WeasyPrint's laid-out document (weasyprint.Document) of `html_with_cids`."""
    import weasyprint  # heavy; only the PDF needs it
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class _ChartsOnly(URLFetcher):
        """Serves the report's own charts by Content-ID and refuses every other URL."""

        def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
            png = images.get(url[4:]) if url.startswith("cid:") else None
            if png is None:
                raise ValueError(f"the report may not fetch {url!r}")
            return URLFetcherResponse(url, png, {"Content-Type": "image/png"})

    return weasyprint.HTML(string=html_with_cids, url_fetcher=_ChartsOnly()).render()


def _write_part(html_with_cids: str, images: Mapping[str, bytes], first_page: int) -> Piece:
    """One part's PDF, page count and bookmarks (pages counted from the report's first)."""
    document = _layout(html_with_cids, images)
    marks = [
        Mark(level, label, first_page + number, x * PT_PER_PX, (page.height - y) * PT_PER_PX, state)
        for number, page in enumerate(document.pages)
        for level, label, (x, y), state in page.bookmarks
    ]
    return Piece(document.write_pdf(), len(document.pages), marks)


def _write_parts(data: ReportData, images: Mapping[str, bytes], parts: list[Part]) -> list[Piece]:
    """The parts one after the other, each in a forked child that takes its layout along when it
    ends. Freed in this process instead, a layout is cyclic garbage the collector has to walk
    (100 hosts: the build 0.8 s slower) and heap the process keeps. A process running other
    threads (the collector itself, building without workers) lays the parts out itself: a fork
    would copy those threads' locks in whatever state they are."""
    import weasyprint  # noqa: F401  # imported once, here, not in every child

    forking = hasattr(os, "fork") and threading.active_count() == 1
    pieces: list[Piece] = []
    for part in parts:
        html = render_html(data, images, inline=False, part=part)
        first_page = sum(p.pages for p in pieces)
        if forking:
            pieces.append(in_child(_write_part, html, images, first_page))
        else:
            gc.collect()  # the previous part's layout, now rather than at some later pass
            pieces.append(_write_part(html, images, first_page))
    return pieces


def in_child(fn: Callable[..., T], *args: Any) -> T:
    """fn(*args) in a forked child, whose answer comes back pickled through a pipe; the child
    ends with os._exit, so nothing it built is ever collected or torn down. Its error is raised
    here (as text: not every exception pickles)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            os.close(read)
            with os.fdopen(write, "wb") as out:
                try:
                    answer: object = fn(*args)
                except Exception as exc:
                    answer = RuntimeError(f"in a child process: {exc!r}")
                pickle.dump(answer, out)
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as source:
        payload = source.read()
    _, status = os.waitpid(pid, 0)
    if status != 0 or not payload:
        raise RuntimeError(f"the child process ended without an answer (wait status {status})")
    answer = pickle.loads(payload)
    if isinstance(answer, Exception):
        raise answer
    return cast(T, answer)


def render_pdf(data: ReportData, images: Mapping[str, bytes]) -> bytes:
    """The report's PDF, laid out in one piece or, beyond HOSTS_PER_PART hosts, in parts whose
    PDFs are joined under one outline, with the page numbers laid over them: "page N of M" is
    known only once the last part is laid out."""
    parts = split(len(data.hosts), HOSTS_PER_PART)
    # WeasyPrint's layout grows to millions of objects; at the default thresholds the cyclic
    # collector walks them again and again (~15 % of the rendering, same peak RSS on 20 hosts)
    thresholds = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD_RENDER, *thresholds[1:])
    try:
        if len(parts) == 1:
            pdf: bytes = _layout(render_html(data, images, inline=False), images).write_pdf()
            return pdf
        pieces = _write_parts(data, images, parts)
        context = _page_context(data, header=False)
        context["pages"] = sum(p.pages for p in pieces)
        numbers = environment().get_template("page_numbers.html").render(context)
        return join(pieces, _layout(numbers, {}).write_pdf())
    finally:
        gc.set_threshold(*thresholds)


def render(data: ReportData, images: Mapping[str, bytes], *, pdf: bool = True) -> Rendered:
    """Everything one language of a report needs, with the charts `produce` drew."""
    t = report_texts(data.lang)
    pdf_bytes = render_pdf(data, images) if pdf else b""
    mail_hosts = _mail_hosts(data)
    mail_images = {c.cid: images[c.cid] for h in mail_hosts for c in h.charts if c.cid in images}
    env = environment()
    mail_context: dict[str, Any] = {
        "d": data,
        "t": t,
        "img": lambda cid: f"cid:{cid}",
        "html_lang": "zh-CN" if data.lang == "zh_CN" else "en",
        "mail_hosts": mail_hosts,
    }
    names = {
        "number": safe_name(data.cover.number),
        "period": safe_name(data.cover.period_key),
    }
    return Rendered(
        html=render_html(data, images, inline=True),
        pdf=pdf_bytes,
        mail_html=env.get_template("mail.html").render(mail_context),
        mail_text=env.get_template("mail.txt").render(mail_context),
        mail_images=mail_images,
        subject=t(
            "mail.subject",
            {
                "number": data.cover.number,
                "customer": data.cover.customer.name,
                "period": data.cover.period_key,
            },
        ),
        attachment_name=t("mail.attachment_name", names),
        attachment_ascii=f"inspection-report_{names['number']}_{names['period']}.pdf",
    )
