"""Event-loop CPU of one POST /runs and one POST /samples, with storage taken out of the path.

    .venv/bin/python bench/request_cpu.py [--posts 200] [--reps 8]

`ingest_cpu.py` measures a run's whole cost in process, database included, and its figures swing
by ±10 % with the machine; a change of a few tens of microseconds in what FastAPI does before
the endpoint (routing, dependencies) is lost in that. Here one enrolled agent posts the bench's
~50 KB gzip runs and its sample batches one after another through the ASGI app on SQLite, and
the group commit's writers answer every request with the receipt of one real earlier write (a
run's marked as calling for no alerts, as in steady state): what is left is the request path on
the event loop — BodyLimit's inflation, the agent lane for runs (FastAPI's routing and
dependencies for samples), strict validation, judging, the answer. Reported: the event loop's
thread CPU per request, least and median of `--reps` blocks of `--posts` requests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest_bench import Agent  # noqa: E402
from ingest_cpu import call, enrolled  # noqa: E402

from collector.ingest import Ingested  # noqa: E402

WRITERS = {"/api/v1/runs": "run_writer", "/api/v1/samples": "sample_writer"}


def headers(agent: Agent, body: bytes) -> dict[str, str]:
    return {
        "authorization": f"Bearer {agent.credential}",
        "content-type": "application/json",
        "content-encoding": "gzip",
        "content-length": str(len(body)),
    }


async def canned(app: Any, agent: Agent, path: str, body: bytes) -> None:
    """Post `body` for real once, keep the writer's answer, and from then on answer every
    request of `path` with it without touching the database."""
    writer = getattr(app.state, WRITERS[path])
    answers: list[Any] = []
    real = writer._write_many

    def keep(db: Any, items: Sequence[Any]) -> Sequence[Any]:
        out = real(db, items)
        answers.extend(out)
        return out

    writer._write_many = keep
    status, answer = await call(app, path, body, headers(agent, body))
    assert status in (200, 201) and answers, (status, answer)

    # In steady state a run opens, changes or resolves nothing, so no alerts hook follows it
    # (its thread would run beside the event loop and cost the loop ~0.5 ms a request here).
    kept = answers[0]
    if isinstance(kept, Ingested):
        kept = replace(kept, alerts_due=False)

    async def store(item: Any) -> Any:
        writer._ready(item)  # a posted run is validated and judged as its batch starts
        return kept

    writer.store = store


async def per_request(app: Any, agent: Agent, path: str, bodies: list[bytes]) -> float:
    """Event-loop CPU in µs per request, over `bodies` posted one after another."""
    sent = [(body, headers(agent, body)) for body in bodies]
    started = time.thread_time()
    for body, head in sent:
        status, answer = await call(app, path, body, head)
        assert status in (200, 201), (status, answer)
    return (time.thread_time() - started) / len(bodies) * 1e6


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="xj-request-cpu-"))
    try:
        async with enrolled(f"sqlite:///{home / 'xunjian.db'}", home, 1) as (app, (agent,)):
            kinds: dict[str, Callable[[], bytes]] = {
                "/api/v1/runs": agent.next_run,
                "/api/v1/samples": agent.next_samples,
            }
            for path, make in kinds.items():
                await canned(app, agent, path, make())
            bodies = {path: [make() for _ in range(args.posts)] for path, make in kinds.items()}
            for path in kinds:  # warm: caches, the first requests' one-off work
                await per_request(app, agent, path, bodies[path][:20])
            spent: dict[str, list[float]] = {path: [] for path in kinds}
            for _ in range(args.reps):
                for path in kinds:
                    spent[path].append(await per_request(app, agent, path, bodies[path]))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return {
        f"{path.rsplit('/', 1)[1]}_us": {
            "min": round(min(v)),
            "median": round(statistics.median(v)),
        }
        for path, v in spent.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=200, help="requests a block")
    parser.add_argument("--reps", type=int, default=8, help="blocks of each kind")
    print(json.dumps(asyncio.run(measure(parser.parse_args()))))


if __name__ == "__main__":
    main()
