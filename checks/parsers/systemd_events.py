"""Failed and restarted units from the journal of PID 1, and boots from `journalctl --list-boots`.

systemd states a unit's failure and each automatic restart in one message each, so counting
them gives "failed N times, restarted M times in the window" without keeping any state on the
host. Messages of modern systemd (≥ 236) and of RHEL 7's systemd 219 are both recognised::

    nginx.service: Main process exited, code=killed, status=9/KILL
    nginx.service: Failed with result 'signal'.
    nginx.service: Scheduled restart job, restart counter is at 3.
    Unit nginx.service entered failed state.                       (systemd 219)
    nginx.service holdoff time over, scheduling restart.           (systemd 219)

"Main process exited" is not counted: systemd follows every abnormal exit with "Failed with
result", so counting both would double each failure; it is kept as the sample because it says
how the process ended. "Failed to start <description>" repeats "Failed with result" too.

Input comes as `journalctl _PID=1 -o json` (agent; one JSON object per line) or
`TZ=UTC journalctl _PID=1 -o short-iso` (SSH probe)::

    {"__REALTIME_TIMESTAMP":"1795240921000000","MESSAGE":"nginx.service: Failed with ...",...}
    2026-11-21T06:03:41+0000 web01 systemd[1]: nginx.service: Failed with result 'exit-code'.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Optional

from checks.facts import RebootEvent, ServiceEvent
from checks.parsers import ParseError

_UNIT = (
    r"(?P<unit>[\w@:.\\-]+\.(?:service|socket|mount|automount|swap|timer|path|target|scope|slice))"
)
_FAILED = (
    re.compile(rf"^{_UNIT}: Failed with result '(?P<result>[^']+)'\.?$"),
    re.compile(rf"^Unit {_UNIT} entered failed state\.?$"),
)
_RESTARTED = (
    re.compile(rf"^{_UNIT}: Scheduled restart job, restart counter is at (?P<n>\d+)\.?$"),
    re.compile(rf"^{_UNIT}:? holdoff time over, scheduling restart\.?$"),
)
_EXITED = re.compile(rf"^{_UNIT}: [Mm]ain process exited, code=(?P<code>\w+), status=\S+$")

FAILED = "failed"
RESTARTED = "restarted"
EXITED = "exited"

Entry = tuple[datetime, str]


def classify(message: str) -> Optional[tuple[str, str]]:
    """(unit, failed | restarted | exited) for a PID 1 message about a unit, else None."""
    text = message.strip()
    for kind, patterns in ((FAILED, _FAILED), (RESTARTED, _RESTARTED), (EXITED, (_EXITED,))):
        for pattern in patterns:
            m = pattern.match(text)
            if m:
                return m.group("unit"), kind
    return None


@dataclass
class _Tally:
    count: int = 0
    last_seen: Optional[datetime] = None
    sample: Optional[str] = None


def service_events(entries: Iterable[Entry]) -> list[ServiceEvent]:
    """One event per unit and kind, counted, with the latest time and a telling sample line."""
    tallies: dict[tuple[str, str], _Tally] = {}
    last_exit: dict[str, str] = {}
    for when, message in sorted(entries, key=lambda e: e[0]):
        found = classify(message)
        if found is None:
            continue
        unit, kind = found
        if kind == EXITED:
            last_exit[unit] = message.strip()
            continue
        tally = tallies.setdefault((unit, kind), _Tally())
        tally.count += 1
        tally.last_seen = when
        tally.sample = (
            last_exit.get(unit) if kind == FAILED and unit in last_exit else message.strip()
        )
    return [
        ServiceEvent(unit=unit, kind=kind, count=t.count, last_seen=t.last_seen, sample=t.sample)
        for (unit, kind), t in sorted(tallies.items())
    ]


def _message(value: object) -> str:
    """journald exports a MESSAGE that is not valid UTF-8 as an array of byte values."""
    if isinstance(value, list):
        return bytes(b for b in value if isinstance(b, int) and 0 <= b < 256).decode(
            "utf-8", "replace"
        )
    return value if isinstance(value, str) else ""


def journal_records(text: str) -> list[tuple[datetime, dict[str, object]]]:
    """`journalctl -o json` lines → (entry time, fields); shared with the coredump parser."""
    records: list[tuple[datetime, dict[str, object]]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            micros = int(record["__REALTIME_TIMESTAMP"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ParseError(
                f"journalctl -o json: line {number} is not a journal entry: {line[:120]!r}"
            ) from exc
        records.append((datetime.fromtimestamp(micros / 1e6, tz=timezone.utc), record))
    return records


def entries_from_json(text: str) -> list[Entry]:
    """`journalctl -o json` lines → (time, message)."""
    return [(when, _message(record.get("MESSAGE"))) for when, record in journal_records(text)]


_ISO_LINE = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:[.,]\d+)?)(?P<tz>Z|[+-]\d\d:?\d\d)\s+\S+\s+[^:\s]+:\s?(?P<msg>.*)$"
)


def entries_from_short_iso(text: str) -> list[Entry]:
    """`journalctl -o short-iso` lines → (time, message); '-- No entries --' style lines skipped."""
    entries: list[Entry] = []
    for line in text.splitlines():
        m = _ISO_LINE.match(line)
        if m is None:
            if line.startswith("-- ") or not line.strip():
                continue
            raise ParseError(f"journalctl -o short-iso: unexpected line: {line[:120]!r}")
        tz = m.group("tz")
        offset = "+00:00" if tz == "Z" else f"{tz[:3]}:{tz[-2:]}"
        when = datetime.fromisoformat(m.group("ts").replace(",", ".") + offset)
        entries.append((when.astimezone(timezone.utc), m.group("msg")))
    return entries


_BOOT = re.compile(
    r"^\s*(?P<idx>-?\d+)\s+(?P<id>[0-9a-f]{32})\s+\w{3},?\s+"
    r"(?P<first>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\s+(?P<tz>[A-Za-z]+)"
)


def boots_from_list_boots(text: str, start: datetime, end: datetime) -> list[RebootEvent]:
    """`TZ=UTC journalctl --list-boots --no-pager`: each boot's first entry inside the window.

    Sample (systemd 252; older versions have no header and join the times with '—')::

        IDX BOOT ID                          FIRST ENTRY                 LAST ENTRY
         -1 5c8f0b8e3b2a4f0c9d6e7f8a9b0c1d2e Fri 2026-11-20 08:00:01 UTC Sat 2026-11-21 05:59:50 UTC
          0 9a1b2c3d4e5f60718293a4b5c6d7e8f9 Sat 2026-11-21 06:00:10 UTC Sat 2026-11-21 06:09:11 UTC

    The journal cannot tell a crash from a planned reboot here, so every boot is a 'reboot'.
    """
    events: list[RebootEvent] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("IDX"):
            continue
        m = _BOOT.match(line)
        if m is None:
            raise ParseError(f"journalctl --list-boots: unexpected line: {line[:120]!r}")
        if m.group("tz") != "UTC":
            raise ParseError(
                f"journalctl --list-boots: times must be UTC (run with TZ=UTC): {line[:120]!r}"
            )
        first = datetime.strptime(m.group("first"), "%Y-%m-%d %H:%M:%S").replace(
            tzinfo=timezone.utc
        )
        if start <= first <= end:
            events.append(RebootEvent(time=first, kind="reboot"))
    return events
