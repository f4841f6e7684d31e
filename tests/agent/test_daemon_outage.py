"""Collector away while the agent keeps producing: nothing lost, each record stored once.

Drives the worker functions directly (a daemon at 60 s intervals would take an hour); the same
functions run inside `python -m agent.worker` in production.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator, List

import pytest

from agent.daemon import Daemon
from agent.history import HistoryStore, Sampler
from agent.settings import AgentSettings
from agent.ship import flush, open_spool, spool_run
from agent.worker import spool_samples
from checks.facts import FactSet, HostIdentity
from checks.model import InspectionRun, Source, Window
from tests.agent.daemon_helpers import enrolled
from tests.agent.stub_collector import StubCollector

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)


@pytest.fixture
def stub() -> Iterator[StubCollector]:
    s = StubCollector()
    yield s
    s.stop()


@pytest.fixture
def settings(tmp_path: Path, stub: StubCollector, monkeypatch: pytest.MonkeyPatch) -> AgentSettings:
    for key in [k for k in os.environ if k.startswith("XUNJIAN_AGENT_")]:
        monkeypatch.delenv(key)
    enrolled(tmp_path, stub)
    return AgentSettings(state_dir=tmp_path, collector_url=stub.url, allow_insecure=True)


def run(i: int) -> InspectionRun:
    return InspectionRun(
        source=Source.agent,
        host=HostIdentity(hostname="web-1"),
        window=Window(start=NOW - timedelta(hours=24), end=NOW + timedelta(minutes=i)),
        facts=FactSet(collected_at=NOW + timedelta(minutes=i)),
    )


def test_100_runs_and_an_hour_of_samples_survive_an_outage(
    settings: AgentSettings, stub: StubCollector
) -> None:
    store = HistoryStore(settings.state_dir)
    sampler = Sampler()
    t0 = time.time() - 3600
    produced: List[str] = []
    stub.set_mode("down")
    for minute in range(60):
        store.add(dict(sampler.sample(), at=t0 + minute * 60))
        for _k in range(2 if minute < 40 else 1):
            r = run(len(produced))
            assert spool_run(r, settings)
            produced.append(str(r.run_id))
        if minute % 5 == 4:
            spool_samples(settings)
            if minute == 24:
                stub.set_mode("503")  # up, but failing: requests arrive and are refused
            if minute == 39:
                stub.set_mode("ack-lost")  # stored, but the agent never hears so
            assert flush(settings, force=True).delivered.get("delivered", 0) == 0
    assert stub.runs  # the ack-lost ones
    assert len(produced) == 100
    stub.set_mode("up")
    spool_samples(settings)
    result = flush(settings, force=True)
    assert result.pending == 0 and result.error is None
    assert sorted(stub.runs) == sorted(produced)  # each stored …
    assert stub.posts["runs"] > 100  # … though some were received more than once
    times = stub.sample_times()
    assert len(times) == 60 and Counter(times).most_common(1)[0][1] == 1
    store.close()


def test_a_full_spool_sends_its_gap_marker_in_the_heartbeat(
    settings: AgentSettings, stub: StubCollector
) -> None:
    small = settings.model_copy(update={"spool_max_bytes": 64 * 1024})
    store = HistoryStore(settings.state_dir)
    sampler = Sampler()
    stub.set_mode("down")
    for i in range(400):
        store.add(dict(sampler.sample(), at=1_790_000_000.0 + i * 60))
        if i % 10 == 9:
            spool_samples(small)
    spool = open_spool(small)
    stats = spool.stats()
    assert stats["bytes"] <= 64 * 1024 and stats["dropped"]["samples"] > 0
    stub.set_mode("up")
    Daemon({**small.daemon_plan()}).heartbeat()
    assert len(stub.gaps) == 1
    gap = next(iter(stub.gaps.values()))
    assert gap["kind"] == "samples" and gap["dropped"] == stats["dropped"]["samples"]
    flush(small, force=True)
    assert len(stub.batches) + gap["dropped"] == 40  # produced − stored = dropped
    Daemon({**small.daemon_plan()}).heartbeat()  # acknowledged: not sent again
    assert stub.heartbeats[-1]["gaps"] == []
    store.close()
