"""Service units from systemctl."""

from __future__ import annotations

from typing import List

from checks.facts import UnitState
from checks.parsers import ParseError

LIST_UNITS_ARGV = (
    "systemctl",
    "list-units",
    "--type=service",
    "--all",
    "--no-legend",
    "--plain",
    "--no-pager",
)


def parse_list_units(text: str) -> List[UnitState]:
    """`systemctl list-units --type=service --all --no-legend --plain --no-pager`.

    Sample (UNIT LOAD ACTIVE SUB DESCRIPTION)::

        cron.service       loaded    active   running Regular background program processing daemon
        nginx.service      loaded    failed   failed  A high performance web server
        ntp.service        not-found inactive dead    ntp.service

    Some systemd versions still put a '●' before failed or not-found units despite --plain.
    """
    units: List[UnitState] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip().lstrip("●*").strip()
        if not line:
            continue
        fields = line.split(None, 4)
        if len(fields) < 4 or "." not in fields[0]:
            raise ParseError(f"systemctl list-units: unexpected line {number}: {raw[:120]!r}")
        units.append(UnitState(name=fields[0], active=fields[2], sub=fields[3]))
    return units
