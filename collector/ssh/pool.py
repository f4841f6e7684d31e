"""Inspect many hosts at once: a bounded thread pool in which no host can hold up another.

Each host gets its own deadline (`--timeout`), which every blocking step (connect, handshake,
authentication, the probe's output) honours. As a second line of defence the pool watches the
clock too: a host still running a grace period after its deadline has its connection closed
from the outside, which unblocks whatever paramiko call it is stuck in, and is reported as
timed out. Progress goes to stderr (Rich), so stdout stays clean for `--json`.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from agent.sources.ssh import Connection, Deadline, SshError, SshTimeout
from checks.model import InspectionRun
from collector.ssh.inventory import Target

GRACE_SECONDS = 5.0


@dataclass
class Outcome:
    """One host's result: a run, or the error that prevented it."""

    target: Target
    run: Optional[InspectionRun]
    error: Optional[SshError]
    seconds: float


Inspect = Callable[[Target, Deadline, Connection], InspectionRun]


@dataclass
class _Job:
    target: Target
    deadline: Deadline
    connection: Connection
    started: float


def run_all(
    targets: List[Target],
    inspect: Inspect,
    *,
    parallel: int,
    timeout: float,
    console: Optional[Console] = None,
) -> List[Outcome]:
    """Outcomes in the order of `targets`."""
    outcomes: Dict[int, Outcome] = {}
    jobs: Dict[Future[InspectionRun], tuple[int, _Job]] = {}
    lock = threading.Lock()
    progress = Progress(
        TextColumn("[bold]xunjian ssh"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=console or Console(stderr=True),
        transient=False,
    )

    def job(index: int, entry: _Job) -> InspectionRun:
        with lock:
            entry.started = time.monotonic()
            entry.deadline = Deadline(timeout)
        return inspect(entry.target, entry.deadline, entry.connection)

    with (
        progress,
        ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="ssh") as pool,
    ):
        task = progress.add_task("", total=len(targets))
        for index, target in enumerate(targets):
            entry = _Job(target, Deadline(timeout), Connection(), 0.0)
            jobs[pool.submit(job, index, entry)] = (index, entry)
        pending = set(jobs)
        while pending:
            done, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
            for future in done:
                index, entry = jobs[future]
                if index in outcomes:  # already given up on by the watchdog
                    continue
                outcomes[index] = _outcome(future, entry)
                entry.connection.close()
                progress.update(task, advance=1, description=entry.target.label)
            now = time.monotonic()
            for future in pending:
                index, entry = jobs[future]
                with lock:
                    overdue = entry.started and now - entry.started > timeout + GRACE_SECONDS
                if overdue and index not in outcomes:
                    entry.connection.close()
                    error = SshTimeout(f"{entry.target.label}: no result within {timeout:g} s")
                    outcomes[index] = Outcome(entry.target, None, error, now - entry.started)
                    progress.update(task, advance=1, description=entry.target.label)
            pending = {f for f in pending if jobs[f][0] not in outcomes}
    return [outcomes[i] for i in range(len(targets))]


def _outcome(future: "Future[InspectionRun]", entry: _Job) -> Outcome:
    seconds = time.monotonic() - entry.started if entry.started else 0.0
    try:
        return Outcome(entry.target, future.result(), None, seconds)
    except SshError as exc:
        return Outcome(entry.target, None, exc, seconds)
    except Exception as exc:  # one host's surprise must not cost the others their results
        return Outcome(entry.target, None, SshError(f"{type(exc).__name__}: {exc}"), seconds)
