"""`xunjian`: the vendor-side command line (serve, db, contract, token, apikey, host, ssh …)."""

from __future__ import annotations

import click

from agent import __version__
from agent.lazycli import LazyGroup

# command name → (module, attribute); each module owns one command or group.
COMMANDS = {
    "ssh": ("collector.ssh.cmd", "ssh"),
    "serve": ("collector.cmd_serve", "serve"),
    "db": ("collector.cmd_db", "db"),
    "contract": ("collector.cmd_contract", "contract"),
    "token": ("collector.cmd_token", "token"),
    "apikey": ("collector.cmd_apikey", "apikey"),
    "host": ("collector.cmd_host", "host"),
    "import-run": ("collector.cmd_import", "import_run"),
    "alert": ("collector.cmd_alert", "alert"),
    "user": ("collector.cmd_user", "user"),
    "report": ("collector.cmd_report", "report"),
}


@click.group(cls=LazyGroup, lazy=COMMANDS)
@click.version_option(__version__, prog_name="xunjian")
def main() -> None:
    """xunjian collector: contracts, inspections, reports (巡检报告) and alerts."""
