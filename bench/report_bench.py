"""Report build benchmark: a 100-host contract over a quarter, HTML + PDF in Chinese and English.

    .venv/bin/python bench/report_bench.py [--hosts 100] [--workdir bench/out/report]

Seeding (not timed) goes through the collector's own ingest into SQLite: each host gets a run a
week for the quarter (13 runs, so the findings lifecycle has history), a sample an hour for the
quarter and a sample a minute for its last day. The timed part runs in a fresh process, as the
scheduler would, through the builder's own path: 2 workers (`render.Workers`) start first and
import while this process loads from the database; `render.produce` then assembles both
languages here while the workers draw the charts (once for both languages) and lay out the
report in parts of at most 34 hosts, each part of each language a task in a child a worker
forks, and each language's page numbers and join once its parts are in. The workers are forked
by multiprocessing's fork server (a child of the timed process, which imports matplotlib and
WeasyPrint once and stays until the timed process ends), so the processes of a build form a tree:
the fork server, the workers below it, the child each worker forks per task. Peak RSS is
reported for the parent, for the largest process below it (VmHWM, read every 100 ms: exact but
for what a process grows in its last 100 ms), for every process with the largest child it forked,
their sum (the parent, the fork server and the two workers with their largest children: the
pool has two workers), and the most the whole build held at one moment (RSS and PSS summed over
processes). CPU seconds of the parent and of all processes below it (/proc/PID/stat of the fork
server: its own time and its reaped children's, who include theirs) tell a busy machine from a
slow build.
The anchor, measured in the same run on the same HTML: Chromium's headless --print-to-pdf; for
both PDFs the bench also reports the fonts (pdffonts: embedded, Type 3, a named CJK font) and
whether page 2 carries the running header and "第 2 页 / 共 N 页".
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

END = datetime(2026, 9, 30, 16, 0, tzinfo=timezone.utc)  # end of 2026-Q3 in Asia/Shanghai
START = END - timedelta(days=92)


def seed_db(db_path: Path, hosts: int, contract_file: Path) -> None:
    from sqlalchemy import insert

    from collector.db.contract_store import import_contracts
    from collector.db.engine import Database
    from collector.db.migrate import upgrade
    from collector.db.models import SampleRow
    from collector.ingest import host_for_submission, ingest_run
    from tests.reports.fixtures import make_run, make_samples

    db = Database(f"sqlite:///{db_path}")
    upgrade(db)
    import_contracts(db, [contract_file])
    for i in range(hosts):
        hostname = f"host{i:03d}"
        ref = None
        for week in range(13):
            at = START + timedelta(days=7 * week + 6, hours=i % 24)
            run = make_run(
                hostname,
                at,
                data_used_percent=91.5 if i % 4 == 0 else 60.0 + week,
                memory_percent=87.3 if i % 3 == 0 else 55.0,
            )
            ref = ref or host_for_submission(db, "HT-BENCH-100", run.host, now=START)
            ingest_run(db, ref, run, via="agent", now=at)
        assert ref is not None
        hourly = make_samples(END - timedelta(days=1), minutes=91 * 1440, step_minutes=60, seed=i)
        daily = make_samples(END, minutes=1440, step_minutes=1, seed=i)
        rows: list[dict[str, Any]] = [
            {
                **s.model_dump(exclude={"mounts"}),
                "mounts": [m.model_dump() for m in s.mounts],
                "host_id": ref.id,
            }
            for s in hourly + daily
        ]
        with db.write() as session:
            session.execute(insert(SampleRow), rows)
    db.dispose()


def contract_file(workdir: Path, hosts: int) -> Path:
    text = (ROOT / "config" / "contracts" / "example.toml").read_text(encoding="utf-8")
    text = text.replace('number = "HT-2026-001"', 'number = "HT-BENCH-100"')
    head, _, _ = text.partition("# 合同范围内的主机")
    tail = "\n".join(f'[[hosts]]\nhostname = "host{i:03d}"\n' for i in range(hosts))
    rest = text.partition("# 合同级阈值")[2]
    path = workdir / "contract.toml"
    path.write_text(head + tail + "\n# 合同级阈值" + rest, encoding="utf-8")
    return path


def _status(pid: int | str) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in bytes; empty once it has ended."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return {k: int(v) << 10 for k, v in re.findall(r"(VmRSS|VmHWM):\s+(\d+) kB", text)}


def _pss(pid: int | str) -> int:
    """Proportional set size in bytes: pages shared with other processes (a fork's, before
    either writes them) count by their share, not whole in each."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    found = re.search(r"^Pss:\s+(\d+) kB", text, re.M)
    return int(found[1]) << 10 if found else 0


