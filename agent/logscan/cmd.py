"""`xunjian-agent logs templates FILE…`: how the scanner groups lines, to tune alarm rules.

Every line is templated (not only alarm matches), with the header stripped the way the scan
strips it and the same drain3 configuration, so what an engineer sees here is what the alarm
templates of an inspection will look like. `--json` gives one object per input line in input
order; that output is also what the grouping-accuracy test scores.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List, Tuple

import click

from agent.logscan.header import split_header
from agent.logscan.templates import Grouper, template_id

LINE_CAP = 64 * 1024


@click.group()
def logs() -> None:
    """Log scanner tools (日志扫描)."""


@logs.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--json", "as_json", is_flag=True, help="one JSON object per input line, in input order"
)
def templates(files: Tuple[Path, ...], as_json: bool) -> None:
    """Group the lines of FILE… into templates (drain3, header stripped automatically)."""
    grouper = Grouper()
    lines: List[Tuple[str, int, int]] = []  # file, line number, cluster id
    examples: Dict[int, str] = {}
    failed = False
    for path in files:
        try:
            with path.open("rb") as fh:
                ref = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
                for number, raw in enumerate(fh, 1):
                    text = raw[:LINE_CAP].decode("utf-8", "replace").rstrip("\r\n")
                    cluster = grouper.add(split_header(text, ref).message)
                    lines.append((str(path), number, cluster))
                    examples.setdefault(cluster, text)
        except OSError as exc:
            click.echo(f"cannot read {path}: {exc.strerror or exc}", err=True)
            failed = True
    final = grouper.templates()
    ids = {cluster: template_id(text) for cluster, text in final.items()}
    if as_json:
        out = sys.stdout
        for name, number, cluster in lines:
            record = {
                "file": name,
                "line": number,
                "template_id": ids[cluster],
                "template": final[cluster],
            }
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    else:
        _table(lines, final, ids, examples)
    if failed:
        sys.exit(1)


def _table(
    lines: List[Tuple[str, int, int]],
    final: Dict[int, str],
    ids: Dict[int, str],
    examples: Dict[int, str],
) -> None:
    from rich.console import Console
    from rich.table import Table

    from agent.redact import Redactor

    redactor = Redactor()
    counts = Counter(cluster for _, _, cluster in lines)
    merged: Dict[str, List[int]] = {}
    for cluster in counts:
        merged.setdefault(ids[cluster], []).append(cluster)
    table = Table(title=f"{len(lines)} lines, {len(merged)} templates")
    table.add_column("id", no_wrap=True)
    table.add_column("count", justify="right")
    table.add_column("template")
    table.add_column("example")
    rows = sorted(merged.items(), key=lambda kv: -sum(counts[c] for c in kv[1]))
    for tid, clusters in rows:
        table.add_row(
            tid,
            str(sum(counts[c] for c in clusters)),
            redactor.redact(final[clusters[0]]),
            redactor.redact(examples[clusters[0]]),
        )
    Console().print(table)
