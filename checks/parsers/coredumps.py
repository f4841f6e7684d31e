"""Core dumps from the journal and from the names of core files the crash handlers leave.

A core dump means a program crashed hard (SIGSEGV, SIGABRT …); the executable and the signal are
what an engineer needs first. systemd-coredump logs every core to the journal with a fixed
MESSAGE_ID, whatever its Storage= setting. Reading those entries with `journalctl -o json`
works alike from systemd 219 (RHEL 7) on, where `coredumpctl --json` needs systemd 248 and its
table form prints local times with ambiguous zone names (CST)::

    {"__REALTIME_TIMESTAMP":"1795240921000000","COREDUMP_EXE":"/usr/sbin/nginx","COREDUMP_PID":"1234",
     "COREDUMP_SIGNAL":"11","COREDUMP_TIMESTAMP":"1795240920990000",
     "COREDUMP_FILENAME":"/var/lib/systemd/coredump/core.nginx.0.4c0e….1234.1795240920990000.zst",...}
"""

from __future__ import annotations

import re
import signal
from datetime import datetime, timezone
from typing import Optional

from checks.facts import Coredump
from checks.parsers.systemd_events import journal_records

COREDUMP_MESSAGE_ID = "fc2e22bc6ee647b6b90729ab34a250b1"
"""MESSAGE_ID of systemd-coredump's journal entries (catalog/systemd.catalog)."""


def signal_name(sig: Optional[str]) -> Optional[str]:
    """'11' → 'SIGSEGV'; names pass through; Linux numbering (the only kernel we inspect)."""
    if not sig or not sig.isdigit():
        return sig or None
    try:
        return signal.Signals(int(sig)).name
    except ValueError:
        return sig


def _field(record: dict[str, object], name: str) -> Optional[str]:
    value = record.get(name)
    return value if isinstance(value, str) and value else None


def from_journal_json(text: str) -> list[Coredump]:
    """systemd-coredump's journal entries → cores, timed when the process crashed."""
    cores: list[Coredump] = []
    for logged, record in journal_records(text):
        stamp = _field(record, "COREDUMP_TIMESTAMP")
        when = (
            datetime.fromtimestamp(int(stamp) / 1e6, tz=timezone.utc)
            if stamp and stamp.isdigit()
            else logged
        )
        pid = _field(record, "COREDUMP_PID")
        cores.append(
            Coredump(
                time=when,
                exe=_field(record, "COREDUMP_EXE") or _field(record, "COREDUMP_COMM") or "",
                pid=int(pid) if pid and pid.isdigit() else None,
                signal=signal_name(
                    _field(record, "COREDUMP_SIGNAL_NAME") or _field(record, "COREDUMP_SIGNAL")
                ),
                path=_field(record, "COREDUMP_FILENAME"),
            )
        )
    return cores


_SYSTEMD_CORE = re.compile(
    r"^core\.(?P<comm>.+)\.\d+\.[0-9a-f]{32}\.(?P<pid>\d+)\.(?P<usec>\d{16})(?:\.\w+)?$"
)
_APPORT = re.compile(r"^(?P<exe>_.+)\.\d+\.crash$")
_ABRT = re.compile(r"^ccpp-\d{4}-\d\d-\d\d-\d\d:\d\d:\d\d(?:\.\d+)?-(?P<pid>\d+)$")


def from_filename(name: str, path: str, mtime: datetime) -> Coredump:
    """What a crash handler's file name tells: systemd-coredump, apport, ABRT or a plain core.

    Samples: core.nginx.0.4c0e0d3b9b2f4d1e8a7c6b5a49382716.1234.1795240921000000.zst,
    _usr_sbin_nginx.0.crash, ccpp-2026-11-21-06:03:41-1234, core.1234.
    """
    m = _SYSTEMD_CORE.match(name)
    if m:
        when = datetime.fromtimestamp(int(m.group("usec")) / 1e6, tz=timezone.utc)
        return Coredump(time=when, exe=m.group("comm"), pid=int(m.group("pid")), path=path)
    m = _APPORT.match(name)
    if m:
        return Coredump(time=mtime, exe=m.group("exe").replace("_", "/"), path=path)
    m = _ABRT.match(name)
    if m:
        return Coredump(time=mtime, pid=int(m.group("pid")), path=path)
    return Coredump(time=mtime, path=path)
