"""ReportData → HTML, PDF (WeasyPrint) and the mail body, all from the same Jinja2 templates.

- `report.html` is the report: rendered once with charts as `data:` URIs (the standalone HTML
  the API serves) and once with `cid:` URIs for WeasyPrint, whose URL fetcher hands it the PNGs
  from memory — it never fetches anything from the network or the file system.
- `mail.html` reuses the report's macros (summary, host status, key findings, charts) with
  `cid:` references that the mail's multipart/related parts resolve; `mail.txt` is the plain
  alternative.
The PDF is A4 with the contract number and customer in the running header and page numbers in
the footer (`@page` margin boxes; `font-family` is set on `html` so they inherit the CJK font).
A report of more than HOSTS_PER_PART hosts is laid out in parts, each in a child process of its
own, so that no process holds the layout of all its pages at once; the parts' PDFs are joined by
`pdfjoin`. With `Workers` (`produce`), the charts of each part and each part of each language
are tasks of their own, spread over two worker processes as their inputs come in.
"""

from __future__ import annotations

import base64
import functools
import gc
import logging
import multiprocessing
import os
import pickle
import re
import threading
import time
from collections import ChainMap
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional, TypeVar, Union, cast
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from collector.reports.data import (
    FindingView,
    HostSection,
    ReportData,
    ReportInputs,
    assemble,
)
from collector.reports.pdfjoin import PT_PER_PX, Mark, Piece, join
from collector.reports.samples import Samples
from collector.reports.score import Status
from collector.reports.texts import report_texts

log = logging.getLogger(__name__)
T = TypeVar("T")
TEMPLATES = Path(__file__).with_name("templates")
POOL_WORKERS = 2
POOL_MIN_HOSTS = 10
"""Smaller reports are drawn and rendered in the calling process: the first workers of a process
wait about a second and a half for the fork server to import matplotlib and WeasyPrint, more
than a few hosts take to draw."""
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


def _draw(batch: Sequence[tuple[str, Samples]], tz: str) -> dict[str, bytes]:
    from collector.reports import charts  # matplotlib only when there is something to draw

    out: dict[str, bytes] = {}
    for key, series in batch:
        out.update(charts.host_charts(key, series, ZoneInfo(tz)))
    return out


def _chart_batches(
    inputs: ReportInputs, data: ReportData, parts: Sequence[Part], slices: int
) -> list[list[list[tuple[str, Samples]]]]:
    """The charted hosts of each part, in `slices` batches a part, to draw them in parallel."""
    samples = {h.host_id or h.hostname: h.samples for h in inputs.hosts}
    out = []
    for part in parts:
        keys = [h.host_id or h.hostname for h in data.hosts[part.first : part.stop] if h.charts]
        out.append([[(key, samples[key]) for key in keys[k::slices]] for k in range(slices)])
    return out


class Workers:
    """The processes a report is drawn and laid out in, forked by multiprocessing's fork server
    (not forked from this process: the collector runs threads — uvicorn, the scheduler — that a
    fork would copy mid-flight). The fork server is a fresh interpreter that imports matplotlib,
    WeasyPrint and the report modules once (`PRELOAD`) and forks every worker from that state,
    so two workers cost one import (~1.5 s of CPU, against one a worker when each was spawned),
    the caller's load has a core to itself meanwhile, and in a long-running collector only the
    first build of the process pays for it: the server stays for the next. Enter it before
    reading the database. A worker runs every task in a child it forks (`in_child`), so what a
    task builds leaves with the child and the worker stays as it started, for the next task and
    the next fork.

    A `ProcessPoolExecutor`, not a `multiprocessing.Pool`: should a worker die (the OOM killer,
    a signal), the pool quietly starts another and the task it held never answers, so a build
    waiting for it would wait for ever; the executor fails every pending task instead
    (BrokenProcessPool), and the build fails with a reason."""

    def __init__(self, count: int = POOL_WORKERS) -> None:
        self.count = count
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        self.pool = ProcessPoolExecutor(count, mp_context=context, initializer=_warm_up)
        # Starting a worker waits until the fork server has imported PRELOAD: start them from a
        # thread, so that the caller reads the database meanwhile.
        self._starting = threading.Thread(target=self._start, name="report-workers", daemon=True)
        self._starting.start()

    def _start(self) -> None:
        try:
            for _ in range(self.count):
                self.pool.submit(int)
        except RuntimeError:  # shut down before the workers were up: the build has ended
            pass

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self._starting.join()
        self.pool.shutdown(wait=True, cancel_futures=True)


