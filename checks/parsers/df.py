"""Space and inode use per mount from POSIX `df -P -k` and `df -P -i`."""

from __future__ import annotations

import re
from typing import NamedTuple

from checks.parsers import ParseError

# Device (may contain spaces), three counts ('-' where a filesystem keeps no inode counts),
# the percentage, and the mount point, which is last and may contain spaces too.
_ROW = re.compile(
    r"^(?P<dev>.+?)\s+(?P<t>\d+|-)\s+(?P<u>\d+|-)\s+(?P<a>\d+|-)\s+(?:\d+%|-)\s+(?P<mnt>/.*)$"
)


class DfRow(NamedTuple):
    device: str
    mount: str
    total: int
    used: int
    available: int


def _parse(text: str, tool: str, scale: int) -> dict[str, DfRow]:
    lines = text.splitlines()
    if not lines or not lines[0].startswith("Filesystem"):
        raise ParseError(f"{tool}: no header line in {text.strip()[:120]!r}")
    rows: dict[str, DfRow] = {}
    for line in lines[1:]:
        if not line.strip():
            continue
        m = _ROW.match(line.rstrip())
        if m is None:
            raise ParseError(f"{tool}: unexpected line {line[:120]!r}")
        total, used, available = (0 if v == "-" else int(v) * scale for v in m.group("t", "u", "a"))
        rows[m.group("mnt")] = DfRow(m.group("dev"), m.group("mnt"), total, used, available)
    return rows


def parse_df_blocks(text: str) -> dict[str, DfRow]:
    """`df -P -k`: sizes in KiB become bytes; keyed by mount point.

    Sample::

        Filesystem     1024-blocks     Used Available Capacity Mounted on
        /dev/vda         264212084 24137008  82253904      23% /
        tmpfs             24682416        0  24682416       0% /dev/shm
    """
    return _parse(text, "df -P -k", 1024)


def parse_df_inodes(text: str) -> dict[str, DfRow]:
    """`df -P -i`: inode counts; keyed by mount point.

    Sample::

        Filesystem       Inodes  IUsed    IFree IUse% Mounted on
        /dev/vda       16777216 434469 16342747    3% /
        /dev/sda1             -      -        -     - /boot/efi
    """
    return _parse(text, "df -P -i", 1)


def used_percent(used: int, available: int) -> float:
    """used / (used + available) × 100, as df shows it: root's reserve is not usable by others."""
    whole = used + available
    return 100.0 * used / whole if whole else 0.0
