"""The alarm-log scan: log sources + alarm rules + window → `LogFacts`.

Public API (what `xunjian-agent inspect`, the daemon's worker and the SSH mode call)::

    facts, state = scan_logs(sources, rules, window, redact=redactor.redact,
                             budget_bytes=config.logs.max_bytes_per_run, state=previous)

- `sources`: `List[LogSource]` from `agent.logscan.sources.log_sources(config.logs, window,
  operator_files)`; a source with an `error` is reported as is and not read.
- `rules`: `List[AlarmRule]` (`rules_for(config.logs)` gives the built-in set merged with the
  config's rules).
- `window`: only records whose time falls in [start, end] count.
- `redact`: applied to every sample line and template text before it is kept.
- `budget_bytes`: total bytes the scan may read over all sources; a source cut short says
  `truncated=True`, and the sources after it are not read (also `truncated`).
- `state` (`ScanState`): per-file byte offsets and the journal cursor to resume from, for
  incremental tailing. The returned state holds, per file, the end of the last complete line
  read (a partial last line is left for the next scan) and the last journal cursor. The daemon
  commits it only after the run is spooled, and handles rotation (identity by device, inode
  and head fingerprint) itself: an offset beyond a file's size is treated as a truncation.
- `use_grep`: None = the grep prefilter when grep is installed; False = pure Python (the
  results are the same, only slower); True = require grep.
- `tz`: zone of log times without one (None: this host's local zone).

Sources are scanned one after another in a short-lived process (the caller's worker), with
1 MiB reads and grep doing the heavy lifting, so peak RSS stays far below 100 MB at any log size.
"""

from __future__ import annotations

from datetime import tzinfo
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from pydantic import BaseModel, ConfigDict, Field

from agent.config import LogsConfig
from agent.logscan.files import FileScanner, Hit
from agent.logscan.journal import read_journal
from agent.logscan.logins import LoginCounter
from agent.logscan.matcher import Matcher
from agent.logscan.sources import LogSource
from agent.logscan.templates import TemplateCollector
from checks.alarms import AlarmRule, builtin_rules, load_rules_file, merge_rules
from checks.facts import LogFacts, LogSourceFacts
from checks.model import Window


class ScanState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    files: Dict[str, int] = Field(
        default_factory=dict, description="path → byte offset to resume from"
    )
    journal_cursor: Optional[str] = None


def rules_for(config: LogsConfig) -> List[AlarmRule]:
    """The built-in rules (or `rules_file` instead of them) with the config's rules merged in.

    Raises `checks.alarms.RulesError` naming the file and rule when a rule is invalid."""
    base = load_rules_file(Path(config.rules_file)) if config.rules_file else builtin_rules()
    extra = [AlarmRule.model_validate(r.model_dump()) for r in config.rules]
    return merge_rules(base, extra)


def scan_logs(
    sources: Sequence[LogSource],
    rules: Sequence[AlarmRule],
    window: Window,
    *,
    redact: Callable[[str], str],
    budget_bytes: int,
    state: Optional[ScanState] = None,
    use_grep: Optional[bool] = None,
    tz: Optional[tzinfo] = None,
) -> Tuple[LogFacts, ScanState]:
    previous = state or ScanState()
    new_state = ScanState(files=dict(previous.files), journal_cursor=previous.journal_cursor)
    matcher = Matcher(rules)
    templates = TemplateCollector(redact)
    logins = LoginCounter()

    def handle(hit: Hit) -> None:
        templates.add(hit.source, hit.rule, hit.time, hit.header.message, hit.sample)
        logins.add(hit)

    scanner = FileScanner(matcher, window, handle, tz=tz, use_grep=use_grep)
    remaining = budget_bytes
    read: List[LogSourceFacts] = []
    for source in sources:
        if source.error is not None:
            read.append(LogSourceFacts(source=source.path, error=source.error))
            continue
        if remaining <= 0:
            read.append(LogSourceFacts(source=source.path, truncated=True))
            continue
        if source.kind == "journald":
            facts, cursor = read_journal(
                matcher, window, handle, cursor=previous.journal_cursor, budget=remaining
            )
            new_state.journal_cursor = cursor
        else:
            facts, offset = scanner.scan(source.path, previous.files.get(source.path, 0), remaining)
            new_state.files[source.path] = offset
        remaining -= facts.bytes_read
        read.append(facts)
    return (
        LogFacts(
            sources=read,
            templates=templates.templates(),
            failed_login_minutes=dict(sorted(logins.minutes.items())),
            failed_login_sources=dict(logins.sources.most_common()),
            successful_logins=logins.successful,
        ),
        new_state,
    )
