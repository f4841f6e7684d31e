"""Group commit of runs and of sample batches: several hosts' in one transaction, each answered
on its own merits.

On SQLite and on a real PostgreSQL (the `db` fixture), through `store_many` and through the
async writers (`group_commit.run_writer`, `sample_writer`) that POST /runs and /samples use.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from datetime import datetime, timedelta
from functools import partial

import pytest
from fastapi.exceptions import RequestValidationError
from sqlalchemy import func, select, text, update

from checks.wire import MountSample, Sample, SampleBatch
from collector.api.body import JsonText
from collector.api.schemas import SampleReceipt
from collector.auth import digest
from collector.db.engine import Database
from collector.db.models import Downtime, Finding, Host, Run, SampleRow
from collector.group_commit import (
    MAX_BATCH,
    RUN_LINGER,
    SAMPLE_LINGER,
    GroupCommit,
    Posted,
    run_writer,
    sample_writer,
)
from collector.ingest import (
    CredentialGone,
    HostRef,
    Ingested,
    RunConflict,
    ingest_run,
    prepare,
    store_many,
)
from collector.metrics import BatchTimes, Metrics
from collector.sample_ingest import SamplesIn, store_sample_batches
from tests.collector.conftest import T0, Fixture, make_run

pytestmark = pytest.mark.py311

H = timedelta(hours=1)


def test_one_batch_answers_each_run_on_its_own(fx: Fixture, db: Database) -> None:
    fx.contract("C-1")
    a, b, c, d = (fx.host_ref("C-1", name) for name in ("a", "b", "c", "d"))
    first = make_run("a", T0, cpu=99)
    ingest_run(db, a, first)
    with db.write() as session:  # d's credential is revoked after the API cached it
        session.execute(update(Host).where(Host.id == d.id).values(revoked_at=T0))
    taken = make_run("c", T0, run_id=first.run_id)  # a's run_id, another payload
    fresh = make_run("b", T0, cpu=99, disks={"/": 97.0})
    outcomes = store_many(
        db,
        [
            prepare(a, first),  # a replay
            prepare(b, fresh),
            prepare(c, taken),
            prepare(d, make_run("d", T0)),
        ],
    )
    replay, stored, conflict, gone = outcomes
    assert isinstance(replay, Ingested) and replay.receipt.duplicate
    assert isinstance(stored, Ingested) and not stored.receipt.duplicate
    assert stored.alerts_due
    assert isinstance(conflict, RunConflict)
    assert isinstance(gone, CredentialGone)
    with db.read() as session:
        hosts = session.scalars(select(Run.host_id)).all()
        opened = session.scalars(select(Finding.check).where(Finding.host_id == b.id)).all()
    assert sorted(hosts) == sorted([a.id, b.id])
    assert {"cpu.usage", "disk.usage"} <= set(opened)
    assert len(opened) == stored.receipt.findings


def test_a_run_the_database_refuses_does_not_sink_its_batch(fx: Fixture, db: Database) -> None:
    """A failure of the transaction itself (here a trigger refusing one run) makes every run of
    the batch be retried alone: the others are stored, the refused one gets the error."""
    fx.contract("C-1")
    hosts = [fx.host_ref("C-1", f"h{i}") for i in range(3)]
    runs = [make_run(f"h{i}", T0, cpu=99) for i in range(3)]
    refused = str(runs[1].run_id)
    with db.write() as session:
        if db.is_sqlite:
            session.execute(
                text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON runs "
                    f"WHEN NEW.run_id = '{refused}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )
        else:
            session.execute(
                text(
                    "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                    f"IF NEW.run_id = '{refused}' THEN RAISE EXCEPTION 'refused'; END IF; "
                    "RETURN NEW; END $$"
                )
            )
            session.execute(
                text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON runs FOR EACH ROW EXECUTE FUNCTION refuse()"
                )
            )
    outcomes = store_many(db, [prepare(h, r) for h, r in zip(hosts, runs)])
    assert isinstance(outcomes[0], Ingested) and isinstance(outcomes[2], Ingested)
    assert isinstance(outcomes[1], Exception) and "refused" in str(outcomes[1])
    with db.read() as session:
        stored = set(session.scalars(select(Run.run_id)))
        opened = session.scalars(select(Finding.host_id).where(Finding.check == "cpu.usage"))
        assert set(opened) == {hosts[0].id, hosts[2].id}
    assert stored == {str(runs[0].run_id), str(runs[2].run_id)}


def test_the_writer_batches_hosts_and_keeps_each_hosts_order(fx: Fixture, db: Database) -> None:
    """Runs queued together: one per host per batch, so a host's later runs go in later
    batches, in the order they came — and its newest run is the one that decides its
    findings."""
    fx.contract("C-1")
    a, b, c, d = (fx.host_ref("C-1", name) for name in "abcd")
    a_runs = [make_run("a", T0 + i * H, cpu=cpu) for i, cpu in enumerate((99, 99, 10))]
    others = [(h, make_run(h.hostname, T0, cpu=99)) for h in (b, c, d)]
    metrics = Metrics()

    async def post_all() -> list[Ingested]:
        writer = run_writer(db, metrics)
        items = [prepare(a, r) for r in a_runs] + [prepare(h, r) for h, r in others]
        return list(await asyncio.gather(*(writer.store(i) for i in items)))

    receipts = [o.receipt for o in asyncio.run(post_all())]
    assert [r.duplicate for r in receipts] == [False] * 6
    # a0, the first, is written at once; the rest queue behind it: a1 with b, c and d, then a2
    assert metrics.batched["runs"] == 6 and metrics.batches["runs"] == 3
    with db.read() as session:
        cpu = {
            f.host_id: f
            for f in session.scalars(select(Finding).where(Finding.check == "cpu.usage"))
        }
        newest = session.scalar(select(Host.last_run_at).where(Host.id == a.id))
    assert cpu[a.id].state == "resolved" and cpu[a.id].resolved_run == str(a_runs[2].run_id)
    assert cpu[a.id].last_run == str(a_runs[1].run_id)
    assert all(cpu[h.id].state == "open" for h, _ in others)
    assert newest is not None and newest.replace(tzinfo=None) == a_runs[2].created_at.replace(
        tzinfo=None
    )


LINGER = RUN_LINGER  # the timed writers' linger below: any would do, the runs' is used


def _timed_writer(db: Database) -> tuple[GroupCommit[str, str, str], list[tuple[float, int]]]:
    """A group commit of host names whose batches are written at once (the database's part is
    above): (the loop's time, size) of each batch as it starts, which is when its first item is
    made ready."""
    started: list[tuple[float, int]] = []
    readied: list[float] = []
    loop = asyncio.get_running_loop()

    def ready(host: str) -> str:
        readied.append(loop.time())
        return host

    def written(times: BatchTimes) -> None:
        started.append((readied[-times.items], times.items))

    writer: GroupCommit[str, str, str] = GroupCommit(
        db,
        ready,
        lambda _db, hosts: [f"stored {h}" for h in hosts],
        lambda host: host,
        written,
        LINGER,
    )
    return writer, started


def test_a_request_after_a_quiet_spell_is_written_at_once(db: Database) -> None:
    async def post() -> tuple[list[float], list[tuple[float, int]]]:
        writer, started = _timed_writer(db)
        loop = asyncio.get_running_loop()
        queued = [loop.time()]
        assert await writer.store("a") == "stored a"
        await asyncio.sleep(LINGER)  # quiet
        queued.append(loop.time())
        assert await writer.store("b") == "stored b"
        return queued, started

    queued, started = asyncio.run(post())
    assert [size for _, size in started] == [1, 1]
    assert all(at - q < LINGER / 2 for q, (at, _) in zip(queued, started))


def test_under_load_requests_gather_for_the_linger(db: Database) -> None:
    """Requests that come while a batch has just started wait for the next one, which starts
    LINGER after it: one transaction for all of them."""

    async def post() -> list[tuple[float, int]]:
        writer, started = _timed_writer(db)
        first = asyncio.ensure_future(writer.store("a"))
        await asyncio.sleep(0)  # a's batch starts
        later = [writer.store(h) for h in "bcd"]
        assert await asyncio.gather(first, *later) == [f"stored {h}" for h in "abcd"]
        return started

    started = asyncio.run(post())
    assert [size for _, size in started] == [1, 3]
    assert started[1][0] - started[0][0] >= LINGER - 0.001


def test_a_full_batch_does_not_wait_for_the_linger(db: Database) -> None:
    async def post() -> list[tuple[float, int]]:
        writer, started = _timed_writer(db)
        await writer.store("first")
        hosts = [f"h{n}" for n in range(MAX_BATCH + 1)]
        await asyncio.gather(*(writer.store(h) for h in hosts))
        return started

    started = asyncio.run(post())
    assert [size for _, size in started] == [1, MAX_BATCH, 1]
    assert started[1][0] - started[0][0] < LINGER / 2  # the full one at once
    assert started[2][0] - started[1][0] >= LINGER - 0.001  # the one left over lingers


def test_metrics_say_where_a_batch_s_items_waited(db: Database) -> None:
    """/metrics sums each phase of the items' wait: queued until their batch starts, its ready
    step on the loop, its transaction. Here readying takes 10 ms an item and a write 40 ms; b
    and c come while a's batch is in its transaction, and "bad" is refused by its ready step
    (a 422), so it counts in no batch."""
    metrics = Metrics()
    writing, others_queued = threading.Event(), threading.Event()

    def ready(host: str) -> str:
        time.sleep(0.01)
        if host == "bad":
            raise ValueError("refused alone")
        return host

    def write_many(_db: Database, hosts: list[str]) -> list[str]:
        writing.set()
        others_queued.wait(5)
        time.sleep(0.04)
        return [f"stored {h}" for h in hosts]

    async def post() -> None:
        writer: GroupCommit[str, str, str] = GroupCommit(
            db, ready, write_many, lambda host: host, partial(metrics.batch_written, "runs"), 0.0
        )
        first = asyncio.ensure_future(writer.store("a"))
        while not writing.is_set():
            await asyncio.sleep(0.001)
        later = [asyncio.ensure_future(writer.store(h)) for h in ("b", "c", "bad")]
        await asyncio.sleep(0)  # they queue
        others_queued.set()
        outcomes = await asyncio.gather(first, *later, return_exceptions=True)
        assert outcomes[:3] == ["stored a", "stored b", "stored c"]
        assert isinstance(outcomes[3], ValueError)

    asyncio.run(post())
    assert (metrics.batches["runs"], metrics.batched["runs"]) == (2, 3)
    waited = {phase: metrics.waited["runs", phase] for phase in ("queued", "ready", "write")}
    assert 2 * 0.04 <= waited["queued"] < 2  # b and c waited out a's transaction
    assert 0.01 + 2 * 0.03 <= waited["ready"] < 2  # a's batch readied a; b's batch b, c and bad
    assert 3 * 0.04 <= waited["write"] < 2
    exposed = metrics.render()
    for phase, seconds in waited.items():
        assert (
            f'xunjian_ingest_wait_seconds_total{{kind="runs",phase="{phase}"}} {seconds:.6f}'
            in (exposed)
        )
    assert 'xunjian_ingest_wait_seconds_total{kind="samples",phase="queued"} 0.000000' in exposed


class _TimedMetrics(Metrics):
    """Metrics that also keep (kind, the loop's time, size) of each batch as it is written."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[tuple[str, float, int]] = []

    def batch_written(self, kind: str, times: BatchTimes) -> None:
        super().batch_written(kind, times)
        self.written.append((kind, asyncio.get_running_loop().time(), times.items))


def test_sample_batches_gather_longer_than_runs(db: Database) -> None:
    """Under load the next batch of runs starts RUN_LINGER after the last, the next of sample
    batches only SAMPLE_LINGER after: nobody waits on a sample batch's answer, and each
    transaction saved is CPU the runs' answers need. (The writers' database part answers at
    once here, so that only their timing is measured; the tests above store for real.)"""
    metrics = _TimedMetrics()
    refs = [HostRef(f"h{n}", "C-1", f"h{n}") for n in range(4)]

    async def post_under_load() -> float:
        runs, samples = run_writer(db, metrics), sample_writer(db, metrics, 30)
        runs._write_many = lambda _db, items: [f"run of {i.host.id}" for i in items]
        samples._write_many = lambda _db, items: [f"samples of {i.host_id}" for i in items]
        posted = asyncio.get_running_loop().time()  # no later than either first batch's start
        first = [
            asyncio.ensure_future(runs.store(prepare(refs[0], make_run("h0", T0)))),
            asyncio.ensure_future(samples.store(SamplesIn("h0", None, _samples(T0)))),
        ]
        await asyncio.sleep(0)  # both first batches start
        await asyncio.gather(
            *first,
            *(runs.store(prepare(r, make_run(r.hostname, T0))) for r in refs[1:]),
            *(samples.store(SamplesIn(r.id, None, _samples(T0))) for r in refs[1:]),
        )
        return posted

    posted = asyncio.run(post_under_load())
    waited = {}
    for kind, linger in (("runs", RUN_LINGER), ("samples", SAMPLE_LINGER)):
        (_, _, n0), (_, t1, n1) = [(k, t, n) for k, t, n in metrics.written if k == kind]
        assert (n0, n1) == (1, 3)
        # the second batch waits out the linger from the first one's start, which came after
        # `posted`, and is written after that
        assert t1 - posted >= linger
        waited[kind] = t1 - posted
    assert waited["runs"] < waited["samples"] / 2


def test_a_posted_run_that_fails_validation_is_refused_alone(fx: Fixture, db: Database) -> None:
    """An agent's run is validated when its batch starts: a bad one is answered with the 422
    its request raises (field paths under "body"), and the batch's other runs are stored."""
    fx.contract("C-1")
    a, b = fx.host_ref("C-1", "a"), fx.host_ref("C-1", "b")
    good = make_run("b", T0).model_dump_json().encode()
    bad = json.dumps({**json.loads(good), "created_at": "yesterday"}).encode()

    async def post_both() -> list[object]:
        writer = run_writer(db, Metrics())
        return list(
            await asyncio.gather(
                writer.store(Posted(a, JsonText(bad, None))),
                writer.store(Posted(b, JsonText(good, None))),
                return_exceptions=True,
            )
        )

    refused, stored = asyncio.run(post_both())
    assert isinstance(refused, RequestValidationError)
    assert [e["loc"] for e in refused.errors()] == [("body", "created_at")]
    assert isinstance(stored, Ingested) and not stored.receipt.duplicate
    with db.read() as session:
        assert session.scalars(select(Run.host_id)).all() == [b.id]


def test_the_writer_answers_a_refusal_to_its_request_only(fx: Fixture, db: Database) -> None:
    fx.contract("C-1")
    a, b = fx.host_ref("C-1", "a"), fx.host_ref("C-1", "b")
    stranger = HostRef(a.id, a.contract, a.hostname, (), digest("xjh_" + uuid.uuid4().hex))

    async def post_both() -> list[object]:
        writer = run_writer(db, Metrics())
        return list(
            await asyncio.gather(
                writer.store(prepare(stranger, make_run("a", T0))),
                writer.store(prepare(b, make_run("b", T0))),
                return_exceptions=True,
            )
        )

    refused, stored = asyncio.run(post_both())
    assert isinstance(refused, CredentialGone)
    assert isinstance(stored, Ingested) and not stored.receipt.duplicate


def _samples(*at: datetime) -> SampleBatch:
    return SampleBatch(
        samples=[
            Sample(
                at=t,
                cpu_percent=5,
                load1=0.1,
                load5=0.1,
                load15=0.1,
                memory_percent=30,
                swap_percent=0,
                mounts=[MountSample(mount="/", used_percent=40, used_bytes=4, total_bytes=10)],
            )
            for t in at
        ]
    )


def _enrolled_at_t0(fx: Fixture, db: Database, hostname: str) -> tuple[str, str]:
    host_id, credential = fx.enroll("C-1", hostname)
    with db.write() as session:  # enrolled at T0, so silences are measured from there
        session.execute(update(Host).where(Host.id == host_id).values(enrolled_at=T0))
    return host_id, digest(credential)


def test_sample_batches_of_several_hosts_in_one_transaction(
    fx: Fixture, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """New, duplicate and refused batches side by side, each answered on its own — in the one
    transaction, not by the retry batch by batch; samples stored per host, a time already
    stored skipped, and every host's silence and last sign of life recorded as if its batch had
    come alone."""
    caplog.set_level(logging.INFO, logger="collector.sample_ingest")
    fx.contract("C-1", "silence_minutes = 10\n")
    (a, a_cred), (b, b_cred), (c, c_cred) = (_enrolled_at_t0(fx, db, n) for n in "abc")
    m = timedelta(minutes=1)
    seen_before = _samples(T0 + 1 * m, T0 + 2 * m)
    (first,) = store_sample_batches(db, [SamplesIn(b, b_cred, seen_before)], default_silence=30)
    assert isinstance(first, SampleReceipt) and first.stored == 2
    with db.write() as session:
        session.execute(update(Host).where(Host.id == c).values(revoked_at=T0))
    overlapping = _samples(T0 + 2 * m, T0 + 3 * m)  # b has minute 2 already, not minute 3
    outcomes = store_sample_batches(
        db,
        [
            SamplesIn(a, a_cred, _samples(T0 + 40 * m, T0 + 41 * m)),
            SamplesIn(b, b_cred, seen_before),
            SamplesIn(c, c_cred, _samples(T0 + 5 * m)),
        ],
        default_silence=30,
    )
    stored_a, duplicate_b, refused_c = outcomes
    assert isinstance(stored_a, SampleReceipt) and (stored_a.samples, stored_a.stored) == (2, 2)
    assert isinstance(duplicate_b, SampleReceipt) and duplicate_b.duplicate
    assert (duplicate_b.samples, duplicate_b.stored) == (2, 2)
    assert isinstance(refused_c, CredentialGone)
    assert "one by one" not in caplog.text  # the replay was known before anything was inserted
    (partly,) = store_sample_batches(db, [SamplesIn(b, b_cred, overlapping)], default_silence=30)
    assert isinstance(partly, SampleReceipt) and (partly.samples, partly.stored) == (2, 1)
    with db.read() as session:
        counts = dict(
            session.execute(
                select(SampleRow.host_id, func.count()).group_by(SampleRow.host_id)
            ).all()
        )
        last_seen = dict(session.execute(select(Host.id, Host.last_seen_at)).all())
        downtime = session.execute(select(Downtime.host_id, Downtime.start, Downtime.end)).all()
    assert counts == {a: 2, b: 3}
    assert last_seen[c] is None  # refused: nothing of it stored
    assert [(h, s.replace(tzinfo=None), e.replace(tzinfo=None)) for h, s, e in downtime] == [
        (a, T0.replace(tzinfo=None), (T0 + 40 * m).replace(tzinfo=None))  # 40 min > the 10 set
    ]
    assert last_seen[a] is not None and last_seen[a].replace(tzinfo=None) == (T0 + 41 * m).replace(
        tzinfo=None
    )


def test_stored_samples_read_back_as_posted(fx: Fixture, db: Database) -> None:
    """Every field, whatever path the rows take to the database: offsets and microseconds,
    floats that need all 17 digits, absent readings, a count past 32 bits, the mounts."""
    fx.contract("C-1")
    a, a_cred = _enrolled_at_t0(fx, db, "a")
    posted = SampleBatch.model_validate_json(
        json.dumps(
            {
                "samples": [
                    {
                        "at": "2026-11-20T08:00:00.123456+08:00",
                        "cpu_percent": 0.1 + 0.2,
                        "load1": 1e-300,
                        "load5": 123456789.12345678,
                        "load15": 0,
                        "memory_percent": 99.99999999999999,
                        "swap_percent": 5e-324,
                        "disk_read_bytes_per_s": 1.7976931348623157e308,
                        "processes": 2**40,
                        "mounts": [
                            {
                                "mount": "/数据",
                                "used_percent": 1 / 3,
                                "used_bytes": 2**62,
                                "total_bytes": 2**63 - 1,
                            },
                            {
                                "mount": '/a "b"',
                                "used_percent": 0,
                                "used_bytes": 0,
                                "total_bytes": 1,
                            },
                        ],
                    },
                    {
                        "at": "2026-11-20T00:00:01Z",
                        "cpu_percent": 1,
                        "load1": 0,
                        "load5": 0,
                        "load15": 0,
                        "memory_percent": 0,
                        "swap_percent": 0,
                    },
                ]
            }
        ),
        strict=True,
    )
    (receipt,) = store_sample_batches(db, [SamplesIn(a, a_cred, posted)], default_silence=30)
    assert isinstance(receipt, SampleReceipt) and receipt.stored == 2
    with db.read() as session:
        rows = session.scalars(select(SampleRow).order_by(SampleRow.at)).all()
    fields = [f for f in Sample.model_fields if f not in ("at", "mounts")]
    expected = sorted(posted.samples, key=lambda s: s.at)
    assert [r.at for r in rows] == [s.at for s in expected]
    assert [r.host_id for r in rows] == [a, a]
    for row, sample in zip(rows, expected):
        assert {f: getattr(row, f) for f in fields} == {f: getattr(sample, f) for f in fields}
        assert row.mounts == [m.model_dump() for m in sample.mounts]


def test_one_batch_id_for_two_hosts_in_one_transaction(fx: Fixture, db: Database) -> None:
    """The second row of a batch_id fails the transaction: each batch is then tried alone,
    and the one whose id is taken answers as a duplicate with the stored counts."""
    fx.contract("C-1")
    (a, a_cred), (b, b_cred) = (_enrolled_at_t0(fx, db, n) for n in "ab")
    batch = _samples(T0, T0 + timedelta(minutes=1))
    first, second = store_sample_batches(
        db, [SamplesIn(a, a_cred, batch), SamplesIn(b, b_cred, batch)], default_silence=30
    )
    assert isinstance(first, SampleReceipt) and not first.duplicate and first.stored == 2
    assert isinstance(second, SampleReceipt) and second.duplicate and second.stored == 2
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(SampleRow)) == 2


def test_the_sample_writer_batches_hosts_in_order(fx: Fixture, db: Database) -> None:
    fx.contract("C-1")
    hosts = [_enrolled_at_t0(fx, db, n) for n in "abc"]
    m = timedelta(minutes=1)
    metrics = Metrics()

    async def post_all() -> list[SampleReceipt]:
        writer = sample_writer(db, metrics, 30)
        items = [SamplesIn(h, cred, _samples(T0 + k * m)) for k in (1, 2) for h, cred in hosts]
        return list(await asyncio.gather(*(writer.store(i) for i in items)))

    receipts = asyncio.run(post_all())
    assert [r.stored for r in receipts] == [1] * 6
    assert metrics.batched["samples"] == 6 and metrics.batches["samples"] < 6
    with db.read() as session:
        last_seen = {h: t for h, t in session.execute(select(Host.id, Host.last_seen_at))}
    assert {t.replace(tzinfo=None) for t in last_seen.values()} == {
        (T0 + 2 * m).replace(tzinfo=None)
    }
