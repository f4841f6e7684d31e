"""SIGKILL a real `xunjian-agent run` 50+ times at random moments: it restarts cleanly and no
record it acknowledged (a committed sample, a spooled run) is lost or stored twice."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Iterator, List

import psutil
import pytest

from agent.history import HistoryStore, wire_sample
from agent.settings import AgentSettings
from agent.ship import flush, open_spool, spool_run
from agent.worker import spool_samples
from tests.agent.daemon_helpers import AGENT, agent_env, enrolled
from tests.agent.stub_collector import StubCollector
from tests.agent.test_daemon_outage import run as make_run

KILLS = 52


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture
def stub() -> Iterator[StubCollector]:
    s = StubCollector()
    yield s
    s.stop()


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing(
    tmp_path: Path, stub: StubCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    enrolled(state, stub)
    log = tmp_path / "log" / "app.log"
    log.parent.mkdir()
    log.write_text("")
    env = agent_env(
        state,
        stub,
        log,
        XUNJIAN_AGENT_SAMPLE_INTERVAL="0.05",
        XUNJIAN_AGENT_HEARTBEAT_INTERVAL="0.2",
        XUNJIAN_AGENT_FLUSH_INTERVAL="0.2",
    )
    for key in [k for k in os.environ if k.startswith("XUNJIAN_AGENT_")]:
        monkeypatch.delenv(key)
    settings = AgentSettings(state_dir=state, collector_url=stub.url, allow_insecure=True)
    rng = random.Random(4)
    acknowledged: List[str] = []
    orphans: List[psutil.Process] = []
    pids = set()
    for i in range(KILLS):
        proc = subprocess.Popen([AGENT, "run"], env=env, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + rng.uniform(0.05, 0.9)
        while time.monotonic() < deadline:
            r = make_run(i)
            if spool_run(r, settings):  # acknowledged once enqueue returns
                acknowledged.append(str(r.run_id))
            time.sleep(0.05)
        with contextlib.suppress(psutil.NoSuchProcess):
            orphans += psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
        pids.add(proc.pid)
    psutil.wait_procs([p for p in orphans if p.is_running()], timeout=30)
    # the last start must come up cleanly after all that
    beats = stub.posts["heartbeat"]
    last = subprocess.Popen([AGENT, "run"], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    # up means: it has sent a heartbeat of its own and the spool is drained (a SIGTERM that
    # lands before the handler is installed would kill it the default way, which proves nothing)
    while time.monotonic() < deadline and (
        stub.posts["heartbeat"] == beats or open_spool(settings).stats()["depth"] != 0
    ):
        time.sleep(0.1)
    last.send_signal(signal.SIGTERM)
    _out, err = last.communicate(timeout=20)
    assert last.returncode == 0, err
    spool_samples(settings)
    result = flush(settings, force=True)
    assert result.pending == 0, result.error
    assert len(acknowledged) > KILLS
    assert set(acknowledged) <= set(stub.runs)
    stats = open_spool(settings).stats()
    assert stats["corrupt"] == 0 and stats["dead_letters"] == 0
    db = sqlite3.connect(str(state / "history.sqlite"))
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.close()
    store = HistoryStore(state, readonly=True)
    stored = [_instant(wire_sample(r)["at"]) for r in store.rows(0, time.time() + 1)]
    store.close()
    delivered = Counter(_instant(t) for t in stub.sample_times())
    assert len(stored) > KILLS
    assert set(stored) == set(delivered)  # every committed sample arrived …
    assert delivered.most_common(1)[0][1] == 1  # … once
