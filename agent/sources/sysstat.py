"""24-hour metric history from sysstat's daily files, for hosts without the agent's own store.

sadc names its files after the local day (saDD, or saYYYYMMDD with a long HISTORY), so the
window's local days decide which files to read; `sadf` turns each into text in UTC. Filesystem
history exists only when sadc collects XDISK, and its absence costs the disk forecast only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from datetime import date, datetime, timedelta
from typing import List, Sequence

from agent.sources import TOOL_PATH, ToolError, run_tool
from checks.facts import HistoryFacts
from checks.model import Window
from checks.parsers import ParseError
from checks.parsers.sadf import FILESYSTEM_ARGS, SadfData, history_from_sadf, parse_sadf, sadf_argv

SA_DIRS = ("/var/log/sysstat", "/var/log/sa")
NO_SYSSTAT = "no sysstat data (sadf not installed or no sa files for the window)"
SADF_TIMEOUT = 30.0


class NoHistory(ToolError):
    """No sysstat data covers the window; the message says what was missing."""


def _local_days(window: Window) -> List[date]:
    first = window.start.astimezone().date()
    last = window.end.astimezone().date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def sa_files(window: Window, dirs: Sequence[str] = SA_DIRS) -> List[str]:
    files: List[str] = []
    for directory in dirs:
        for day in _local_days(window):
            for name in (f"sa{day:%Y%m%d}", f"sa{day:%d}"):
                path = os.path.join(directory, name)
                if os.path.isfile(path) and os.path.realpath(path) not in map(
                    os.path.realpath, files
                ):
                    files.append(path)
    return files


def _modified_before(path: str, when: datetime) -> bool:
    """A saDD last written before the window is last month's file of the same day number."""
    return datetime.fromtimestamp(os.stat(path).st_mtime).astimezone() < when


def history(window: Window, dirs: Sequence[str] = SA_DIRS) -> HistoryFacts:
    files = [p for p in sa_files(window, dirs) if not _modified_before(p, window.start)]
    if not files or shutil.which("sadf", path=TOOL_PATH) is None:
        raise NoHistory(NO_SYSSTAT)
    data = SadfData()
    for path in files:
        try:
            data.merge(parse_sadf(run_tool(sadf_argv(path), timeout=SADF_TIMEOUT)))
        except ParseError as exc:
            raise ParseError(f"{path}: {exc}") from exc
        # without XDISK in sadc's options (or -F MOUNT in this sysstat) there is no disk history
        with contextlib.suppress(ToolError):
            data.merge(parse_sadf(run_tool(sadf_argv(path, FILESYSTEM_ARGS), timeout=SADF_TIMEOUT)))
    facts = history_from_sadf(data, window.start, window.end)
    if not facts.metrics:
        raise NoHistory(f"{NO_SYSSTAT}: {', '.join(files)} hold no samples inside the window")
    return facts
