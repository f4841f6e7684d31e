"""A durable outbox in the database: every message (report mail, alert webhook …) is sent once.

Producers `enqueue` a row inside their own transaction, keyed so a message is queued once however
often the producer runs. Any collector may `drain`: it *claims* due rows by taking a lease
(`SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL, so two collectors never take the same row;
SQLite serialises writers and a conditional UPDATE guards the claim), calls the handler for the
row's `kind`, and records the outcome only while it still holds the lease. A temporary failure
(SMTP 4xx, a refused or dropped connection, HTTP 5xx …) is retried with exponential backoff; a
permanent one (SMTP 5xx, HTTP 4xx, bad signature) or the last allowed attempt marks the row
`failed`, visible in listings, the API and /metrics.

Delivery is at-least-once at the wire: a collector that dies after the server accepted a message
but before recording it lets the lease expire and the message goes again — with the same stable
Message-ID (or webhook idempotency key), so the recipient can tell. Leases are far longer than a
send's timeout, so a live sender never loses its lease.

Handlers are plain callables `(OutboxItem) -> None` registered per kind by the caller of
`drain`; they raise `TemporaryFailure` / `PermanentFailure` (other exceptions count as temporary).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Optional

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from collector.db.engine import Database
from collector.db.models_reports import OutboxRow
from collector.db.types import utcnow

log = logging.getLogger(__name__)

PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"
STATES = (PENDING, SENDING, SENT, FAILED)
DEFAULT_MAX_ATTEMPTS = 12
DEFAULT_LEASE = timedelta(minutes=5)
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=2)
"""30 s, 1 min, 2 min … capped at 2 h: twelve attempts span about a day of SMTP trouble."""
ERROR_LIMIT = 2000


class DeliveryError(Exception):
    """Base of the outcomes a handler reports."""


class TemporaryFailure(DeliveryError):
    """Worth retrying later: the server or the network may recover."""


class PermanentFailure(DeliveryError):
    """Retrying cannot help (address refused, bad credentials, bad request)."""


@dataclass(frozen=True)
class OutboxItem:
    """A claimed row, detached from any session: what a handler works from."""

    id: int
    kind: str
    key: str
    ref: str
    contract: Optional[str]
    payload: dict[str, Any]
    message_id: Optional[str]
    attempts: int
    max_attempts: int


Handler = Callable[[OutboxItem], None]


@dataclass
class DrainResult:
    sent: list[int] = field(default_factory=list)
    retried: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    lost_lease: list[int] = field(default_factory=list)


def backoff(attempts: int) -> timedelta:
    """Wait before attempt `attempts + 1`: doubling from BACKOFF_BASE, at most BACKOFF_CAP."""
    return min(BACKOFF_BASE * (2 ** max(attempts - 1, 0)), BACKOFF_CAP)


def enqueue(
    session: Session,
    *,
    kind: str,
    key: str,
    ref: str,
    payload: Mapping[str, Any],
    contract: Optional[str] = None,
    message_id: Optional[str] = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    now: Optional[datetime] = None,
) -> bool:
    """Queue a message in the caller's transaction; False when `key` was queued before."""
    when = now or utcnow()
    values = {
        "kind": kind,
        "key": key,
        "ref": ref,
        "contract": contract,
        "payload": dict(payload),
        "message_id": message_id,
        "state": PENDING,
        "attempts": 0,
        "max_attempts": max_attempts,
        "next_attempt_at": when,
        "created_at": when,
    }
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        insert(OutboxRow)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(OutboxRow.id)
    )
    return session.execute(stmt).scalar() is not None  # (rowcount is -1 here on psycopg)


def _due(now: datetime) -> Any:
    return or_(
        and_(OutboxRow.state == PENDING, OutboxRow.next_attempt_at <= now),
        and_(OutboxRow.state == SENDING, OutboxRow.leased_until < now),  # its sender died
    )


