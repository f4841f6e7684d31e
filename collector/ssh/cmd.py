"""`xunjian ssh`: the inspection checklist over SSH on many hosts, with nothing installed.

Per host: route (jump hosts, ~/.ssh/config) → host keys checked for every hop → the fixed probe
through `sh -s` → parsers → the same FactSet and rules as the agent → a redacted run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import click
from rich.console import Console

from agent.cmd_inspect import ConfigFileError, UsageError
from agent.config import (
    AlarmRuleConfig,
    ConfigError,
    InspectionConfig,
    RedactionConfig,
    load_inspection_config,
)
from agent.window import make_window
from checks.model import Severity, worst
from checks.text import lang_from_environment, normalize_lang

DEFAULT_PARALLEL = 10
DEFAULT_TIMEOUT = 120.0
REPORT_SUFFIXES = (".pdf", ".html")


@click.command()
@click.argument("hosts", nargs=-1)
@click.option("-i", "identity", multiple=True, help="Private key file (repeatable).")
@click.option("-J", "jump", help="Jump hosts [user@]host[:port][,host2…], as ssh -J.")
@click.option("-F", "ssh_config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="ssh config file (default ~/.ssh/config).")  # fmt: skip
@click.option("--inventory", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="TOML/YAML list of hosts, or a contract file.")  # fmt: skip
@click.option("--contract", "contract_no", help="Contract number (合同编号) of these hosts.")
@click.option("--parallel", default=DEFAULT_PARALLEL, show_default=True,
              type=click.IntRange(1, 500), help="Hosts inspected at once.")  # fmt: skip
@click.option("--timeout", default=DEFAULT_TIMEOUT, show_default=True,
              type=click.FloatRange(1), help="Seconds per host, connection to result.")  # fmt: skip
@click.option("--since", default="24h", show_default=True, help="Window length, e.g. 6h, 24h.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Inspection config: thresholds, logs, alarm rules, targets.")  # fmt: skip
@click.option("--known-hosts", "known_hosts_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Extra known_hosts file; --accept-new pins keys here.")  # fmt: skip
@click.option(
    "--accept-new", is_flag=True, help="Pin unknown host keys (a changed key is always refused)."
)
@click.option("--ask-password", is_flag=True, help="Ask once for a password to try after keys.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print one InspectionRun per host (JSON Lines)."
)
@click.option("--output", "output_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write one run file per host into DIR.")  # fmt: skip
@click.option(
    "--submit", is_flag=True, help="Post the runs to the collector as ad hoc inspections."
)
@click.option(
    "--collector", "collector_url", envvar="XUNJIAN_URL", help="Collector URL [XUNJIAN_URL]."
)
@click.option("--api-key-file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="File with the engineer API key [else XUNJIAN_API_KEY].")  # fmt: skip
@click.option("--report", "report_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report on these hosts to FILE.pdf or FILE.html.")  # fmt: skip
@click.option(
    "--lang", type=click.Choice(["zh", "zh_CN", "en"]), help="Language (default: locale)."
)
def ssh(
    hosts: Tuple[str, ...],
    identity: Tuple[str, ...],
    jump: Optional[str],
    ssh_config_file: Optional[Path],
    inventory: Optional[Path],
    contract_no: Optional[str],
    parallel: int,
    timeout: float,
    since: str,
    config_path: Optional[Path],
    known_hosts_file: Optional[Path],
    accept_new: bool,
    ask_password: bool,
    as_json: bool,
    output_dir: Optional[Path],
    submit: bool,
    collector_url: Optional[str],
    api_key_file: Optional[Path],
    report_file: Optional[Path],
    lang: Optional[str],
) -> None:
    """Inspect HOSTS ([user@]host[:port]) over SSH with the read-only probe; nothing is installed.

    Exit status: 0 ok/info, 1 warning, 2 critical, 3 unknown or a host not inspected,
    64 bad usage, 78 bad config or inventory.
    """
    # Heavy imports (paramiko, drain3, the report builder) only once the options are sound.
    from agent.inspect import config_resolver
    from agent.logscan.scan import rules_for
    from agent.redact import Redactor
    from agent.sources.ssh import Credentials, SshConfig
    from agent.sources.ssh_known_hosts import KnownHosts
    from agent.sources.ssh_probe import ProbePlan
    from checks.alarms import RulesError
    from collector.ssh.inventory import Inventory, build_targets, load_inventory
    from collector.ssh.pool import run_all
    from collector.ssh.run import Inspector, file_name, print_summary, submit_runs

    if report_file is not None and report_file.suffix.lower() not in REPORT_SUFFIXES:
        raise UsageError("--report takes FILE.pdf or FILE.html")
    if submit and not collector_url:
        raise UsageError("--submit needs the collector URL (--collector or XUNJIAN_URL)")
    try:
        window = make_window(since)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    try:
        config = load_inspection_config(config_path)
        loaded: Optional[Inventory] = load_inventory(inventory) if inventory else None
        contract = loaded.contract if loaded else None
        if contract is not None:
            config = _with_contract(config, contract.alarm_rules, contract.redaction)
        rules = rules_for(config.logs)
        resolver = config_resolver(config, config_path)
    except (ConfigError, RulesError) as exc:
        raise ConfigFileError(str(exc)) from exc
    contract_no = contract_no or (contract.number if contract else None)
    if submit and not contract_no:
        raise UsageError("--submit needs --contract NO (or a contract file as --inventory)")
    api_key = _api_key(api_key_file) if submit else None
    language = normalize_lang(
        lang
        or config.lang
        or (contract.report.language if contract else None)
        or lang_from_environment()
    )
    try:
        targets = build_targets(hosts, loaded, SshConfig(ssh_config_file), keys=identity, jump=jump)
        plan = ProbePlan(window=window, config=config, rules=rules)
        plan.parameters("check")  # refuse unusable paths before connecting anywhere
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if not targets:
        raise UsageError("no hosts: name them on the command line or with --inventory")
    err = Console(stderr=True)
    for skipped in loaded.skipped if loaded else []:
        err.print(f"skipped: {skipped}")

    user_known = Path.home() / ".ssh" / "known_hosts"
    files = [user_known, *([known_hosts_file] if known_hosts_file else [])]
    known = KnownHosts(files, pin_file=known_hosts_file or user_known, accept_new=accept_new)
    creds = Credentials()
    for target in targets:
        for hop in target.route.hops:
            for key_file in hop.identity_files:
                creds.load(key_file, required=key_file in identity)
    if ask_password:
        creds.ask_password()
    inspector = Inspector(plan, known, creds, Redactor(config.redaction), resolver, language)

    outcomes = run_all(targets, inspector.inspect, parallel=parallel, timeout=timeout, console=err)
    runs = [o.run for o in outcomes if o.run is not None]
    notes: Dict[str, str] = {}
    if submit and runs:
        assert collector_url is not None and api_key is not None and contract_no is not None
        notes = submit_runs(runs, collector_url, api_key, contract_no)
    if output_dir is not None:
        from agent.cmd_inspect import _write_atomically

        for outcome in outcomes:
            if outcome.run is not None:
                path = output_dir / file_name(outcome.target.label, outcome.run)
                _write_atomically(path, outcome.run.to_json(indent=2))
    out = Console(width=None if sys.stdout.isatty() else 140)
    if as_json:
        for run in runs:
            click.echo(run.to_json())
    elif output_dir is None:
        from agent.render_cli import print_run

        for run in runs:
            print_run(run, out)
    print_summary(outcomes, notes, language, err if as_json else out)
    if report_file is not None and runs:
        from collector.reports.build import build_report_for_runs

        html, pdf = build_report_for_runs(contract, runs, language)
        report_file.parent.mkdir(parents=True, exist_ok=True)
        if report_file.suffix.lower() == ".pdf":
            report_file.write_bytes(pdf)
        else:
            report_file.write_text(html, encoding="utf-8")
        err.print(f"report: {report_file}")
    severities: List[Severity] = [run.worst() for run in runs]
    severities += [Severity.unknown for o in outcomes if o.run is None]
    sys.exit(worst(severities).exit_code)


def _with_contract(
    config: InspectionConfig, alarm_rules: Sequence[AlarmRuleConfig], redaction: RedactionConfig
) -> InspectionConfig:
    """A contract's alarm rules are added to the config's; its redaction words and patterns too."""
    logs = config.logs.model_copy(update={"rules": [*config.logs.rules, *alarm_rules]})
    mine = config.redaction
    merged = RedactionConfig(
        enabled=mine.enabled and redaction.enabled,
        keywords=list(dict.fromkeys([*mine.keywords, *redaction.keywords])),
        patterns=list(dict.fromkeys([*mine.patterns, *redaction.patterns])),
    )
    return config.model_copy(update={"logs": logs, "redaction": merged})


def _api_key(path: Optional[Path]) -> str:
    """The engineer API key from a file (first line) or XUNJIAN_API_KEY; never echoed."""
    if path is not None:
        try:
            key = path.read_text(encoding="utf-8").strip().splitlines()[0].strip()
        except (OSError, IndexError) as exc:
            raise UsageError(f"cannot read an API key from {path}") from exc
    else:
        key = os.environ.get("XUNJIAN_API_KEY", "").strip()
    if not key:
        raise UsageError("--submit needs an API key (--api-key-file or XUNJIAN_API_KEY)")
    return key
