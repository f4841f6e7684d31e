"""`xunjian host list|revoke`: the hosts agents enrolled (and those seen over SSH or imports)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click
from rich.console import Console
from rich.table import Table
from sqlalchemy import or_, select

from collector.api.schemas import HostOut
from collector.cmd_common import config_option, echo_json, open_db, settings_or_exit
from collector.db.models import Host
from collector.db.types import utcnow


@click.group()
def host() -> None:
    """Hosts under contract."""


@host.command("list")
@config_option
@click.option("--contract", "number", default=None)
@click.option("--all", "include_revoked", is_flag=True, help="also revoked hosts")
@click.option("--json", "as_json", is_flag=True)
def host_list(
    config: Optional[Path], number: Optional[str], include_revoked: bool, as_json: bool
) -> None:
    db = open_db(settings_or_exit(config))
    query = select(Host).order_by(Host.contract, Host.hostname)
    if number:
        query = query.where(Host.contract == number)
    if not include_revoked:
        query = query.where(Host.revoked_at.is_(None))
    with db.read() as session:
        hosts = [HostOut.of(h) for h in session.scalars(query)]
    db.dispose()
    if as_json:
        echo_json([h.model_dump(mode="json") for h in hosts])
        return
    table = Table("id", "contract", "hostname", "agent", "last seen", "last run", "state")
    for h in hosts:
        table.add_row(
            h.id,
            h.contract,
            h.hostname,
            h.agent_version if h.enrolled else "-",
            h.last_seen_at.isoformat(timespec="seconds") if h.last_seen_at else "-",
            h.last_run_at.isoformat(timespec="seconds") if h.last_run_at else "-",
            "revoked" if h.revoked_at else "live",
        )
    Console().print(table)


@host.command("revoke")
@config_option
@click.argument("name")
@click.option("--contract", "number", default=None, help="when a hostname is in several contracts")
def host_revoke(config: Optional[Path], name: str, number: Optional[str]) -> None:
    """Revoke HOST (id or hostname): its credential stops working at once; history stays."""
    db = open_db(settings_or_exit(config))
    with db.write() as session:
        query = select(Host).where(or_(Host.id == name, Host.hostname == name))
        query = query.where(Host.revoked_at.is_(None))
        if number:
            query = query.where(Host.contract == number)
        matches = session.scalars(query).all()
        if not matches:
            raise click.ClickException(f"no live host {name}")
        if len(matches) > 1:
            where = ", ".join(f"{h.id} ({h.contract})" for h in matches)
            raise click.ClickException(f"{name} is ambiguous: {where}; use the id or --contract")
        matches[0].revoked_at = utcnow()
        host_id = matches[0].id
    db.dispose()
    click.echo(f"host {host_id} revoked", err=True)
