"""Host availability from signs of life: heartbeats and samples, by the host's own clock.

A silence longer than the contract's `silence_minutes` is downtime. Samples taken while the
network was down arrive later from the agent's spool and prove the host was up, so intervals
are revised when older evidence lands inside one. An interval with no end is a silence still
going on: the sweep (a scheduler job) opens those, the next sign of life closes them, and
`availability` counts a silence the sweep has not recorded yet. Only enrolled agents are
watched: a host seen only over SSH has no availability figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Optional, cast

from sqlalchemy import Table, bindparam, delete, select
from sqlalchemy.orm import Session

from collector.contracts import Contract
from collector.db.contract_store import contract_version, get_contract, silence_minutes
from collector.db.models import Downtime, Host
from collector.db.types import utcnow

_DOWNTIME = cast(Table, Downtime.__table__)
_END_SILENCES = delete(_DOWNTIME).where(
    _DOWNTIME.c.host_id.in_(bindparam("b_hosts", expanding=True)), _DOWNTIME.c.end.is_(None)
)
"""The open silences of hosts that showed signs of life: built once, run for each transaction of
sample batches."""

CLOCK_SKEW = timedelta(minutes=5)
"""Evidence from further in the future than this (a wrong host clock) is ignored."""


def silence_at(session: Session, contract: str, version: str, default_minutes: int) -> timedelta:
    """The silence limit of `contract` as of `version` (its source_sha256, read along with the
    locked host row: the cached model of that version needs no query of its own)."""
    return silence_of(contract_version(session, contract, version), default_minutes)


def silence_of(contract: Optional[Contract], default_minutes: int) -> timedelta:
    """A contract's silence limit; a contract no longer imported has the collector's."""
    minutes = silence_minutes(contract, default_minutes) if contract else default_minutes
    return timedelta(minutes=minutes)


@dataclass(frozen=True)
class Seen:
    """Signs of life of one host whose row the caller holds locked: `last` is its last_seen_at
    (or its enrollment) before these."""

    host_id: str
    last: datetime
    times: Sequence[datetime]
    silence: timedelta


def observe(
    session: Session, seen: Sequence[Seen], now: Optional[datetime] = None
) -> dict[str, datetime]:
    """Record the signs of life of several hosts in the write transaction holding their rows;
    returns each host's new last_seen_at where it moved on, for the caller to write (a batch
    of hosts in one statement). The open silences of those hosts end in one statement too."""
    limit = (now or utcnow()) + CLOCK_SKEW
    moved: dict[str, datetime] = {}
    revised: list[tuple[Seen, list[datetime]]] = []
    opened: list[Downtime] = []
    for host in seen:
        points = sorted({t for t in host.times if t <= limit})
        if not points:
            continue
        newer = [t for t in points if t > host.last]
        if newer:  # the silence still going on ends now; gaps are recomputed from `last` below
            moved[host.host_id] = newer[-1]
        # Closed intervals all end by `last` (the sweep opens intervals; only signs of life up
        # to `last` close them): points all after it — samples in order, the usual case —
        # split none.
        if points[0] <= host.last:
            revised.append((host, points))
        opened += [
            Downtime(host_id=host.host_id, start=a, end=b)
            for a, b in zip([host.last, *newer], newer)
            if b - a > host.silence
        ]
    if moved:  # on the connection: no Downtime is loaded here for the ORM to keep in step
        session.connection().execute(_END_SILENCES, {"b_hosts": list(moved)})
    for host, points in revised:
        _split_closed(session, host, points)
    session.add_all(opened)
    return moved


def _split_closed(session: Session, host: Seen, points: list[datetime]) -> None:
    """Cut the host's recorded silences at the signs of life found inside them."""
    closed = session.scalars(
        select(Downtime).where(
            Downtime.host_id == host.host_id,
            Downtime.start < points[-1],
            Downtime.end > points[0],
        )
    ).all()
    for interval in closed:
        assert interval.end is not None
        inside = [t for t in points if interval.start < t < interval.end]
        if not inside:
            continue
        edges = [interval.start, *inside, interval.end]
        session.delete(interval)
        for a, b in zip(edges, edges[1:]):
            if b - a > host.silence:
                session.add(Downtime(host_id=host.host_id, start=a, end=b))


def silent_hosts(
    session: Session, default_minutes: int, now: Optional[datetime] = None
) -> list[Host]:
    """Live agents silent longer than their contract allows (read only)."""
    when = now or utcnow()
    hosts = session.scalars(
        select(Host).where(Host.revoked_at.is_(None), Host.credential_sha256.is_not(None))
    ).all()
    # each contract's limit once: read per host, its version query made the scheduler's sweep
    # (every minute, in every worker) and each /metrics scrape one query a host — 140–160 ms
    # under the ingest bench's load at 200 hosts, against 10–12 ms now
    limits = {
        number: silence_of(get_contract(session, number), default_minutes)
        for number in {h.contract for h in hosts}
    }
    return [h for h in hosts if when - (h.last_seen_at or h.enrolled_at) > limits[h.contract]]


def sweep(session: Session, default_minutes: int, now: Optional[datetime] = None) -> list[str]:
    """Open a downtime for every silent agent (scheduler job); returns their host ids."""
    ongoing = set(session.scalars(select(Downtime.host_id).where(Downtime.end.is_(None))))
    silent = silent_hosts(session, default_minutes, now)
    for host in silent:
        if host.id not in ongoing:
            session.add(Downtime(host_id=host.id, start=host.last_seen_at or host.enrolled_at))
    return [h.id for h in silent]


def availability(
    session: Session,
    host_id: str,
    start: datetime,
    end: datetime,
    *,
    default_minutes: int = 30,
    now: Optional[datetime] = None,
) -> Optional[float]:
    """Percent of [start, end) the host was up, counted from its enrolment and up to now.

    None when the host is not watched (no agent) or the window lies outside its enrolment.
    """
    host = session.get(Host, host_id)
    if host is None or host.credential_sha256 is None:
        return None
    when = now or utcnow()
    span_start = max(start, host.enrolled_at)
    span_end = min(end, when)
    if span_end <= span_start:
        return None
    rows = session.scalars(
        select(Downtime).where(
            Downtime.host_id == host_id,
            Downtime.start < span_end,
        )
    ).all()
    intervals = [(d.start, d.end) for d in rows]
    last = host.last_seen_at or host.enrolled_at
    limit = silence_of(get_contract(session, host.contract), default_minutes)
    silent_now = when - last > limit
    if silent_now and not any(e is None for _, e in intervals):
        intervals.append((last, None))  # the sweep has not run since the host fell silent
    down = timedelta()
    for d_start, d_end in intervals:
        a = max(d_start, span_start)
        b = min(d_end or span_end, span_end)
        if b > a:
            down += b - a
    total = span_end - span_start
    return round(100.0 * (1 - down / total), 4)