PRELOAD = ["__main__", "pikepdf", "weasyprint", "collector.reports.charts", __name__]
"""What the fork server imports before it forks the first worker ("__main__": the program's
own module, which every child of multiprocessing imports otherwise)."""


def workers_for(hosts: int) -> AbstractContextManager[Optional[Workers]]:
    """Workers for a report on about `hosts` hosts, or none where a report is made faster in
    the calling process (POOL_MIN_HOSTS)."""
    return Workers() if hosts >= POOL_MIN_HOSTS else nullcontext()


def _warm_up() -> None:
    """What every task needs beyond the fork server's imports (PRELOAD), done once per worker
    before its first task: the chart figures and font, the compiled templates; the children it
    forks inherit them. A failure is only logged: the first task meets it again and fails the
    build with it, where an error raised here would have the pool start new workers for ever."""
    try:
        from collector.reports import charts

        charts.prepare()
        for name in ("report.html", "page_numbers.html"):
            environment().get_template(name)
    except Exception:
        log.exception("report worker could not prepare")


Key = tuple[Union[str, int], ...]


@dataclass(frozen=True)
class _Result:
    """Among a task's arguments: the result of task `key`, put in when the task starts."""

    key: Key


@dataclass(frozen=True)
class _Images:
    """Among a task's arguments: the PNGs `cids` from the results of the chart tasks
    `drawn_by`, put in when the task starts."""

    cids: tuple[str, ...]
    drawn_by: tuple[Key, ...]


@dataclass(frozen=True)
class _Task:
    """`fn(*args)` in a child of a worker, once the results its arguments name are in."""

    key: Key
    fn: Callable[..., Any]
    args: tuple[Any, ...]

    def needs(self) -> set[Key]:
        keys: set[Key] = set()
        for arg in self.args:
            for one in arg if isinstance(arg, list) else [arg]:
                if isinstance(one, _Result):
                    keys.add(one.key)
                elif isinstance(one, _Images):
                    keys.update(one.drawn_by)
        return keys


class _Schedule:
    """Hands tasks to the workers as their inputs come in, the first listed first, and never
    more at once than there are workers: a task queued in the pool keeps its place even when a
    more urgent one becomes ready. Results come back on the executor's management thread, which
    hands out the next task there and then, whatever this process is doing meanwhile."""

    def __init__(self, workers: Workers, tasks: Sequence[_Task]) -> None:
        self._pool = workers.pool
        self._idle = workers.count
        self._waiting = [(task, task.needs()) for task in tasks]
        self._results: dict[Key, Any] = {}
        self._error: Optional[BaseException] = None
        self._changed = threading.Condition()
        self.done_at: dict[Key, float] = {}
        with self._changed:
            self._feed()

    def provide(self, key: Key, value: Any) -> None:
        """A result this process made itself (an assembled language)."""
        with self._changed:
            self._results[key] = value
            self._feed()

    def get(self, key: Key) -> Any:
        with self._changed:
            self._changed.wait_for(lambda: key in self._results or self._error is not None)
            if self._error is not None:
                raise self._error
            return self._results[key]

    def _feed(self) -> None:
        while self._idle and self._error is None:
            ready = next((w for w in self._waiting if w[1] <= self._results.keys()), None)
            if ready is None:
                return
            self._waiting.remove(ready)
            self._idle -= 1
            task = ready[0]
            future = self._pool.submit(
                in_child, task.fn, *(self._resolve(arg) for arg in task.args)
            )
            future.add_done_callback(functools.partial(self._done, task.key))

    def _resolve(self, arg: Any) -> Any:
        if isinstance(arg, list):
            return [self._resolve(one) for one in arg]
        if isinstance(arg, _Result):
            return self._results[arg.key]
        if isinstance(arg, _Images):
            drawn = ChainMap(*(self._results[key] for key in arg.drawn_by))
            return {cid: drawn[cid] for cid in arg.cids}
        return arg

    def _done(self, key: Key, future: Future[Any]) -> None:
        error = future.exception()
        if error is not None:
            self._failed(error)
        else:
            self._finished(key, future.result())

    def _finished(self, key: Key, value: Any) -> None:
        with self._changed:
            self.done_at[key] = time.perf_counter()
            self._results[key] = value
            self._idle += 1
            self._feed()
            self._changed.notify_all()

    def _failed(self, error: BaseException) -> None:
        with self._changed:
            self._error = error
            self._changed.notify_all()


