"""`xunjian contract import|list|show`: maintenance contracts from TOML files."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import click
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from agent.config import ConfigError
from collector.cmd_common import config_option, echo_json, open_db, settings_or_exit
from collector.db.contract_store import get_contract, import_contracts
from collector.db.models import ContractRow, Host


@click.group()
def contract() -> None:
    """Maintenance contracts (维保合同)."""


@contract.command("import")
@config_option
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
def contract_import(config: Optional[Path], files: tuple[Path, ...]) -> None:
    """Validate every FILE, then store them all; one bad file and nothing is imported."""
    db = open_db(settings_or_exit(config))
    try:
        numbers = import_contracts(db, list(files))
    except ConfigError as exc:
        raise click.ClickException(f"nothing imported: {exc}") from exc
    finally:
        db.dispose()
    for number in numbers:
        click.echo(number)


@contract.command("list")
@config_option
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def contract_list(config: Optional[Path], as_json: bool) -> None:
    """Imported contracts with their level, term and enrolled hosts."""
    db = open_db(settings_or_exit(config))
    with db.read() as session:
        counts = dict(
            session.execute(
                select(Host.contract, func.count())
                .where(Host.revoked_at.is_(None))
                .group_by(Host.contract)
            ).all()
        )
        rows: list[dict[str, Any]] = []
        for row in session.scalars(select(ContractRow).order_by(ContractRow.number)):
            c = get_contract(session, row.number)
            assert c is not None
            rows.append(
                {
                    "number": c.number,
                    "title": c.title,
                    "customer": c.customer.name,
                    "level": c.level.value,
                    "start": c.start.isoformat(),
                    "end": c.end.isoformat(),
                    "hosts": counts.get(c.number, 0),
                    "imported_at": row.imported_at.isoformat(),
                    "source": row.source_name,
                }
            )
    db.dispose()
    if as_json:
        echo_json(rows)
        return
    table = Table("number", "customer", "level", "term", "hosts", "imported")
    for r in rows:
        table.add_row(
            r["number"],
            r["customer"],
            r["level"],
            f"{r['start']} … {r['end']}",
            str(r["hosts"]),
            r["imported_at"][:19],
        )
    Console().print(table)


@contract.command("show")
@config_option
@click.argument("number")
def contract_show(config: Optional[Path], number: str) -> None:
    """The contract as validated and stored (JSON, defaults filled in)."""
    db = open_db(settings_or_exit(config))
    with db.read() as session:
        c = get_contract(session, number)
    db.dispose()
    if c is None:
        raise click.ClickException(f"no contract {number}")
    echo_json(c.model_dump(mode="json"))
