"""Prometheus text exposition, written by hand: a few counters and one histogram need no library.

Counters live in the process that served the request: with several uvicorn workers a scrape
sees the counts of whichever worker answered (run one worker per port where exact counters
matter). Gauges such as silent hosts come from the database, the same from every process.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0)


BATCH_KINDS = ("runs", "samples")
WAIT_PHASES = ("queued", "ready", "write")


@dataclass(frozen=True)
class BatchTimes:
    """Where a batch's items spent their wait, in seconds: what /metrics adds up, so that a slow
    POST /runs can be told apart as queueing, judging or the database without a profiler."""

    items: int  # stored or refused by the transaction (not those refused before it, a 422)
    queued: float  # summed over those items: from arrival until their batch started
    ready: float  # the batch validated and judged, on the event loop
    write: float  # the batch's transaction, in the writer thread, from dispatch to answer


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.runs: dict[str, int] = defaultdict(int)  # outcome → count
        self.rejected: dict[str, int] = defaultdict(int)  # reason → count
        self.samples = 0
        self.heartbeats = 0
        self.batches: dict[str, int] = defaultdict(int)  # group commits by kind (runs, samples)
        self.batched: dict[str, int] = defaultdict(int)  # … and the items they held
        # … and the seconds those items spent in each phase of their wait, summed over them
        self.waited: dict[tuple[str, str], float] = defaultdict(float)
        self._buckets = [0] * len(LATENCY_BUCKETS)
        self._latency_sum = 0.0
        self._latency_count = 0

    def run_stored(self, duplicate: bool, seconds: float) -> None:
        with self._lock:
            self.runs["duplicate" if duplicate else "stored"] += 1
            self._latency_sum += seconds
            self._latency_count += 1
            for i, bound in enumerate(LATENCY_BUCKETS):
                if seconds <= bound:
                    self._buckets[i] += 1

    def batch_written(self, kind: str, times: BatchTimes) -> None:
        with self._lock:
            self.batches[kind] += 1
            self.batched[kind] += times.items
            self.waited[kind, "queued"] += times.queued
            self.waited[kind, "ready"] += times.items * times.ready
            self.waited[kind, "write"] += times.items * times.write

    def reject(self, reason: str) -> None:
        with self._lock:
            self.rejected[reason] += 1

    def count_samples(self, n: int) -> None:
        with self._lock:
            self.samples += n

    def count_heartbeat(self) -> None:
        with self._lock:
            self.heartbeats += 1

    def render(self, gauges: Iterable[tuple[str, str, float]] = ()) -> str:
        """The exposition text; `gauges` are (name, help, value) computed by the caller."""
        out: list[str] = []
        with self._lock:
            _family(out, "xunjian_runs_ingested_total", "counter", "Runs received, by outcome.")
            for outcome in ("stored", "duplicate"):
                out.append(
                    f'xunjian_runs_ingested_total{{outcome="{outcome}"}} {self.runs[outcome]}'
                )
            _family(
                out, "xunjian_requests_rejected_total", "counter", "Requests refused, by reason."
            )
            for reason, n in sorted(self.rejected.items()):
                out.append(f'xunjian_requests_rejected_total{{reason="{reason}"}} {n}')
            _family(
                out,
                "xunjian_ingest_batches_total",
                "counter",
                "Transactions that stored runs or sample batches (group commit), by kind; items "
                "per batch = xunjian_ingest_batched_items_total / this.",
            )
            for kind in BATCH_KINDS:
                out.append(f'xunjian_ingest_batches_total{{kind="{kind}"}} {self.batches[kind]}')
            _family(
                out,
                "xunjian_ingest_batched_items_total",
                "counter",
                "Runs or sample batches in those transactions, by kind.",
            )
            for kind in BATCH_KINDS:
                out.append(
                    f'xunjian_ingest_batched_items_total{{kind="{kind}"}} {self.batched[kind]}'
                )
            _family(
                out,
                "xunjian_ingest_wait_seconds_total",
                "counter",
                "Seconds the group commit's items (runs, sample batches) waited, summed over "
                "them, by kind and phase: queued (from "
                "arrival until their batch started), ready (their batch made ready on the event "
                "loop: agents' runs validated and judged), write (their batch's transaction). "
                "Over xunjian_ingest_batched_items_total: the mean of each part of the wait.",
            )
            for kind in BATCH_KINDS:
                for phase in WAIT_PHASES:
                    out.append(
                        f'xunjian_ingest_wait_seconds_total{{kind="{kind}",phase="{phase}"}} '
                        f"{self.waited[kind, phase]:.6f}"
                    )
            _family(out, "xunjian_samples_ingested_total", "counter", "Samples received.")
            out.append(f"xunjian_samples_ingested_total {self.samples}")
            _family(out, "xunjian_heartbeats_total", "counter", "Heartbeats received.")
            out.append(f"xunjian_heartbeats_total {self.heartbeats}")
            _family(
                out, "xunjian_ingest_seconds", "histogram", "Time to store one run (accepted runs)."
            )
            for bound, n in zip(LATENCY_BUCKETS, self._buckets):
                out.append(f'xunjian_ingest_seconds_bucket{{le="{bound}"}} {n}')
            out.append(f'xunjian_ingest_seconds_bucket{{le="+Inf"}} {self._latency_count}')
            out.append(f"xunjian_ingest_seconds_sum {self._latency_sum:.6f}")
            out.append(f"xunjian_ingest_seconds_count {self._latency_count}")
        for name, help_text, value in gauges:
            _family(out, name, "gauge", help_text)
            out.append(f"{name} {value:g}")
        return "\n".join(out) + "\n"


def _family(out: list[str], name: str, kind: str, help_text: str) -> None:
    out.append(f"# HELP {name} {help_text}")
    out.append(f"# TYPE {name} {kind}")
