"""`xunjian apikey create|list|revoke`: bearer keys for people and scripts."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click
from sqlalchemy import select

from collector.auth import KEY_PREFIX, Role, digest, new_secret
from collector.cmd_common import config_option, echo_json, open_db, settings_or_exit
from collector.db.contract_store import get_contract
from collector.db.models import ApiKey
from collector.db.types import utcnow


@click.group()
def apikey() -> None:
    """API keys (Authorization: Bearer KEY)."""


@apikey.command("create")
@config_option
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--contract", "number", default=None, help="limit the key to one contract")
@click.option("--name", default="", help="who or what uses it (shown as who acknowledged)")
def apikey_create(config: Optional[Path], role: str, number: Optional[str], name: str) -> None:
    """Print the key alone on stdout; it is stored only as a hash."""
    db = open_db(settings_or_exit(config))
    secret = new_secret(KEY_PREFIX)
    with db.write() as session:
        if number is not None and get_contract(session, number) is None:
            raise click.ClickException(f"no contract {number}; import it first")
        key = ApiKey(
            key_sha256=digest(secret), name=name, role=role, contract=number, created_at=utcnow()
        )
        session.add(key)
        session.flush()
        key_id = key.id
    db.dispose()
    click.echo(f"key {key_id}: role {role}, contract {number or 'all'}", err=True)
    click.echo(secret)


@apikey.command("list")
@config_option
def apikey_list(config: Optional[Path]) -> None:
    """Keys with their role and scope (never the secret)."""
    db = open_db(settings_or_exit(config))
    with db.read() as session:
        rows = [
            {
                "id": k.id,
                "name": k.name,
                "role": k.role,
                "contract": k.contract,
                "created_at": k.created_at,
                "revoked_at": k.revoked_at,
            }
            for k in session.scalars(select(ApiKey).order_by(ApiKey.id))
        ]
    db.dispose()
    echo_json(rows)


@apikey.command("revoke")
@config_option
@click.argument("key_id", type=int)
def apikey_revoke(config: Optional[Path], key_id: int) -> None:
    db = open_db(settings_or_exit(config))
    with db.write() as session:
        key = session.get(ApiKey, key_id)
        if key is None:
            raise click.ClickException(f"no API key {key_id}")
        key.revoked_at = key.revoked_at or utcnow()
    db.dispose()
    click.echo(f"key {key_id} revoked", err=True)
