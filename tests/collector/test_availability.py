"""Availability from heartbeats and samples: silences become downtime, late evidence revises it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select

from collector.availability import availability, sweep
from collector.db.engine import Database
from collector.db.models import Downtime, Host
from tests.collector.conftest import T0, Fixture, bearer

pytestmark = pytest.mark.py311

M = timedelta(minutes=1)


def _sample(at: datetime) -> dict[str, Any]:
    return {
        "at": at.isoformat(),
        "cpu_percent": 5,
        "load1": 0.1,
        "load5": 0.1,
        "load15": 0.1,
        "memory_percent": 30,
        "swap_percent": 0,
    }


def _downtime(db: Database, host_id: str) -> list[tuple[datetime, datetime | None]]:
    with db.read() as s:
        rows = s.scalars(
            select(Downtime).where(Downtime.host_id == host_id).order_by(Downtime.start)
        )
        return [(d.start, d.end) for d in rows]


@pytest.fixture
def agent(fx: Fixture, db: Database) -> tuple[str, dict[str, str]]:
    fx.contract("C-1", "silence_minutes = 10\n")
    host_id, cred = fx.enroll("C-1", "app01")
    with db.write() as s:  # enrolled at T0, so the test's clock is the fixture's
        host = s.get(Host, host_id)
        assert host is not None
        host.enrolled_at = T0
    return host_id, bearer(cred)


def test_silence_longer_than_contract_is_downtime(
    agent: tuple[str, dict[str, str]], client: TestClient, db: Database
) -> None:
    host_id, auth = agent
    for minutes in (1, 2, 3, 33, 34):  # 30 minutes without a word between 3 and 33
        r = client.post(
            "/api/v1/heartbeat", json={"at": (T0 + minutes * M).isoformat()}, headers=auth
        )
        assert r.status_code == 200
    assert _downtime(db, host_id) == [(T0 + 3 * M, T0 + 33 * M)]
    with db.read() as s:
        pct = availability(s, host_id, T0, T0 + 100 * M, now=T0 + 100 * M)
    # 30 of 100 minutes down, plus the silence since minute 34 (66 minutes, still going on)
    assert pct == pytest.approx(100 * (1 - 96 / 100))
    with db.read() as s:
        assert availability(s, host_id, T0, T0 + 34 * M, now=T0 + 34 * M) == pytest.approx(
            100 * (1 - 30 / 34)
        )


def test_late_samples_from_the_spool_shrink_the_downtime(
    agent: tuple[str, dict[str, str]], client: TestClient, db: Database
) -> None:
    host_id, auth = agent
    client.post("/api/v1/heartbeat", json={"at": (T0 + M).isoformat()}, headers=auth)
    client.post("/api/v1/heartbeat", json={"at": (T0 + 61 * M).isoformat()}, headers=auth)
    assert _downtime(db, host_id) == [(T0 + M, T0 + 61 * M)]
    # the network was down, not the host: samples from minutes 5..40 arrive afterwards
    batch = {"samples": [_sample(T0 + m * M) for m in range(5, 41, 5)]}
    assert client.post("/api/v1/samples", json=batch, headers=auth).status_code == 200
    assert _downtime(db, host_id) == [(T0 + 40 * M, T0 + 61 * M)]


def test_sweep_opens_a_silence_and_the_next_sign_of_life_closes_it(
    agent: tuple[str, dict[str, str]], client: TestClient, db: Database
) -> None:
    host_id, auth = agent
    client.post("/api/v1/heartbeat", json={"at": (T0 + M).isoformat()}, headers=auth)
    with db.write() as s:
        assert sweep(s, 30, now=T0 + 5 * M) == []
    with db.write() as s:
        assert sweep(s, 30, now=T0 + 20 * M) == [host_id]
    with db.write() as s:
        assert sweep(s, 30, now=T0 + 25 * M) == [host_id]  # still one open interval
    assert _downtime(db, host_id) == [(T0 + M, None)]
    client.post("/api/v1/heartbeat", json={"at": (T0 + 50 * M).isoformat()}, headers=auth)
    assert _downtime(db, host_id) == [(T0 + M, T0 + 50 * M)]


def _enrolled_at_t0(fx: Fixture, db: Database, contract: str, hostname: str) -> str:
    host_id, _ = fx.enroll(contract, hostname)
    with db.write() as s:
        host = s.get(Host, host_id)
        assert host is not None
        host.enrolled_at = T0
    return host_id


def test_sweep_holds_each_host_to_its_own_contracts_limit(fx: Fixture, db: Database) -> None:
    fx.contract("C-1", "silence_minutes = 10\n")
    fx.contract("C-2")  # the collector's limit: 30 minutes
    strict = _enrolled_at_t0(fx, db, "C-1", "app01")
    lenient = _enrolled_at_t0(fx, db, "C-2", "app02")
    with db.write() as s:
        assert sweep(s, 30, now=T0 + 20 * M) == [strict]
    with db.write() as s:
        assert sorted(sweep(s, 30, now=T0 + 40 * M)) == sorted([strict, lenient])


def test_sweep_reads_each_contract_once_not_once_a_host(fx: Fixture, db: Database) -> None:
    """The scheduler sweeps every minute in every worker: its queries must not grow with the
    hosts (it read the contract's version once a host: 200 queries at 200 hosts)."""
    fx.contract("C-1", "silence_minutes = 10\n")

    def statements() -> int:
        seen: list[str] = []

        def count(*args: Any) -> None:
            seen.append(args[2])

        event.listen(db.engine, "before_cursor_execute", count)
        try:
            with db.write() as s:  # none silent yet: no downtime to write
                assert sweep(s, 30, now=T0 + 5 * M) == []
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        return len(seen)

    _enrolled_at_t0(fx, db, "C-1", "app00")
    one = statements()
    for n in range(1, 6):
        _enrolled_at_t0(fx, db, "C-1", f"app{n:02}")
    assert statements() == one


def test_hosts_without_agent_have_no_availability(
    fx: Fixture, client: TestClient, db: Database
) -> None:
    fx.contract("C-1")
    key = bearer(fx.api_key("engineer"))
    from tests.collector.conftest import make_run, run_json

    r = client.post("/api/v1/runs?contract=C-1", json=run_json(make_run("ssh01", T0)), headers=key)
    with db.read() as s:
        assert availability(s, r.json()["host_id"], T0, T0 + timedelta(days=1)) is None
