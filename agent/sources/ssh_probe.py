"""The SSH mode's two halves around the wire: the probe script with its parameters, and the
probe's output turned into an `InspectionRun` judged like the agent's.

Parameters reach the target only as data: a preamble of `XJ_NAME='…'` assignments, each value
quoted with shlex.quote (POSIX single quotes), followed by the fixed probe text. List values are
newline-separated, so an entry with a newline (or a NUL) is refused here, before anything runs.

Alarm-log lines come back already filtered by `grep -E` on the target; the controller runs the
agent's own log scanner over each file's lines in memory, dated by the remote file's mtime
(`FileScanner.scan_bytes`), so windowing, year inference, stack-trace records, templates and log-in
counts are exactly the agent's. What differs is stated in the source facts: `bytes_read` is the
remote file's size, `lines_read` the matching lines that travelled, and `truncated` is set when
more lines matched than the per-file cap let through.
"""

from __future__ import annotations

import io
import json
import re
import secrets
import shlex
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from importlib import resources
from typing import Dict, List, Optional, Sequence, Tuple

from agent import __version__
from agent.config import DEFAULT_LOG_FILES, InspectionConfig
from agent.history import history_from_rows
from agent.logscan.files import FileScanner, Hit
from agent.logscan.journal import SOURCE as JOURNALD
from agent.logscan.journal import consume
from agent.logscan.logins import LoginCounter
from agent.logscan.matcher import Matcher
from agent.logscan.templates import TemplateCollector
from agent.redact import Redactor
from checks.alarms import AlarmRule
from checks.evaluate import evaluate
from checks.facts import FactSet, HostIdentity, LogFacts, LogSourceFacts
from checks.model import InspectionRun, Source, Window
from checks.params import Resolver
from checks.parsers.probe import (
    HistoryFromRows,
    LogMatches,
    ProbeOutput,
    ProbeTargets,
    assemble,
    journal_lines,
    log_matches,
    split_sections,
)
from checks.parsers.timesync import running_ntp_daemon
from checks.text import render

DEFAULT_MAX_LINES = 20000
_GLOB = re.compile(r"[*?[]")
_SHORT_UNIX = re.compile(
    r"^(?P<ts>\d+(?:\.\d+)?) \S+ (?P<ident>[^:\[]*)(?:\[(?P<pid>\d+)\])?: ?(?P<msg>.*)$"
)


def probe_script() -> str:
    return resources.files("agent.sources").joinpath("probe.sh").read_text(encoding="utf-8")


def _list(values: Sequence[str], what: str) -> str:
    for value in values:
        if "\n" in value or "\0" in value or not value.strip():
            raise ValueError(f"{what}: {value!r} is empty or holds a newline or NUL")
    return "\n".join(values)


@dataclass
class ProbePlan:
    """What every host of one `xunjian ssh` run is asked for."""

    window: Window
    config: InspectionConfig = field(default_factory=InspectionConfig)
    rules: List[AlarmRule] = field(default_factory=list)
    extra_logs: Sequence[str] = ()
    max_lines: int = DEFAULT_MAX_LINES

    def __post_init__(self) -> None:
        self.matcher = Matcher(self.rules)

    @property
    def log_entries(self) -> List[str]:
        logs = self.config.logs
        return list(dict.fromkeys([*logs.files, *logs.globs, *self.extra_logs]))

    @property
    def targets(self) -> ProbeTargets:
        collect = self.config.collect
        return ProbeTargets(
            certificates=list(collect.certificates),
            backups=[b.pattern for b in collect.backups],
            http_urls=[h.url for h in collect.http],
        )

    def parameters(self, nonce: str) -> Dict[str, str]:
        argv = self.matcher.grep_argv("grep")
        targets = self.targets
        return {
            "XJ_NONCE": nonce,
            "XJ_SINCE": str(int(self.window.start.timestamp())),
            "XJ_MAX_LINES": str(self.max_lines),
            "XJ_PATTERN": argv[-1] if self.rules else "",
            "XJ_GREP_FLAGS": "-Ei" if "-i" in argv else "-E",
            "XJ_LOGS": _list(self.log_entries, "log file"),
            "XJ_JOURNAL": "1" if self.config.logs.journald else "0",
            "XJ_SYSLOG_FILES": _list(DEFAULT_LOG_FILES, "syslog file"),
            "XJ_CERTS": _list(targets.certificates, "certificate path"),
            "XJ_BACKUPS": _list(targets.backups, "backup glob"),
        }

    def script(self, nonce: str) -> str:
        """The preamble of quoted assignments, then the fixed probe."""
        lines = [f"{name}={shlex.quote(value)}" for name, value in self.parameters(nonce).items()]
        return "\n".join(lines) + "\n" + probe_script()


def new_nonce() -> str:
    return secrets.token_hex(8)


def _history_from_rows(window: Window) -> HistoryFromRows:
    """Rows of the target's agent store → the agent's own summary, so both transports summarise
    with one piece of code."""
    return lambda rows: history_from_rows([_sample(row) for row in rows], window)


def _sample(row: Dict[str, str]) -> Dict[str, object]:
    sample: Dict[str, object] = {}
    for key, value in row.items():
        if key == "mounts":
            sample["mounts"] = json.loads(value or "[]")
        elif key != "id":
            sample[key] = float(value) if value not in ("", None) else None
    if sample.get("at") is None:
        raise ValueError("agent history: a sample row without its time (at)")
    return sample


