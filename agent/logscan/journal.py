"""Alarm lines from the systemd journal: `journalctl -o json` streamed, rules applied to
`IDENTIFIER[PID]: MESSAGE` so the same rules serve syslog files and the journal.

The argv is fixed; times are passed as UTC (TZ=UTC in journalctl's environment) and re-checked
per entry, and a cursor (`--after-cursor`) lets the daemon read only new entries.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any, Dict, Iterable, List, Optional, Tuple

from agent.logscan.files import LINE_CAP, Handler, Hit, capped_lines
from agent.logscan.header import Header
from agent.logscan.matcher import Matcher
from agent.logscan.timestamps import Stamp
from checks.facts import LogSourceFacts
from checks.model import Window

SOURCE = "journald"
JOURNAL_DIRS = ("/var/log/journal", "/run/log/journal")


def journal_available(dirs: Iterable[str] = JOURNAL_DIRS) -> bool:
    """journalctl is installed and some journal file exists (persistent or volatile)."""
    if shutil.which("journalctl") is None:
        return False
    for directory in dirs:
        root = Path(directory)
        try:
            if any(root.glob("*.journal")) or any(root.glob("*/*.journal")):
                return True
        except OSError:
            continue
    return False


def _utc(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def journal_argv(journalctl: str, window: Window, cursor: Optional[str]) -> List[str]:
    argv = [
        journalctl,
        "-o",
        "json",
        "--no-pager",
        "--until",
        _utc(window.end + timedelta(seconds=1)),
    ]
    if cursor:
        return [*argv, "--after-cursor", cursor]
    return [*argv, "--since", _utc(window.start)]


def _text(value: Any) -> str:
    """MESSAGE is a string, or an array of bytes when it is not valid UTF-8."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        try:
            return bytes(v for v in value if isinstance(v, int) and 0 <= v < 256).decode(
                "utf-8", "replace"
            )
        except ValueError:
            return ""
    return "" if value is None else str(value)


def consume(
    stream: IO[bytes],
    matcher: Matcher,
    window: Window,
    handle: Handler,
    budget: Optional[int] = None,
) -> Tuple[LogSourceFacts, Optional[str], bool]:
    """Read journal JSON lines; returns the facts, the last cursor, and whether it stopped early."""
    facts = LogSourceFacts(source=SOURCE)
    cursor: Optional[str] = None
    for number, raw in enumerate(capped_lines(stream, LINE_CAP * 4)):
        facts.bytes_read += len(raw) + 1
        if budget is not None and facts.bytes_read > budget:
            facts.truncated = True
            return facts, cursor, True
        facts.lines_read += 1
        try:
            entry: Dict[str, Any] = json.loads(raw)
        except ValueError:
            continue
        cursor = entry.get("__CURSOR", cursor)
        try:
            when = datetime.fromtimestamp(int(entry["__REALTIME_TIMESTAMP"]) / 1e6, timezone.utc)
        except (KeyError, TypeError, ValueError):
            facts.lines_without_time += 1
            continue
        if not (window.start <= when <= window.end):
            continue
        facts.lines_in_window += 1
        message = _text(entry.get("MESSAGE"))[:LINE_CAP]
        ident = _text(entry.get("SYSLOG_IDENTIFIER") or entry.get("_COMM") or "")
        pid = _text(entry.get("SYSLOG_PID") or entry.get("_PID") or "") or None
        line = f"{ident}[{pid}]: {message}" if pid else f"{ident}: {message}"
        rules = matcher.match(line.encode("utf-8", "replace"))
        if not rules:
            continue
        header = Header(Stamp(when, 0), message.strip(), ident or None, pid)
        sample = f"{when.astimezone().isoformat(timespec='seconds')} {line}"
        for rule in rules:
            handle(Hit(SOURCE, rule, when, header, sample, number))
    return facts, cursor, False


def read_journal(
    matcher: Matcher,
    window: Window,
    handle: Handler,
    *,
    cursor: Optional[str] = None,
    budget: Optional[int] = None,
) -> Tuple[LogSourceFacts, Optional[str]]:
    journalctl = shutil.which("journalctl")
    if journalctl is None or not journal_available():
        return LogSourceFacts(source=SOURCE, error="no journal"), cursor
    proc = subprocess.Popen(
        journal_argv(journalctl, window, cursor),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={"TZ": "UTC", "LC_ALL": "C", "PATH": os.defpath, "SYSTEMD_PAGER": ""},
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        facts, last, stopped = consume(proc.stdout, matcher, window, handle, budget)
    finally:
        proc.stdout.close()
    if stopped:
        proc.kill()
    err = proc.stderr.read(4096).decode("utf-8", "replace").strip()
    proc.stderr.close()
    code = proc.wait()
    if code != 0 and not stopped and facts.lines_read == 0:
        facts.error = (
            f"journalctl failed (exit {code}): {err.splitlines()[0] if err else 'no message'}"
        )
    return facts, last or cursor
