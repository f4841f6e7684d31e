"""Handing an inspection run to the collector: into the spool first, then a delivery attempt.

`xunjian-agent inspect --ship` calls `ship_run`; the inspect worker calls `spool_run`, commits its
log offsets (agent.tailstate) and then `flush`, so the offsets move only once the run is durable.

The spool is the only way out of the host, and this is the only way runs enter it, so redaction
is checked here: the pipeline redacts the facts, and `spool_run` passes them through the
configured `Redactor` once more; if that changes anything, the redacted version is what gets
spooled and a warning says a source skipped redaction.

What leaves is the facts, not the agent's own results. The collector judges every run again
with its contract's thresholds and keeps only that judgement (`collector.ingest`), so the
agent's results were bytes on the customer's link and parsing at the collector for nothing
anybody reads: on a real inspection ~40 % of the JSON (3.7 KB gzip instead of 5.7), and ~12 % of
the collector's instructions a run (`bench/ingest_instructions.py`; docs/benchmarks.md,
collector ingest, sixteenth round). They stay on the host: `inspect` prints them, and the
inspect worker reports the run's worst severity from them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Dict, Optional

from agent.client import CollectorClient, CollectorError
from agent.redact import Redactor
from agent.settings import AgentSettings
from agent.spool import Spool
from checks.model import InspectionRun

log = logging.getLogger("xunjian.ship")

SPOOL_DIR = "spool"


@dataclass
class ShipResult:
    spooled: bool
    delivered: Dict[str, int]
    error: Optional[str] = None
    pending: int = 0


def open_spool(settings: AgentSettings) -> Spool:
    return Spool(settings.state_dir / SPOOL_DIR, settings.spool_max_bytes)


def spool_run(run: InspectionRun, settings: AgentSettings) -> bool:
    """Durably store a redacted run, its facts without its results (see above); False if the
    size policy dropped it (counted, gap marked)."""
    redactor = Redactor(settings.inspection().redaction)
    facts = redactor.redact_facts(run.facts)
    if facts != run.facts:
        log.warning("run %s reached the spool with unredacted fields; redacted them", run.run_id)
    run = run.model_copy(update={"facts": facts, "results": []})
    return open_spool(settings).enqueue(
        "runs",
        str(run.run_id),
        run.to_json().encode("utf-8"),
        first_at=run.window.start.timestamp(),
        last_at=run.window.end.timestamp(),
    )


def flush(settings: AgentSettings, force: bool = False) -> ShipResult:
    """Deliver what the spool holds; not being enrolled is an error for the caller to show."""
    spool = open_spool(settings)
    try:
        client = CollectorClient.from_settings(settings)
    except (CollectorError, ValueError) as exc:
        spool.note_error(str(exc))
        return ShipResult(True, {}, str(exc), len(spool.pending()))
    with client:
        done = spool.flush(client.deliver, force=force)
    stats = spool.stats()
    error = stats["last_error"] if stats["depth"] else None
    return ShipResult(True, done, error, stats["depth"])


def ship_run(run: InspectionRun, settings: AgentSettings) -> ShipResult:
    """One run now: spooled, then delivered together with anything older still waiting."""
    if not spool_run(run, settings):
        return ShipResult(False, {}, "spool full: the run was dropped (see xunjian-agent status)")
    return flush(settings, force=True)
