"""Report build benchmark: a 100-host contract over a quarter, HTML + PDF in Chinese and English.

    .venv/bin/python bench/report_bench.py [--hosts 100] [--workdir bench/out/report]

Seeding (not timed) goes through the collector's own ingest into SQLite: each host gets a run a
week for the quarter (13 runs, so the findings lifecycle has history), a sample an hour for the
quarter and a sample a minute for its last day. The timed part runs in a fresh process, as the
scheduler would, through the builder's own `render.produce`: load from the database, assemble
(while 2 spawned workers draw the charts, once for both languages), render HTML and PDF for
zh_CN and en (one worker each). Peak RSS is reported for the parent and for the largest worker.
The anchor, measured in the same run on the same HTML: Chromium's headless --print-to-pdf; for
both PDFs the bench also reports the fonts (pdffonts: embedded, Type 3, a named CJK font) and
whether page 2 carries the running header and "第 2 页 / 共 N 页".
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import subprocess
import sys
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


def measure(db_path: Path, contract_path: Path, out: Path) -> dict[str, float]:
    """The timed part (run in its own process)."""
    t0 = time.perf_counter()
    from collector.contracts import load_contract
    from collector.db.engine import Database
    from collector.periods import parse
    from collector.reports.load import load_inputs
    from collector.reports.render import produce

    figures: dict[str, float] = {}
    contract = load_contract(contract_path)
    db = Database(f"sqlite:///{db_path}")
    period = parse("2026-Q3", contract)
    t = time.perf_counter()
    with db.read() as session:
        inputs = load_inputs(session, contract, period, now=END + timedelta(hours=1))
    figures["load_s"] = time.perf_counter() - t
    langs = ("zh_CN", "en")
    t = time.perf_counter()
    # the builder's own path (collector.reports.store.build uses produce() too)
    rendered = produce(inputs, langs, workers=2, timings=figures)
    figures["produce_s"] = time.perf_counter() - t
    for lang, (_, r) in zip(langs, rendered):
        (out / f"report-{lang}.pdf").write_bytes(r.pdf)
        (out / f"report-{lang}.html").write_text(r.html, encoding="utf-8")
        figures[f"pdf_{lang}_bytes"] = len(r.pdf)
    figures["total_s"] = time.perf_counter() - t0
    figures["peak_rss_parent_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # the largest of the worker processes (chart and render workers): ru_maxrss of children
    figures["peak_rss_worker_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
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
