"""Group commit for what agents post (runs, sample batches): requests queue, and one writer
stores what has queued — at most one item per host, up to `MAX_BATCH` — in one transaction
(`collector.ingest.store_many`, `collector.sample_ingest.store_sample_batches`).

A run stored alone costs about six round trips to the database and a commit: ~2.9 ms of the
writer's CPU on PostgreSQL (direct calls of `store_many`), against ~0.95 ms a run in a batch of
ten. So under load batches are worth having, and a quiet collector should not wait for them:
- A request after a quiet spell is written at once. Once a batch has started, the next one
  starts no sooner than the writer's linger later (or at once when `MAX_BATCH` items wait), so
  under load requests gather for up to that long: at the bench's 150 runs/s a worker, batches
  of ~5 runs instead of ~3–4 (`RUN_LINGER`), and of ~9 sample batches instead of ~1.3
  (`SAMPLE_LINGER`).
- One batch is in flight at a time. Until the seventh round two were, to fill the event loop's
  idle time while a batch waited on its round trips; but on a busy machine a batch's thread
  waits on the CPU far longer than on the database (~20 ms of wall time for ~4 ms of CPU, per
  batch, measured in the workers), and the second writer only added a second thread, more
  database backends and smaller batches to that contention. A host's items are stored in the
  order they came, one batch after the other.
Each request still gets its own answer after its item is committed, so at-least-once delivery
keeps its meaning.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Generic, Optional, TypeVar, Union

from starlette.concurrency import run_in_threadpool

from checks.model import InspectionRun
from collector.api.body import JsonText, validated
from collector.api.schemas import SampleReceipt
from collector.db.engine import Database
from collector.ingest import HostRef, Ingested, Prepared, prepare, store_many
from collector.metrics import BatchTimes, Metrics
from collector.sample_ingest import SamplesIn, store_sample_batches

Q = TypeVar("Q")
T = TypeVar("T")
R = TypeVar("R")

MAX_BATCH = 64
"""Items per transaction: bounds the statement size (~9 KB of packed payload a run) and the time
the hosts of a batch stay locked."""
RUN_LINGER = 0.03
"""Seconds from one batch of runs' start to the next one's, at the least (unless `MAX_BATCH` items
wait). A run's answer waits for it. Chosen in the bench's paced phase (`bench/ingest_bench.py`, 300
runs/s offered to two workers; one writer, no pre-ping): 30 ms, four runs: p99 130–177 ms, 4.62–4.74
ms of collector CPU a run; 50 ms, two runs: batches of 7–8 but no less CPU (4.66, 4.71 ms) and p99
154, 230 ms; none, two runs: 5.06, 4.86 ms and p99 367, 120 ms. Against the two writers without a
linger, see `docs/benchmarks.md` (collector ingest, seventh round)."""
SAMPLE_LINGER = 0.25
"""The same for sample batches, whose answers nobody waits on: the agent sends its next batch
minutes later. At 0.03 s, as for runs, the bench's paced phase wrote a sample batch or two a
transaction, ~23 transactions a second a worker against ~35 for runs; at 0.25 s ~4 a second, and
the collector spent ~0.4 ms less CPU a run (docs/benchmarks.md, collector ingest, ninth round)."""


@dataclass
class _Waiting(Generic[Q, R]):
    item: Q
    host: str
    answer: asyncio.Future[R]
    queued_at: float  # time.perf_counter() when it came


class GroupCommit(Generic[Q, T, R]):
    """Per event loop; `store` is safe to call from any number of concurrent requests.

    Items queue as `Q` and are written as `T`: `ready(item)` turns one into the other (or raises
    what refuses it alone) on the event loop when its batch starts, the batch's items one after
    another. `write_many(db, items)` stores items of distinct hosts in one transaction and
    answers each (its result, or the exception that refused it alone); `host_of` names an item's
    host; `on_batch(times)` counts each batch and its times for /metrics once it is written;
    `linger`: see `RUN_LINGER`."""

    def __init__(
        self,
        db: Database,
        ready: Callable[[Q], T],
        write_many: Callable[[Database, Sequence[T]], Sequence[Union[R, Exception]]],
        host_of: Callable[[Q], str],
        on_batch: Callable[[BatchTimes], None],
        linger: float,
    ) -> None:
        self.db = db
        self._linger = linger
        self._ready = ready
        self._write_many = write_many
        self._host_of = host_of
        self._on_batch = on_batch
        self._queue: deque[_Waiting[Q, R]] = deque()
        self._writing: Optional[asyncio.Task[None]] = None
        self._lingering: Optional[asyncio.TimerHandle] = None
        self._started = float("-inf")  # the event loop's time when the last batch started

    async def store(self, item: Q) -> R:
        """Store one item (raises what refused it); returns once it is committed."""
        answer: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append(_Waiting(item, self._host_of(item), answer, time.perf_counter()))
        self._start()
        return await answer

    def _start(self) -> None:
        """Start the next batch, unless one is in flight or it is not yet time for it."""
        if self._writing is not None or not self._queue:
            return
        loop = asyncio.get_running_loop()
        due = self._started + self._linger
        if len(self._queue) < MAX_BATCH and loop.time() < due:
            if self._lingering is None:
                self._lingering = loop.call_at(due, self._lingered)
            return
        if self._lingering is not None:
            self._lingering.cancel()
            self._lingering = None
        self._started = loop.time()
        self._writing = asyncio.create_task(self._write(self._next_batch()))
        self._writing.add_done_callback(self._written)

    def _lingered(self) -> None:
        self._lingering = None
        self._start()

    def _written(self, _task: asyncio.Task[None]) -> None:
        self._writing = None
        self._start()

    def _next_batch(self) -> list[_Waiting[Q, R]]:
        """The oldest waiting items, one per host (a host's later item waits for a later batch,
        so each host's items are stored in the order they came)."""
        batch: list[_Waiting[Q, R]] = []
        hosts: set[str] = set()
        later: deque[_Waiting[Q, R]] = deque()
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

    async def _write(self, queued: list[_Waiting[Q, R]]) -> None:
        started = time.perf_counter()
        batch: list[_Waiting[Q, R]] = []
        items: list[T] = []
        for waiting in queued:
            try:
                items.append(self._ready(waiting.item))
            except Exception as exc:  # refused on its own (a 422): the others go on
                if not waiting.answer.done():
                    waiting.answer.set_exception(exc)
                continue
            batch.append(waiting)
        if not batch:
            return
        readied = time.perf_counter()
        outcomes: Sequence[Union[R, Exception]]
        try:
            outcomes = await run_in_threadpool(self._write_many, self.db, items)
        except Exception as exc:  # not even a connection: every request hears of it
            outcomes = [exc for _ in batch]
        written = time.perf_counter()
        queued_s = sum(started - waiting.queued_at for waiting in batch)
        self._on_batch(BatchTimes(len(batch), queued_s, readied - started, written - readied))
        for waiting, outcome in zip(batch, outcomes):
            if waiting.answer.done():  # the client went away; its item is stored anyway
                continue
            if isinstance(outcome, Exception):
                waiting.answer.set_exception(outcome)
            else:
                waiting.answer.set_result(outcome)


@dataclass(frozen=True)
class Posted:
    """An agent's run as it was posted: validated and judged only when its batch starts, with
    the other runs of that batch, one after another. Each of them alone, as it came, was ~10 %
    more CPU: between two requests the other workers, the database and the writer threads run,
    and the caches are cold again (docs/benchmarks.md, collector ingest, ninth round)."""

    host: HostRef
    body: JsonText


def _judged(item: Union[Posted, Prepared]) -> Prepared:
    """A posted run validated (a 422 naming the field otherwise) and judged."""
    if isinstance(item, Prepared):  # posted with an API key: validated by its request
        return item
    run = validated(InspectionRun, item.body.text)
    return prepare(item.host, run, "agent", raw=item.body.text, packed=item.body.gzip)


def run_writer(
    db: Database, metrics: Metrics
) -> GroupCommit[Union[Posted, Prepared], Prepared, Ingested]:
    """POST /runs' writer: keyed by the host the run was posted for (not the hostname inside it),
    so one agent's runs are stored in the order it sent them."""
    return GroupCommit(
        db,
        _judged,
        store_many,
        lambda run: run.host.id,
        partial(metrics.batch_written, "runs"),
        RUN_LINGER,
    )


def sample_writer(
    db: Database, metrics: Metrics, default_silence: int
) -> GroupCommit[SamplesIn, SamplesIn, SampleReceipt]:
    """POST /samples' writer, a second queue beside the runs': a batch of runs never waits for
    sample batches to gather (`SAMPLE_LINGER`). `default_silence`: minutes of silence that make
    downtime where a contract sets none."""
    return GroupCommit(
        db,
        lambda batch: batch,  # validated by its request: a few samples, nothing to judge
        partial(store_sample_batches, default_silence=default_silence),
        lambda batch: batch.host_id,
        partial(metrics.batch_written, "samples"),
        SAMPLE_LINGER,
    )