class LogReader:
    """The agent's log scanner over the lines the probe sent (see the module docstring)."""

    def __init__(self, plan: ProbePlan, redactor: Redactor, tz: Optional[tzinfo]) -> None:
        self.plan = plan
        self.templates = TemplateCollector(redactor.redact)
        self.logins = LoginCounter()
        self.tz = tz

    def _handle(self, hit: Hit) -> None:
        self.templates.add(hit.source, hit.rule, hit.time, hit.header.message, hit.sample)
        self.logins.add(hit)

    def read(self, out: ProbeOutput) -> LogFacts:
        sources = [self._file(matches) for matches in log_matches(out)]
        journal = journal_lines(out)
        if journal is not None:
            sources.append(self._journal(*journal))
        sources += self._missing(out)
        return LogFacts(
            sources=sources,
            templates=self.templates.templates(),
            failed_login_minutes=dict(sorted(self.logins.minutes.items())),
            failed_login_sources=dict(self.logins.sources.most_common()),
            successful_logins=self.logins.successful,
        )

    def _file(self, matches: LogMatches) -> LogSourceFacts:
        if matches.error and not matches.lines:
            return LogSourceFacts(source=matches.path, error=matches.error)
        data = "".join(line + "\n" for line in matches.lines).encode("utf-8")
        modified = matches.mtime or datetime.now(timezone.utc)
        scanner = FileScanner(self.plan.matcher, self.plan.window, self._handle, tz=self.tz)
        facts = scanner.scan_bytes(matches.path, data, modified)
        return facts.model_copy(
            update={
                "bytes_read": matches.size_bytes or 0,
                "lines_read": len(matches.lines),
                "truncated": matches.capped,
                "error": matches.error,
            }
        )

    def _journal(self, lines: List[str], matched: int, error: Optional[str]) -> LogSourceFacts:
        if error and not lines:
            return LogSourceFacts(source=JOURNALD, error=f"journalctl: {error}")
        entries = []
        for line in lines:
            m = _SHORT_UNIX.match(line)
            if m is None:
                continue
            micros = int(float(m.group("ts")) * 1e6)
            entry = {
                "__REALTIME_TIMESTAMP": str(micros),
                "SYSLOG_IDENTIFIER": m.group("ident"),
                "MESSAGE": m.group("msg"),
            }
            if m.group("pid"):
                entry["SYSLOG_PID"] = m.group("pid")
            entries.append(json.dumps(entry))
        stream = io.BytesIO(("\n".join(entries) + "\n").encode("utf-8"))
        facts, _, _ = consume(stream, self.plan.matcher, self.plan.window, self._handle)
        return facts.model_copy(
            update={"lines_read": len(lines), "truncated": matched > len(lines)}
        )

    def _missing(self, out: ProbeOutput) -> List[LogSourceFacts]:
        """A configured file (not a default syslog file, not a glob) that the host does not have."""
        found = {m.path for m in log_matches(out)}
        missing = []
        for entry in self.plan.log_entries:
            if _GLOB.search(entry) or entry in DEFAULT_LOG_FILES or entry in found:
                continue
            missing.append(LogSourceFacts(source=entry, error=f"not found: {entry}"))
        return missing


def facts_from_output(
    stdout: str,
    nonce: str,
    plan: ProbePlan,
    *,
    collected_at: datetime,
    fallback_hostname: str,
    redactor: Redactor,
) -> Tuple[HostIdentity, FactSet]:
    """Parse the probe's output into identity and redacted facts; raises ParseError when the
    output has no sections at all (the probe did not run)."""
    out = split_sections(stdout, nonce)
    host, facts = assemble(
        out,
        collected_at=collected_at,
        start=plan.window.start,
        end=plan.window.end,
        targets=plan.targets,
        fallback_hostname=fallback_hostname,
        history_from_rows=_history_from_rows(plan.window),
    )
    update: Dict[str, object] = {}
    if plan.rules:
        update["logs"] = LogReader(plan, redactor, out.utc_offset).read(out)
    if facts.time_sync is not None and facts.time_sync.ntp_service is None and facts.processes:
        running = running_ntp_daemon(facts.processes.names)
        update["time_sync"] = facts.time_sync.model_copy(update={"ntp_service": running})
    if not out.complete:
        update["errors"] = {
            **facts.errors,
            "probe": "the probe's output ended early (cut off or killed)",
        }
    return host, redactor.redact_facts(facts.model_copy(update=update))


def build_run(
    stdout: str,
    nonce: str,
    plan: ProbePlan,
    *,
    fallback_hostname: str,
    resolver: Resolver,
    redactor: Redactor,
    lang: str,
    collected_at: Optional[datetime] = None,
) -> InspectionRun:
    """One host's InspectionRun (source ssh), judged by the same catalog as the agent's."""
    when = collected_at or datetime.now(timezone.utc)
    host, facts = facts_from_output(
        stdout,
        nonce,
        plan,
        collected_at=when,
        fallback_hostname=fallback_hostname,
        redactor=redactor,
    )
    results = redactor.redact_results(render(evaluate(facts, resolver), lang))
    return InspectionRun(
        source=Source.ssh,
        agent_version=__version__,
        lang=lang,
        host=host,
        window=plan.window,
        facts=facts,
        results=results,
    )
