"""`xunjian import-run FILE... --contract NO`: runs carried out of air-gapped sites.

A file holds one run (`xunjian-agent inspect --output`) or JSON Lines (`xunjian ssh --json`).
Every file is validated before anything is stored; storing is idempotent by run_id, so an
import can be repeated.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import click
from pydantic import ValidationError

from checks.model import InspectionRun
from collector.cmd_common import config_option, open_db, settings_or_exit
from collector.ingest import IngestError, host_for_submission, ingest_run


def read_runs(path: Path) -> list[InspectionRun]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{path}: cannot read: {exc}") from exc
    stripped = text.strip()
    try:
        chunks = [(0, json.loads(stripped))]
    except json.JSONDecodeError:
        chunks = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                chunks.append((number, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise click.ClickException(f"{path}:{number}: not JSON: {exc.msg}") from exc
    runs = []
    for number, data in chunks:
        try:
            runs.append(InspectionRun.model_validate(data))
        except ValidationError as exc:
            where = f"{path}:{number}" if number else str(path)
            fields = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}"
                for e in exc.errors()
            )
            raise click.ClickException(f"{where}: not an inspection run: {fields}") from exc
    if not runs:
        raise click.ClickException(f"{path}: no runs in the file")
    return runs


@click.command("import-run")
@config_option
@click.option("--contract", "number", required=True, help="contract the runs belong to")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
def import_run(config: Optional[Path], number: str, files: tuple[Path, ...]) -> None:
    """Import runs; each line of output: run_id, hostname, stored|duplicate, findings."""
    runs = [run for path in files for run in read_runs(path)]
    db = open_db(settings_or_exit(config))
    try:
        for run in runs:
            host = host_for_submission(db, number, run.host)
            receipt = ingest_run(db, host, run, via="import")
            state = "duplicate" if receipt.duplicate else "stored"
            click.echo(f"{run.run_id}\t{run.host.hostname}\t{state}\t{receipt.findings}")
    except IngestError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        db.dispose()
