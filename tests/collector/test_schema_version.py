"""A collector refuses a PostgreSQL schema that is not the one its code was written for."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from click.testing import CliRunner
from sqlalchemy import text

from collector.cli import main
from collector.db.engine import Database
from collector.db.migrate import alembic_config, schema_mismatch, upgrade
from tests.collector.conftest import PgServer

pytestmark = pytest.mark.py311

BEHIND = "0005_host_last_run_id"


def test_a_schema_at_the_code_s_head_is_accepted(db: Database) -> None:
    assert schema_mismatch(db) is None


def test_a_schema_a_migration_behind_names_both_revisions(db: Database) -> None:
    command.downgrade(alembic_config(db), BEHIND)
    assert schema_mismatch(db) == (
        f"the database schema is at {BEHIND} and this version of xunjian needs 0006_job_slots: "
        "run `xunjian db upgrade`"
    )
    upgrade(db)
    assert schema_mismatch(db) is None


def test_a_schema_from_a_newer_version_is_named_as_such(db: Database) -> None:
    with db.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0099_from_the_future'"))
    message = schema_mismatch(db)
    assert message is not None
    assert "at 0099_from_the_future, which this version of xunjian does not know" in message


def test_an_empty_database_is_told_to_upgrade(db_url: str) -> None:
    empty = Database(db_url)
    try:
        assert schema_mismatch(empty) == (
            "the database has no tables yet: run `xunjian db upgrade` first"
        )
    finally:
        empty.dispose()


def test_commands_on_postgresql_refuse_a_schema_behind_and_work_after_upgrade(
    pg_server: PgServer, tmp_path: Path
) -> None:
    """(SQLite is brought up to date by every command itself.)"""
    url = pg_server.new_database()
    db = Database(url)
    try:
        upgrade(db)
        command.downgrade(alembic_config(db), BEHIND)
    finally:
        db.dispose()
    env = {"XUNJIAN_HOME": str(tmp_path), "XUNJIAN_DATABASE_URL": url, "XUNJIAN_CONFIG": ""}
    refused = CliRunner().invoke(main, ["host", "list", "--json"], env=env)
    assert refused.exit_code == 1
    assert f"the database schema is at {BEHIND}" in refused.output
    assert "run `xunjian db upgrade`" in refused.output
    assert CliRunner().invoke(main, ["db", "upgrade"], env=env).exit_code == 0
    listed = CliRunner().invoke(main, ["host", "list", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    assert listed.output.strip() == "[]"
    pg_server.drop_database(url)
