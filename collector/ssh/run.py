"""One `xunjian ssh` run behind the command line: inspect a host, submit runs, summarise.

Kept apart from the Click command so tests and the benchmark drive the same code.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Sequence

import httpx
from rich.console import Console
from rich.table import Table
from rich.text import Text

from agent.redact import Redactor
from agent.sources.ssh import (
    Connection,
    Credentials,
    Deadline,
    ProbeError,
    connect,
    run_probe,
)
from agent.sources.ssh_known_hosts import KnownHosts
from agent.sources.ssh_probe import ProbePlan, build_run, new_nonce
from checks.model import InspectionRun, Severity
from checks.params import Resolver
from checks.parsers import ParseError
from checks.text import CHECKS_LOCALE, Texts
from collector.ssh.inventory import Target
from collector.ssh.pool import Outcome

SSH_LOCALE = Path(__file__).with_name("locale")
SUBMIT_TIMEOUT = 30.0
STYLE = {
    Severity.ok: "green",
    Severity.info: "cyan",
    Severity.warning: "yellow",
    Severity.critical: "bold red",
    Severity.unknown: "magenta",
}


@dataclass
class Inspector:
    """Everything one host's inspection needs besides the host itself."""

    plan: ProbePlan
    known_hosts: KnownHosts
    credentials: Credentials
    redactor: Redactor
    resolver: Resolver
    lang: str

    def inspect(self, target: Target, deadline: Deadline, connection: Connection) -> InspectionRun:
        route = target.route
        label = route.target.label
        transport = connect(route, self.known_hosts, self.credentials, deadline, connection)
        nonce = new_nonce()
        result = run_probe(transport, self.plan.script(nonce), route.sudo, deadline, label)
        if not result.stdout.strip():
            why = result.stderr.splitlines()[0] if result.stderr else "no output"
            raise ProbeError(f"{label}: the probe did not run (exit {result.exit_status}): {why}")
        resolver = self.resolver
        if target.resolver is not None:  # the contract's layers, then the local --config on top
            resolver = Resolver([*target.resolver.layers, *self.resolver.layers])
        try:
            return build_run(
                result.stdout,
                nonce,
                self.plan,
                fallback_hostname=route.target.host,
                resolver=resolver,
                redactor=self.redactor,
                lang=self.lang,
            )
        except ParseError as exc:
            raise ProbeError(f"{label}: {exc}") from None


def submit_runs(
    runs: Sequence[InspectionRun], url: str, api_key: str, contract: str
) -> Dict[str, str]:
    """POST each run (gzip JSON) to the collector; a note per run id when it did not go through.

    The key travels only in the Authorization header and never appears in a note.
    """
    notes: Dict[str, str] = {}
    endpoint = url.rstrip("/") + "/api/v1/runs"
    headers = {
        "Authorization": f"Bearer {api_key}",
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
    }
    with httpx.Client(timeout=SUBMIT_TIMEOUT) as client:
        for run in runs:
            body = gzip.compress(run.to_json().encode("utf-8"))
            try:
                response = client.post(
                    endpoint, params={"contract": contract}, content=body, headers=headers
                )
            except httpx.HTTPError as exc:
                notes[str(run.run_id)] = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code not in (200, 201):
                notes[str(run.run_id)] = f"HTTP {response.status_code}: {_detail(response)}"
    return notes


def _detail(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200]
    return str(data.get("detail", data) if isinstance(data, dict) else data)[:200]


def file_name(label: str, run: InspectionRun) -> str:
    """`<host>-<run id prefix>.json`, safe as a file name whatever the label holds."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("._") or "host"
    return f"{safe}-{str(run.run_id)[:8]}.json"


def _worst_text(run: InspectionRun) -> Text:
    top = max(run.results, key=lambda r: r.severity.rank, default=None)
    if top is None or top.severity in (Severity.ok, Severity.info):
        return Text(run.worst().value, style=STYLE[run.worst()])
    text = Text(f"{top.severity.value} ", style=STYLE[top.severity])
    text.append(f"{top.check}{' ' + top.item if top.item else ''}: {top.summary}")
    return text


def print_summary(
    outcomes: Sequence[Outcome], notes: Dict[str, str], lang: str, console: Console
) -> None:
    """Host, status, worst finding, duration and error: the engineer's view of the whole run."""
    t = Texts(lang, (CHECKS_LOCALE, SSH_LOCALE))
    ok = sum(1 for o in outcomes if o.run is not None)
    table = Table(
        title=t(
            "ssh.summary.title", {"hosts": len(outcomes), "ok": ok, "failed": len(outcomes) - ok}
        ),
        title_justify="left",
        expand=True,
    )
    table.add_column(t("ssh.col.host"), no_wrap=True)
    table.add_column(t("ssh.col.status"), no_wrap=True)
    table.add_column(t("ssh.col.worst"), overflow="fold", ratio=3)
    table.add_column(t("ssh.col.duration"), no_wrap=True, justify="right")
    table.add_column(t("ssh.col.error"), overflow="fold", ratio=3)
    for outcome in outcomes:
        if outcome.run is not None:
            note = notes.get(str(outcome.run.run_id))
            status = Text(t("ssh.status.inspected"), style="green")
            worst_text = _worst_text(outcome.run)
            error = t("ssh.submit_failed", {"reason": note}) if note else ""
        else:
            kind = outcome.error.kind if outcome.error else "error"
            status = Text(t("ssh.status.failed", {"kind": kind}), style="bold red")
            worst_text = Text(Severity.unknown.value, style=STYLE[Severity.unknown])
            error = str(outcome.error)
        table.add_row(outcome.target.label, status, worst_text, f"{outcome.seconds:.1f} s", error)
    console.print(table)
