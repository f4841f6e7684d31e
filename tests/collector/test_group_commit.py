"""Group commit of runs: several hosts' runs in one transaction, each answered on its own merits.

On SQLite and on a real PostgreSQL (the `db` fixture), through `store_many` and through the
async `RunWriter` that POST /runs uses.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, text, update

from collector.auth import digest
from collector.db.engine import Database
from collector.db.models import Finding, Host, Run
from collector.ingest import (
    CredentialGone,
    HostRef,
    Ingested,
    RunConflict,
    ingest_run,
    prepare,
    store_many,
)
from collector.metrics import Metrics
from collector.run_writer import RunWriter
from tests.collector.conftest import T0, Fixture, make_run

pytestmark = pytest.mark.py311

H = timedelta(hours=1)


def enrolled(fx: Fixture, contract: str, hostname: str) -> HostRef:
    host_id, credential = fx.enroll(contract, hostname)
    return HostRef(host_id, contract, hostname, (), digest(credential))


def test_one_batch_answers_each_run_on_its_own(fx: Fixture, db: Database) -> None:
    fx.contract("C-1")
    a, b, c, d = (enrolled(fx, "C-1", name) for name in ("a", "b", "c", "d"))
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
    hosts = [enrolled(fx, "C-1", f"h{i}") for i in range(3)]
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
    """Runs queued together: one per host per batch and none of a host already in flight, so a
    host's later runs go in later batches, in the order they came — and its newest run is the
    one that decides its findings. Two batches are in flight at once."""
    fx.contract("C-1")
    a, b, c, d = (enrolled(fx, "C-1", name) for name in "abcd")
    a_runs = [make_run("a", T0 + i * H, cpu=cpu) for i, cpu in enumerate((99, 99, 10))]
    others = [(h, make_run(h.hostname, T0, cpu=99)) for h in (b, c, d)]
    metrics = Metrics()

    async def post_all() -> list[Ingested]:
        writer = RunWriter(db, metrics)
        items = [prepare(a, r) for r in a_runs] + [prepare(h, r) for h, r in others]
        return list(await asyncio.gather(*(writer.store(i) for i in items)))

    receipts = [o.receipt for o in asyncio.run(post_all())]
    assert [r.duplicate for r in receipts] == [False] * 6
    # [a0] and [b] start at once; c and d, queued behind them, share a batch (with a1 when a0
    # finishes first); a2 comes last, alone
    assert metrics.batched_runs == 6 and metrics.batches in (4, 5)
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


def test_the_writer_answers_a_refusal_to_its_request_only(fx: Fixture, db: Database) -> None:
    fx.contract("C-1")
    a, b = enrolled(fx, "C-1", "a"), enrolled(fx, "C-1", "b")
    stranger = HostRef(a.id, a.contract, a.hostname, (), digest("xjh_" + uuid.uuid4().hex))

    async def post_both() -> list[object]:
        writer = RunWriter(db)
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
