"""`xunjian-agent inspect` and `xunjian-agent schema`."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Tuple

import click
from rich.console import Console

from agent.config import ConfigError, find_config, load_inspection_config
from agent.window import make_window
from checks.model import InspectionRun, Source
from checks.text import lang_from_environment, normalize_lang

if TYPE_CHECKING:
    from agent.settings import AgentSettings


EXIT_USAGE = 64  # sysexits EX_USAGE: 0–3 are taken by the severities
EXIT_CONFIG = 78  # sysexits EX_CONFIG
EXIT_NOT_DELIVERED = 75  # sysexits EX_TEMPFAIL: --ship spooled the run but could not deliver it


class UsageError(click.UsageError):
    exit_code = EXIT_USAGE


class ConfigFileError(click.ClickException):
    exit_code = EXIT_CONFIG


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the InspectionRun as JSON.")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the InspectionRun to FILE (offline bundle: import it with `xunjian import-run`).",
)
@click.option("--since", default="24h", show_default=True, help="Window length, e.g. 6h, 24h, 7d.")
@click.option("--window", "window_spec", help="Explicit window START..END in ISO 8601.")
@click.option("--log", "logs", multiple=True, help="Extra log file to scan (repeatable).")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Config file with thresholds, log sources, alarm rules and targets "
    "(default: $XUNJIAN_AGENT_CONFIG, else /etc/xunjian/agent.toml if present).",
)
@click.option(
    "--lang", type=click.Choice(["zh", "zh_CN", "en"]), help="Language (default: locale)."
)
@click.option(
    "--ship",
    is_flag=True,
    help="Spool the run and deliver it to the enrolled collector now (checks an install).",
)
def inspect(
    as_json: bool,
    output: Optional[Path],
    since: str,
    window_spec: Optional[str],
    logs: Tuple[str, ...],
    config_path: Optional[Path],
    lang: Optional[str],
    ship: bool,
) -> None:
    """Inspect this host now and print the report.

    Exit status: 0 ok/info, 1 warning, 2 critical, 3 unknown (a check could not run),
    64 bad usage, 78 bad config file, 75 with --ship when the run could not be delivered
    (it stays in the spool and the daemon delivers it later).
    """
    from agent.inspect import build_run  # heavy imports only when inspecting

    try:
        window = make_window(since, window_spec)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    config_path = find_config(config_path)
    try:
        config = load_inspection_config(config_path)
    except ConfigError as exc:
        raise ConfigFileError(str(exc)) from exc
    language = normalize_lang(lang or config.lang or lang_from_environment())
    try:
        settings = _agent_settings(config_path) if ship else None
        run = build_run(
            config,
            window,
            lang=language,
            config_path=config_path,
            extra_logs=logs,
            source=Source.bundle if output else Source.agent,
            state_dir=settings.state_dir if settings else None,
        )
    except ConfigError as exc:
        raise ConfigFileError(str(exc)) from exc
    if output:
        _write_atomically(output, run.to_json(indent=2))
    if as_json:
        click.echo(run.to_json(indent=2))
    elif not output:
        from agent.render_cli import print_run

        print_run(run, Console(width=None if sys.stdout.isatty() else 140))
    else:
        click.echo(str(output), err=True)
    if settings is not None and not _ship(run, settings):
        sys.exit(EXIT_NOT_DELIVERED)
    sys.exit(run.worst().exit_code)


def _agent_settings(config_path: Optional[Path]) -> "AgentSettings":
    from agent.settings import AgentSettings

    return AgentSettings.load(config_path)


def _ship(run: InspectionRun, settings: "AgentSettings") -> bool:
    from agent.ship import ship_run

    result = ship_run(run, settings)
    delivered = result.spooled and not result.error and result.pending == 0
    click.echo(
        f"run {run.run_id}: "
        + ("delivered" if delivered else f"not delivered ({result.error or 'dropped'})")
        + f"; {result.pending} record(s) waiting in the spool",
        err=True,
    )
    return delivered


def _write_atomically(path: Path, text: str) -> None:
    """A run carried out of an air-gapped site must never be half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@click.command()
def schema() -> None:
    """Print the JSON Schema of InspectionRun (the wire format, docs/wire-format.md)."""
    click.echo(
        json.dumps(InspectionRun.model_json_schema(by_alias=True), indent=2, ensure_ascii=False)
    )
