"""Uptime from /proc/uptime."""

from __future__ import annotations

from checks.parsers import ParseError


def parse_uptime(text: str) -> float:
    """/proc/uptime: seconds since boot, then idle seconds summed over all CPUs.

    Sample::

        598.76 1012.76
    """
    try:
        value = float(text.split()[0])
    except (IndexError, ValueError):
        raise ParseError(f"/proc/uptime: expected a number, got {text.strip()[:80]!r}") from None
    if value < 0:
        raise ParseError(f"/proc/uptime: negative uptime {value}")
    return value
