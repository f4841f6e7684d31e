"""`xunjian report build|list`: inspection reports on demand, and their delivery state."""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Optional

import click

from collector.cmd_common import config_option, echo_json, open_db, settings_or_exit
from collector.db.contract_store import get_contract
from collector.db.engine import Database
from collector.db.models_reports import ReportRow
from collector.outbox import drain
from collector.periods import PeriodError, parse
from collector.reports.render import safe_name
from collector.reports.store import REPORT_MAIL, build, list_reports, report_mail_handler
from collector.scheduler import worker_name


@click.group()
def report() -> None:
    """Inspection reports (巡检报告) per contract and period."""


@report.command("build")
@config_option
@click.option("--contract", "number", required=True, help="contract number (合同编号)")
@click.option("--period", "spec", required=True, help="2026-Q3, 2026-09 or 2026-07-01..2026-09-30")
@click.option(
    "--lang", type=click.Choice(["zh", "en"]), default=None, help="default: the contract's"
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="write PDF and HTML here",
)
@click.option("--send", is_flag=True, help="mail it to the contract's recipients now")
def build_cmd(
    config: Optional[Path],
    number: str,
    spec: str,
    lang: Optional[str],
    out: Optional[Path],
    send: bool,
) -> None:
    """Build (or rebuild, as a new version) one report; with --send, queue and send its mail."""
    settings = settings_or_exit(config)
    db = open_db(settings)
    try:
        with db.read() as session:
            contract = get_contract(session, number)
        if contract is None:
            raise click.ClickException(
                f"contract {number} is not imported (xunjian contract import FILE)"
            )
        try:
            period = parse(spec, contract)
        except PeriodError as exc:
            raise click.ClickException(str(exc)) from exc
        worker = worker_name()
        language = {"zh": "zh_CN", "en": "en"}.get(lang or "")
        outcome = build(
            db,
            settings,
            contract,
            period,
            worker=worker,
            lang=language,
            send_mail=send,
            rebuild=True,
        )
        if outcome is None:
            raise click.ClickException(
                f"report {number} {period.key} is being built elsewhere; try again soon"
            )
        click.echo(
            f"report {number} {period.key} v{outcome.version} built (id {outcome.report_id})"
        )
        if out is not None:
            _write(db, outcome.report_id, out, f"{safe_name(number)}_{safe_name(period.key)}")
        if send:
            if not outcome.queued:
                raise click.ClickException(f"not sent: {outcome.reason or 'already queued'}")
            result = drain(db, worker, {REPORT_MAIL: report_mail_handler(db, settings.smtp)})
            click.echo(_delivery_line(db, outcome.report_id))
            if result.failed:
                raise SystemExit(1)
    finally:
        db.dispose()


def _delivery_line(db: Database, report_id: int) -> str:
    with db.read() as session:
        [info] = list_reports(session, report_id=report_id)
    error = info.deliveries[-1].last_error if info.deliveries else None
    return f"delivery: {info.delivery}" + (f" ({error})" if error else "")


def _write(db: Database, report_id: int, out: Path, stem: str) -> None:
    with db.read() as session:
        row = session.get(ReportRow, report_id)
        assert row is not None and row.pdf is not None and row.html is not None
        out.mkdir(parents=True, exist_ok=True)
        pdf, html = out / f"{stem}.pdf", out / f"{stem}.html"
        pdf.write_bytes(row.pdf)
        html.write_bytes(zlib.decompress(row.html))
    click.echo(f"PDF:  {pdf}\nHTML: {html}")


@report.command("list")
@config_option
@click.option("--contract", "number", default=None, help="only this contract")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts")
def list_cmd(config: Optional[Path], number: Optional[str], as_json: bool) -> None:
    """Reports with their build and delivery state (a permanent failure shows as `failed`)."""
    settings = settings_or_exit(config)
    db = open_db(settings)
    try:
        with db.read() as session:
            infos = list_reports(session, contract=number)
    finally:
        db.dispose()
    if as_json:
        echo_json([i.model_dump(mode="json") for i in infos])
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(
        "contract", "period", "version", "state", "score", "status", "hosts", "delivery", "error"
    )
    for i in infos:
        error = next((d.last_error for d in reversed(i.deliveries) if d.last_error), i.error) or ""
        table.add_row(
            i.contract,
            i.period,
            f"v{i.version}",
            i.state,
            str(i.score if i.score is not None else "—"),
            i.status or "—",
            f"{i.hosts_inspected}/{i.hosts_expected}",
            i.delivery,
            error[:60],
        )
    Console().print(table)
