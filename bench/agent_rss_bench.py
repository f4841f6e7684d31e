"""Footprint of `xunjian-agent run` beside Prometheus node_exporter; drain time of a 64 MiB spool.

    .venv39/bin/python bench/agent_rss_bench.py --minutes 10

Part 1 runs both side by side for --minutes at 60 s sampling (node_exporter is scraped every 60 s,
the way Prometheus would use it; the agent heartbeats every 60 s and ships samples every 300 s: the steady state). Four times a
second it reads RSS of both and of any agent worker; CPU is process time over wall time after a
30 s warm-up, for the resident alone and with its reaped workers. Then one inspection worker
(the daily 08:00 job, here asked for through a heartbeat reply) is measured on its own.
Part 2 fills a spool with 64 MiB of runs and sample batches and times `python -m agent.worker
flush --force` delivering it to a real HTTP server on loopback (tests/agent/stub_collector.py,
which validates every body with the same pydantic models as the collector).
Prints a Markdown section for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Dict, List

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.client import Enrollment, save_enrollment  # noqa: E402
from agent.spool import Spool  # noqa: E402
from tests.agent.stub_collector import StubCollector  # noqa: E402

AGENT = Path(sys.executable).parent / "xunjian-agent"
NODE_EXPORTER = shutil.which("prometheus-node-exporter") or "/usr/bin/prometheus-node-exporter"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def agent_env(state: Path, url: str, **extra: str) -> Dict[str, str]:
    env = dict(os.environ)
    env.update(
        XUNJIAN_AGENT_STATE_DIR=str(state),
        XUNJIAN_AGENT_COLLECTOR_URL=url,
        XUNJIAN_AGENT_ALLOW_INSECURE="1",
        XUNJIAN_AGENT_CONFIG=str(state / "agent.toml"),
        **extra,
    )
    (state / "agent.toml").write_text('[logs]\nfiles = ["/var/log/dpkg.log"]\njournald = false\n')
    return env


def enrolled_state(stub: StubCollector) -> Path:
    state = Path(tempfile.mkdtemp(prefix="xj-bench-"))
    credential = "bench-" + uuid.uuid4().hex
    stub.credentials[credential] = "h-bench"
    save_enrollment(state, Enrollment(stub.url, "h-bench", credential, "WB-BENCH"))
    return state


def footprint(minutes: float) -> Dict[str, object]:
    stub = StubCollector(validate_runs=True)
    state = enrolled_state(stub)
    env = agent_env(
        state,
        stub.url,
        XUNJIAN_AGENT_SAMPLE_INTERVAL="60",
        XUNJIAN_AGENT_HEARTBEAT_INTERVAL="60",
        XUNJIAN_AGENT_FLUSH_INTERVAL="300",
    )
    ne_port = free_port()
    ne = subprocess.Popen(
        [NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{ne_port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    agent_log = open(state / "agent.log", "w")  # noqa: SIM115 - the agent writes to it until the end
    agent = subprocess.Popen([str(AGENT), "run"], env=env, stderr=agent_log)
    a, n = psutil.Process(agent.pid), psutil.Process(ne.pid)
    rss: Dict[str, List[int]] = {"agent": [], "node_exporter": []}
    worker_peak: Dict[str, int] = {}
    start = time.monotonic()
    warm = start + 30
    cpu0 = None
    next_scrape = warm  # node_exporter needs a moment to listen
    try:
        while time.monotonic() - start < minutes * 60:
            now = time.monotonic()
            if cpu0 is None and now >= warm:
                cpu0 = (now, a.cpu_times(), n.cpu_times())
            if now >= next_scrape:
                with urllib.request.urlopen(f"http://127.0.0.1:{ne_port}/metrics", timeout=10) as r:
                    r.read()
                next_scrape += 60
            if now >= warm:
                rss["agent"].append(a.memory_info().rss)
                rss["node_exporter"].append(n.memory_info().rss)
            for child in a.children(recursive=True):
                try:
                    kind = child.cmdline()[-1] if child.cmdline() else "?"
                    kind = "flush" if "flush" in child.cmdline() else kind
                    worker_peak[kind] = max(worker_peak.get(kind, 0), child.memory_info().rss)
                except psutil.Error:
                    pass
            time.sleep(0.25)
        end = time.monotonic()
        assert cpu0 is not None
        at, ac, nc = cpu0
        acn, ncn = a.cpu_times(), n.cpu_times()
        wall = end - at
        result = {
            "minutes": minutes,
            "agent_rss_mib_median": sorted(rss["agent"])[len(rss["agent"]) // 2] / 2**20,
            "agent_rss_mib_max": max(rss["agent"]) / 2**20,
            "ne_rss_mib_median": sorted(rss["node_exporter"])[len(rss["node_exporter"]) // 2]
            / 2**20,
            "ne_rss_mib_max": max(rss["node_exporter"]) / 2**20,
            "agent_cpu_pct": 100 * ((acn.user + acn.system) - (ac.user + ac.system)) / wall,
            "agent_cpu_pct_with_workers": 100
            * (
                (acn.user + acn.system + acn.children_user + acn.children_system)
                - (ac.user + ac.system + ac.children_user + ac.children_system)
            )
            / wall,
            "ne_cpu_pct": 100 * ((ncn.user + ncn.system) - (nc.user + nc.system)) / wall,
            "worker_peak_rss_mib": {k: v / 2**20 for k, v in worker_peak.items()},
            "inspection": inspection(stub, a),
            "runs_stored": len(stub.runs),
            "samples_stored": len(stub.sample_times()),
            "heartbeats": stub.posts["heartbeat"],
        }
    finally:
        agent.terminate()
        ne.terminate()
        agent.wait(20)
        ne.wait(20)
        stub.stop()
    result["agent_log_tail"] = (state / "agent.log").read_text()[-600:]
    shutil.rmtree(state, ignore_errors=True)
    return result


def inspection(stub: StubCollector, agent: psutil.Process) -> Dict[str, float]:
    """Ask for one inspection through the heartbeat reply; peak RSS and CPU of that worker."""
    before = len(stub.runs)
    stub.reply = {"inspect_now": True}
    peak, cpu, start = 0, 0.0, time.monotonic()
    while len(stub.runs) == before and time.monotonic() - start < 300:
        for child in agent.children():
            try:
                if "inspect" in child.cmdline():
                    stub.reply = {}
                    peak = max(peak, child.memory_info().rss)
                    t = child.cpu_times()
                    cpu = max(cpu, t.user + t.system)
            except psutil.Error:
                pass
        time.sleep(0.1)
    return {
        "peak_rss_mib": peak / 2**20,
        "cpu_seconds": cpu,
        "wall_seconds": time.monotonic() - start,
    }


def drain(total_bytes: int) -> Dict[str, object]:
    """Fill a spool to `total_bytes` with a realistic mix and time one flush worker draining it."""
    from checks.facts import FactSet, HostIdentity, LogFacts, LogTemplate
    from checks.model import InspectionRun, Source, Window
    from checks.wire import SampleBatch

    stub = StubCollector(validate_runs=True)
    state = enrolled_state(stub)
    env = agent_env(state, stub.url, XUNJIAN_AGENT_SPOOL_MAX_BYTES=str(total_bytes + 2**20))
    spool = Spool(state / "spool", total_bytes + 2**20)
    now = datetime.now(timezone.utc)
    templates = [
        LogTemplate(
            rule="app.error",
            family="app",
            severity="warning",
            template_id=str(i),
            template=f"ERROR <*> request {i} failed after <*> ms upstream <*>",
            source="/var/log/app/app.log",
            count=i,
            samples=[
                f"2026-11-20 08:00:{i % 60:02d} ERROR worker-3 request {i} failed "
                "after 1200 ms upstream 10.0.0.7"
            ]
            * 3,
        )
        for i in range(400)
    ]
    sample = {
        "at": now.isoformat(), "cpu_percent": 12.5, "load1": 0.5, "load5": 0.4, "load15": 0.3,
        "memory_percent": 41.0, "swap_percent": 0.0, "disk_read_bytes_per_s": 1000.0,
        "disk_write_bytes_per_s": 2000.0, "net_rx_bytes_per_s": 300.0, "net_tx_bytes_per_s": 400.0,
        "processes": 180,
        "mounts": [{"mount": "/", "used_percent": 40.0, "used_bytes": 4 * 10**10,
                    "total_bytes": 10**11}],
    }  # fmt: skip
    size = runs = batches = 0
    while size < total_bytes:
        if runs <= batches // 4:
            run = InspectionRun(
                source=Source.agent,
                host=HostIdentity(hostname="bench"),
                window=Window(start=now - timedelta(hours=24), end=now),
                facts=FactSet(collected_at=now, logs=LogFacts(templates=templates)),
            )
            body = run.to_json().encode()
            spool.enqueue("runs", str(run.run_id), body)
            runs += 1
        else:
            batch = SampleBatch(samples=[sample] * 240)
            body = batch.model_dump_json().encode()
            spool.enqueue("samples", str(batch.batch_id), body)
            batches += 1
        size += len(body)
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "agent.worker", "flush", "--force"],
        env=env,
        capture_output=True,
        text=True,
    )
    elapsed = time.monotonic() - t0
    left = len(spool.pending())
    stub.stop()
    shutil.rmtree(state, ignore_errors=True)
    return {
        "mib": size / 2**20,
        "runs": runs,
        "batches": batches,
        "seconds": elapsed,
        "mib_per_s": size / 2**20 / elapsed,
        "left_in_spool": left,
        "stored_runs": len(stub.runs),
        "stored_batches": len(stub.batches),
        "rc": proc.returncode,
        "stderr_tail": proc.stderr[-400:],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--drain-mib", type=int, default=64)
    parser.add_argument("--skip-footprint", action="store_true")
    args = parser.parse_args()
    out: Dict[str, object] = {
        "python": sys.version.split()[0],
        "when": datetime.now(timezone.utc).isoformat(),
    }
    if not args.skip_footprint:
        out["footprint"] = footprint(args.minutes)
    out["drain"] = drain(args.drain_mib * 2**20)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
