"""Fault and event facts of the window: core dumps, failed or restarted units, reboots, packages.

Everything here only reads: the journal through `journalctl` with a fixed argv, /var/log/wtmp
and the package managers' logs as files, /proc for the boot time and core_pattern. "Nothing
happened" is reported only when the place where it would have been recorded was actually read;
otherwise the section's error says what was missing, and its checks become `unknown`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from agent.sources import ToolError, read_text, run_tool
from checks.facts import Coredump, PackageChange, RebootEvent, ServiceEvent
from checks.model import Window
from checks.parsers import ParseError, systemd_events, wtmp
from checks.parsers import coredumps as core_parser
from checks.parsers import packages as pkg_parser

JOURNAL_DIRS = ("/var/log/journal", "/run/log/journal")
JOURNAL_TIMEOUT = 60.0
"""A day of PID 1 messages on a busy host's journal can take a while to read."""

NO_JOURNAL = "no journal (journalctl not found or no persistent journal)"

CORE_PATTERN = "/proc/sys/kernel/core_pattern"
CORE_DIRS = ("/var/lib/systemd/coredump", "/var/crash", "/var/spool/abrt")
WTMP = "/var/log/wtmp"
PROC_STAT = "/proc/stat"
LOG_LIMIT = 64 << 20
"""Package logs rotate monthly or yearly; a bigger one is refused rather than read into memory."""

BOOT_TOLERANCE_SECONDS = 120
"""wtmp's boot record and the kernel's btime differ by the seconds userspace took to start."""


class NotRecorded(ToolError):
    """The place where such events would be recorded could not be read; the message says why."""


def journal_problem(dirs: Sequence[str] = JOURNAL_DIRS) -> Optional[str]:
    """None when a journal file can be read; else why not (journalctl exits 0 printing nothing)."""
    found = False
    for base in dirs:
        for path in Path(base).glob("*/*.journal"):
            found = True
            if os.access(path, os.R_OK):
                return None
    if found:
        return (
            "journal files exist but are not readable (add the account to systemd-journal or adm)"
        )
    return NO_JOURNAL


def _since_until(window: Window) -> List[str]:
    """Epoch seconds with '@': understood by every journalctl and free of timezone guessing."""
    return [
        f"--since=@{int(window.start.timestamp())}",
        f"--until=@{int(window.end.timestamp()) + 1}",
    ]


def _journal(match: str, window: Window) -> str:
    problem = journal_problem()
    if problem:
        raise NotRecorded(problem)
    return run_tool(
        ["journalctl", match, "-o", "json", "--no-pager", *_since_until(window)],
        timeout=JOURNAL_TIMEOUT,
    )


def service_events(window: Window) -> List[ServiceEvent]:
    entries = systemd_events.entries_from_json(_journal("_PID=1", window))
    return systemd_events.service_events(e for e in entries if window.start <= e[0] <= window.end)


# ---- core dumps ---------------------------------------------------------------------------


def _in_window(window: Window, when: datetime) -> bool:
    return window.start <= when <= window.end


def scan_core_dir(directory: str, window: Window) -> List[Coredump]:
    """Core files a crash handler left in `directory` with a time inside the window."""
    cores: List[Coredump] = []
    with os.scandir(directory) as entries:
        for entry in entries:
            mtime = datetime.fromtimestamp(entry.stat(follow_symlinks=False).st_mtime, timezone.utc)
            core = core_parser.from_filename(entry.name, entry.path, mtime)
            if _in_window(window, core.time):
                cores.append(core)
    return cores


def coredumps(
    window: Window, core_pattern: str = CORE_PATTERN, dirs: Sequence[str] = CORE_DIRS
) -> List[Coredump]:
    """Cores from the journal (systemd-coredump) and the usual crash directories.

    The list counts as complete only when the place core_pattern sends cores to was read; a
    relative pattern ('core') scatters them over working directories nobody can list.
    """
    pattern = read_text(core_pattern).strip()
    targets = _target_dirs(pattern)
    found: Dict[str, Coredump] = {}
    problems: List[str] = []
    journal_read = False
    if "systemd-coredump" in pattern:
        problem = journal_problem()
        if problem is None:
            text = _journal(f"MESSAGE_ID={core_parser.COREDUMP_MESSAGE_ID}", window)
            for core in core_parser.from_journal_json(text):
                if _in_window(window, core.time):
                    found[core.path or f"{core.exe}:{core.pid}:{core.time.isoformat()}"] = core
            journal_read = True
        else:
            problems.append(problem)
    targets_read = bool(targets)
    for directory in dict.fromkeys([*dirs, *targets]):
        if not os.path.isdir(directory):
            continue  # a handler's directory that does not exist holds no cores
        try:
            cores = scan_core_dir(directory, window)
        except OSError as exc:
            problems.append(f"cannot list {directory}: {exc.strerror or exc}")
            targets_read = targets_read and directory not in targets
            continue
        for core in cores:
            found.setdefault(core.path or "", core)
    if not (journal_read or targets_read):
        if pattern.startswith("|"):
            reason = (
                f"core_pattern pipes cores to {pattern.split()[0][1:]!r}, whose store was not read"
            )
        else:
            reason = f"core_pattern {pattern!r} writes cores into each process's working directory"
        raise NotRecorded("; ".join([reason, *problems]))
    return sorted(found.values(), key=lambda c: c.time)


