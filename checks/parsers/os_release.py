"""Distribution name and version from os-release, kernel and architecture from uname."""

from __future__ import annotations

import shlex

from checks.facts import OsInfo
from checks.parsers import ParseError


def parse_os_release_fields(text: str) -> dict[str, str]:
    """/etc/os-release: shell-style `KEY=value` assignments, values possibly quoted.

    Sample::

        PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
        NAME="Debian GNU/Linux"
        VERSION_ID="12"
        ID=debian
    """
    fields: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, raw = line.partition("=")
        try:
            words = shlex.split(raw, posix=True)
        except ValueError:
            words = [raw.strip("\"'")]
        fields[key.strip()] = " ".join(words)
    return fields


def parse_os_release(text: str) -> OsInfo:
    fields = parse_os_release_fields(text)
    if not fields.get("NAME") and not fields.get("ID"):
        raise ParseError(f"os-release: neither NAME nor ID in {text.strip()[:120]!r}")
    return OsInfo(
        name=fields.get("NAME", ""),
        version=fields.get("VERSION_ID", ""),
        id=fields.get("ID", ""),
    )


def parse_uname_srm(text: str) -> tuple[str, str]:
    """`uname -srm`: kernel name, release, machine → (release, machine).

    Sample::

        Linux 6.1.0-18-amd64 x86_64
    """
    fields = text.split()
    if len(fields) != 3:
        raise ParseError(f"uname -srm: expected three words, got {text.strip()[:80]!r}")
    return fields[1], fields[2]
