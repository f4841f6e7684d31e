"""Where facts come from: the local host (psutil), and — for the SSH mode — a remote shell.

The helpers here are what every source needs: running a host tool with a fixed argv, a clean
environment and a deadline, and gathering sections independently so that one failing section
is recorded with its reason (`FactSet.errors`) instead of costing the whole inspection.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any, Callable, Dict, Mapping, Sequence, Tuple

COMMAND_TIMEOUT = 10.0
"""Seconds a host tool may take; a hung daemon (chronyd, systemd) must not hold the inspection."""

TOOL_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""Tools are looked up here only: a daemon's PATH is minimal and a user's may point anywhere."""


class ToolError(RuntimeError):
    """A host tool that is missing, failed or did not answer in time; the message says which."""


def run_tool(argv: Sequence[str], timeout: float = COMMAND_TIMEOUT) -> str:
    """Stdout of `argv` (never through a shell), run in the C locale so its output parses."""
    name = argv[0]
    exe = shutil.which(name, path=TOOL_PATH)
    if exe is None:
        raise ToolError(f"{name}: not installed")
    try:
        proc = subprocess.run(
            [exe, *argv[1:]],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            env={"PATH": TOOL_PATH, "LC_ALL": "C"},
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ToolError(f"{name}: no answer within {timeout:g} s") from None
    except OSError as exc:
        raise ToolError(f"{name}: cannot run: {exc.strerror or exc}") from None
    if proc.returncode != 0:
        lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = f": {lines[0][:200]}" if lines else ""
        raise ToolError(f"{' '.join(argv)}: exit status {proc.returncode}{detail}")
    return proc.stdout.decode("utf-8", "replace")


def describe_error(exc: BaseException) -> str:
    """A reason a customer's engineer can act on: 'Permission denied: /var/log/secure'."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    if isinstance(exc, (ToolError, ValueError)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def gather(sections: Mapping[str, Callable[[], Any]]) -> Tuple[Dict[str, Any], Dict[str, str]]:
    """Run each section's gatherer on its own: (values by section, why the others failed)."""
    values: Dict[str, Any] = {}
    errors: Dict[str, str] = {}
    for name, gatherer in sections.items():
        try:
            values[name] = gatherer()
        except Exception as exc:  # one section's failure must not cost the others
            errors[name] = describe_error(exc)
    return values, errors


def read_text(path: str, limit: int = 1 << 20) -> str:
    """A small system file as text; larger than `limit` is refused rather than read whole."""
    with open(path, "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{path}: larger than {limit} bytes")
    return data.decode("utf-8", "replace")