def produce(
    inputs: ReportInputs,
    langs: Sequence[str],
    *,
    workers: Optional[int] = None,
    pool: Optional[Workers] = None,
    timings: Optional[dict[str, float]] = None,
) -> list[tuple[ReportData, Rendered]]:
    """The report in each of `langs`: assembled here, charts drawn once for all languages,
    HTML and PDF rendered per language.

    With `pool`, or `workers` (default: POOL_WORKERS for a report of POOL_MIN_HOSTS hosts or
    more), the charts and the PDFs are made in worker processes, so the memory of matplotlib
    and of WeasyPrint's layouts (~4 MB a page) returns to the system instead of staying with
    the collector that built the report. `timings` receives seconds per stage; with workers
    the stages overlap: `charts_s` counts from the start to the last chart, `render_s` from
    there to the end."""
    clock = timings if timings is not None else {}
    if pool is not None:
        return _produce_in(pool, inputs, langs, clock)
    if workers is None:
        workers = POOL_WORKERS if len(inputs.hosts) >= POOL_MIN_HOSTS else 0
    if workers > 0:
        with Workers(workers) as started:
            return _produce_in(started, inputs, langs, clock)
    t = time.perf_counter()
    datas = [assemble(inputs, lang) for lang in langs]
    clock["assemble_s"] = time.perf_counter() - t
    t = time.perf_counter()
    charts: dict[str, bytes] = {}
    if datas:
        whole = [Part(0, len(datas[0].hosts))]
        charts = _draw(_chart_batches(inputs, datas[0], whole, 1)[0][0], datas[0].cover.timezone)
    clock["charts_s"] = time.perf_counter() - t
    t = time.perf_counter()
    out = [render(d, charts) for d in datas]
    clock["render_s"] = time.perf_counter() - t
    return list(zip(datas, out))


