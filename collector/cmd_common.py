"""What every `xunjian` command that touches the database shares: settings, errors, the DB."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional, TypeVar

import click

from agent.config import ConfigError
from collector.db.engine import Database
from collector.db.migrate import schema_mismatch, upgrade
from collector.settings import CollectorSettings, load_settings

F = TypeVar("F", bound=Callable[..., Any])

config_option = click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="collector settings file (TOML); default: $XUNJIAN_CONFIG, then the environment",
)


def settings_or_exit(config: Optional[Path], **overrides: Any) -> CollectorSettings:
    try:
        return load_settings(config, **overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def open_db(settings: CollectorSettings) -> Database:
    """SQLite is brought up to date on the spot; PostgreSQL is shared, so that is `db upgrade`."""
    db = Database(settings.db_url)
    if db.is_sqlite:
        upgrade(db)
    elif (mismatch := schema_mismatch(db)) is not None:
        db.dispose()
        raise click.ClickException(mismatch)
    return db


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