_HANDLER_DIRS = {
    "systemd-coredump": "/var/lib/systemd/coredump",
    "apport": "/var/crash",
    "abrt": "/var/spool/abrt",
}


def _target_dirs(pattern: str) -> List[str]:
    """Where cores land: a crash handler's store, or the fixed directory of an absolute pattern."""
    if pattern.startswith("|"):
        return [path for name, path in _HANDLER_DIRS.items() if name in pattern]
    if pattern.startswith("/"):
        directory = os.path.dirname(pattern)
        return [directory] if "%" not in directory else []
    return []


# ---- reboots ------------------------------------------------------------------------------


def kernel_boot_time(proc_stat: str = PROC_STAT) -> datetime:
    for line in read_text(proc_stat).splitlines():
        if line.startswith("btime "):
            return datetime.fromtimestamp(int(line.split()[1]), timezone.utc)
    raise ValueError(f"{proc_stat}: no btime line")


def reboots(window: Window, wtmp_path: str = WTMP, proc_stat: str = PROC_STAT) -> List[RebootEvent]:
    """wtmp tells reboot from crash; else the journal's boot list; the kernel's boot time
    always settles whether the current boot falls inside the window."""
    booted = kernel_boot_time(proc_stat)
    events: List[RebootEvent] = []
    try:
        with open(wtmp_path, "rb") as fh:
            events = wtmp.reboots(fh.read(), window.start, window.end)
    except FileNotFoundError:
        if journal_problem() is None:
            text = run_tool(
                ["journalctl", "--list-boots", "--utc", "--no-pager"], timeout=JOURNAL_TIMEOUT
            )
            events = systemd_events.boots_from_list_boots(text, window.start, window.end)
    if _in_window(window, booted) and not any(
        e.kind != "shutdown" and abs((e.time - booted).total_seconds()) <= BOOT_TOLERANCE_SECONDS
        for e in events
    ):
        events.append(RebootEvent(time=booted, kind="reboot"))
    return sorted(events, key=lambda e: e.time)


# ---- package changes ----------------------------------------------------------------------

PackageReader = Callable[[str, datetime], List[PackageChange]]


@dataclass(frozen=True)
class PackageLog:
    manager: str
    paths: Tuple[str, ...]
    parse: PackageReader
    fallback_for: Optional[str] = None
    """Read only when that manager's log was not: apt's history repeats dpkg's actions."""


PACKAGE_LOGS = (
    PackageLog(
        "dpkg",
        ("/var/log/dpkg.log", "/var/log/dpkg.log.1"),
        lambda t, _: pkg_parser.from_dpkg_log(t),
    ),
    PackageLog(
        "apt",
        ("/var/log/apt/history.log", "/var/log/apt/history.log.1"),
        lambda t, _: pkg_parser.from_apt_history(t),
        fallback_for="dpkg",
    ),
    PackageLog(
        "dnf",
        ("/var/log/dnf.rpm.log", "/var/log/dnf.rpm.log.1"),
        lambda t, _: pkg_parser.from_dnf_rpm_log(t),
    ),
    PackageLog("yum", ("/var/log/yum.log",), pkg_parser.from_yum_log),
)
"""The current log and its first rotation cover a day; older rotations are compressed."""


def packages(window: Window, logs: Sequence[PackageLog] = PACKAGE_LOGS) -> List[PackageChange]:
    read: List[str] = []
    changes: List[PackageChange] = []
    for log in logs:
        if log.fallback_for in read:
            continue
        for path in log.paths:
            if not os.path.exists(path):
                continue
            text = read_text(path, LOG_LIMIT)
            try:
                changes.extend(log.parse(text, window.end))
            except ParseError as exc:
                raise ParseError(f"{path}: {exc}") from exc
            read.append(log.manager)
    if not read:
        names = ", ".join(log.paths[0] for log in logs)
        raise NotRecorded(f"no package manager log found ({names})")
    return pkg_parser.in_window(changes, window.start, window.end)


def sections(window: Window) -> Dict[str, Callable[[], object]]:
    """FactSet section → gatherer, for `agent.sources.gather` (one failure stays in its section)."""
    return {
        "coredumps": lambda: coredumps(window),
        "service_events": lambda: service_events(window),
        "reboots": lambda: reboots(window),
        "packages": lambda: packages(window),
    }
