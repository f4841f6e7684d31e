"""Mounted filesystems from /proc/mounts."""

from __future__ import annotations

import re
from typing import NamedTuple

from checks.parsers import ParseError

_OCTAL = re.compile(r"\\([0-7]{3})")


class Mount(NamedTuple):
    device: str
    mount: str
    fstype: str
    options: list[str]

    @property
    def readonly(self) -> bool:
        return "ro" in self.options


def unescape(field: str) -> str:
    r"""The kernel writes space, tab, newline and backslash in paths as octal: '\040' → ' '."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_proc_mounts(text: str) -> list[Mount]:
    """/proc/mounts (fstab format): device, mount point, type, options, dump, pass.

    Sample::

        /dev/vda / ext4 rw,relatime,discard 0 0
        tmpfs /dev/shm tmpfs rw,relatime,size=24682416k 0 0
        /dev/sdb1 /mnt/my\\040disk xfs ro,noatime 0 0

    When a mount point is mounted over, the last line is the one in effect.
    """
    mounts: list[Mount] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) < 4:
            raise ParseError(
                f"/proc/mounts: line {number} has {len(fields)} fields: {line[:120]!r}"
            )
        mounts.append(
            Mount(unescape(fields[0]), unescape(fields[1]), fields[2], fields[3].split(","))
        )
    if not mounts:
        raise ParseError("/proc/mounts: empty")
    return mounts
