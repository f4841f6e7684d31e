"""One collector a minute runs each scheduled job, decided in the database (collector/db/job_slots.py)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from collector.db.engine import Database
from collector.db.job_slots import JobSlot, claim_slot
from collector.scheduler import tick
from collector.settings import CollectorSettings
from tests.collector.conftest import T0

pytestmark = pytest.mark.py311

MINUTE = timedelta(seconds=60)
JOBS = ["availability sweep", "alerts", "reports", "outbox"]


def claim(db: Database, worker: str, at: timedelta, job: str = "sweep") -> bool:
    with db.write() as session:
        return claim_slot(session, job, worker, MINUTE, T0 + at)


def test_a_job_is_claimed_once_an_interval_and_by_whoever_comes_first_after(db: Database) -> None:
    assert claim(db, "a", timedelta(0))  # the first claim ever creates the row
    assert not claim(db, "b", timedelta(seconds=1))
    assert not claim(db, "a", timedelta(seconds=59))
    assert claim(db, "b", timedelta(seconds=60))  # due again: the first to tick takes it
    assert not claim(db, "a", timedelta(seconds=61))
    assert claim(db, "a", timedelta(seconds=200))  # b went away: a takes over
    assert claim(db, "b", timedelta(seconds=1), job="other")  # each job has its own slot
    with db.read() as session:
        rows = {r.job: (r.ran_by, r.ran_at, r.due_at) for r in session.scalars(select(JobSlot))}
    assert rows == {
        "sweep": ("a", T0 + timedelta(seconds=200), T0 + timedelta(seconds=260)),
        "other": ("b", T0 + timedelta(seconds=1), T0 + timedelta(seconds=61)),
    }


@pytest.mark.parametrize("exists", [False, True], ids=["first claim", "later claim"])
def test_claims_at_the_same_moment_have_one_winner(db: Database, exists: bool) -> None:
    if exists:
        assert claim(db, "before", -MINUTE)
    start = threading.Barrier(6)
    won: list[str] = []

    def contend(worker: str) -> None:
        start.wait()
        if claim(db, worker, timedelta(0)):
            won.append(worker)

    threads = [threading.Thread(target=contend, args=(f"w{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1


def test_a_second_worker_ticking_in_the_same_minute_runs_nothing(
    db: Database, settings: CollectorSettings
) -> None:
    assert tick(db, settings, "first") == JOBS
    assert tick(db, settings, "second") == []
    assert tick(db, settings, "first") == []  # its own next tick is a minute on
    with db.write() as session:  # the minute passes
        session.execute(update(JobSlot).values(due_at=T0))
    assert tick(db, settings, "second") == JOBS
    with db.read() as session:
        assert set(session.scalars(select(JobSlot.ran_by))) == {"second"}


def test_a_failing_job_keeps_its_claim_and_the_others_run(
    db: Database,
    settings: CollectorSettings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("the sweep broke")

    monkeypatch.setattr("collector.scheduler.sweep", broken)
    assert tick(db, settings, "first") == JOBS
    assert "scheduled job 'availability sweep' failed" in caplog.text
    assert tick(db, settings, "second") == []  # due again next minute, not at once elsewhere


def test_metrics_say_when_each_job_last_ran(
    db: Database, settings: CollectorSettings, client: TestClient
) -> None:
    name = "xunjian_scheduled_job_last_run_timestamp_seconds"
    assert f"# TYPE {name} gauge" in client.get("/metrics").text  # nothing ran yet: no series
    before = time.time()
    tick(db, settings, "first")
    lines = [line for line in client.get("/metrics").text.splitlines() if line.startswith(name)]
    assert [line.split("}")[0] for line in lines] == [
        f'{name}{{job="{job}"' for job in sorted(JOBS)
    ]
    assert all(before - 1 <= float(line.split()[-1]) <= time.time() for line in lines)