def _children(pid: int | str) -> list[int]:
    """From /proc/PID/task/*/children: the pool starts its workers from its own threads."""
    pids = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:  # the process has ended
        return []
    for task in tasks:
        try:
            pids += [int(child) for child in (task / "children").read_text().split()]
        except OSError:  # the thread has ended
            continue
    return pids


class Watch(threading.Thread):
    """Every 100 ms: the peak RSS so far (VmHWM, exact for a process read before it ends) of
    each process below this one (the fork server, the pool workers, the children they fork for
    report parts) and the RSS of them all with this one at that moment; every 2 s their PSS
    together. On two
    cores a costlier watch shows in the build's time: processes are found through /proc/*/task/
    */children rather than by walking every process, and PSS (~3 ms per 300 MB process) is read
    less often."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peaks: dict[int, int] = {}
        self.parent: dict[int, int] = {}
        self.together = 0
        self.together_pss = 0
        self.done = threading.Event()

    def run(self) -> None:
        tick = 0
        while not self.done.wait(0.1):
            tick += 1
            total = _status("self").get("VmRSS", 0)
            pids = []
            below = [(os.getpid(), child) for child in _children("self")]
            while below:
                parent, pid = below.pop()
                status = _status(pid)
                total += status.get("VmRSS", 0)
                self.peaks[pid] = max(self.peaks.get(pid, 0), status.get("VmHWM", 0))
                self.parent[pid] = parent
                pids.append(pid)
                below += [(pid, child) for child in _children(pid)]
            self.together = max(self.together, total)
            if tick % 20 == 0:
                pss = _pss("self") + sum(_pss(pid) for pid in pids)
                self.together_pss = max(self.together_pss, pss)

    def processes(self) -> list[tuple[int, int, int]]:
        """(depth, peak, largest peak of its own children) of each process below this one that
        is not a task's child (depth 1: the resource tracker and the fork server, depth 2: the
        pool workers), in MB, in the order they started."""
        mine = os.getpid()

        def depth(pid: int) -> int:
            return 1 if self.parent[pid] == mine else 1 + depth(self.parent[pid])

        return [
            (
                depth(pid),
                self.peaks[pid] >> 20,
                max((v for c, v in self.peaks.items() if self.parent[c] == pid), default=0) >> 20,
            )
            for pid in sorted(self.peaks)
            if depth(pid) <= 2
        ]


def _cpu_below() -> float:
    """CPU seconds of every process below this one: those it reaped (RUSAGE_CHILDREN) and, for
    those still running (the fork server, the resource tracker), their own time and that of
    the children they reaped, which includes their children's in turn."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds = usage.ru_utime + usage.ru_stime
    tick = os.sysconf("SC_CLK_TCK")
    for pid in _children("self"):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        seconds += sum(int(f) for f in fields[11:15]) / tick  # utime stime cutime cstime
    return seconds


def measure(db_path: Path, contract_path: Path, out: Path) -> dict[str, Any]:
    """The timed part (run in its own process)."""
    watch = Watch()
    watch.start()
    t0 = time.perf_counter()
    from collector.reports.render import Workers, produce

    figures: dict[str, Any] = {}
    langs = ("zh_CN", "en")
    # the builder's own path (collector.reports.store.build): the workers start first, their
    # imports overlap the rest of this process's imports and the load
    with Workers() as workers:
        from collector.contracts import load_contract
        from collector.db.engine import Database
        from collector.periods import parse
        from collector.reports.load import load_inputs

        contract = load_contract(contract_path)
        db = Database(f"sqlite:///{db_path}")
        period = parse("2026-Q3", contract)
        t = time.perf_counter()
        with db.read() as session:
            inputs = load_inputs(session, contract, period, now=END + timedelta(hours=1))
        figures["load_s"] = time.perf_counter() - t
        t = time.perf_counter()
        rendered = produce(inputs, langs, pool=workers, timings=figures)
        figures["produce_s"] = time.perf_counter() - t
    for lang, (_, r) in zip(langs, rendered):
        (out / f"report-{lang}.pdf").write_bytes(r.pdf)
        (out / f"report-{lang}.html").write_text(r.html, encoding="utf-8")
        figures[f"pdf_{lang}_bytes"] = len(r.pdf)
    figures["total_s"] = time.perf_counter() - t0
    watch.done.set()
    watch.join()
    parent = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures["peak_rss_parent_mb"] = parent
    tree = watch.processes()
    figures["peak_rss_worker_mb"] = max(watch.peaks.values(), default=0) / 2**20
    # depth 1 (the resource tracker, the fork server), then the workers: "+N" is the largest
    # process that one started (a worker forks one per task, one at a time; a library's helper,
    # counted before its exec, can show here too)
    figures["peak_rss_children_mb"] = " ".join(
        f"{peak}+{forked}" if forked and level == 2 else str(peak) for level, peak, forked in tree
    )
    # at most two pool workers are alive at once, each with at most one forked child: the
    # parent's peak, the fork server's and the two largest workers' (with their children's), an
    # upper bound of what the build holds at one time
    figures["peak_rss_sum_mb"] = (
        parent
        + sum(peak for level, peak, _ in tree if level == 1)
        + sum(sorted(peak + forked for level, peak, forked in tree if level == 2)[-2:])
    )
    # the most the build held at one moment: RSS counts the pages a forked child still shares
    # with its worker twice, PSS (sampled less often) by their share
    figures["rss_together_max_mb"] = watch.together / 2**20
    figures["pss_together_max_mb"] = watch.together_pss / 2**20
    # CPU seconds: against the wall clock they tell a busy machine from a slow build
    usage = resource.getrusage(resource.RUSAGE_SELF)
    figures["cpu_parent_s"] = usage.ru_utime + usage.ru_stime
    figures["cpu_children_s"] = _cpu_below()
    return figures


