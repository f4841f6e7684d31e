"""Storing agents' sample batches, many hosts in one transaction (see `collector.group_commit`).

An agent sends a batch of minute samples every few minutes, so a collector with a few hundred
agents receives about as many sample batches as runs. Stored one per transaction, a batch of
five samples cost more CPU than a 50 KB run (lock the host, look for the batch, insert, record
the batch, end the host's silence, move the host on, commit: each a round trip, and a pool
thread waiting on each). Here a batch of them takes about as many statements as one did.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Optional, Union, cast

from sqlalchemy import Table, bindparam, insert, select, text, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from checks.wire import SampleBatch
from collector.api.schemas import SampleReceipt
from collector.availability import Seen, observe, silence_at
from collector.db.engine import Database
from collector.db.models import Host, SampleBatchRow, SampleRow
from collector.db.types import utcnow
from collector.ingest import IngestError, live_host, lock_hosts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SamplesIn:
    """A batch as posted: the host it came from and the credential the API accepted (cached,
    so re-checked on the locked host row)."""

    host_id: str
    credential_sha256: Optional[str]
    batch: SampleBatch


@dataclass(frozen=True)
class _LockedHost:
    id: str
    contract: str
    credential_sha256: Optional[str]
    revoked_at: Optional[datetime]
    last_seen: datetime
    version: str  # the contract's source_sha256


Outcome = Union[SampleReceipt, Exception]

_HOSTS = cast(Table, Host.__table__)
_BATCHES = cast(Table, SampleBatchRow.__table__)
_SEEN_AT = (
    update(_HOSTS).where(_HOSTS.c.id == bindparam("b_id")).values(last_seen_at=bindparam("b_at"))
)
_SEEN_BATCHES = select(_BATCHES.c.batch_id, _BATCHES.c.samples, _BATCHES.c.stored).where(
    _BATCHES.c.batch_id.in_(bindparam("b_ids", expanding=True))
)
"""Which of a transaction's batch ids are stored already (replays). Like the other statements
here, built once: building a Core statement costs more client CPU than its round trip
(docs/benchmarks.md, collector ingest, eleventh round)."""
_INSERT_BATCHES = insert(_BATCHES)


def store_sample_batches(
    db: Database, items: Sequence[SamplesIn], *, default_silence: int
) -> list[Outcome]:
    """Store batches of distinct hosts in one transaction; one receipt (or refusal) each.

    Idempotent by batch_id; a sample whose (host, time) is already stored is skipped. Should
    the transaction fail (a batch_id stored concurrently by another collector), each batch is
    tried alone, and a batch_id found taken then answers as the duplicate it is."""
    assert len({i.host_id for i in items}) == len(items), "one batch per host in a transaction"
    try:
        with db.write() as session:
            return _store(session, items, default_silence)
    except IntegrityError as exc:
        if len(items) == 1:
            return [_taken(db, items[0], exc)]
        log.info("batch of %d sample batches conflicted; storing them one by one", len(items))
    except Exception as exc:
        if len(items) == 1:
            return [exc]
        log.warning("batch of %d sample batches failed; storing them one by one", len(items))
    return [store_sample_batches(db, [i], default_silence=default_silence)[0] for i in items]


def _taken(db: Database, item: SamplesIn, exc: IntegrityError) -> Outcome:
    """The batch_id was stored meanwhile (for this host or another): the stored counts."""
    with db.read() as session:
        known = session.get(SampleBatchRow, str(item.batch.batch_id))
    if known is None:
        return exc
    return SampleReceipt(
        batch_id=item.batch.batch_id, samples=known.samples, stored=known.stored, duplicate=True
    )


def _store(session: Session, items: Sequence[SamplesIn], default_silence: int) -> list[Outcome]:
    now = utcnow()
    locked = {
        key: _LockedHost(
            row.id,
            row.contract,
            row.credential_sha256,
            row.revoked_at,
            row.last_seen_at or row.enrolled_at,
            row.source_sha256,
        )
        for key, row in lock_hosts(
            session, [i.host_id for i in items], _HOSTS.c.last_seen_at, _HOSTS.c.enrolled_at
        ).items()
    }
    ids = [str(i.batch.batch_id) for i in items]
    connection = session.connection()
    seen = {row.batch_id: row for row in connection.execute(_SEEN_BATCHES, {"b_ids": ids})}
    outcomes: list[Optional[Outcome]] = [None] * len(items)
    fresh: list[tuple[int, SamplesIn, _LockedHost]] = []
    for n, item in enumerate(items):
        try:
            host = live_host(item.host_id, locked.get(item.host_id), item.credential_sha256)
        except IngestError as exc:
            outcomes[n] = exc
            continue
        known = seen.get(ids[n])
        if known is not None:
            outcomes[n] = SampleReceipt(
                batch_id=item.batch.batch_id,
                samples=known.samples,
                stored=known.stored,
                duplicate=True,
            )
        else:
            fresh.append((n, item, host))
    stored = _insert_samples(session, [(item, host) for _, item, host in fresh])
    if fresh:
        connection.execute(
            _INSERT_BATCHES,
            [
                {
                    "batch_id": ids[n],
                    "host_id": host.id,
                    "received_at": now,
                    "samples": len(item.batch.samples),
                    "stored": stored[host.id],
                }
                for n, item, host in fresh
            ],
        )
    moved = observe(
        session,
        [
            Seen(
                host.id,
                host.last_seen,
                [s.at for s in item.batch.samples],
                silence_at(session, host.contract, host.version, default_silence),
            )
            for _, item, host in fresh
        ],
        now,
    )
    if moved:
        connection.execute(_SEEN_AT, [{"b_id": host, "b_at": at} for host, at in moved.items()])
    for n, item, host in fresh:
        outcomes[n] = SampleReceipt(
            batch_id=item.batch.batch_id, samples=len(item.batch.samples), stored=stored[host.id]
        )
    return [o for o in outcomes if o is not None]


def _insert_samples(
    session: Session, work: Sequence[tuple[SamplesIn, _LockedHost]]
) -> Counter[str]:
    """All samples of the batch in one INSERT … ON CONFLICT DO NOTHING: new rows per host.

    On PostgreSQL the rows go as one JSON parameter (`_PG_INSERT_SAMPLES`): as VALUES rows,
    psycopg parsed the statement's ~4,500 placeholders in Python at every batch, 7–10 ms for
    64 hosts' samples, more than the rest of storing them."""
    samples = [(host.id, s) for item, host in work for s in item.batch.samples]
    if not samples:
        return Counter()
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        rows = json.dumps([{**s.model_dump(mode="json"), "host_id": host} for host, s in samples])
        return Counter(connection.execute(_PG_INSERT_SAMPLES, {"rows": rows}).scalars())
    values: list[dict[str, Any]] = [
        {
            **s.model_dump(exclude={"mounts"}),
            "mounts": [m.model_dump() for m in s.mounts],
            "host_id": host,
        }
        for host, s in samples
    ]
    return Counter(connection.execute(_SQLITE_INSERT_SAMPLES, values).scalars())


_SQLITE_INSERT_SAMPLES = (
    sqlite.insert(SampleRow)
    .on_conflict_do_nothing(index_elements=["host_id", "at"])
    .returning(SampleRow.host_id)
)
_SAMPLES = cast(Table, SampleRow.__table__)
_COLUMNS = ", ".join(f'"{c.name}"' for c in _SAMPLES.columns if c.name != "id")
_PG_INSERT_SAMPLES = text(
    f"INSERT INTO samples ({_COLUMNS}) SELECT {_COLUMNS} "
    "FROM json_populate_recordset(NULL::samples, CAST(:rows AS json)) "
    "ON CONFLICT (host_id, at) DO NOTHING RETURNING host_id"
)
"""Each sample's fields by name (a JSON object per row: times as ISO text with their offset,
floats in their shortest exact form, mounts as the JSON the column holds); `id` from its
sequence."""
