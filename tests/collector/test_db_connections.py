"""Pooled PostgreSQL connections that the server closed: pinged and replaced after an idle spell,
and a batch written on one that died since its last use still stored (`collector.db.engine`).

Only PostgreSQL: SQLite has no server to close a connection. The server's backends are ended
with `pg_terminate_backend`, as a restart or an administrator would end them.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from collector.db import engine
from collector.db.engine import Database
from collector.db.models import Run
from collector.ingest import HostRef, Ingested, prepare, store_many
from tests.collector.conftest import T0, Fixture, PgServer, make_run

pytestmark = pytest.mark.py311


@pytest.fixture
def db_url(pg_server: PgServer) -> Iterator[str]:
    """This module's `db` and `fx` on PostgreSQL alone."""
    url = pg_server.new_database()
    try:
        yield url
    finally:
        pg_server.drop_database(url)


def _end_backends(pg_server: PgServer, db: Database) -> int:
    """End every session of the test's database; how many there were."""
    name = db.engine.url.database
    with psycopg.connect(pg_server.admin_url, autocommit=True) as admin:
        ended = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s",
            (name,),
        ).fetchone()
    assert ended is not None
    return int(ended[0])


def _backend(db: Database) -> int:
    with db.read() as session:
        return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_a_connection_idle_past_the_limit_is_pinged_and_replaced(
    db: Database, pg_server: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _backend(db)
    assert _end_backends(pg_server, db) >= 1
    monkeypatch.setattr(engine, "PING_AFTER_IDLE_S", 0.0)  # every pooled connection is "idle"
    after = _backend(db)  # no error: the ping found the connection dead before any statement
    assert after != before


def test_a_recently_used_connection_is_not_pinged(
    db: Database, pg_server: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Within the limit the pool hands the connection over as it is: a dead one fails its
    statement (which is what the limit saves a round trip for), and the pool is renewed."""
    _backend(db)
    _end_backends(pg_server, db)
    monkeypatch.setattr(engine, "PING_AFTER_IDLE_S", 3600.0)
    with pytest.raises(OperationalError, match="terminat"):
        _backend(db)
    assert _backend(db) > 0  # the next checkout connects afresh


def test_a_batch_on_a_connection_that_died_is_still_stored(
    fx: Fixture, db: Database, pg_server: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The group commit's batch fails on the dead connection, and each of its runs is then
    stored alone on a new one: nothing is lost and every request gets its receipt."""
    fx.contract("C-1")
    hosts = []
    for name in ("a", "b"):
        host_id, _ = fx.enroll("C-1", name)
        hosts.append(HostRef(host_id, "C-1", name))
    runs = [make_run(h.hostname, T0) for h in hosts]
    _backend(db)
    monkeypatch.setattr(engine, "PING_AFTER_IDLE_S", 3600.0)
    _end_backends(pg_server, db)
    outcomes = store_many(db, [prepare(h, r) for h, r in zip(hosts, runs)])
    assert all(isinstance(o, Ingested) and not o.receipt.duplicate for o in outcomes)
    with db.read() as session:
        stored = set(session.scalars(select(Run.run_id)))
    assert stored == {str(r.run_id) for r in runs}
