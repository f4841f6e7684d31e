"""Collector ingest: 200 simulated agents posting ~50 KB gzip runs and sample batches.

Starts `xunjian serve` on loopback (SQLite, and PostgreSQL from a throwaway `initdb` cluster),
enrolls the agents over the API, then runs two phases per database:
- saturation: every agent posts back to back (closed loop) → sustained runs/s;
- paced: the agents together offer `--rate` runs/s (open loop) → latency at that load.
Each agent also sends a batch of 5 samples after every 4th run. Latency is per POST /runs,
measured in the client. The load generator runs on the same 2-core machine as the server, so
it is kept cheap: every gzip body and whole HTTP request is built before the clock starts, and
each agent writes those bytes on its own kept-alive connection (asyncio streams, no HTTP client
library). The CPU used by the generator, the collector and PostgreSQL is reported per phase.

    .venv/bin/python bench/ingest_bench.py [--db sqlite,postgresql] [--duration 20] [--rate 300]
                                           [--neighbour SHARE]

`--neighbour 0.35` runs both phases beside a neighbour, one process a core, each spinning for that
share of every 20 ms by the clock and asleep for the rest: the way other tenants' work slows a
shared machine, so that the room above the goal can be measured on demand instead of waited for
in a slow hour. On a busy machine it gets less than its share; what it got is reported per phase
(`cpu_neighbour_pct`, 100 = one core).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import glob
import gzip
import json
import math
import multiprocessing
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Optional

import httpx
import psutil

from collector.metrics import WAIT_PHASES  # the phases /metrics reports

ROOT = Path(__file__).resolve().parent.parent
XUNJIAN = str(Path(sys.executable).parent / "xunjian")
CONTRACT = """number = "BENCH-1"
level = "regular"
start = 2026-01-01
end = 2027-12-31
[customer]
name = "Bench customer"
[vendor]
name = "Bench vendor"
"""
PLACEHOLDER_ID = "00000000-0000-4000-8000-000000000000"
PLACEHOLDER_HOST = "HOSTNAME-PLACEHOLDER"
PLACEHOLDER_TIME = "2000-01-01T00:00:00Z"
WARM_UP = 1.0  # seconds at a phase's start left out of its runs/s (connecting, the first posts)
NEIGHBOUR_PERIOD = 0.02  # seconds: the neighbour is busy for its share of each such cycle
NEIGHBOUR_LEAD = 2.0  # seconds the neighbour runs before the first phase starts
SAMPLES_EVERY = 4  # an agent posts a batch of samples after every 4th run
METRICS = httpx.Client(timeout=30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def template_run() -> bytes:
    """A real inspection of this machine as the agent sends it (its facts, no results of its own:
    `agent/ship.py`), with alarm-log templates added up to ~50 KB."""
    out = subprocess.run(
        [str(Path(sys.executable).parent / "xunjian-agent"), "inspect", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    run: dict[str, Any] = {**json.loads(out.stdout), "results": []}
    logs = run["facts"].get("logs") or {"sources": [], "templates": []}
    samples = ROOT.parent / "shared" / "data" / "loghub" / "Linux" / "Linux_2k.log"
    lines = samples.read_text(errors="replace").splitlines() if samples.exists() else []
    lines = lines or [f"kernel: EXT4-fs error (device sda{i}): bad block {i}" for i in range(300)]
    i = 0
    while len(json.dumps(run)) < 50_000:
        logs["templates"].append(
            {
                "rule": "kernel.error",
                "family": "kernel",
                "severity": "warning",
                "template_id": f"t{i}",
                "template": lines[i % len(lines)][:120],
                "source": "/var/log/syslog",
                "count": 3 + i,
                "first_seen": "2026-11-20T01:00:00Z",
                "last_seen": "2026-11-20T07:00:00Z",
                "samples": [lines[(i + k) % len(lines)] for k in range(3)],
            }
        )
        i += 1
    run["facts"]["logs"] = logs
    run["run_id"] = PLACEHOLDER_ID
    run["host"]["hostname"] = PLACEHOLDER_HOST
    run["created_at"] = PLACEHOLDER_TIME
    return json.dumps(run).encode()


def start_postgres(root: Path) -> tuple[str, int, list[str]]:
    """A throwaway cluster: its URL, the postmaster's pid (for CPU accounting), a stop command."""
    initdb = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))[-1]
    bindir = Path(initdb).parent
    data, sock = root / "pg", root / "sock"
    sock.mkdir()
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_pg:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
    port = free_port()
    subprocess.run(
        [*as_pg, initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
        check=True,
        capture_output=True,
    )
    opts = (
        f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c max_connections=300 "
        "-c shared_buffers=128MB -c synchronous_commit=off"
    )
    ctl = [*as_pg, str(bindir / "pg_ctl"), "-D", str(data)]
    subprocess.run(
        [*ctl, "-o", opts, "-w", "-l", str(root / "pg.log"), "start"],
        check=True,
        capture_output=True,
    )
    return (
        f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres",
        int((data / "postmaster.pid").read_text().split()[0]),
        [*ctl, "-m", "fast", "stop"],
    )


def start_collector(
    env: dict[str, str], port: int, workers: int, log: Path
) -> subprocess.Popen[bytes]:
    subprocess.run([XUNJIAN, "db", "upgrade"], env=env, check=True, capture_output=True)
    contract = Path(env["XUNJIAN_HOME"]) / "contract.toml"
    contract.write_text(CONTRACT)
    subprocess.run(
        [XUNJIAN, "contract", "import", str(contract)], env=env, check=True, capture_output=True
    )
    proc = subprocess.Popen(
        [XUNJIAN, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit(f"collector did not start, see {log}")


class Agent:
    """One enrolled host's posts, timed as a live agent's are: from its enrollment on, runs a
    second apart (so a bench's worth stays inside the collector's five minutes of clock skew)
    and each sample batch holding the samples taken since the one before. (Until the fifth
    round the times began at a fixed date: once the machine's clock passed it, every sample
    batch landed before its host's enrollment and took the late-evidence path of
    `collector.availability`, a query per host, on every batch.)"""

    def __init__(self, name: str, credential: str, template: bytes) -> None:
        self.name = name
        self.credential = credential
        self.template = template.replace(PLACEHOLDER_HOST.encode(), name.encode())
        self.at = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=1)
        self.sampled_to = self.at
        # Where in its cycle of SAMPLES_EVERY runs the agent starts. Until the seventh round
        # every agent started at 0, so in a paced phase (all agents starting within one
        # interval) the 200 sample batches came in one wave after every 4th run, doubling the
        # requests for two thirds of a second every 2.7 s: those seconds held the phase's p99.
        # A fleet's agents sample on their own clocks.
        self.runs = random.randrange(SAMPLES_EVERY)

    def next_run(self) -> bytes:
        self.at += timedelta(seconds=1)
        body = self.template.replace(PLACEHOLDER_ID.encode(), str(uuid.uuid4()).encode())
        body = body.replace(
            PLACEHOLDER_TIME.encode(), self.at.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
        )
        return gzip.compress(body, 1)

    def next_samples(self) -> bytes:
        step = (self.at - self.sampled_to) / 5
        times = [self.sampled_to + step * (k + 1) for k in range(5)]
        self.sampled_to = self.at
        samples = [
            {
                "at": at.isoformat(),
                "cpu_percent": 12.5,
                "load1": 0.4,
                "load5": 0.3,
                "load15": 0.2,
                "memory_percent": 41.0,
                "swap_percent": 0.0,
                "processes": 180,
                "mounts": [
                    {
                        "mount": "/",
                        "used_percent": 52.0,
                        "used_bytes": 52 << 30,
                        "total_bytes": 100 << 30,
                    }
                ],
            }
            for at in times
        ]
        return gzip.compress(json.dumps({"samples": samples}).encode(), 1)

    def request(self, path: str, body: bytes) -> bytes:
        """The whole HTTP/1.1 request, built before the clock runs."""
        head = (
            f"POST /api/v1/{path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {self.credential}\r\nContent-Type: application/json\r\n"
            f"Content-Encoding: gzip\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    def script(self, runs: int) -> list[tuple[bool, bytes]]:
        """`runs` distinct runs, each `SAMPLES_EVERY`th followed by a batch of 5 samples:
        (is_run, request)."""
        out: list[tuple[bool, bytes]] = []
        for _ in range(runs):
            out.append((True, self.request("runs", self.next_run())))
            self.runs += 1
            if self.runs % SAMPLES_EVERY == 0:
                out.append((False, self.request("samples", self.next_samples())))
        return out


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes]:
    """One request on a kept-alive connection; the collector always sends Content-Length."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def agent_loop(
    script: list[tuple[bool, bytes]],
    port: int,
    stop: float,
    interval: float,
    latencies: list[tuple[float, float]],
    errors: list[str],
) -> None:
    """One agent: its own connection, requests back to back (interval 0) or paced. A paced
    agent connects when it first posts, at a random point of its first interval: 200 connects
    in one burst left each worker with whatever its accept loop took at once (166 agents on
    one worker and 36 on the other in one run), a fleet's agents come one by one."""
    if interval:
        await asyncio.sleep(random.random() * interval)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    next_at = time.perf_counter()
    try:
        for is_run, request in script:
            if time.perf_counter() >= stop:
                break
            started = time.perf_counter()
            try:
                status, body = await exchange(reader, writer, request)
            except (OSError, asyncio.IncompleteReadError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                return
            if status != (201 if is_run else 200):
                errors.append(f"{status} {body[:100]!r}")
            elif is_run:
                answered = time.perf_counter()
                latencies.append((answered, answered - started))
            if interval and is_run:
                # never past the phase's end: the phase's runs/s divides by the time until the
                # last answer, and sleeping on to a post that would not be sent added up to an
                # interval (0.67 s of 20 at 300/s) to it, so a collector that answered every
                # offered run showed ~290 runs/s (until the seventh round)
                next_at += interval
                await asyncio.sleep(max(0.0, min(next_at, stop) - time.perf_counter()))
        else:
            errors.append("script exhausted before the phase ended (raise --max-rate)")
    finally:
        writer.close()


def cpu_by_pid(root: int, children: bool, system: bool = False) -> dict[int, float]:
    """CPU seconds of a process (and its descendants): PostgreSQL forks a backend per
    connection, uvicorn a process per worker. `system`: the kernel's part alone."""
    out: dict[int, float] = {}
    try:
        procs = [psutil.Process(root)]
        if children:
            procs += procs[0].children(recursive=True)
    except psutil.NoSuchProcess:
        return out
    for proc in procs:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        out[proc.pid] = times.system if system else times.user + times.system
    return out


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


async def run_phase(
    scripts: list[list[tuple[bool, bytes]]], port: int, seconds: float, interval: float
) -> tuple[list[tuple[float, float]], list[str], float]:
    """(answered at, latency) of every run, the errors, and the phase's start."""
    latencies: list[tuple[float, float]] = []
    errors: list[str] = []
    started = time.perf_counter()
    await asyncio.gather(
        *(agent_loop(s, port, started + seconds, interval, latencies, errors) for s in scripts)
    )
    return latencies, errors, started


def agents_per_worker(processes: dict[str, int], port: int) -> list[int]:
    """The agents' connections each collector worker holds, most first."""
    workers = psutil.Process(processes["collector"]).children()
    return sorted(
        (sum(c.laddr.port == port for c in w.net_connections("tcp")) for w in workers),
        reverse=True,
    )


def batching(port: int) -> list[float]:
    """Batches, the runs in them and the seconds those runs waited in each of `WAIT_PHASES`, of
    the runs' group commit, from /metrics. Counters are per worker process, so with several
    workers this is whichever worker answered: the same one each time while `same_worker`
    keeps the connection."""
    text = METRICS.get(f"http://127.0.0.1:{port}/metrics").text
    found = dict(re.findall(r'^(xunjian_ingest_batch\w+)\{kind="runs"\} (\d+)', text, re.M))
    waited = dict(
        re.findall(
            r'^xunjian_ingest_wait_seconds_total\{kind="runs",phase="(\w+)"\} (\S+)', text, re.M
        )
    )
    return [
        float(found.get("xunjian_ingest_batches_total", 0)),
        float(found.get("xunjian_ingest_batched_items_total", 0)),
        *(float(waited.get(phase, 0)) for phase in WAIT_PHASES),
    ]


@contextlib.contextmanager
def same_worker(port: int) -> Iterator[None]:
    """The /metrics connection kept alive through a phase, so that its counters before and
    after come from one worker. uvicorn closes a connection idle for 5 s, and until the
    fourteenth round the scrape after a 20 s phase went out on a new one, to whichever worker
    accepted it, and when that was the other worker `runs_per_batch` mixed the two workers'
    counters (the new wait means came out negative in two of the first five runs)."""
    stop = threading.Event()

    def touch() -> None:
        while not stop.wait(2.0):
            METRICS.get(f"http://127.0.0.1:{port}/healthz")

    toucher = threading.Thread(target=touch, daemon=True)
    toucher.start()
    try:
        yield
    finally:
        stop.set()
        toucher.join()


@contextlib.contextmanager
def generator_gc_held() -> Iterator[None]:
    """The generator's own garbage collector held off while the clock runs.

    Until the twelfth round it ran as it liked, and a full collection of everything the
    generator holds (the template run parsed, httpx, psutil, the phase's latencies) came 0.1–2 s
    into every paced phase: 62–100 ms with the event loop stopped (timed with `gc.callbacks`).
    Replies that came meanwhile were timed that much late and the agents' next posts went out
    together: in one run, 40 runs over 150 ms in the half second after it, against at most 29
    in any other. The phase's cyclic garbage waits for the collection after it."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


def phase(
    agents: list[Agent],
    port: int,
    seconds: float,
    rate: float,
    processes: dict[str, int],
    max_rate: float,
) -> dict[str, Any]:
    """Bodies and requests are built first; then the clock runs and only the sending is timed.
    CPU of the generator, the collector and the database are read around the timed part."""
    per_agent = math.ceil(seconds * (rate or max_rate) / len(agents)) + 2
    scripts = [a.script(per_agent) for a in agents]
    interval = len(agents) / rate if rate else 0.0
    before = {name: cpu_by_pid(pid, name != "generator") for name, pid in processes.items()}
    kernel_before = cpu_by_pid(processes["collector"], True, system=True)
    machine_before = psutil.cpu_times()
    batched_before = batching(port)
    held: list[int] = []  # counted halfway through, while the agents are connected
    counting = threading.Timer(seconds / 2, lambda: held.extend(agents_per_worker(processes, port)))
    counting.start()
    with same_worker(port), generator_gc_held():
        answers, errors, started = asyncio.run(run_phase(scripts, port, seconds, interval))
    elapsed = time.perf_counter() - started
    machine = machine_shares(machine_before, psutil.cpu_times())
    counting.join()
    batched = [a - b for a, b in zip(batching(port), batched_before)]
    cpu: dict[str, Any] = {
        f"cpu_{name}_pct": round(
            100 * cpu_used(before[name], cpu_by_pid(pid, name != "generator")) / elapsed
        )
        for name, pid in processes.items()
    }
    # the kernel's share of the collector's CPU (sockets, the database connections, wake-ups)
    kernel = cpu_used(kernel_before, cpu_by_pid(processes["collector"], True, system=True))
    cpu["cpu_collector_system_pct"] = round(100 * kernel / elapsed)
    # each worker's own share and the agents' connections it holds: the kernel hands each new
    # connection to whichever worker accepts first, and a kept-alive agent stays there
    after = cpu_by_pid(processes["collector"], True)
    workers = psutil.Process(processes["collector"]).children()
    cpu["cpu_workers_pct"] = sorted(
        (
            round(100 * (after.get(w.pid, 0.0) - before["collector"].get(w.pid, 0.0)) / elapsed)
            for w in workers
        ),
        reverse=True,
    )
    cpu["agents_per_worker"] = held
    # Throughput in the steady part: the runs answered between WARM_UP and the phase's end,
    # over that time. Until the seventh round it was every run over the time until the last
    # answer, so the ramp at the start and the answers trailing the end counted against it.
    steady = sum(started + WARM_UP <= at <= started + seconds for at, _ in answers)
    runs_per_s = steady / (seconds - WARM_UP)
    latencies = sorted(latency for _, latency in answers)
    if answers:  # CPU per run (sample batches included): comparable across loads
        cpu["collector_ms_per_run"] = round(
            1000 * cpu_used(before["collector"], after) / len(answers), 2
        )
    return {
        "runs": len(latencies),
        "runs_per_s": round(runs_per_s, 1),
        "p50_ms": round(1000 * statistics.median(latencies), 1) if latencies else None,
        "p99_ms": p99_ms(latencies),
        "p99_ms_by_5s": p99_ms_by_slice(answers, started, seconds, 5.0),
        **cpu,
        **machine,
        # group commit: runs per transaction, and the mean of each part of a run's wait in it
        # (queued for its batch, the batch validated and judged, its transaction), in the
        # worker that answered /metrics
        "runs_per_batch": round(batched[1] / batched[0], 1) if batched[0] > 0 else None,
        "runs_wait_ms": {
            phase: round(1000 * seconds / batched[1], 1)
            for phase, seconds in zip(WAIT_PHASES, batched[2:])
        }
        if batched[1] > 0
        else None,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
    }


def machine_shares(before: Any, after: Any) -> dict[str, float]:
    """The whole machine's idle time and the time its hypervisor gave its vCPUs to others
    (`steal`, Linux), as % of all CPU time over the phase: a run whose tail grew while steal
    rose was slowed from outside the VM, not by what ran in it."""
    counted = [f for f in after._fields if not f.startswith("guest")]  # guest is in user too
    total = sum(getattr(after, f) - getattr(before, f) for f in counted)
    if total <= 0:
        return {}
    share = {
        name: 100 * (getattr(after, name, 0.0) - getattr(before, name, 0.0)) / total
        for name in ("idle", "steal")
    }
    return {f"machine_{name}_pct": round(value, 1) for name, value in share.items()}


def p99_ms(latencies: list[float]) -> float | None:
    """The 99th percentile of sorted latencies, in milliseconds."""
    return round(1000 * latencies[int(0.99 * (len(latencies) - 1))], 1) if latencies else None


def p99_ms_by_slice(
    answers: list[tuple[float, float]], started: float, seconds: float, width: float
) -> list[float | None]:
    """p99 of the runs answered in each `width` seconds of the phase (the last slice takes the
    answers that trail its end): a tail made by a few stalls shows in one slice, a tail made by
    queueing in all of them."""
    slices: list[list[float]] = [[] for _ in range(max(1, math.ceil(seconds / width)))]
    for at, latency in answers:
        slices[min(int((at - started) // width), len(slices) - 1)].append(latency)
    return [p99_ms(sorted(s)) for s in slices]


def enroll_tokens(db: Any, n: int) -> list[str]:
    """n enroll tokens of BENCH-1, made in one transaction (what `xunjian token create` does,
    without n process starts)."""
    from collector.auth import ENROLL_PREFIX, digest, new_secret
    from collector.db.models import EnrollToken

    tokens = [new_secret(ENROLL_PREFIX) for _ in range(n)]
    now = datetime.now(timezone.utc)
    with db.write() as session:
        session.add_all(
            EnrollToken(
                token_sha256=digest(t),
                contract="BENCH-1",
                created_at=now,
                expires_at=now + timedelta(hours=1),
            )
            for t in tokens
        )
    return tokens


def enroll(port: int, env: dict[str, str], n: int, template: bytes) -> list[Agent]:
    """Tokens made in one transaction (what `xunjian token create` does, without n process
    starts), then every agent enrolls over the API."""
    from collector.db.engine import Database
    from collector.settings import load_settings

    settings = load_settings(
        home=Path(env["XUNJIAN_HOME"]), database_url=env.get("XUNJIAN_DATABASE_URL")
    )
    db = Database(settings.db_url)
    tokens = enroll_tokens(db, n)
    db.dispose()
    agents = []
    with httpx.Client(timeout=60) as client:
        for i, token in enumerate(tokens):
            name = f"bench-{i:03d}"
            r = client.post(
                f"http://127.0.0.1:{port}/api/v1/enroll",
                json={"token": token, "host": {"hostname": name}},
            )
            r.raise_for_status()
            agents.append(Agent(name, r.json()["credential"], template))
    return agents


def _burn(share: float) -> None:
    """Busy for `share` of every `NEIGHBOUR_PERIOD`, asleep for the rest, until killed."""
    while True:
        start = time.perf_counter()
        while time.perf_counter() - start < share * NEIGHBOUR_PERIOD:
            pass
        time.sleep(max(0.0, NEIGHBOUR_PERIOD - (time.perf_counter() - start)))


def _neighbours(share: float, cores: int) -> None:
    """One burner per core: this process and `cores - 1` children (its CPU, children included,
    is the neighbour's in the phases' figures)."""
    for _ in range(cores - 1):
        multiprocessing.Process(target=_burn, args=(share,), daemon=True).start()
    _burn(share)


@contextlib.contextmanager
def neighbour(share: float) -> Iterator[Optional[int]]:
    """A neighbour asking for `share` of every core while the block runs: its root pid, or None
    for no neighbour (share 0)."""
    if share <= 0:
        yield None
        return
    root = multiprocessing.Process(target=_neighbours, args=(share, os.cpu_count() or 1))
    root.start()
    assert root.pid is not None
    try:
        time.sleep(NEIGHBOUR_LEAD)
        yield root.pid
    finally:
        with contextlib.suppress(psutil.NoSuchProcess):  # the root may be gone already
            tree = psutil.Process(root.pid)
            for proc in [*tree.children(recursive=True), tree]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    proc.kill()
        root.join(timeout=10)


def bench(kind: str, args: argparse.Namespace, template: bytes) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix=f"xj-bench-{kind}-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("XUNJIAN_")}
    env["XUNJIAN_HOME"] = str(root / "home")
    Path(env["XUNJIAN_HOME"]).mkdir(parents=True)
    stop_pg: list[str] = []
    pg_pid = 0
    if kind == "postgresql":
        env["XUNJIAN_DATABASE_URL"], pg_pid, stop_pg = start_postgres(root)
    port = free_port()
    proc = start_collector(env, port, args.workers, root / "serve.log")
    try:
        agents = enroll(port, env, args.agents, template)
        processes = {"generator": os.getpid(), "collector": proc.pid}
        if pg_pid:
            processes["postgres"] = pg_pid
        with neighbour(args.neighbour) as burner:
            if burner is not None:
                processes["neighbour"] = burner
            saturated = phase(agents, port, args.duration, 0, processes, args.max_rate)
            paced = phase(agents, port, args.duration, args.rate, processes, args.max_rate)
        return {
            "db": kind,
            "workers": args.workers,
            "neighbour_share": args.neighbour,
            "saturation": saturated,
            "paced": paced,
        }
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if stop_pg:
            subprocess.run(stop_pg, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per phase")
    parser.add_argument("--rate", type=float, default=300.0, help="offered runs/s, paced phase")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument(
        "--max-rate",
        type=float,
        default=1200.0,
        help="runs/s the saturation phase has requests built for (each ~8 KB, built before the clock)",
    )
    parser.add_argument(
        "--neighbour",
        type=float,
        default=0.0,
        help="share of every 20 ms a neighbour spins on each core through both phases (0–1)",
    )
    args = parser.parse_args()
    if not 0 <= args.neighbour < 1:
        parser.error("--neighbour is a share of a core: at least 0, less than 1")
    template = template_run()
    print(
        f"run: {len(template)} bytes JSON, {len(gzip.compress(template, 1))} bytes gzip", flush=True
    )
    for kind in args.db.split(","):
        print(json.dumps(bench(kind, args, template)), flush=True)


if __name__ == "__main__":
    main()
