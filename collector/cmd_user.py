"""`xunjian user create|list|disable`: people who log in to the web console."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click
from sqlalchemy import delete, select

from collector.auth import Role
from collector.cmd_common import config_option, echo_json, open_db, settings_or_exit
from collector.db.models_ui import ConsoleSession, User
from collector.db.types import utcnow
from collector.ui.auth import UserError, check_new_user, create_user, normalize_name


@click.group()
def user() -> None:
    """Console users (roles admin / engineer / viewer; viewers see only their contracts)."""


def _password(password_file: Optional[Path]) -> str:
    if password_file is None:
        value: str = click.prompt(
            "Password", hide_input=True, confirmation_prompt=True, err=True, type=str
        )
        return value
    try:
        lines = password_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"--password-file {password_file}: {exc}") from exc
    return lines[0] if lines else ""


@user.command("create")
@config_option
@click.argument("name")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option(
    "--contract",
    "contracts",
    multiple=True,
    help="a contract the user may see (repeatable); required for viewers; none: all contracts",
)
@click.option(
    "--password-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="read the password from the first line of this file instead of prompting",
)
def user_create(
    config: Optional[Path],
    name: str,
    role: str,
    contracts: tuple[str, ...],
    password_file: Optional[Path],
) -> None:
    """Create NAME; the password is asked twice (hidden) unless --password-file is given."""
    db = open_db(settings_or_exit(config))
    try:
        with db.read() as session:
            check_new_user(session, name, role, contracts)
        password = _password(password_file)
        with db.write() as session:
            created = create_user(session, name, password, role, contracts, utcnow())
            login = created.name
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        db.dispose()
    scope = ", ".join(sorted(set(contracts))) or "all contracts"
    click.echo(f"user {login}: role {role}, {scope}", err=True)


@user.command("list")
@config_option
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def user_list(config: Optional[Path], as_json: bool) -> None:
    """Users with their role, contracts and last log-in (never a password hash)."""
    db = open_db(settings_or_exit(config))
    with db.read() as session:
        users = list(session.scalars(select(User).order_by(User.name)))
    db.dispose()
    if as_json:
        echo_json(
            [
                {
                    "name": u.name,
                    "role": u.role,
                    "contracts": list(u.contracts),
                    "created_at": u.created_at,
                    "last_login_at": u.last_login_at,
                    "disabled_at": u.disabled_at,
                }
                for u in users
            ]
        )
        return
    for u in users:
        scope = ", ".join(u.contracts) or "all contracts"
        last = u.last_login_at.isoformat(timespec="minutes") if u.last_login_at else "never"
        state = " (disabled)" if u.disabled_at else ""
        click.echo(f"{u.name}\t{u.role}\t{scope}\tlast log-in {last}{state}")


@user.command("disable")
@config_option
@click.argument("name")
def user_disable(config: Optional[Path], name: str) -> None:
    """Refuse NAME's log-ins from now on and end the sessions NAME has open."""
    db = open_db(settings_or_exit(config))
    login = normalize_name(name)
    try:
        with db.write() as session:
            row = session.scalars(select(User).where(User.name == login)).first()
            if row is None:
                raise click.ClickException(f"no user {login}")
            row.disabled_at = row.disabled_at or utcnow()
            session.execute(delete(ConsoleSession).where(ConsoleSession.user_id == row.id))
    finally:
        db.dispose()
    click.echo(f"user {login} disabled", err=True)