def claim(
    db: Database,
    worker: str,
    *,
    kinds: Optional[Iterable[str]] = None,
    limit: int = 10,
    lease: timedelta = DEFAULT_LEASE,
    now: Optional[datetime] = None,
) -> list[OutboxItem]:
    """Lease up to `limit` due rows for `worker`; each is counted as an attempt."""
    when = now or utcnow()
    with db.write() as session:
        query = (
            select(OutboxRow).where(_due(when)).order_by(OutboxRow.next_attempt_at, OutboxRow.id)
        )
        if kinds is not None:
            query = query.where(OutboxRow.kind.in_(list(kinds)))
        query = query.limit(limit)
        if not db.is_sqlite:
            query = query.with_for_update(skip_locked=True)
        claimed: list[OutboxItem] = []
        for row in session.scalars(query).all():
            taken = session.execute(
                update(OutboxRow)
                .where(OutboxRow.id == row.id, _due(when))
                .values(
                    state=SENDING,
                    leased_by=worker,
                    leased_until=when + lease,
                    attempts=OutboxRow.attempts + 1,
                )
                .execution_options(synchronize_session=False)
            ).rowcount  # type: ignore[attr-defined]
            if taken:
                claimed.append(
                    OutboxItem(
                        id=row.id,
                        kind=row.kind,
                        key=row.key,
                        ref=row.ref,
                        contract=row.contract,
                        payload=dict(row.payload),
                        message_id=row.message_id,
                        attempts=row.attempts + 1,
                        max_attempts=row.max_attempts,
                    )
                )
        return claimed


def _settle(db: Database, item: OutboxItem, worker: str, **values: Any) -> bool:
    """Record an outcome only if `worker` still holds the lease (else another took over)."""
    with db.write() as session:
        done = session.execute(
            update(OutboxRow)
            .where(
                OutboxRow.id == item.id, OutboxRow.state == SENDING, OutboxRow.leased_by == worker
            )
            .values(leased_by=None, leased_until=None, **values)
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
    return bool(done)


def complete(db: Database, item: OutboxItem, worker: str, now: Optional[datetime] = None) -> bool:
    return _settle(db, item, worker, state=SENT, sent_at=now or utcnow(), last_error=None)


def fail(
    db: Database,
    item: OutboxItem,
    worker: str,
    error: str,
    *,
    permanent: bool,
    now: Optional[datetime] = None,
) -> str:
    """Back to `pending` after a backoff, or `failed` when permanent or out of attempts."""
    when = now or utcnow()
    final = permanent or item.attempts >= item.max_attempts
    state = FAILED if final else PENDING
    _settle(
        db,
        item,
        worker,
        state=state,
        last_error=error[:ERROR_LIMIT],
        next_attempt_at=when + (timedelta(0) if final else backoff(item.attempts)),
    )
    return state


def drain(
    db: Database,
    worker: str,
    handlers: Mapping[str, Handler],
    *,
    limit: int = 10,
    lease: timedelta = DEFAULT_LEASE,
    now: Optional[Callable[[], datetime]] = None,
) -> DrainResult:
    """Claim and deliver due rows of the kinds in `handlers` until none is left (or `limit`
    rounds found nothing new); safe to run in any number of collectors at once."""
    clock = now or utcnow
    result = DrainResult()
    while True:
        items = claim(db, worker, kinds=handlers, limit=limit, lease=lease, now=clock())
        if not items:
            return result
        for item in items:
            _deliver(db, worker, handlers[item.kind], item, result, clock)


def _deliver(
    db: Database,
    worker: str,
    handler: Handler,
    item: OutboxItem,
    result: DrainResult,
    clock: Callable[[], datetime],
) -> None:
    try:
        handler(item)
    except PermanentFailure as exc:
        log.warning("outbox %s (%s) failed permanently: %s", item.id, item.kind, exc)
        fail(db, item, worker, str(exc), permanent=True, now=clock())
        result.failed.append(item.id)
        return
    except Exception as exc:  # temporary by default: a network or server problem passes
        state = fail(db, item, worker, f"{type(exc).__name__}: {exc}", permanent=False, now=clock())
        log.info(
            "outbox %s (%s) attempt %d failed (%s): %s",
            item.id,
            item.kind,
            item.attempts,
            state,
            exc,
        )
        (result.failed if state == FAILED else result.retried).append(item.id)
        return
    if complete(db, item, worker, now=clock()):
        result.sent.append(item.id)
    else:
        result.lost_lease.append(item.id)


def counts(session: Session) -> dict[tuple[str, str], int]:
    """(kind, state) → rows: for /metrics and listings."""
    rows = session.execute(
        select(OutboxRow.kind, OutboxRow.state, func.count()).group_by(
            OutboxRow.kind, OutboxRow.state
        )
    ).all()
    return {(kind, state): n for kind, state, n in rows}
