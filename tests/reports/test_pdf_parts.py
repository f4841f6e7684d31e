"""A report laid out in parts (one host a part here) reads like the same report laid out whole:
the same text, page numbers running through the parts, one outline, the fonts embedded; forked
or not, the parts make the same PDF."""

from __future__ import annotations

import multiprocessing
import os
import re
import shutil
import subprocess
import threading
import time
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime, timedelta, timezone
from io import BytesIO
from pathlib import Path
from typing import Any, NoReturn

import psutil
import pytest
from pypdf import PdfReader

from collector.db.engine import Database
from collector.db.migrate import upgrade
from collector.periods import parse
from collector.reports import render
from collector.reports.data import ReportInputs
from collector.reports.load import load_inputs
from tests.conftest import require_service
from tests.reports.helpers import EXAMPLE
from tests.reports.seed import seed

pytestmark = pytest.mark.py311

END_OF_Q3 = datetime(2026, 9, 30, 16, 0, tzinfo=timezone.utc)
HOSTS = ["app01", "db01", "web01"]
LABEL = {"zh_CN": r"第\s*(\d+)\s*页\s*/\s*共\s*(\d+)\s*页", "en": r"Page\s+(\d+)\s+of\s+(\d+)"}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> ReportInputs:
    require_service(shutil.which("pdftotext") is not None, "poppler-utils not installed")
    tmp = tmp_path_factory.mktemp("parts")
    db = Database(f"sqlite:///{tmp / 'x.db'}")
    upgrade(db)
    contract = seed(
        db,
        EXAMPLE,
        HOSTS,
        run_times=[END_OF_Q3 - timedelta(days=30), END_OF_Q3 - timedelta(hours=6)],
        samples_until=END_OF_Q3 - timedelta(hours=1),
        sample_step_minutes=10,
    )
    with db.read() as session:
        loaded = load_inputs(session, contract, parse("2026-Q3", contract), now=END_OF_Q3)
    db.dispose()
    return loaded


def _pdfs(
    inputs: ReportInputs, per_part: int, langs: list[str], workers: int = 0
) -> dict[str, bytes]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(render, "HOSTS_PER_PART", per_part)
        return {data.lang: r.pdf for data, r in render.produce(inputs, langs, workers=workers)}


def _single_threaded(inputs: ReportInputs, per_part: int, langs: list[str]) -> dict[str, bytes]:
    """`_pdfs` in a spawned process, where no other thread runs: the parts are laid out in
    forked children, as in the collector's rendering workers. (The test process may run
    threads left by earlier tests, and then the parts would be laid out in-process.)"""
    assert threading.active_count() == 1
    render.HOSTS_PER_PART = per_part
    return {data.lang: r.pdf for data, r in render.produce(inputs, langs, workers=0)}


@pytest.fixture(scope="module")
def pdfs(inputs: ReportInputs) -> dict[str, dict[str, bytes]]:
    """{"whole" | "parts": {lang: PDF}} of the same report, the parts laid out in forked
    children."""
    langs = ["zh_CN", "en"]
    with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        whole = pool.apply(_single_threaded, (inputs, len(HOSTS), langs))
        parts = pool.apply(_single_threaded, (inputs, 1, langs))
    return {"whole": whole, "parts": parts}


def _pages(pdf: bytes, tmp_path: Path) -> list[str]:
    path = tmp_path / "r.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    return text.split("\f")[:-1]


def _outline(pdf: bytes) -> list[tuple[int, str, int]]:
    """(depth, title, page index) of every outline item, in order."""
    reader = PdfReader(BytesIO(pdf))
    items: list[tuple[int, str, int]] = []

    def walk(level: list[Any], depth: int) -> None:
        for item in level:
            if isinstance(item, list):
                walk(item, depth + 1)
            else:
                page = reader.get_destination_page_number(item)
                assert page is not None
                items.append((depth, item.title, page))

    walk(reader.outline, 0)
    return items