def pages(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    return next(
        (int(line.split()[-1]) for line in info.splitlines() if line.startswith("Pages:")), 0
    )


def chromium_anchor(html: Path, out: Path) -> float:
    browser = shutil.which("chromium")
    if browser is None:
        return float("nan")
    t = time.perf_counter()
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            f"--print-to-pdf={out}",
            "--no-pdf-header-footer",
            html.as_uri(),
        ],
        capture_output=True,
        timeout=600,
    )
    return time.perf_counter() - t


def pdf_checks(pdf: Path, header: str, page_two: str) -> dict[str, Any]:
    """Fonts all embedded (pdffonts), the running header and 'page 2 of N' on page 2."""
    if not pdf.exists():
        return {}
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True).stdout
    rows = [
        (line, m.group(1))
        for line in fonts.splitlines()[2:]
        if (m := re.search(r"\s(yes|no)\s+(?:yes|no)\s+(?:yes|no)\s+\d+\s+\d+$", line))
    ]
    text = subprocess.run(
        ["pdftotext", "-f", "2", "-l", "2", "-layout", str(pdf), "-"],
        capture_output=True,
        text=True,
    ).stdout
    flat = " ".join(text.split())
    return {
        "fonts": len(rows),
        "fonts_not_embedded": sum(1 for _, emb in rows if emb != "yes"),
        "fonts_type3": sum(1 for line, _ in rows if "Type 3" in line),
        "cjk_font_named": any("CJK" in line for line, _ in rows),
        "header": header in flat,
        "page_label": page_two in flat.replace(" ", ""),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--workdir", type=Path, default=ROOT / "bench" / "out" / "report")
    parser.add_argument(
        "--measure", nargs=3, metavar=("DB", "CONTRACT", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.measure:
        print(
            json.dumps(measure(Path(args.measure[0]), Path(args.measure[1]), Path(args.measure[2])))
        )
        return
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    db_path = work / f"bench-{args.hosts}.db"
    contract_path = contract_file(work, args.hosts)
    if not db_path.exists():
        t = time.perf_counter()
        seed_db(db_path, args.hosts, contract_path)
        print(f"seeded {args.hosts} hosts in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    done = subprocess.run(
        [sys.executable, __file__, "--measure", str(db_path), str(contract_path), str(work)],
        capture_output=True,
        text=True,
        check=True,
    )
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["pages_zh_CN"] = pages(work / "report-zh_CN.pdf")
    figures["pages_en"] = pages(work / "report-en.pdf")
    figures["anchor_chromium_zh_CN_s"] = chromium_anchor(
        work / "report-zh_CN.html", work / "chromium-zh_CN.pdf"
    )
    for name, pdf in (("weasyprint", "report-zh_CN.pdf"), ("chromium", "chromium-zh_CN.pdf")):
        for key, value in pdf_checks(work / pdf, "HT-BENCH-100", "第2页/共").items():
            figures[f"{name}_{key}"] = value
    for key, value in figures.items():
        print(f"{key:28} {value:.2f}" if isinstance(value, float) else f"{key:28} {value}")


if __name__ == "__main__":
    main()
