"""Clock synchronisation state from timedatectl, chronyc and ntpq.

Offsets follow the NTP convention of chrony and ntpd: positive means the local clock is behind
the reference (slow), negative that it is ahead. Rules judge the absolute value.
"""

from __future__ import annotations

from typing import Container, Dict, List, Optional

from checks.facts import TimeSyncFacts
from checks.parsers import ParseError

NTP_DAEMONS = ("chronyd", "ntpd", "systemd-timesyncd", "openntpd")


def running_ntp_daemon(process_names: Container[Optional[str]]) -> Optional[str]:
    """The sync service when no tool named one; shared by the local source and the SSH probe."""
    return next((d for d in NTP_DAEMONS if d in process_names), None)


def parse_timedatectl_show(text: str) -> TimeSyncFacts:
    """`timedatectl show` (systemd ≥ 239): key=value lines; only the sync state is used.

    Sample::

        Timezone=Asia/Shanghai
        LocalRTC=no
        CanNTP=yes
        NTP=yes
        NTPSynchronized=yes
        TimeUSec=Thu 2026-11-19 10:00:00 CST
        RTCTimeUSec=Thu 2026-11-19 02:00:00 CST

    timedatectl knows no offset; chronyc or ntpq may add one (see `merge_time_sync`).
    """
    values: Dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    state = values.get("NTPSynchronized")
    if state not in ("yes", "no"):
        raise ParseError(f"timedatectl show: no NTPSynchronized=yes|no line in {_head(text)!r}")
    return TimeSyncFacts(tool="timedatectl", synchronized=state == "yes")


def parse_chronyc_tracking(text: str) -> TimeSyncFacts:
    """`chronyc -c tracking`: one CSV line of 14 fields.

    Sample (reference id, name, stratum, ref time, system time offset, last offset, RMS offset,
    frequency, residual frequency, skew, root delay, root dispersion, update interval, leap)::

        C0A80101,192.168.1.1,3,1776153600.123456,0.000123000,0.000045,0.000067,12.345,0.010,0.250,0.001200,0.004500,64.0,Normal

    An unsynchronised chronyd reports reference id 00000000 and leap status
    'Not synchronised'. In CSV mode the system-time field is signed, positive = slow.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) != 1:
        raise ParseError(
            f"chronyc -c tracking: expected one CSV line, got {len(lines)}: {_head(text)!r}"
        )
    fields = lines[0].split(",")
    if len(fields) != 14:
        raise ParseError(
            f"chronyc -c tracking: expected 14 fields, got {len(fields)}: {_head(text)!r}"
        )
    try:
        offset = float(fields[4])
    except ValueError:
        raise ParseError(
            f"chronyc -c tracking: system time {fields[4]!r} is not a number"
        ) from None
    synchronized = fields[13].strip() != "Not synchronised" and fields[0] != "00000000"
    return TimeSyncFacts(
        tool="chronyc",
        synchronized=synchronized,
        offset_seconds=offset if synchronized else None,
        ntp_service="chronyd",
    )


def parse_ntpq_peers(text: str) -> TimeSyncFacts:
    """`ntpq -pn`: the peer table; '*' (or 'o' for PPS) marks the peer the clock follows.

    Sample (offset in milliseconds)::

             remote           refid      st t when poll reach   delay   offset  jitter
        ==============================================================================
        *192.168.1.10    .GPS.            1 u   33   64  377    0.512   -0.123   0.045
        +10.0.0.2        192.168.1.10     2 u   12   64  377    1.234    0.456   0.078

    Without a selected peer ntpd is not synchronised, and no offset is meaningful.
    """
    lines = text.splitlines()
    if not any(line.lstrip().startswith("remote") for line in lines):
        raise ParseError(f"ntpq -pn: no peer table header in {_head(text)!r}")
    for line in lines:
        if line[:1] in ("*", "o"):
            fields = line[1:].split()
            if len(fields) < 9:
                raise ParseError(f"ntpq -pn: short peer line {line!r}")
            try:
                offset_ms = float(fields[8])
            except ValueError:
                raise ParseError(f"ntpq -pn: offset {fields[8]!r} is not a number") from None
            return TimeSyncFacts(
                tool="ntpq", synchronized=True, offset_seconds=offset_ms / 1000, ntp_service="ntpd"
            )
    return TimeSyncFacts(tool="ntpq", synchronized=False, ntp_service="ntpd")


def merge_time_sync(answers: List[TimeSyncFacts], failures: List[str]) -> TimeSyncFacts:
    """One verdict from the tools that answered, in order of preference.

    The first answer gives the tool and the sync state; a later one may add the offset that
    timedatectl cannot tell. With no answer the result says tool 'none' and why.
    """
    if not answers:
        return TimeSyncFacts(tool="none", error="; ".join(failures) or "no time sync tool found")
    first = answers[0]
    offset: Optional[float] = next(
        (a.offset_seconds for a in answers if a.offset_seconds is not None), None
    )
    service = next((a.ntp_service for a in answers if a.ntp_service), None)
    return first.model_copy(update={"offset_seconds": offset, "ntp_service": service})


def _head(text: str) -> str:
    return text.strip()[:120]