def test_split_covers_every_host_once() -> None:
    assert render.split(0, 25) == [render.Part(0, 0)]
    assert render.split(25, 25) == [render.Part(0, 25)]
    parts = render.split(101, 25)
    assert [(p.first, p.stop) for p in parts] == [(0, 20), (20, 40), (40, 60), (60, 80), (80, 101)]
    assert [(p.front, p.back) for p in parts] == [(True, False)] + [(False, False)] * 3 + [
        (False, True)
    ]


@pytest.mark.parametrize("lang", ["zh_CN", "en"])
def test_page_numbers_run_through_the_parts(
    pdfs: dict[str, dict[str, bytes]], lang: str, tmp_path: Path
) -> None:
    pages = _pages(pdfs["parts"][lang], tmp_path)
    assert len(pages) > len(HOSTS) + 2
    assert not re.search(LABEL[lang], pages[0]) and "HT-2026-001 ·" not in pages[0]  # the cover
    for number, page in enumerate(pages[1:], start=2):
        found = re.findall(LABEL[lang], page)
        assert found == [(str(number), str(len(pages)))], (number, page[-300:])
        assert "HT-2026-001 ·" in page.splitlines()[0]  # the running header, once


@pytest.mark.parametrize("lang", ["zh_CN", "en"])
def test_parts_say_what_the_whole_says(
    pdfs: dict[str, dict[str, bytes]], lang: str, tmp_path: Path
) -> None:
    def words(pdf: bytes) -> list[str]:
        body = [
            line
            for page in _pages(pdf, tmp_path)
            for line in page.splitlines()
            if not re.search(LABEL[lang], line) and "HT-2026-001 ·" not in line
        ]
        return " ".join(body).split()

    whole, parts = words(pdfs["whole"][lang]), words(pdfs["parts"][lang])
    assert whole == parts
    for host in HOSTS:  # every part is there
        assert host in parts


def test_each_part_starts_a_page(pdfs: dict[str, dict[str, bytes]], tmp_path: Path) -> None:
    pages = _pages(pdfs["parts"]["zh_CN"], tmp_path)
    for number, host in (("3.2", "db01"), ("3.3", "web01")):
        [page] = [p for p in pages if f"{number} {host}" in p]
        first = next(line.split() for line in page.splitlines()[1:] if line.strip())
        assert first[:2] == [number, host]


def test_one_outline_over_the_parts(pdfs: dict[str, dict[str, bytes]], tmp_path: Path) -> None:
    whole = _outline(pdfs["whole"]["zh_CN"])
    parts = _outline(pdfs["parts"]["zh_CN"])
    # the host sections of the second and third parts hang under "3" of the first
    assert [(d, t) for d, t, _ in parts] == [(d, t) for d, t, _ in whole]
    assert [t.split()[0] for d, t, _ in parts if d == 0] == ["1", "2", "3", "4", "5", "6"]
    hosts = [t.split()[:2] for d, t, _ in parts if d == 1 and t.startswith("3.")]
    assert hosts == [["3.1", "app01"], ["3.2", "db01"], ["3.3", "web01"]]
    pages = _pages(pdfs["parts"]["zh_CN"], tmp_path)
    for _, title, page in parts:  # each item leads to the page its heading is on
        assert title.split()[0] in pages[page], title
    reader = PdfReader(BytesIO(pdfs["parts"]["zh_CN"]))
    assert reader.metadata is not None and reader.metadata.title == "巡检报告 HT-2026-001 2026-Q3"
    assert reader.root_object["/Lang"] == "zh-CN"


def test_parts_embed_named_cjk_fonts(pdfs: dict[str, dict[str, bytes]], tmp_path: Path) -> None:
    path = tmp_path / "r.pdf"
    path.write_bytes(pdfs["parts"]["zh_CN"])
    fonts = subprocess.run(
        ["pdffonts", str(path)], capture_output=True, text=True, check=True
    ).stdout.splitlines()[2:]
    assert any("Noto-Sans-CJK-SC" in line for line in fonts), fonts
    assert all(" yes yes " in line and "Type 3" not in line for line in fonts), fonts


