"""Which logs an inspection reads, from the local config (LogsConfig) and the command line.

- Files and globs must resolve (symlinks followed) under `allowed_roots`: the rule that keeps
  a log path named by anyone but the host's own operator from reading /etc/shadow. Files the
  operator names on the command line (`--log`) are trusted as given.
- The default syslog files that do not exist are skipped silently (Debian has no
  /var/log/messages, RHEL no /var/log/syslog); a configured file that is missing is an error.
- A rotated predecessor (`messages-20261119`, `syslog.1`, not compressed ones) that was written
  to inside the window is read too, so a window across a rotation is complete.
- journald is read when none of the default syslog files exists: where rsyslog writes them, it
  writes the same messages the journal holds, and reading both would count each alarm twice.
"""

from __future__ import annotations

import glob
import os
import re
from datetime import datetime, timezone
from typing import List, Optional, Sequence

from pydantic import BaseModel, ConfigDict

from agent.config import DEFAULT_LOG_FILES, LogsConfig
from agent.logscan.journal import SOURCE as JOURNALD
from agent.logscan.journal import journal_available
from checks.model import Window

_ROTATED = re.compile(r"^(?:\.1|-\d{8})$")


class LogSource(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str = "file"
    """file | journald"""
    path: str
    error: Optional[str] = None
    """Set when the source may not or cannot be read; the scan reports it without reading."""


def _under(path: str, roots: Sequence[str]) -> bool:
    real = os.path.realpath(path)
    for root in roots:
        base = os.path.realpath(root)
        if real == base or real.startswith(base.rstrip(os.sep) + os.sep):
            return True
    return False


def _rotated(path: str, window: Window) -> List[str]:
    directory, name = os.path.split(path)
    try:
        entries = os.listdir(directory or ".")
    except OSError:
        return []
    found = []
    for entry in entries:
        if not entry.startswith(name) or not _ROTATED.match(entry[len(name) :]):
            continue
        full = os.path.join(directory, entry)
        try:
            mtime = datetime.fromtimestamp(os.stat(full).st_mtime, timezone.utc)
        except OSError:
            continue
        if mtime >= window.start:
            found.append(full)
    return sorted(found)


def log_sources(
    config: LogsConfig,
    window: Window,
    operator_files: Sequence[str] = (),
    *,
    journal: Optional[bool] = None,
) -> List[LogSource]:
    """The sources to scan, each file once, in a stable order. `journal` overrides detection."""
    roots = config.allowed_roots
    out: List[LogSource] = []
    seen = set()

    def add(path: str, must_exist: bool, trusted: bool = False) -> None:
        key = os.path.realpath(path)
        if key in seen or path in seen:
            return
        if not trusted and not _under(path, roots):
            seen.add(path)
            out.append(
                LogSource(path=path, error=f"outside allowed roots ({', '.join(roots)}): {path}")
            )
            return
        if not os.path.lexists(path):
            if must_exist:
                seen.add(path)
                out.append(LogSource(path=path, error=f"not found: {path}"))
            return
        seen.add(key)
        for older in _rotated(path, window):
            add(older, False, trusted)
        out.append(LogSource(path=path))

    for path in config.files:
        add(path, path not in DEFAULT_LOG_FILES)
    for pattern in config.globs:
        for path in sorted(glob.glob(pattern)):
            if os.path.isfile(path):
                add(path, False)
    for path in operator_files:
        add(path, True, trusted=True)
    if config.journald and not any(os.path.exists(p) for p in DEFAULT_LOG_FILES):
        available = journal_available() if journal is None else journal
        out.append(
            LogSource(kind="journald", path=JOURNALD, error=None if available else "no journal")
        )
    return out
