"""Migrations that move data, run both ways over what ingest stored (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

import pytest
from alembic import command
from sqlalchemy import Table, select, text

from collector.db.engine import Database
from collector.db.migrate import alembic_config, upgrade
from collector.db.models import Finding
from collector.ingest import ingest_run
from tests.collector.conftest import T0, Fixture, bearer, make_run

pytestmark = pytest.mark.py311


def _rows(db: Database) -> dict[str, tuple[str, str, datetime]]:
    """check → (state, last_run, last_seen) as the rows hold them, not as `Finding` reads them."""
    c = cast(Table, Finding.__table__).c
    with db.engine.connect() as conn:
        rows = conn.execute(select(c.check, c.state, c.last_run, c.last_seen))
        return {check: (state, run, seen) for check, state, run, seen in rows}


def _api(fx: Fixture, key: str) -> dict[str, dict[str, Any]]:
    answer = fx.client.get("/api/v1/findings", headers=bearer(key))
    assert answer.status_code == 200, answer.text
    return {f["check"]: f for f in answer.json()}


def test_0005_moves_what_open_findings_carry_to_the_host_and_back(
    fx: Fixture, db: Database
) -> None:
    fx.contract("C-1")
    host = fx.host_ref("C-1", "app01")
    r1 = make_run("app01", T0, cpu=99, memory=99)
    # CPU persists, memory resolves
    r2 = make_run("app01", T0 + timedelta(hours=1), cpu=99, memory=10)
    for run in (r1, r2):
        ingest_run(db, host, run)
    key = fx.api_key()
    api = _api(fx, key)
    assert (api["cpu.usage"]["last_run"], api["memory.usage"]["last_run"]) == (
        str(r2.run_id),
        str(r1.run_id),
    )

    # Back to 0004, where an open finding's own row holds its last run: r2 is written into it.
    command.downgrade(alembic_config(db), "0004_console_users_sessions")
    rows = _rows(db)
    assert rows["cpu.usage"] == ("open", str(r2.run_id), r2.created_at)
    assert rows["memory.usage"] == ("resolved", str(r1.run_id), r1.created_at)

    # And up again: the host's newest run is found among its runs, and the API reads the same.
    upgrade(db)
    with db.engine.connect() as conn:
        newest = conn.scalar(text("SELECT last_run_id FROM hosts WHERE id = :id"), {"id": host.id})
    assert newest == str(r2.run_id)
    assert _api(fx, key) == api
