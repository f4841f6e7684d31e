"""Short-lived workers the resident scheduler starts: `python -m agent.worker inspect|flush`.

Each runs once and exits, so pydantic, httpx, drain3 and a log scan's buffers are freed with the
process. Settings come from the same environment and agent.toml as the daemon's. Concurrent
workers of one kind (a worker left over from a killed daemon, or `inspect --ship` by hand) are
kept apart by flocks in the state dir and in the spool.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from agent.history import HistoryStore, wire_sample
from agent.settings import AgentSettings
from agent.ship import flush, open_spool

if TYPE_CHECKING:  # pragma: no cover
    from agent.logscan.scan import ScanState
    from agent.tailstate import TailPlan
    from checks.facts import LogFacts
    from checks.model import Window

log = logging.getLogger("xunjian.worker")

LAST_INSPECTION_FILE = "last_inspection.json"


def spool_samples(settings: AgentSettings) -> int:
    """Move samples recorded since the last delivery into the spool as SampleBatch records."""
    from checks.wire import SampleBatch

    if not (settings.state_dir / "history.sqlite").exists():
        return 0
    store = HistoryStore(settings.state_dir)
    spool = open_spool(settings)
    batches = 0
    try:
        while True:
            nxt = store.next_batch()
            if nxt is None:
                return batches
            batch_id, rows = nxt
            batch = SampleBatch.model_validate(
                {"batch_id": batch_id, "samples": [wire_sample(r) for r in rows]}
            )
            spool.enqueue(
                "samples",
                batch_id,
                batch.model_dump_json().encode("utf-8"),
                first_at=rows[0]["at"] if rows else None,
                last_at=rows[-1]["at"] if rows else None,
            )
            store.commit_batch(batch_id)
            batches += 1
    finally:
        store.close()


def do_flush(settings: AgentSettings, force: bool) -> int:
    spool_samples(settings)
    result = flush(settings, force=force)
    if result.error:
        log.warning("flush: %s (%d records waiting)", result.error, result.pending)
    return 0


def incremental_logs(
    settings: AgentSettings, window: "Window"
) -> "Tuple[LogFacts, TailPlan, ScanState]":
    """Scan only what was appended since the last committed run (see agent.tailstate)."""
    from agent.logscan.scan import ScanState, rules_for, scan_logs
    from agent.logscan.sources import LogSource, log_sources
    from agent.redact import Redactor
    from agent.tailstate import TailState

    config = settings.inspection()
    tail = TailState(settings.state_dir)
    tail.resolve_pending(open_spool(settings).contains)
    sources = log_sources(config.logs, window)
    files = [s.path for s in sources if s.kind == "file" and s.error is None]
    plan = tail.plan(files, config.logs.allowed_roots)
    planned = [LogSource(path=r.path) for r in plan.reads]
    planned += [s for s in sources if s.kind != "file" or s.error is not None]
    planned += [LogSource(path=p, error=why) for p, why in plan.refused.items()]
    logs, state = scan_logs(
        planned,
        rules_for(config.logs),
        window,
        redact=Redactor(config.redaction).redact,
        budget_bytes=config.logs.max_bytes_per_run,
        state=ScanState(files=plan.starts(), journal_cursor=plan.journald_cursor),
    )
    return logs, plan, state


def inspect_and_ship(settings: AgentSettings) -> Dict[str, Any]:
    """The scheduled inspection: the 24 h run with incremental logs and the agent's own history,
    spooled before its log offsets are committed, then delivered."""
    from agent.inspect import build_run
    from agent.ship import spool_run
    from agent.tailstate import TailState
    from agent.window import make_window
    from checks.text import lang_from_environment, normalize_lang

    config = settings.inspection()
    window = make_window("24h")
    lang = normalize_lang(config.lang or lang_from_environment())
    logs, plan, scan_state = incremental_logs(settings, window)
    run = build_run(
        config,
        window,
        lang=lang,
        config_path=settings.config,
        logs=logs,
        state_dir=settings.state_dir,
    )
    tail = TailState(settings.state_dir)
    run_id = str(run.run_id)
    tail.stage(run_id, plan, scan_state.files, scan_state.journal_cursor)
    spooled = spool_run(run, settings)
    tail.commit(run_id)  # spooled, or dropped by the size policy and counted: either way done
    result = flush(settings, force=True)
    return {
        "run_id": run_id,
        "worst": run.worst().value,
        "spooled": spooled,
        "delivered": result.delivered.get("delivered", 0),
        "error": result.error,
    }


def do_inspect(settings: AgentSettings) -> int:
    with open(settings.state_dir / "inspect.lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("an inspection is already running")
            return 0
        summary = inspect_and_ship(settings)
    summary["finished_at"] = datetime.now(timezone.utc).isoformat()
    path = settings.state_dir / LAST_INSPECTION_FILE
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(json.dumps(summary), "utf-8")
    os.replace(tmp, path)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    logging.basicConfig(
        level=os.environ.get("XUNJIAN_AGENT_LOG_LEVEL", "INFO").upper(),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(
        logging.WARNING
    )  # one line per POST would flood the journal
    parser = argparse.ArgumentParser(prog="python -m agent.worker")
    parser.add_argument("kind", choices=["inspect", "flush"])
    parser.add_argument("--force", action="store_true", help="flush: ignore the retry back-off")
    args = parser.parse_args(argv)
    settings = AgentSettings.load()
    Path(settings.state_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
    if args.kind == "flush":
        return do_flush(settings, args.force)
    return do_inspect(settings)


if __name__ == "__main__":
    sys.exit(main())
