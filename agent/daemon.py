"""The resident process of `xunjian-agent run`: samples, schedules, heartbeats — and nothing else.

It lives for months on customer production hosts, so it imports only what those jobs need
(psutil, sqlite3, schedule, the standard library; measured in docs/benchmarks.md). Inspections
and deliveries run as short-lived workers (`python -m agent.worker inspect|flush`, a fixed argv),
so the memory a log scan or an httpx client needs returns to the system when they exit. The
heartbeat stays here (see agent.client on why it uses http.client).

Start-up: `xunjian-agent run` validates settings with pydantic, then exec()s
`python -m agent.daemon` with the resolved plan in $XUNJIAN_AGENT_PLAN; the PID stays the same
for systemd and pydantic's memory is gone with the old image.

The only thing the network can make it do is run the built-in inspection now (a heartbeat reply
with `inspect_now: true`); every other field of a reply is ignored and logged. No listening socket.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import random
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional

import schedule

from agent import __version__
from agent.client import ENDPOINTS, CollectorError, classify, load_enrollment, post_stdlib
from agent.history import HistoryStore, Sampler
from agent.spool import Spool

PLAN_ENV = "XUNJIAN_AGENT_PLAN"
HEARTBEAT_FILE = "heartbeat.json"
DAEMON_FILE = "daemon.json"
WORKER_KINDS = ("inspect", "flush")
TICK = 1.0

log = logging.getLogger("xunjian.daemon")


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def write_json(path: Path, data: Dict[str, Any]) -> None:
    """Status files for `xunjian-agent status`: atomic, not fsync'd (losing one is harmless)."""
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(json.dumps(data), "utf-8")
    os.replace(tmp, path)


def splayed(hhmm: str, splay: float, rng: random.Random) -> str:
    """HH:MM plus a random delay below `splay` seconds, as HH:MM:SS, so a fleet does not inspect
    (and ship) in the same second."""
    base = datetime.strptime(hhmm, "%H:%M")
    return (base + timedelta(seconds=rng.uniform(0, splay))).strftime("%H:%M:%S")


def parse_reply(body: bytes) -> bool:
    """Whether a heartbeat reply asks for the built-in inspection; everything else is ignored.

    The reply is read as plain JSON here (the resident has no pydantic), with the same rule as
    checks.wire.HeartbeatReply: only a literal `inspect_now: true` counts.
    """
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        log.warning("heartbeat reply is not JSON; ignored")
        return False
    if not isinstance(data, dict):
        log.warning("heartbeat reply is not an object; ignored")
        return False
    extra = sorted(k for k in data if k != "inspect_now")
    if extra:
        log.warning(
            "heartbeat reply carried fields the agent does not act on, ignored: %s",
            ", ".join(extra)[:200],
        )
    flag = data.get("inspect_now", False)
    if flag not in (True, False):
        log.warning("heartbeat reply inspect_now=%r is not a boolean; ignored", flag)
        return False
    return flag is True


