"""`xunjian db upgrade`: apply the migrations (PostgreSQL needs it; SQLite does it itself)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from collector.cmd_common import config_option, settings_or_exit
from collector.db.engine import Database
from collector.db.migrate import upgrade


@click.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@config_option
def db_upgrade(config: Optional[Path]) -> None:
    """Bring the schema up to the newest migration (safe to repeat)."""
    database = Database(settings_or_exit(config).db_url)
    try:
        upgrade(database)
    finally:
        database.dispose()
    click.echo("database is up to date", err=True)
