"""Core dumps from `coredumpctl list` and from the names of core files the crash handlers leave.

A core dump means a program crashed hard (SIGSEGV, SIGABRT …); the executable and the signal are
what an engineer needs first. systemd ≥ 248 lists cores as JSON; RHEL 8's systemd 239 only as a
table, so both are read::

    [{"time":1795240921000000,"pid":1234,"uid":0,"gid":0,"sig":11,"corefile":"present","exe":"/usr/sbin/nginx","size":1048576}]

    TIME                            PID   UID   GID SIG COREFILE  EXE
    Sat 2026-11-21 06:03:41 UTC    1234     0     0  11 present   /usr/sbin/nginx

(run with TZ=UTC; --no-legend drops the header line).
"""

from __future__ import annotations

import json
import re
import signal
from datetime import datetime, timezone
from typing import Optional, Union

from checks.facts import Coredump
from checks.parsers import ParseError


def signal_name(sig: Union[int, str, None]) -> Optional[str]:
    """11 → 'SIGSEGV'; names pass through; Linux numbering (the only kernel we inspect)."""
    if sig is None or sig == "":
        return None
    if isinstance(sig, str) and not sig.isdigit():
        return sig
    try:
        return signal.Signals(int(sig)).name
    except ValueError:
        return str(sig)


def from_json(text: str) -> list[Coredump]:
    """`coredumpctl list --json=short`."""
    try:
        records = json.loads(text)
    except ValueError as exc:
        raise ParseError(f"coredumpctl --json: not JSON: {text[:120]!r}") from exc
    if not isinstance(records, list):
        raise ParseError("coredumpctl --json: expected a list of cores")
    cores: list[Coredump] = []
    for record in records:
        try:
            when = datetime.fromtimestamp(int(record["time"]) / 1e6, tz=timezone.utc)
        except (KeyError, TypeError, ValueError) as exc:
            raise ParseError(
                f"coredumpctl --json: entry without a time: {str(record)[:120]!r}"
            ) from exc
        pid = record.get("pid")
        cores.append(
            Coredump(
                time=when,
                exe=str(record.get("exe") or ""),
                pid=int(pid) if isinstance(pid, int) else None,
                signal=signal_name(record.get("sig")),
            )
        )
    return cores


_ROW = re.compile(
    r"^\w{3}\s+(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\s+(?P<tz>\S+)\s+(?P<pid>\d+)\s+\d+\s+\d+\s+"
    r"(?P<sig>\S+)\s+(?P<core>\S+)\s+(?P<exe>\S+)"
)


def from_table(text: str) -> list[Coredump]:
    """`TZ=UTC coredumpctl list --no-legend --no-pager` (systemd < 248)."""
    cores: list[Coredump] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        m = _ROW.match(line.strip())
        if m is None or m.group("tz") != "UTC":
            raise ParseError(
                f"coredumpctl list: unexpected line (expected UTC rows): {line[:120]!r}"
            )
        when = datetime.strptime(m.group("time"), "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
        cores.append(
            Coredump(
                time=when,
                exe=m.group("exe"),
                pid=int(m.group("pid")),
                signal=signal_name(m.group("sig")),
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
