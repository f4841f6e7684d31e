"""`xunjian token create`: a single-use enroll token for one contract."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Optional

import click

from agent.window import parse_duration
from collector.auth import ENROLL_PREFIX, digest, new_secret
from collector.cmd_common import config_option, open_db, settings_or_exit
from collector.db.contract_store import get_contract
from collector.db.models import EnrollToken
from collector.db.types import utcnow


def _duration(_ctx: click.Context, _param: click.Parameter, value: str) -> timedelta:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


@click.group()
def token() -> None:
    """Enroll tokens for agents."""


@token.command("create")
@config_option
@click.option("--contract", "number", required=True, help="contract the host will belong to")
@click.option("--expires", default="7d", callback=_duration, help="lifetime, e.g. 12h, 7d")
def token_create(config: Optional[Path], number: str, expires: timedelta) -> None:
    """Print the token alone on stdout (it is shown once and stored only as a hash)."""
    db = open_db(settings_or_exit(config))
    secret = new_secret(ENROLL_PREFIX)
    now = utcnow()
    with db.write() as session:
        if get_contract(session, number) is None:
            raise click.ClickException(f"no contract {number}; import it first")
        session.add(
            EnrollToken(
                token_sha256=digest(secret),
                contract=number,
                created_at=now,
                expires_at=now + expires,
            )
        )
    db.dispose()
    click.echo(f"expires {(now + expires).isoformat(timespec='seconds')}", err=True)
    click.echo(secret)
