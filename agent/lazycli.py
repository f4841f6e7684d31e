"""A Click group that imports a subcommand's module only when that subcommand runs.

The resident agent and short CLI calls should not import what other commands need (SQLAlchemy,
drain3, WeasyPrint …); start-up time and memory on customer hosts depend on it.
"""

from __future__ import annotations

import importlib
from typing import Any, Dict, List, Optional, Tuple

import click


class LazyGroup(click.Group):
    def __init__(
        self, *args: Any, lazy: Optional[Dict[str, Tuple[str, str]]] = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy or {}

    def list_commands(self, ctx: click.Context) -> List[str]:
        return sorted(set(self.lazy) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> Optional[click.Command]:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        target = self.lazy.get(cmd_name)
        if target is None:
            return None
        command: Any = getattr(importlib.import_module(target[0]), target[1])
        return command
