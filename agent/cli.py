"""`xunjian-agent`: the commands an operator runs on a customer host."""

from __future__ import annotations

import click

from agent import __version__
from agent.lazycli import LazyGroup

# command name → (module, attribute); each module owns one command or group.
COMMANDS = {
    "inspect": ("agent.cmd_inspect", "inspect"),
    "schema": ("agent.cmd_inspect", "schema"),
    "logs": ("agent.logscan.cmd", "logs"),
    "enroll": ("agent.cmd_daemon", "enroll"),
    "run": ("agent.cmd_daemon", "run"),
    "status": ("agent.cmd_daemon", "status"),
}


@click.group(cls=LazyGroup, lazy=COMMANDS)
@click.version_option(__version__, prog_name="xunjian-agent")
def main() -> None:
    """xunjian agent: remote inspection (远程巡检) of this host."""
