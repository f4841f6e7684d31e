"""Reboots from /var/log/wtmp, read as binary records (no `last` needed, same on every distro).

glibc's `struct utmp` on Linux x86_64 and aarch64 (little-endian, 32-bit time fields kept for
compatibility) is 384 bytes::

    short ut_type; (pad 2) pid_t ut_pid; char ut_line[32]; char ut_id[4]; char ut_user[32];
    char ut_host[256]; short e_termination, e_exit; int32 ut_session;
    int32 tv_sec, tv_usec; int32 ut_addr_v6[4]; char reserved[20];

A boot writes a BOOT_TIME record (user "reboot"); a clean shutdown writes a RUN_LVL record with
user "shutdown" (systemd-update-utmp, sysvinit halt) or a "runlevel" record to level 0 or 6. A
boot with no shutdown record since the previous boot is a crash (power loss, panic, reset): that
is the P1 a contract cares about, so it is told apart from a planned reboot.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime, timezone

from checks.facts import RebootEvent
from checks.parsers import ParseError

RECORD = struct.Struct("<h2xi32s4s32s256shhiii16s20s")
assert RECORD.size == 384

RUN_LVL = 1
BOOT_TIME = 2
ACCOUNTING = 9


@dataclass(frozen=True)
class UtmpRecord:
    type: int
    pid: int
    line: str
    user: str
    time: datetime


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def parse_records(data: bytes) -> list[UtmpRecord]:
    """Every record; a torn last record (wtmp being written) is ignored, garbage raises."""
    records: list[UtmpRecord] = []
    bad = 0
    usable = len(data) - len(data) % RECORD.size
    for offset in range(0, usable, RECORD.size):
        fields = RECORD.unpack_from(data, offset)
        kind, pid, line, _id, user, _host, _term, _exit, _session, sec, usec = fields[:11]
        if not 0 <= kind <= ACCOUNTING or sec < 0 or not 0 <= usec < 1_000_000:
            bad += 1
            continue
        when = datetime.fromtimestamp(sec + usec / 1e6, tz=timezone.utc)
        records.append(UtmpRecord(kind, pid, _text(line), _text(user), when))
    if bad and bad * 2 >= bad + len(records):
        raise ParseError(
            f"wtmp: {bad} of {bad + len(records)} records are not utmp records (not a wtmp file?)"
        )
    return records


def _is_shutdown(record: UtmpRecord) -> bool:
    if record.type != RUN_LVL:
        return False
    if record.user == "shutdown":
        return True
    # sysvinit's "runlevel" record keeps the new runlevel in the low byte of ut_pid
    return record.user == "runlevel" and chr(record.pid % 256) in "06"


def reboots(data: bytes, start: datetime, end: datetime) -> list[RebootEvent]:
    """Shutdowns and boots inside [start, end]; history before `start` decides crash or reboot.

    The first boot in a file (wtmp was rotated just before it) cannot be judged and counts as a
    reboot: calling it a crash would raise a P1 on no evidence.
    """
    events: list[RebootEvent] = []
    seen_boot = False
    shutdown_since_boot = False
    for record in sorted(parse_records(data), key=lambda r: r.time):
        inside = start <= record.time <= end
        if _is_shutdown(record):
            shutdown_since_boot = True
            if inside:
                events.append(RebootEvent(time=record.time, kind="shutdown"))
        elif record.type == BOOT_TIME:
            crashed = seen_boot and not shutdown_since_boot
            if inside:
                events.append(RebootEvent(time=record.time, kind="crash" if crashed else "reboot"))
            seen_boot = True
            shutdown_since_boot = False
    return events