def test_without_fork_the_same_pdf(inputs: ReportInputs, pdfs: dict[str, dict[str, bytes]]) -> None:
    """With another thread running, the parts are laid out in this process, one after another."""
    other = threading.Event()
    thread = threading.Thread(target=other.wait)
    thread.start()
    try:
        assert _pdfs(inputs, 1, ["zh_CN"])["zh_CN"] == pdfs["parts"]["zh_CN"]
    finally:
        other.set()
        thread.join()


def test_workers_make_the_same_pdf(inputs: ReportInputs, pdfs: dict[str, dict[str, bytes]]) -> None:
    """Each part of each language a task of its own, in either worker and in whatever order they
    finish, the page numbers and the join a task once a language's parts are in: the same bytes
    as the parts laid out one after the other."""
    timings: dict[str, float] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(render, "HOSTS_PER_PART", 1)
        pooled = render.produce(inputs, ["zh_CN", "en"], workers=2, timings=timings)
    assert {data.lang: r.pdf for data, r in pooled} == pdfs["parts"]
    assert timings["charts_s"] > 0 and timings["render_s"] > 0


def _add(a: int, b: int) -> int:
    return a + b


def test_a_task_runs_once_its_inputs_are_in_and_its_error_is_raised_here() -> None:
    with render.Workers(1) as workers:
        schedule = render._Schedule(
            workers, [render._Task(("sum",), _add, (render._Result(("given",)), 2))]
        )
        schedule.provide(("given",), 40)  # "sum" could not start before
        assert schedule.get(("sum",)) == 42
        failing = render._Schedule(workers, [render._Task(("fails",), _fail, ())])
        with pytest.raises(RuntimeError, match="no such chart"):
            failing.get(("fails",))


def test_workers_come_from_a_fork_server_that_stays_for_the_next_build() -> None:
    """Forked, not spawned: the fork server has WeasyPrint (and Pango with it) loaded before it
    forks a worker, and a later build's workers come from the same server."""
    with render.Workers(1) as first:
        server = first.pool.submit(os.getppid).result()
    with render.Workers(1) as second:
        assert second.pool.submit(os.getppid).result() == server
    assert server != os.getpid()
    assert "forkserver" in " ".join(psutil.Process(server).cmdline())
    assert "libpango" in Path(f"/proc/{server}/maps").read_text()


def _sleep() -> None:
    time.sleep(20)


def _busy_worker(workers: render.Workers) -> tuple[psutil.Process, psutil.Process]:
    """The worker of `workers` that has forked a child for its task, and that child (a fork:
    the worker's command line). Only these: another test's workers may still be ending, and a
    worker warming up may run a short-lived program of its own (matplotlib's `fc-list`)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for pid in list(workers.pool._processes or {}):
            try:
                worker = psutil.Process(pid)
                forked = [c for c in worker.children() if c.cmdline() == worker.cmdline()]
            except psutil.NoSuchProcess:
                continue
            if forked:
                return worker, forked[0]
        time.sleep(0.1)
    raise AssertionError("no worker started the task")


def test_a_worker_that_dies_fails_the_build_instead_of_hanging_it() -> None:
    """Killed mid-task (the OOM killer, a signal), a worker takes its task with it: the build
    hears of it instead of waiting for an answer that never comes."""
    with render.Workers(1) as workers:
        schedule = render._Schedule(workers, [render._Task(("slow",), _sleep, ())])
        worker, task = _busy_worker(workers)
        task.kill()
        worker.kill()
        with pytest.raises(BrokenProcessPool):
            schedule.get(("slow",))


def _fail() -> NoReturn:
    raise ValueError("no such chart")


def _vanish() -> NoReturn:
    os._exit(3)


def test_in_child_runs_elsewhere_and_answers() -> None:
    assert render.in_child(os.getpid) != os.getpid()
    assert render.in_child(sorted, [3, 1, 2]) == [1, 2, 3]


def test_a_childs_error_is_raised_here() -> None:
    with pytest.raises(RuntimeError, match="no such chart"):
        render.in_child(_fail)
    with pytest.raises(RuntimeError, match="without an answer"):
        render.in_child(_vanish)
