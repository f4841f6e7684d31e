"""Group commit for POST /runs: the requests that arrive while a batch is being written are
written together in the next one.

A run stored alone costs about six round trips to the database and a commit; under load the
collector spent more of its CPU on those than on judging runs. Requests queue here instead and
one writer at a time (per process) stores everything queued — at most one run per host, up to
`MAX_BATCH` — in one transaction (`collector.ingest.store_many`). Nobody waits for a batch to
fill: a lone request is written at once, and batches grow only when requests pile up behind a
commit, which is exactly when round trips are worth saving. Each request still gets its own
answer after its run is committed, so at-least-once delivery keeps its meaning.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Optional

from starlette.concurrency import run_in_threadpool

from collector.db.engine import Database
from collector.ingest import Ingested, Outcome, Prepared, store_many
from collector.metrics import Metrics

MAX_BATCH = 64
"""Runs per transaction: bounds the statement size (~9 KB of packed payload a run) and the time
the hosts of a batch stay locked."""
WRITERS = 2
"""Batches in flight at once per process. With one, the event loop sat idle while a batch
waited on its round trips and every request in the process was waiting on that batch; a second
writer fills those waits. Their hosts never overlap, so each host's runs still commit in order."""


@dataclass
class _Waiting:
    item: Prepared
    answer: asyncio.Future[Ingested]


class RunWriter:
    """Per event loop; `store` is safe to call from any number of concurrent requests."""

    def __init__(self, db: Database, metrics: Optional[Metrics] = None) -> None:
        self.db = db
        self.metrics = metrics or Metrics()
        self._queue: deque[_Waiting] = deque()
        self._writing: set[asyncio.Task[None]] = set()
        self._busy: set[str] = set()  # hosts of the batches in flight

    async def store(self, item: Prepared) -> Ingested:
        """Store one run (raises its IngestError); returns once it is committed."""
        answer: asyncio.Future[Ingested] = asyncio.get_running_loop().create_future()
        self._queue.append(_Waiting(item, answer))
        self._start_writers()
        return await answer

    def _start_writers(self) -> None:
        while len(self._writing) < WRITERS:
            batch = self._next_batch()
            if not batch:
                return
            self._busy |= {w.item.host.id for w in batch}  # before it runs: the next batch
            task = asyncio.create_task(self._write(batch))  # may be formed first
            self._writing.add(task)
            task.add_done_callback(self._written)

    def _written(self, task: asyncio.Task[None]) -> None:
        self._writing.discard(task)
        self._start_writers()

    def _next_batch(self) -> list[_Waiting]:
        """The oldest waiting runs, one per host and none of a host in flight (a host's later run
        waits for a later batch, so each host's runs are stored in the order they came)."""
        batch: list[_Waiting] = []
        hosts: set[str] = set(self._busy)
        later: deque[_Waiting] = deque()
        while self._queue and len(batch) < MAX_BATCH:
            waiting = self._queue.popleft()
            if waiting.item.host.id in hosts:
                later.append(waiting)
            else:
                hosts.add(waiting.item.host.id)
                batch.append(waiting)
        later.extend(self._queue)
        self._queue = later
        return batch

    async def _write(self, batch: list[_Waiting]) -> None:
        self.metrics.batch_written(len(batch))
        try:
            outcomes: list[Outcome] = await run_in_threadpool(
                store_many, self.db, [w.item for w in batch]
            )
        except Exception as exc:  # not even a connection: every request hears of it
            outcomes = [exc for _ in batch]
        finally:
            self._busy -= {w.item.host.id for w in batch}
        for waiting, outcome in zip(batch, outcomes):
            if waiting.answer.done():  # the client went away; its run is stored anyway
                continue
            if isinstance(outcome, Exception):
                waiting.answer.set_exception(outcome)
            else:
                waiting.answer.set_result(outcome)