class Daemon:
    def __init__(self, plan: Dict[str, Any]) -> None:
        self.plan = plan
        self.state_dir = Path(plan["state_dir"])
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.stopping = False
        self.workers: Dict[str, subprocess.Popen[bytes]] = {}
        self.started: Dict[str, float] = {}
        self.store = HistoryStore(self.state_dir)
        self.spool = Spool(self.state_dir / "spool")
        self.sampler = Sampler()
        self.sched = schedule.Scheduler()
        self.heartbeat_failing = False
        self._lock_fh: Optional[Any] = None

    # -- jobs ---------------------------------------------------------------------------------

    def sample(self) -> None:
        try:
            self.store.add(self.sampler.sample())
            self.store.prune(self.plan["retention_days"])
        except Exception:  # a bad minute must not stop the agent
            log.exception("sampling failed")

    def heartbeat(self) -> None:
        try:
            enrollment = load_enrollment(self.state_dir)
        except CollectorError as exc:
            self._heartbeat_done(False, str(exc))
            return
        if enrollment is None:
            self._heartbeat_done(False, "not enrolled")
            return
        url = self.plan.get("collector_url") or enrollment.collector_url
        if url.startswith("http://") and not self.plan.get("allow_insecure"):
            self._heartbeat_done(False, f"refusing plain http:// collector URL {url}")
            return
        stats = self.spool.stats()
        gaps = self.spool.seal_gaps()
        body = {
            "at": _now_iso(),
            "agent_version": __version__,
            "spool_depth": stats["depth"],
            "spool_bytes": stats["bytes"],
            "dropped": stats["dropped"],
            "gaps": gaps,
            "last_error": stats["last_error"],
        }
        try:
            status, headers, reply = post_stdlib(
                url,
                ENDPOINTS["heartbeat"],
                json.dumps(body).encode(),
                enrollment.credential,
                self.plan.get("ca_file"),
                timeout=self.plan["connect_timeout"],
            )
        except (OSError, ValueError) as exc:  # refused, timeout, TLS, bad status line
            self._heartbeat_done(False, f"heartbeat: {type(exc).__name__}: {exc}"[:300])
            return
        outcome = classify(status, headers)
        if outcome.status != "ok":
            self._heartbeat_done(False, f"heartbeat: {outcome.error}")
            return
        self.spool.ack_gaps([g["gap_id"] for g in gaps])
        recovered = self.heartbeat_failing
        self._heartbeat_done(True, None)
        if parse_reply(reply):
            log.info("collector asked for an inspection now")
            self.spawn("inspect")
        if recovered and stats["depth"]:
            self.spawn("flush", "--force")  # the collector is back: do not wait out the back-off

    def _heartbeat_done(self, ok: bool, error: Optional[str]) -> None:
        if not ok and not self.heartbeat_failing:
            log.warning("%s", error)
        self.heartbeat_failing = not ok
        path = self.state_dir / HEARTBEAT_FILE
        try:
            prev = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            prev = {}
        prev.update({"last_attempt": _now_iso(), "ok": ok, "error": error})
        if ok:
            prev["last_ok"] = prev["last_attempt"]
        write_json(path, prev)

    def flush(self) -> None:
        if self.spool.due():
            self.spawn("flush")

    def inspect(self) -> None:
        self.spawn("inspect")

    # -- workers ------------------------------------------------------------------------------

    def spawn(self, kind: str, *flags: str) -> None:
        """Start a worker unless one of its kind runs; the argv is fixed, never from the net."""
        assert kind in WORKER_KINDS
        if kind in self.workers:
            return
        argv = [sys.executable, "-m", "agent.worker", kind, *flags]
        try:
            self.workers[kind] = subprocess.Popen(argv, stdin=subprocess.DEVNULL, close_fds=True)
        except OSError:
            log.exception("cannot start worker %s", kind)
            return
        self.started[kind] = time.monotonic()

    def reap(self) -> None:
        for kind, proc in list(self.workers.items()):
            rc = proc.poll()
            if rc is None:
                if time.monotonic() - self.started[kind] > self.plan["worker_timeout"]:
                    log.error(
                        "worker %s ran over %.0f s; killed", kind, self.plan["worker_timeout"]
                    )
                    proc.kill()
                continue
            if rc != 0:
                log.warning("worker %s exited with %d", kind, rc)
            del self.workers[kind]

    def stop_workers(self, grace: float = 10.0) -> None:
        for proc in self.workers.values():
            proc.terminate()
        deadline = time.monotonic() + grace
        for proc in self.workers.values():
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.workers.clear()

    # -- life cycle ---------------------------------------------------------------------------

    def _single_instance(self) -> None:
        self._lock_fh = open(self.state_dir / "daemon.lock", "a+")  # noqa: SIM115 - held for life
        try:
            fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(
                f"another xunjian-agent run holds {self.state_dir / 'daemon.lock'}"
            ) from None

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self.stopping = True

    def setup(self) -> None:
        plan = self.plan
        rng = random.Random()
        # schedule computes timedelta(seconds=interval): fractions work, tests use them
        self.sched.every(plan["sample_interval"]).seconds.do(self.sample)
        self.sched.every(plan["heartbeat_interval"]).seconds.do(self.heartbeat)
        self.sched.every(plan["flush_interval"]).seconds.do(self.flush)
        at: List[str] = []
        for hhmm in plan["inspection_times"]:
            at.append(splayed(hhmm, plan["inspection_splay"], rng))
            self.sched.every().day.at(at[-1]).do(self.inspect)
        write_json(
            self.state_dir / DAEMON_FILE,
            {
                "pid": os.getpid(),
                "started_at": _now_iso(),
                "inspections_at": at,
                "version": __version__,
            },
        )
        log.info(
            "xunjian-agent %s running: state %s, inspections at %s",
            __version__,
            self.state_dir,
            ", ".join(at),
        )

    def run(self) -> int:
        self._single_instance()
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        self.setup()
        self.sample()
        self.heartbeat()
        while not self.stopping:
            self.sched.run_pending()
            self.reap()
            idle = self.sched.idle_seconds
            time.sleep(min(TICK, max(0.01, idle if idle is not None else TICK)))
        log.info("stopping")
        self.stop_workers()
        self.store.close()
        return 0


def main() -> int:
    logging.basicConfig(
        level=os.environ.get("XUNJIAN_AGENT_LOG_LEVEL", "INFO").upper(),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    raw = os.environ.get(PLAN_ENV)
    if not raw:
        print(f"{PLAN_ENV} is not set: start the agent with `xunjian-agent run`", file=sys.stderr)
        return 2
    return Daemon(json.loads(raw)).run()


if __name__ == "__main__":
    sys.exit(main())
