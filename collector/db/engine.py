"""Engines and sessions for SQLite (single host, the default) and PostgreSQL (several collectors).

SQLite: WAL so readers never wait for the writer, foreign keys on, a busy timeout, and write
transactions that start with BEGIN IMMEDIATE. Python's sqlite3 otherwise begins lazily at the
first write, and a transaction that read first and then writes fails with "database is locked"
when another process committed in between — busy_timeout cannot help there.

Writers of one process also queue on a lock before BEGIN IMMEDIATE: SQLite's busy handler
sleeps between retries (up to 100 ms a time), so threads contending inside the lock stretched a
few milliseconds of writing into seconds of latency. The lock gives them the database in turn.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy import exc as exc_module
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

BUSY_TIMEOUT_MS = 30_000
_IMMEDIATE = "xunjian_write"
_IDLE_SINCE = "xunjian_idle_since"


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
        _sqlite_setup(engine)
        return engine
    engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size)
    _ping_when_idle(engine)
    return engine


PING_AFTER_IDLE_S = 1.0


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection before use when it has been idle for `PING_AFTER_IDLE_S`.

    SQLAlchemy's `pool_pre_ping` pings on every checkout: a round trip for each batch the group
    commit writes, and under load each round trip is a wait for a busy CPU as well. A
    connection that served a request within the last second is as good as one that answered a
    ping just now; one idle for longer (a quiet spell, a database restart) is pinged and, if
    dead, replaced before anyone uses it. Should the server die within that second, the
    statement fails and SQLAlchemy invalidates the pool's connections, as it would have for
    the ping; the group commit then stores each of the batch's items again, alone, on a new
    connection."""

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_S:
            return  # new (just connected) or recently used
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            if not engine.dialect.is_disconnect(exc, dbapi_conn, None):
                raise
            alive = False
        if not alive:  # the pool drops this connection and checks out another
            raise exc_module.DisconnectionError("pooled connection was closed by the server")


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (see _begin)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    """One engine and its session factories; what the app, the CLI and tests pass around."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(
            self.engine.execution_options(**{_IMMEDIATE: True}), expire_on_commit=False
        )
        self._writer = threading.Lock() if self.is_sqlite else None

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._read() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that commits on success and rolls back on any exception."""
        # After the busy timeout go ahead anyway: SQLite then reports the lock as it would have.
        queued = self._writer is not None and self._writer.acquire(timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            with self._write() as session, session.begin():
                yield session
        finally:
            if queued:
                assert self._writer is not None
                self._writer.release()

    def dispose(self) -> None:
        self.engine.dispose()
