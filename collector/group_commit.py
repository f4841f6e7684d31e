"""Group commit for what agents post (runs, sample batches): the requests that arrive while a
batch is being written are written together in the next one.

A run stored alone costs about six round trips to the database and a commit, a sample batch
about as many; under load the collector spent more of its CPU on those (and on the threads
waiting for them) than on judging runs. Requests queue here instead and a writer stores
everything queued — at most one item per host, up to `MAX_BATCH` — in one transaction
(`collector.ingest.store_many`, `collector.sample_ingest.store_sample_batches`). Nobody waits
for a batch to fill: a lone request is written at once, and batches grow only when requests pile
up behind a commit, which is exactly when round trips are worth saving. Each request still gets
its own answer after its item is committed, so at-least-once delivery keeps its meaning.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Generic, TypeVar, Union

from starlette.concurrency import run_in_threadpool

from collector.api.schemas import SampleReceipt
from collector.db.engine import Database
from collector.ingest import Ingested, Prepared, store_many
from collector.metrics import Metrics
from collector.sample_ingest import SamplesIn, store_sample_batches

T = TypeVar("T")
R = TypeVar("R")

MAX_BATCH = 64
"""Items per transaction: bounds the statement size (~9 KB of packed payload a run) and the time
the hosts of a batch stay locked."""
WRITERS = 2
"""Batches in flight at once per process. With one, the event loop sat idle while a batch
waited on its round trips and every request in the process was waiting on that batch; a second
writer fills those waits. Their hosts never overlap, so each host's runs still commit in order."""


@dataclass
class _Waiting(Generic[T, R]):
    item: T
    host: str
    answer: asyncio.Future[R]


class GroupCommit(Generic[T, R]):
    """Per event loop; `store` is safe to call from any number of concurrent requests.

    `write_many(db, items)` stores items of distinct hosts in one transaction and answers each
    (its result, or the exception that refused it alone); `host_of` names an item's host;
    `on_batch(size)` counts the batches for /metrics."""

    def __init__(
        self,
        db: Database,
        write_many: Callable[[Database, Sequence[T]], Sequence[Union[R, Exception]]],
        host_of: Callable[[T], str],
        on_batch: Callable[[int], None],
    ) -> None:
        self.db = db
        self._write_many = write_many
        self._host_of = host_of
        self._on_batch = on_batch
        self._queue: deque[_Waiting[T, R]] = deque()
        self._writing: set[asyncio.Task[None]] = set()
        self._busy: set[str] = set()  # hosts of the batches in flight

    async def store(self, item: T) -> R:
        """Store one item (raises what refused it); returns once it is committed."""
        answer: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append(_Waiting(item, self._host_of(item), answer))
        self._start_writers()
        return await answer

    def _start_writers(self) -> None:
        while len(self._writing) < WRITERS:
            batch = self._next_batch()
            if not batch:
                return
            self._busy |= {w.host for w in batch}  # before it runs: the next batch
            task = asyncio.create_task(self._write(batch))  # may be formed first
            self._writing.add(task)
            task.add_done_callback(self._written)

    def _written(self, task: asyncio.Task[None]) -> None:
        self._writing.discard(task)
        self._start_writers()

    def _next_batch(self) -> list[_Waiting[T, R]]:
        """The oldest waiting items, one per host and none of a host in flight (a host's later
        item waits for a later batch, so each host's items are stored in the order they came)."""
        batch: list[_Waiting[T, R]] = []
        hosts: set[str] = set(self._busy)
        later: deque[_Waiting[T, R]] = deque()
        while self._queue and len(batch) < MAX_BATCH:
            waiting = self._queue.popleft()
            if waiting.host in hosts:
                later.append(waiting)
            else:
                hosts.add(waiting.host)
                batch.append(waiting)
        later.extend(self._queue)
        self._queue = later
        return batch

    async def _write(self, batch: list[_Waiting[T, R]]) -> None:
        self._on_batch(len(batch))
        outcomes: Sequence[Union[R, Exception]]
        try:
            outcomes = await run_in_threadpool(self._write_many, self.db, [w.item for w in batch])
        except Exception as exc:  # not even a connection: every request hears of it
            outcomes = [exc for _ in batch]
        finally:
            self._busy -= {w.host for w in batch}
        for waiting, outcome in zip(batch, outcomes):
            if waiting.answer.done():  # the client went away; its item is stored anyway
                continue
            if isinstance(outcome, Exception):
                waiting.answer.set_exception(outcome)
            else:
                waiting.answer.set_result(outcome)


def run_writer(db: Database, metrics: Metrics) -> GroupCommit[Prepared, Ingested]:
    """POST /runs' writer: keyed by the host the run was posted for (not the hostname inside it),
    so one agent's runs are stored in the order it sent them."""
    return GroupCommit(
        db, store_many, lambda run: run.host.id, partial(metrics.batch_written, "runs")
    )


def sample_writer(
    db: Database, metrics: Metrics, default_silence: int
) -> GroupCommit[SamplesIn, SampleReceipt]:
    """POST /samples' writer, a second queue beside the runs': a sample batch never waits behind a
    batch of runs. `default_silence`: minutes of silence that make downtime where a contract sets
    none."""
    return GroupCommit(
        db,
        partial(store_sample_batches, default_silence=default_silence),
        lambda batch: batch.host_id,
        partial(metrics.batch_written, "samples"),
    )
