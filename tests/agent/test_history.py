"""The history store: real psutil samples, summaries over a window, pruning, batch hand-over."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from agent.history import HistoryStore, Sampler, history_facts, wire_sample
from checks.model import Window
from checks.wire import Sample


def test_samples_are_real_and_rates_come_from_counters(tmp_path: Path) -> None:
    sampler = Sampler()
    first = sampler.sample()
    assert first["net_rx_bytes_per_s"] is None  # no previous counters yet
    time.sleep(0.05)
    second = sampler.sample()
    assert second["net_rx_bytes_per_s"] is not None and second["net_rx_bytes_per_s"] >= 0
    assert 0 <= second["cpu_percent"] <= 100 and second["processes"] > 1
    assert any(m["mount"] == "/" for m in second["mounts"]) or second["mounts"]
    Sample.model_validate(wire_sample(second))


def test_history_facts_summarise_the_window(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path)
    t0 = datetime(2026, 11, 20, tzinfo=timezone.utc).timestamp()
    base = Sampler().sample()
    for i in range(60):
        used = 10_000_000 + i * 1_000_000
        mount = {"mount": "/data", "used_percent": used / 1e9 * 100, "used_bytes": used,
                 "total_bytes": 10**9, "free_bytes": 10**9 - used}  # fmt: skip
        store.add(dict(base, at=t0 + i * 60, cpu_percent=float(i), mounts=[mount]))
    store.close()
    window = Window(
        start=datetime.fromtimestamp(t0 + 600, timezone.utc),
        end=datetime.fromtimestamp(t0 + 3600, timezone.utc),
    )
    facts = history_facts(tmp_path, window)
    assert facts is not None and facts.source == "agent"
    cpu = next(m for m in facts.metrics if m.metric == "cpu")
    assert (cpu.samples, cpu.min, cpu.max) == (50, 10.0, 59.0)
    assert cpu.max_at == datetime.fromtimestamp(t0 + 59 * 60, timezone.utc)
    assert any(m.metric == "disk:/data" for m in facts.metrics)
    trend = facts.disk_trends[0]
    assert trend.mount == "/data" and abs(trend.growth_bytes_per_day - 1_000_000 * 1440) < 1


def test_no_store_means_no_history(tmp_path: Path) -> None:
    now = datetime.now(timezone.utc)
    assert history_facts(tmp_path, Window(start=now - timedelta(hours=1), end=now)) is None


def test_prune_is_incremental(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path)
    now = time.time()
    base = Sampler().sample()
    for i in range(1200):
        store.add(dict(base, at=now - 10 * 86400 + i))
    store.add(dict(base, at=now))
    assert store.prune(8, now) == 500
    assert store.prune(8, now) == 500
    assert store.prune(8, now) == 200
    assert store.count() == 1


def test_a_batch_keeps_its_range_and_id_until_committed(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path)
    base = Sampler().sample()
    for i in range(5):
        store.add(dict(base, at=1000.0 + i))
    first = store.next_batch()
    assert first is not None
    store.add(dict(base, at=2000.0))  # arrives while the worker is (say) killed mid-spool
    again = store.next_batch()
    assert again is not None and again[0] == first[0] and len(again[1]) == 5
    store.commit_batch(first[0])
    rest = store.next_batch()
    assert rest is not None and rest[0] != first[0] and [r["at"] for r in rest[1]] == [2000.0]
    store.commit_batch(rest[0])
    assert store.next_batch() is None
