"""Alembic, configured in code: one migration history for SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError

from collector.db.engine import Database

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(db: Database) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    cfg.attributes["engine"] = db.engine
    return cfg


def upgrade(db: Database, revision: str = "heads") -> None:
    """Bring the schema up to date ("heads": branches added in parallel are all applied)."""
    command.upgrade(alembic_config(db), revision)


def schema_mismatch(db: Database) -> Optional[str]:
    """Why this code cannot use the database's schema as it is, or None when it can.

    PostgreSQL is shared and upgraded on purpose (`xunjian db upgrade`), so a collector of a
    newer version may start on a schema still a migration behind. Without this it would serve,
    and fail later and elsewhere: a missing table or column in every ingest, or a scheduler whose
    every job fails each minute."""
    script = ScriptDirectory.from_config(alembic_config(db))
    with db.engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    wanted = set(script.get_heads())
    if current == wanted:
        return None
    if not current:
        return "the database has no tables yet: run `xunjian db upgrade` first"
    try:
        for revision in current:
            script.get_revision(revision)
    except CommandError:
        return (
            f"the database schema is at {', '.join(sorted(current))}, which this version of "
            "xunjian does not know (a newer one upgraded it): run the newer version"
        )
    return (
        f"the database schema is at {', '.join(sorted(current))} and this version of xunjian "
        f"needs {', '.join(sorted(wanted))}: run `xunjian db upgrade`"
    )
