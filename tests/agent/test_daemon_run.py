"""A real `xunjian-agent run` against a real HTTP server: samples, heartbeat, inspect_now only."""

from __future__ import annotations

import signal
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterator

import psutil
import pytest

from tests.agent.daemon_helpers import AGENT, agent_env, enrolled
from tests.agent.stub_collector import StubCollector


@pytest.fixture
def stub() -> Iterator[StubCollector]:
    s = StubCollector()
    yield s
    s.stop()


def wait_for(cond: Callable[[], bool], timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_run_samples_heartbeats_and_obeys_only_inspect_now(
    tmp_path: Path, stub: StubCollector
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    enrolled(state, stub)
    log = tmp_path / "log" / "app.log"
    log.parent.mkdir()
    an_hour_ago = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat(timespec="seconds")
    log.write_text(f"{an_hour_ago} web app[7]: ERROR disk quota exceeded\n")  # inside the 24 h
    marker = tmp_path / "pwned"
    stub.reply = {"inspect_now": True, "run": f"touch {marker}", "read_paths": ["/etc/shadow"]}
    env = agent_env(
        state,
        stub,
        log,
        XUNJIAN_AGENT_SAMPLE_INTERVAL="0.2",
        XUNJIAN_AGENT_HEARTBEAT_INTERVAL="0.3",
        XUNJIAN_AGENT_FLUSH_INTERVAL="0.5",
    )
    proc = subprocess.Popen([AGENT, "run"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(stub.runs) >= 1)
        stub.reply = {}
        wait_for(lambda: len(stub.sample_times()) >= 3)
        agent = psutil.Process(proc.pid)
        assert "agent.daemon" in " ".join(agent.cmdline())  # exec'd into the small resident
        for p in [agent, *agent.children(recursive=True)]:
            try:
                listening = [
                    c for c in p.net_connections(kind="all") if c.status == psutil.CONN_LISTEN
                ]
            except psutil.NoSuchProcess:
                continue
            assert listening == [], f"{p.cmdline()} listens: {listening}"
        imported = agent.memory_maps()
        assert not any("pydantic_core" in m.path for m in imported), "the resident loaded pydantic"
        beat = stub.heartbeats[-1]
        assert beat["spool_depth"] >= 0 and "dropped" in beat
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert "ignored: read_paths, run" in err
    assert not marker.exists()
    run = stub.raw_bodies
    assert any(b"disk quota exceeded" in body for body in run)  # the log line travelled in the run
