"""The terminal view of an InspectionRun: four sections, worst first, then the recommendations.

Everything a person reads comes from the catalogs; only check ids, items and numbers are raw.
"""

from __future__ import annotations

from typing import Dict, List, Optional

from rich.console import Console
from rich.table import Table
from rich.text import Text

from checks.model import Category, CheckResult, InspectionRun, Severity, Threshold, worst
from checks.text import Texts, texts

STYLE: Dict[Severity, str] = {
    Severity.ok: "green",
    Severity.info: "cyan",
    Severity.warning: "yellow",
    Severity.critical: "bold red",
    Severity.unknown: "magenta",
}


def _threshold(th: Optional[Threshold], t: Texts) -> str:
    if th is None or (th.warning is None and th.critical is None):
        return ""
    op = "≤" if th.direction == "below" else "≥"
    levels = [op + t.quantity(v, th.unit) for v in (th.warning, th.critical) if v is not None]
    source = t("provenance.default") if th.provenance == "default" else th.provenance
    return f"{' / '.join(levels)} ({source})"


def print_run(run: InspectionRun, console: Console) -> None:
    t = texts(run.lang)
    console.print(Text(t("cli.title", {"hostname": run.host.hostname}), style="bold"))
    console.print(
        t(
            "cli.window",
            {
                "start": run.window.start.astimezone().strftime("%Y-%m-%d %H:%M %Z"),
                "end": run.window.end.astimezone().strftime("%Y-%m-%d %H:%M %Z"),
            },
        )
    )
    for category in Category:
        rows = sorted(
            (r for r in run.results if r.category == category),
            key=lambda r: (-r.severity.rank, r.check, r.item or ""),
        )
        if not rows:
            console.print(Text(t(f"category.{category.value}"), style="bold"))
            console.print("  " + t("cli.none"))
            continue
        table = Table(title=t(f"category.{category.value}"), title_justify="left", expand=True)
        table.add_column(t("cli.col.severity"), no_wrap=True)
        table.add_column(t("cli.col.check"), overflow="fold", ratio=2)
        table.add_column(t("cli.col.value"), no_wrap=True)
        table.add_column(t("cli.col.threshold"), overflow="fold", ratio=2)
        table.add_column(t("cli.col.summary"), overflow="fold", ratio=5)
        for r in rows:
            table.add_row(
                Text(t(f"severity.{r.severity.value}"), style=STYLE[r.severity]),
                r.check + (f"\n{r.item}" if r.item else ""),
                "" if r.value is None else t.quantity(r.value, r.unit),
                _threshold(r.threshold, t),
                r.summary,
            )
        console.print(table)
    advice = [
        r for r in run.results if r.recommendation and r.severity.rank >= Severity.unknown.rank
    ]
    advice.sort(key=lambda r: -r.severity.rank)
    console.print(Text(t("cli.recommendations"), style="bold"))
    if not advice:
        console.print("  " + t("cli.none"))
    for r in advice:
        label = Text(f"  [{t(f'severity.{r.severity.value}')}] ", style=STYLE[r.severity])
        label.append(f"{r.check}{' ' + r.item if r.item else ''}: ", style="bold")
        label.append(r.recommendation or "")
        console.print(label)
        for line in r.evidence[:3]:
            console.print(Text(f"      {t('cli.evidence')}: {line}", style="dim"), soft_wrap=True)
    console.print(Text(_overall(run.results, t), style=STYLE[run.worst()]))


def _overall(results: List[CheckResult], t: Texts) -> str:
    sev = worst([r.severity for r in results])
    return t(
        "cli.overall",
        {
            "severity": t(f"severity.{sev.value}"),
            "count": len(results),
            "warnings": sum(r.severity == Severity.warning for r in results),
            "criticals": sum(r.severity == Severity.critical for r in results),
            "unknowns": sum(r.severity == Severity.unknown for r in results),
        },
    )
