"""The spool against a real HTTP server: order, corruption, size policy, retry policy."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import pytest

from agent.client import CollectorClient, Enrollment, save_enrollment
from agent.spool import HEADER, Spool
from checks.facts import FactSet, HostIdentity
from checks.model import InspectionRun, Source, Window
from checks.wire import Sample, SampleBatch
from tests.agent.stub_collector import StubCollector

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)


def make_run(i: int = 0) -> InspectionRun:
    return InspectionRun(
        source=Source.agent,
        host=HostIdentity(hostname=f"host-{i}"),
        window=Window(start=NOW - timedelta(hours=24), end=NOW),
        facts=FactSet(collected_at=NOW),
    )


def make_batch(i: int, n: int = 10) -> SampleBatch:
    samples = [
        Sample(
            at=NOW + timedelta(minutes=i * n + k),
            cpu_percent=1.0,
            load1=0.1,
            load5=0.1,
            load15=0.1,
            memory_percent=30.0,
            swap_percent=0.0,
        )
        for k in range(n)
    ]
    return SampleBatch(samples=samples)


@pytest.fixture
def stub() -> Iterator[StubCollector]:
    s = StubCollector()
    yield s
    s.stop()


@pytest.fixture
def client(stub: StubCollector, tmp_path: Path) -> Iterator[CollectorClient]:
    credential = "cred-" + uuid.uuid4().hex
    stub.credentials[credential] = "h-1"
    with CollectorClient(stub.url, credential, connect_timeout=2, read_timeout=5) as c:
        yield c


def put_run(spool: Spool, run: InspectionRun) -> bool:
    return spool.enqueue("runs", str(run.run_id), run.to_json().encode())


def test_delivers_oldest_first_and_each_once(
    tmp_path: Path, stub: StubCollector, client: CollectorClient
) -> None:
    spool = Spool(tmp_path / "spool")
    runs = [make_run(i) for i in range(5)]
    for run in runs:
        assert put_run(spool, run)
    assert put_run(spool, runs[0])  # same run_id again: not stored twice
    assert len(spool.pending()) == 5
    done = spool.flush(client.deliver)
    assert done == {"delivered": 5, "dead": 0, "corrupt": 0}
    assert list(stub.runs) == [str(r.run_id) for r in runs]
    assert stub.posts["runs"] == 5
    assert all(h.get("Content-Encoding") == "gzip" for h in stub.seen_headers)
    assert spool.contains(str(runs[3].run_id))  # delivered, still known (ack marker)
    assert spool.pending() == []


def test_flipped_byte_and_truncated_tail_are_skipped_and_counted(
    tmp_path: Path, stub: StubCollector, client: CollectorClient
) -> None:
    spool = Spool(tmp_path / "spool")
    runs = [make_run(i) for i in range(4)]
    for run in runs:
        put_run(spool, run)
    entries = spool.pending()
    flipped = bytearray(entries[0].path.read_bytes())
    flipped[HEADER.size + 40] ^= 0x20
    entries[0].path.write_bytes(bytes(flipped))
    whole = entries[2].path.read_bytes()
    entries[2].path.write_bytes(whole[: len(whole) - 17])
    done = spool.flush(client.deliver)
    assert done == {"delivered": 2, "dead": 0, "corrupt": 2}
    assert set(stub.runs) == {str(runs[1].run_id), str(runs[3].run_id)}
    stats = spool.stats()
    assert stats["corrupt"] == 2 and stats["depth"] == 0
    assert (
        "CRC mismatch" in (tmp_path / "spool" / "state.json").read_text()
        or "truncated" in stats["last_error"]
    )


def test_full_spool_drops_samples_before_runs_and_leaves_a_gap(
    tmp_path: Path, stub: StubCollector, client: CollectorClient
) -> None:
    limit = 64 * 1024
    spool = Spool(tmp_path / "spool", max_bytes=limit)
    batches = [make_batch(i) for i in range(60)]
    runs = [make_run(i) for i in range(3)]
    produced = 0
    for i, batch in enumerate(batches):
        at = batch.samples[0].at.timestamp()
        spool.enqueue(
            "samples", str(batch.batch_id), batch.model_dump_json().encode(), at, at + 600
        )
        produced += 1
        if i % 20 == 0:
            put_run(spool, runs[i // 20])
        assert spool.stats()["bytes"] <= limit
    stats = spool.stats()
    assert stats["dropped"]["runs"] == 0
    assert stats["dropped"]["samples"] > 0
    gaps = spool.seal_gaps()
    assert [g["kind"] for g in gaps] == ["samples"]
    assert gaps[0]["dropped"] == stats["dropped"]["samples"]
    assert gaps[0]["first_at"] == batches[0].samples[0].at.isoformat()  # the oldest went first
    spool.flush(client.deliver)
    assert set(stub.runs) == {str(r.run_id) for r in runs}
    assert stats["dropped"]["samples"] == produced - len(stub.batches)
    spool.ack_gaps([g["gap_id"] for g in gaps])
    assert spool.seal_gaps() == []


def test_runs_are_dropped_only_when_no_samples_are_left(tmp_path: Path) -> None:
    body = make_run().to_json().encode()
    spool = Spool(tmp_path / "spool", max_bytes=64 * 1024)
    per = HEADER.size + len(body)
    keys = []
    for _ in range(64 * 1024 // per + 3):
        run = make_run()
        keys.append(str(run.run_id))
        put_run(spool, run)
    left = [e.key for e in spool.pending()]
    assert left == keys[-len(left) :]  # oldest runs went first
    assert spool.stats()["dropped"]["runs"] == len(keys) - len(left)


def test_5xx_and_connection_refused_back_off_then_deliver(
    tmp_path: Path, stub: StubCollector, client: CollectorClient
) -> None:
    spool = Spool(tmp_path / "spool")
    run = make_run()
    put_run(spool, run)
    stub.set_mode("503")
    assert spool.flush(client.deliver)["delivered"] == 0
    state = json.loads((tmp_path / "spool" / "state.json").read_text())
    first_delay = state["next_attempt_at"] - time.time()
    assert 0 < first_delay <= 5.0 and not spool.due()
    assert spool.flush(client.deliver)["delivered"] == 0  # not due: no request at all
    assert stub.posts["runs"] == 1
    stub.set_mode("down")
    spool.flush(client.deliver, force=True)
    state = json.loads((tmp_path / "spool" / "state.json").read_text())
    assert state["failures"] == 2
    assert "ConnectError" in state["last_error"]
    stub.set_mode("up")
    assert spool.flush(client.deliver, force=True)["delivered"] == 1
    assert spool.due() and list(stub.runs) == [str(run.run_id)]


def test_429_honours_retry_after(
    tmp_path: Path, stub: StubCollector, client: CollectorClient
) -> None:
    spool = Spool(tmp_path / "spool")
    put_run(spool, make_run())
    stub.retry_after = "120"
    stub.set_mode("429")
    spool.flush(client.deliver)
    state = json.loads((tmp_path / "spool" / "state.json").read_text())
    assert 115 <= state["next_attempt_at"] - time.time() <= 120


def test_other_4xx_goes_to_dead_letters_and_the_rest_is_delivered(
    tmp_path: Path, stub: StubCollector, client: CollectorClient
) -> None:
    spool = Spool(tmp_path / "spool")
    put_run(spool, make_run(1))
    stub.set_mode("400")
    assert spool.flush(client.deliver) == {"delivered": 0, "dead": 1, "corrupt": 0}
    stub.set_mode("up")
    later = make_run(2)
    put_run(spool, later)
    assert spool.flush(client.deliver)["delivered"] == 1
    stats = spool.stats()
    assert stats["dead_letters"] == 1 and stats["depth"] == 0
    assert len(list((tmp_path / "spool" / "dead").iterdir())) == 1
    assert list(stub.runs) == [str(later.run_id)]


def test_rejected_credential_stops_without_dead_lettering(
    tmp_path: Path, stub: StubCollector
) -> None:
    spool = Spool(tmp_path / "spool")
    put_run(spool, make_run())
    with CollectorClient(stub.url, "revoked", connect_timeout=2, read_timeout=5) as bad:
        assert spool.flush(bad.deliver)["dead"] == 0
    stats = spool.stats()
    assert stats["depth"] == 1 and stats["dead_letters"] == 0
    assert "enroll again" in stats["last_error"]


def test_enqueue_survives_a_torn_temporary_file(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    (tmp_path / "spool" / ".000000000001.runs.x.rec.tmp").write_bytes(b"half a rec")
    run = make_run()
    assert put_run(spool, run)
    assert [e.key for e in spool.pending()] == [str(run.run_id)]
    assert not list((tmp_path / "spool").glob(".*.rec.tmp"))


def test_from_settings_needs_enrollment_and_https(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent.client import CollectorError
    from agent.settings import AgentSettings

    monkeypatch.delenv("XUNJIAN_AGENT_CONFIG", raising=False)
    settings = AgentSettings(state_dir=tmp_path)
    with pytest.raises(CollectorError, match="not enrolled"):
        CollectorClient.from_settings(settings)
    save_enrollment(tmp_path, Enrollment("http://127.0.0.1:9", "h", "c", "k"))
    with pytest.raises(ValueError, match="refusing plain http"):
        CollectorClient.from_settings(settings)
