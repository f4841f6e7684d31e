"""File handle use from /proc/sys/fs/file-nr."""

from __future__ import annotations

from checks.facts import FdFacts
from checks.parsers import ParseError


def parse_file_nr(text: str) -> FdFacts:
    """/proc/sys/fs/file-nr: allocated handles, allocated but unused (0 since 2.6), maximum.

    Sample::

        551	0	2465620
    """
    fields = text.split()
    if len(fields) != 3 or not all(f.isdigit() for f in fields):
        raise ParseError(f"file-nr: expected three integers, got {text.strip()[:80]!r}")
    allocated, unused, maximum = (int(f) for f in fields)
    if maximum <= 0:
        raise ParseError(f"file-nr: maximum is {maximum}")
    in_use = max(allocated - unused, 0)
    return FdFacts(allocated=in_use, maximum=maximum, used_percent=100.0 * in_use / maximum)
