"""sysstat history: `sadf -d` output → time series → the history section.

When the agent's own sample store is missing (first day, SSH mode, an agent-less host), the
sysstat collector that ops often run anyway already holds the last day: CPU, memory, swap, load
and, when sadc collects XDISK, per-filesystem use. The agent's store (issue 4) summarises with
the same helpers in `checks.history_summary`, so both sources read alike in a report.

Sample input (`LC_ALL=C sadf -d -- -u -r ALL -q -S saDD`, sysstat 12.6; one header per activity,
times in UTC)::

    # hostname;interval;timestamp;CPU;%user;%nice;%system;%iowait;%steal;%idle
    vm;600;2026-11-21 06:10:01 UTC;-1;3.52;0.00;3.52;0.00;0.00;92.96
    vm;-1;2026-11-21 06:11:24 UTC;LINUX-RESTART	(2 CPU)
    # hostname;interval;timestamp;kbmemfree;kbavail;kbmemused;%memused;kbbuffers;kbcached;...
    vm;600;2026-11-21 06:10:01 UTC;24157892;24266272;102496;0.42;10320;263916;...
    # hostname;interval;timestamp;kbswpfree;kbswpused;%swpused;kbswpcad;%swpcad
    # hostname;interval;timestamp;runq-sz;plist-sz;ldavg-1;ldavg-5;ldavg-15;blocked

and for filesystems (`sadf -d -- -F MOUNT saDD`, only when sadc ran with `-S XDISK`)::

    # hostname;interval;timestamp;MOUNTPOINT;MBfsfree;MBfsused;%fsused;%ufsused;Ifree;Iused;%Iused
    vm;600;2026-11-21 06:10:01 UTC;/;234448;23571;9.14;68.87;16342757;434459;2.59
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Optional

from checks.facts import HistoryFacts, MetricSummary
from checks.history_summary import Point, disk_trend, summarize
from checks.parsers import ParseError

MIB = 1024 * 1024

ACTIVITY_ARGS = ("-u", "-r", "ALL", "-q", "-S")
FILESYSTEM_ARGS = ("-F", "MOUNT")


def sadf_argv(path: str, activity: Sequence[str] = ACTIVITY_ARGS) -> list[str]:
    """Fixed argv; the file name comes from the local sysstat directory, never from the network."""
    return ["sadf", "-d", "--", *activity, path]


@dataclass
class FsPoint:
    time: datetime
    used_bytes: int
    avail_bytes: int
    used_percent: float


@dataclass
class SadfData:
    series: dict[str, list[Point]] = field(default_factory=dict)
    filesystems: dict[str, list[FsPoint]] = field(default_factory=dict)

    def merge(self, other: SadfData) -> None:
        for name, points in other.series.items():
            self.series.setdefault(name, []).extend(points)
        for mount, fs_points in other.filesystems.items():
            self.filesystems.setdefault(mount, []).extend(fs_points)


Row = dict[str, str]


def _num(row: Row, column: str, where: str) -> float:
    try:
        return float(row[column])
    except (KeyError, ValueError) as exc:
        raise ParseError(
            f"sadf: {where}: column {column!r} is not a number: {row.get(column)!r}"
        ) from exc


def _cpu(row: Row, where: str) -> list[tuple[str, float]]:
    if row.get("CPU") not in ("-1", "all"):
        return []  # per-CPU rows (-P) would double count; the total row is enough
    out = [("cpu", 100.0 - _num(row, "%idle", where))]
    if "%iowait" in row:
        out.append(("iowait", _num(row, "%iowait", where)))
    return out


def _memory(row: Row, where: str) -> list[tuple[str, float]]:
    """(total − available) / total, as memory.usage judges it; older sysstat lacks kbavail."""
    if "kbavail" in row and "kbslab" in row:
        total = sum(
            _num(row, c, where)
            for c in ("kbmemfree", "kbmemused", "kbbuffers", "kbcached", "kbslab")
        )
        if total > 0:
            return [("memory", (total - _num(row, "kbavail", where)) / total * 100.0)]
    return [("memory", _num(row, "%memused", where))]


def _swap(row: Row, where: str) -> list[tuple[str, float]]:
    return [("swap", _num(row, "%swpused", where))]


def _load(row: Row, where: str) -> list[tuple[str, float]]:
    return [("load1", _num(row, "ldavg-1", where)), ("load5", _num(row, "ldavg-5", where))]


# The column that tells an activity's header apart → how its rows become metric points.
_ACTIVITIES: dict[str, Callable[[Row, str], list[tuple[str, float]]]] = {
    "%idle": _cpu,
    "kbmemfree": _memory,
    "%swpused": _swap,
    "ldavg-1": _load,
}


def _row_time(row: Row, where: str) -> datetime:
    return _time(row["timestamp"], where)


def _time(text: str, where: str) -> datetime:
    value = text[:-4] if text.endswith(" UTC") else text
    try:
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
    except ValueError as exc:
        raise ParseError(
            f"sadf: {where}: timestamp {text!r} is not 'YYYY-MM-DD HH:MM:SS UTC'"
        ) from exc


def _filesystem(row: Row, where: str) -> tuple[str, FsPoint]:
    """df's Use% = used / (used + available to users); sysstat gives free, used and %ufsused."""
    mount = row.get("MOUNTPOINT") or row.get("FILESYSTEM") or ""
    used = _num(row, "MBfsused", where) * MIB
    total = used + _num(row, "MBfsfree", where) * MIB
    avail = max(0.0, total * (1.0 - _num(row, "%ufsused", where) / 100.0))
    percent = used / (used + avail) * 100.0 if used + avail > 0 else 0.0
    return mount, FsPoint(_row_time(row, where), int(used), int(avail), percent)


