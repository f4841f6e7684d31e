"""One inspection of this host, start to finish: gather facts, redact, judge, render text.

The same function serves `xunjian-agent inspect`, the daemon's inspection worker and `--ship`;
redaction happens here, before a run can be printed, written or spooled.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Optional, Sequence

from agent import __version__
from agent.config import ConfigError, InspectionConfig
from agent.redact import Redactor
from agent.sources import events, gather, sysstat
from agent.sources.host import host_identity
from agent.sources.local import gather_status
from checks.catalog import param_models
from checks.evaluate import evaluate
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


def build_run(
    config: InspectionConfig,
    window: Window,
    *,
    lang: str,
    config_path: Optional[Path] = None,
    extra_logs: Sequence[str] = (),
    source: Source = Source.agent,
) -> InspectionRun:
    resolver = config_resolver(config, config_path)
    redactor = Redactor(config.redaction)
    facts = gather_status(config.collect, now=datetime.now(timezone.utc))
    values, errors = gather({**events.sections(window), "history": lambda: sysstat.history(window)})
    facts = facts.model_copy(update={**values, "errors": {**facts.errors, **errors}})
    facts = redactor.redact_facts(facts)
    results = redactor.redact_results(render(evaluate(facts, resolver), lang))
    return InspectionRun(
        source=source,
        agent_version=__version__,
        lang=lang,
        host=host_identity(),
        window=window,
        facts=facts,
        results=results,
    )
