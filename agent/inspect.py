"""One inspection of this host, start to finish: gather facts, redact, judge, render text.

The same function serves `xunjian-agent inspect`, the daemon's inspection worker and `--ship`;
redaction happens here, before a run can be printed, written or spooled.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence

from agent import __version__
from agent.config import ConfigError, InspectionConfig
from agent.redact import Redactor
from agent.sources import events, gather, sysstat
from agent.sources.host import host_identity
from agent.sources.local import gather_status
from checks.alarms import RulesError
from checks.catalog import param_models
from checks.evaluate import evaluate
from checks.facts import HistoryFacts, LogFacts
from checks.model import InspectionRun, Source, Window
from checks.params import Layer, Resolver
from checks.text import render


def config_resolver(config: InspectionConfig, config_path: Optional[Path]) -> Resolver:
    """Local thresholds as one layer over the defaults; a bad override is refused up front."""
    name = f"config:{config_path}" if config_path else "config"
    resolver = Resolver([Layer(name=name, checks=config.thresholds)])
    problems = resolver.validate(param_models())
    if problems:
        raise ConfigError("\n".join(problems))
    return resolver


def full_log_scan(
    config: InspectionConfig, window: Window, extra_logs: Sequence[str], redactor: Redactor
) -> Callable[[], LogFacts]:
    """Every configured source over the whole window (the daemon scans incrementally instead).

    The alarm rules are loaded now, so a bad rule is a config error rather than a lost section."""
    from agent.logscan.scan import rules_for, scan_logs
    from agent.logscan.sources import log_sources

    try:
        rules = rules_for(config.logs)
    except RulesError as exc:
        raise ConfigError(str(exc)) from exc

    def scan() -> LogFacts:
        facts, _ = scan_logs(
            log_sources(config.logs, window, extra_logs),
            rules,
            window,
            redact=redactor.redact,
            budget_bytes=config.logs.max_bytes_per_run,
        )
        return facts

    return scan


def history_of(window: Window, state_dir: Optional[Path]) -> HistoryFacts:
    """The agent's own sample store when it has one, else sysstat (raises with the reason)."""
    if state_dir is not None:
        from agent.history import history_facts

        own = history_facts(state_dir, window)
        if own is not None:
            return own
    return sysstat.history(window)


def build_run(
    config: InspectionConfig,
    window: Window,
    *,
    lang: str,
    config_path: Optional[Path] = None,
    extra_logs: Sequence[str] = (),
    source: Source = Source.agent,
    logs: Optional[LogFacts] = None,
    state_dir: Optional[Path] = None,
) -> InspectionRun:
    """`logs`: an incremental scan done by the caller; None scans the whole window here.
    `state_dir`: where the agent keeps its history store, if it runs on this host."""
    resolver = config_resolver(config, config_path)
    redactor = Redactor(config.redaction)
    facts = gather_status(config.collect, now=datetime.now(timezone.utc))
    scan_logs = full_log_scan(config, window, extra_logs, redactor) if logs is None else None
    sections: Dict[str, Callable[[], Any]] = {
        "logs": scan_logs or (lambda: logs),
        **events.sections(window),
        "history": lambda: history_of(window, state_dir),
    }
    values, errors = gather(sections)
    facts = redactor.redact_facts(
        facts.model_copy(update={**values, "errors": {**facts.errors, **errors}})
    )
    return InspectionRun(
        source=source,
        agent_version=__version__,
        lang=lang,
        host=host_identity(),
        window=window,
        facts=facts,
        results=redactor.redact_results(render(evaluate(facts, resolver), lang)),
    )