def parse_sadf(text: str) -> SadfData:
    data = SadfData()
    columns: Optional[list[str]] = None
    for number, line in enumerate(text.splitlines(), start=1):
        where = f"line {number}"
        if not line.strip():
            continue
        if line.startswith("#"):
            columns = [c.strip() for c in line.lstrip("#").strip().split(";")]
            if columns[:3] != ["hostname", "interval", "timestamp"]:
                raise ParseError(f"sadf: {where}: not a sadf -d header: {line[:120]!r}")
            continue
        fields = line.split(";")
        if len(fields) >= 4 and fields[3].startswith("LINUX-RESTART"):
            continue  # a boot marker, not a sample; reboots come from wtmp and the journal
        if columns is None:
            raise ParseError(f"sadf: {where}: data before any header: {line[:120]!r}")
        if len(fields) != len(columns):
            raise ParseError(
                f"sadf: {where}: {len(fields)} fields where the header has {len(columns)}: "
                f"{line[:120]!r}"
            )
        row = dict(zip(columns, fields))
        if "MBfsfree" in row:
            mount, point = _filesystem(row, where)
            data.filesystems.setdefault(mount, []).append(point)
            continue
        for key, convert in _ACTIVITIES.items():
            if key in row:
                when = _row_time(row, where)
                for metric, value in convert(row, where):
                    data.series.setdefault(metric, []).append((when, value))
                break
    return data


_UNITS = {"load1": "", "load5": ""}
_ORDER = ("cpu", "iowait", "memory", "swap", "load1", "load5")


def history_from_sadf(data: SadfData, start: datetime, end: datetime) -> HistoryFacts:
    """Summaries of the points inside [start, end]; disk metrics are named 'disk:<mount>'."""

    def inside(t: datetime) -> bool:
        return start <= t <= end

    metrics: list[MetricSummary] = []
    times: list[datetime] = []
    for name in _ORDER:
        points = sorted(p for p in data.series.get(name, []) if inside(p[0]))
        times.extend(t for t, _ in points)
        summary = summarize(name, _UNITS.get(name, "%"), points)
        if summary is not None:
            metrics.append(summary)
    trends = []
    for mount in sorted(data.filesystems):
        fs_points = sorted(
            (p for p in data.filesystems[mount] if inside(p.time)), key=lambda p: p.time
        )
        if not fs_points:
            continue
        times.extend(p.time for p in fs_points)
        summary = summarize(f"disk:{mount}", "%", [(p.time, p.used_percent) for p in fs_points])
        if summary is not None:
            metrics.append(summary)
        trend = disk_trend(
            mount, [(p.time, float(p.used_bytes)) for p in fs_points], fs_points[-1].avail_bytes
        )
        if trend is not None:
            trends.append(trend)
    return HistoryFacts(
        source="sysstat",
        start=min(times) if times else None,
        end=max(times) if times else None,
        metrics=metrics,
        disk_trends=trends,
    )