def _produce_in(
    workers: Workers, inputs: ReportInputs, langs: Sequence[str], clock: dict[str, float]
) -> list[tuple[ReportData, Rendered]]:
    """`produce` with workers. The charts of each part, in a batch per worker, and each part of
    each language are tasks of their own: a part starts as soon as the charts of its hosts are
    drawn, the charts of later parts are drawn while earlier parts are laid out, and both
    workers stay busy to the end. Tasks are listed in the order they should start: the first
    part (with the front matter, the longest) first, each language's join once its parts are
    in. This process assembles meanwhile and writes the HTML and the mail."""
    t0 = time.perf_counter()
    first = assemble(inputs, langs[0])
    assembling = time.perf_counter() - t0
    parts = split(len(first.hosts), HOSTS_PER_PART)
    batches = _chart_batches(inputs, first, parts, workers.count)
    tz = first.cover.timezone
    tasks: list[_Task] = []
    for k, part in enumerate(parts):
        drawing = tuple(("charts", k, j) for j in range(len(batches[k])))
        tasks += [_Task(key, _draw, (batch, tz)) for key, batch in zip(drawing, batches[k])]
        cids = tuple(c.cid for h in first.hosts[part.first : part.stop] for c in h.charts)
        for lang in langs:
            assembled, images = _Result(("data", lang)), _Images(cids, drawing)
            if len(parts) == 1:  # the whole report in one layout, page numbers and all
                tasks.append(_Task(("pdf", lang), _whole_pdf, (assembled, images)))
            else:
                tasks.append(_Task(("part", lang, k), _write_part, (assembled, images, part)))
    if len(parts) > 1:
        for lang in langs:
            pieces = [_Result(("part", lang, k)) for k in range(len(parts))]
            tasks.append(_Task(("pdf", lang), _numbered, (_Result(("data", lang)), pieces)))
    schedule = _Schedule(workers, tasks)
    schedule.provide(("data", langs[0]), first)
    datas = [first]
    for lang in langs[1:]:
        t = time.perf_counter()
        datas.append(assemble(inputs, lang))
        assembling += time.perf_counter() - t
        schedule.provide(("data", lang), datas[-1])
    clock["assemble_s"] = assembling
    drawn: dict[str, bytes] = {}
    charts = [task.key for task in tasks if task.fn is _draw]
    for key in charts:
        drawn.update(schedule.get(key))
    charted = max((schedule.done_at[key] for key in charts), default=t0)
    clock["charts_s"] = charted - t0
    out = [render(data, drawn, pdf=False) for data in datas]
    for data, rendered in zip(datas, out):
        rendered.pdf = schedule.get(("pdf", data.lang))
    clock["render_s"] = time.perf_counter() - charted
    return list(zip(datas, out))


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


@contextmanager
def _few_collections() -> Iterator[None]:
    """WeasyPrint's layout grows to millions of objects; at the default thresholds the cyclic
    collector walks them again and again (~15 % of the rendering, same peak RSS on 20 hosts)."""
    thresholds = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD_RENDER, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


def _whole_pdf(data: ReportData, images: Mapping[str, bytes]) -> bytes:
    """The report laid out in one piece, page numbers and all."""
    with _few_collections():
        pdf: bytes = _layout(render_html(data, images, inline=False), images).write_pdf()
        return pdf


def _write_part(data: ReportData, images: Mapping[str, bytes], part: Part) -> Piece:
    """One part's PDF, page count and bookmarks (pages counted from the part's first)."""
    with _few_collections():
        document = _layout(render_html(data, images, inline=False, part=part), images)
        marks = [
            Mark(level, label, number, x * PT_PER_PX, (page.height - y) * PT_PER_PX, state)
            for number, page in enumerate(document.pages)
            for level, label, (x, y), state in page.bookmarks
        ]
        return Piece(document.write_pdf(), len(document.pages), marks)


def _numbered(data: ReportData, pieces: Sequence[Piece]) -> bytes:
    """The parts joined under one outline, with the page numbers laid over them: "page N of
    M" is known only once the last part is laid out."""
    with _few_collections():
        context = _page_context(data, header=False)
        context["pages"] = sum(p.pages for p in pieces)
        numbers = environment().get_template("page_numbers.html").render(context)
        return join(pieces, _layout(numbers, {}).write_pdf())


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
        if forking:
            pieces.append(in_child(_write_part, data, images, part))
        else:
            gc.collect()  # the previous part's layout, now rather than at some later pass
            pieces.append(_write_part(data, images, part))
    return pieces


def in_child(fn: Callable[..., T], *args: Any) -> T:
    """fn(*args) in a forked child, whose answer comes back pickled through a pipe; the child
    ends with os._exit, so nothing it built is ever collected or torn down — nor collected
    while it runs: the cyclic collector is off in the child, its memory returns in one piece
    when it ends (a 34-host part: ~0.4 s less, peak +4 MB). Its error is raised here (as
    text: not every exception pickles)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            gc.disable()
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
    """The report's PDF in this process, laid out in one piece or, beyond HOSTS_PER_PART hosts,
    in parts joined by `_numbered`."""
    parts = split(len(data.hosts), HOSTS_PER_PART)
    if len(parts) == 1:
        return _whole_pdf(data, images)
    return _numbered(data, _write_parts(data, images, parts))


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
