"""`xunjian`: the vendor-side command line (serve, db, contract, token, apikey, host, ssh …)."""

from __future__ import annotations

import click

from agent import __version__
from agent.lazycli import LazyGroup

# command name → (module, attribute); each module owns one command or group.
COMMANDS = {
    "ssh": ("collector.ssh.cmd", "ssh"),
}


@click.group(cls=LazyGroup, lazy=COMMANDS)
@click.version_option(__version__, prog_name="xunjian")
def main() -> None:
    """xunjian collector: contracts, inspections, reports (巡检报告) and alerts."""
