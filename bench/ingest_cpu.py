"""Collector CPU per run, in one process: the step-by-step companion of `ingest_bench.py`.

    .venv/bin/python bench/ingest_cpu.py [--db sqlite|postgresql] [--hosts 64] [--rounds 30]
                                         [--rate R]

`ingest_bench.py` measures what an operator sees (runs/s and p99 over HTTP, 200 agents, the
generator on the same two cores), and on a shared machine its figures swing with whatever else
runs. This one calls the collector's ASGI app directly (no uvicorn, no sockets, no client
library) with the same ~50 KB gzip runs: each round, every host posts one run at once, so the
group commit batches them as under load (and after every fourth round a batch of samples
from each), and the process's CPU time (every thread: the event
loop, the writer threads, the database driver) is divided by the runs. The least of the rounds
is reported beside the median: the least is the code's cost, the spread is the machine's noise.
SQLite in a temporary directory, or a throwaway PostgreSQL cluster started as `ingest_bench.py`
starts it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest_bench import (  # noqa: E402  (the same requests as the HTTP benchmark)
    CONTRACT,
    SAMPLES_EVERY,
    Agent,
    enroll_tokens,
    start_postgres,
    template_run,
)


async def call(app: Any, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    """One HTTP request through the ASGI app, the way uvicorn hands it over."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }
    sent = False
    status = 0
    out = bytearray()

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            out.extend(message.get("body", b""))

    await app(scope, receive, send)
    return status, bytes(out)


async def posted(
    app: Any, path: str, body: bytes, headers: dict[str, str], after: float
) -> tuple[int, bytes]:
    if after:
        await asyncio.sleep(after)
    return await call(app, path, body, headers)


async def measure(
    app: Any, agents: list[Agent], rounds: int, rate: float = 0.0
) -> dict[str, list[float]]:
    """CPU ms per run and per sample batch, one list entry per round: every agent posts a run
    at once and, as in `ingest_bench.py`, a batch of samples after every fourth run. The
    "…_loop" entries count the event loop's thread alone (parsing, judging, FastAPI); the rest
    of the process's CPU is the writer threads' (SQLAlchemy, the driver). `rate`: the round's
    posts one after another at that many a second instead of at once, as paced arrivals reach
    a worker — the group commit then writes small batches."""
    per: dict[str, list[float]] = {"run": [], "samples": [], "run_loop": [], "samples_loop": []}
    for r in range(rounds):
        kinds = ["run"] + (["samples"] if r % SAMPLES_EVERY == SAMPLES_EVERY - 1 else [])
        for kind in kinds:
            bodies = [a.next_run() if kind == "run" else a.next_samples() for a in agents]
            headers = [
                {
                    "authorization": f"Bearer {a.credential}",
                    "content-type": "application/json",
                    "content-encoding": "gzip",
                    "content-length": str(len(b)),
                }
                for a, b in zip(agents, bodies)
            ]
            path = "/api/v1/runs" if kind == "run" else "/api/v1/samples"
            t, loop = time.process_time(), time.thread_time()
            answers = await asyncio.gather(
                *(
                    posted(app, path, b, h, n / rate if rate else 0.0)
                    for n, (b, h) in enumerate(zip(bodies, headers))
                )
            )
            used, in_loop = time.process_time() - t, time.thread_time() - loop
            bad = [a for a in answers if a[0] not in (200, 201)]
            if bad:
                raise SystemExit(f"round {r}: {len(bad)} {kind} refused, first: {bad[0]}")
            per[kind].append(used / len(agents) * 1000)
            per[f"{kind}_loop"].append(in_loop / len(agents) * 1000)
    return per


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="xj-ingest-cpu-"))
    home = root / "home"
    home.mkdir()
    stop_pg: list[str] = []
    url = f"sqlite:///{home / 'xunjian.db'}"
    if args.db == "postgresql":
        url, _, stop_pg = start_postgres(root)
    try:
        return await _measure_at(args, url, home)
    finally:
        if stop_pg:
            subprocess.run(stop_pg, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@asynccontextmanager
async def enrolled(url: str, home: Path, hosts: int) -> AsyncIterator[tuple[Any, list[Agent]]]:
    """The collector's ASGI app on `url`, migrated, with the bench contract and `hosts` agents
    enrolled over the API, inside its lifespan; the heap settled as a serving worker's is."""
    from collector.app import _settle_heap, create_app
    from collector.db.contract_store import import_contracts
    from collector.db.engine import Database
    from collector.db.migrate import upgrade
    from collector.settings import CollectorSettings

    db = Database(url)
    try:
        upgrade(db)
        contract = home / "contract.toml"
        contract.write_text(CONTRACT, encoding="utf-8")
        import_contracts(db, [contract])
        app = create_app(CollectorSettings(home=home, database_url=url), db)
        template = template_run()
        async with app.router.lifespan_context(app):
            agents = []
            for i, token in enumerate(enroll_tokens(db, hosts)):
                name = f"cpu-{i:03d}"
                body = json.dumps({"token": token, "host": {"hostname": name}}).encode()
                status, answer = await call(
                    app, "/api/v1/enroll", body, {"content-type": "application/json"}
                )
                assert status == 201, answer
                agents.append(Agent(name, json.loads(answer)["credential"], template))
            _settle_heap()  # as a serving worker does at start
            yield app, agents
    finally:
        gc.collect()
        db.dispose()


async def _measure_at(args: argparse.Namespace, url: str, home: Path) -> dict[str, Any]:
    async with enrolled(url, home, args.hosts) as (app, agents):
        await measure(app, agents, 4)  # warm: caches, compiled statements, pools
        per = await measure(app, agents, args.rounds, args.rate)
    return {
        "db": url.split(":")[0],
        "hosts": args.hosts,
        "rounds": args.rounds,
        "rate": args.rate or None,
        "run_json_bytes": len(agents[0].template),
        "cpu_ms_per_run_min": round(min(per["run"]), 3),
        "cpu_ms_per_run_median": round(statistics.median(per["run"]), 3),
        "cpu_ms_per_sample_batch_min": round(min(per["samples"]), 3),
        "cpu_ms_per_sample_batch_median": round(statistics.median(per["samples"]), 3),
        "event_loop_ms_per_run_min": round(min(per["run_loop"]), 3),
        "event_loop_ms_per_sample_batch_min": round(min(per["samples_loop"]), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--hosts", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument(
        "--rate", type=float, default=0.0, help="posts a second within a round (0: all at once)"
    )
    print(json.dumps(asyncio.run(main_async(parser.parse_args()))))


if __name__ == "__main__":
    main()
