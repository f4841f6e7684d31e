"""`xunjian alert test --contract NO`: a test message through every alert channel of a contract.

Sent directly rather than through the outbox, so the operator sees each channel's answer at
once (a wrong robot token, a missing keyword, a refused signature …). Targets are shown
redacted: webhook URLs carry tokens.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Optional

import click
from rich.console import Console
from rich.table import Table

from collector.alerts.config import AnyChannel, EmailChannel
from collector.alerts.deliver import build_request, post, redact_url, send_mail
from collector.alerts.engine import Alerting
from collector.alerts.messages import AlertEvent, AlertLine, AlertMessage
from collector.cmd_common import config_option, echo_json, open_db, settings_or_exit
from collector.db.contract_store import get_contract
from collector.db.types import utcnow
from collector.outbox import DeliveryError


@click.group()
def alert() -> None:
    """Alerts to the service desk."""


@alert.command("test")
@config_option
@click.option("--contract", "number", required=True, help="contract number (合同编号)")
@click.option("--json", "as_json", is_flag=True)
def alert_test(config: Optional[Path], number: str, as_json: bool) -> None:
    """Send a test message through every channel (main and escalation) of a contract."""
    settings = settings_or_exit(config)
    db = open_db(settings)
    try:
        with db.read() as session:
            contract = get_contract(session, number)
        if contract is None:
            raise click.ClickException(f"contract {number} is not imported")
        alerting = Alerting.from_settings(db, settings)
        eff = alerting.settings_for(contract)
    finally:
        db.dispose()
    targets = [("main", c) for c in eff.channels] + [("escalation", c) for c in eff.escalation]
    if not targets:
        raise click.ClickException(
            f"contract {number} has no alert channels ([alerts] in the contract or collector.toml)"
        )
    now = utcnow()
    message = AlertMessage(
        event=AlertEvent.test,
        contract=contract.number,
        customer=contract.customer.name,
        timezone=contract.timezone,
        lang=eff.language,
        created_at=now,
        lines=[
            AlertLine(
                host="",
                text_key="alerts.test.finding",
                link=f"{eff.console_url}/contracts/{contract.number}",
            )
        ],
    )
    results = []
    for level, channel in targets:
        delivery = f"test:{contract.number}:{uuid.uuid4().hex}"
        try:
            if isinstance(channel, EmailChannel):
                detail = send_mail(settings.smtp, channel, message, delivery)
            else:
                detail = post(channel, build_request(channel, message, now, delivery))
            ok = True
        except DeliveryError as exc:
            ok, detail = False, str(exc)
        results.append(
            {
                "level": level,
                "channel": channel.label,
                "kind": channel.kind,
                "target": _target(channel),
                "ok": ok,
                "detail": detail,
            }
        )
    if as_json:
        echo_json(results)
    else:
        table = Table("level", "channel", "kind", "target", "result", "detail")
        for r in results:
            result = "[green]ok[/green]" if r["ok"] else "[red]failed[/red]"
            table.add_row(
                str(r["level"]),
                str(r["channel"]),
                str(r["kind"]),
                str(r["target"]),
                result,
                str(r["detail"]),
            )
        Console().print(table)
    if not all(r["ok"] for r in results):
        raise SystemExit(1)


def _target(channel: AnyChannel) -> str:
    if isinstance(channel, EmailChannel):
        return ", ".join(channel.recipients)
    return redact_url(channel.url.get_secret_value())
