"""Load averages from /proc/loadavg and the online CPU count from getconf."""

from __future__ import annotations

from checks.parsers import ParseError


def parse_loadavg(text: str) -> tuple[float, float, float]:
    """/proc/loadavg: 1, 5 and 15 minute load, runnable/total tasks, last pid.

    Sample::

        0.06 0.18 0.16 2/94 9716
    """
    fields = text.split()
    try:
        return float(fields[0]), float(fields[1]), float(fields[2])
    except (IndexError, ValueError):
        raise ParseError(
            f"/proc/loadavg: expected three numbers, got {text.strip()[:80]!r}"
        ) from None


def parse_cpu_count(text: str) -> int:
    """`getconf _NPROCESSORS_ONLN` (or `grep -c ^processor /proc/cpuinfo`): one positive integer.

    Sample::

        8
    """
    value = text.strip()
    if not value.isdigit() or int(value) < 1:
        raise ParseError(f"CPU count: expected a positive integer, got {value[:40]!r}")
    return int(value)
