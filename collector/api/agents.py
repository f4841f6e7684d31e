"""What an enrolled agent sends besides runs: sample batches and heartbeats."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from sqlalchemy import insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from checks.wire import Heartbeat, HeartbeatReply, SampleBatch
from collector.api.body import documented, json_body
from collector.api.schemas import ERRORS, SampleReceipt
from collector.auth import Agent, Db
from collector.availability import observe, silence_for
from collector.db.models import GapRow, Host, SampleBatchRow, SampleRow
from collector.db.types import utcnow

router = APIRouter(tags=["agents"])


def _locked_host(session: Session, host_id: str) -> Host:
    return session.scalars(select(Host).where(Host.id == host_id).with_for_update()).one()


@router.post(
    "/samples",
    response_model=SampleReceipt,
    responses=ERRORS,
    openapi_extra=documented(SampleBatch),
)
def post_samples(
    batch: Annotated[SampleBatch, Depends(json_body(SampleBatch))],
    request: Request,
    db: Db,
    who: Agent,
) -> SampleReceipt:
    """Idempotent by batch_id; a sample whose (host, time) is already stored is skipped."""
    assert who.host_id is not None
    batch_id = str(batch.batch_id)
    settings = request.app.state.settings
    try:
        with db.write() as session:
            host = _locked_host(session, who.host_id)
            seen = session.get(SampleBatchRow, batch_id)
            if seen is not None:
                return SampleReceipt(
                    batch_id=batch.batch_id,
                    samples=seen.samples,
                    stored=seen.stored,
                    duplicate=True,
                )
            rows = [
                {
                    **s.model_dump(exclude={"mounts"}),
                    "mounts": [m.model_dump() for m in s.mounts],
                    "host_id": host.id,
                }
                for s in batch.samples
            ]
            stored = 0
            if rows:
                dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
                stmt = (
                    dialect.insert(SampleRow)
                    .on_conflict_do_nothing(index_elements=["host_id", "at"])
                    .returning(SampleRow.id)
                )
                stored = len(session.connection().execute(stmt, rows).all())
            session.execute(
                insert(SampleBatchRow).values(
                    batch_id=batch_id,
                    host_id=host.id,
                    received_at=utcnow(),
                    samples=len(rows),
                    stored=stored,
                )
            )
            observe(
                session,
                host,
                [s.at for s in batch.samples],
                silence_for(session, host, settings.silence_minutes),
            )
    except IntegrityError:  # the same batch stored concurrently by another request
        with db.read() as session:
            seen = session.get(SampleBatchRow, batch_id)
        if seen is None:
            raise
        return SampleReceipt(
            batch_id=batch.batch_id, samples=seen.samples, stored=seen.stored, duplicate=True
        )
    request.app.state.metrics.count_samples(stored)
    return SampleReceipt(batch_id=batch.batch_id, samples=len(rows), stored=stored)


@router.post(
    "/heartbeat",
    response_model=HeartbeatReply,
    responses=ERRORS,
    openapi_extra=documented(Heartbeat),
)
def post_heartbeat(
    beat: Annotated[Heartbeat, Depends(json_body(Heartbeat))], request: Request, db: Db, who: Agent
) -> HeartbeatReply:
    """A sign of life; the answer says whether an engineer asked for an inspection now."""
    assert who.host_id is not None
    settings = request.app.state.settings
    now = utcnow()
    with db.write() as session:
        host = _locked_host(session, who.host_id)
        observe(session, host, [beat.at], silence_for(session, host, settings.silence_minutes))
        if beat.agent_version:
            host.agent_version = beat.agent_version
        known = set(
            session.scalars(
                select(GapRow.gap_id).where(GapRow.gap_id.in_([str(g.gap_id) for g in beat.gaps]))
            )
        )
        for gap in beat.gaps:
            if str(gap.gap_id) not in known:
                known.add(str(gap.gap_id))
                session.add(
                    GapRow(
                        gap_id=str(gap.gap_id),
                        host_id=host.id,
                        kind=gap.kind,
                        dropped=gap.dropped,
                        first_at=gap.first_at,
                        last_at=gap.last_at,
                        received_at=now,
                    )
                )
        inspect_now = host.inspect_requested_at is not None
        host.inspect_requested_at = None
    request.app.state.metrics.count_heartbeat()
    return HeartbeatReply(inspect_now=inspect_now)
