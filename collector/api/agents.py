"""What an enrolled agent sends besides runs: sample batches and heartbeats."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Optional

from fastapi import APIRouter, Depends, Request
from sqlalchemy import insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from checks.wire import Heartbeat, HeartbeatReply, SampleBatch
from collector.api.body import documented, json_body
from collector.api.schemas import ERRORS, SampleReceipt
from collector.auth import CachedAgent, Db, HostCredentials, Principal
from collector.availability import observe
from collector.db.contract_store import contract_version, silence_minutes
from collector.db.models import ContractRow, GapRow, Host, SampleBatchRow, SampleRow
from collector.db.types import utcnow
from collector.ingest import check_credential

router = APIRouter(tags=["agents"])


def _locked_host(
    session: Session, who: Principal, default_silence: int, batch_id: str = ""
) -> tuple[Host, timedelta, Optional[tuple[int, int]]]:
    """The caller's host row, locked, its cached credential re-checked; the contract's silence
    limit; and (samples, stored) of batch `batch_id` when it is already stored. One round trip
    where the samples path had five (credential, lock, batch, contract version)."""
    assert who.host_id is not None
    seen = select(SampleBatchRow).where(SampleBatchRow.batch_id == batch_id)
    host, version, samples, stored = session.execute(
        select(
            Host,
            ContractRow.source_sha256,
            seen.with_only_columns(SampleBatchRow.samples).scalar_subquery(),
            seen.with_only_columns(SampleBatchRow.stored).scalar_subquery(),
        )
        .join(ContractRow, ContractRow.number == Host.contract)
        .where(Host.id == who.host_id)
        .with_for_update(of=Host)
    ).one()
    check_credential(host, who.credential_sha256)
    contract = contract_version(session, host.contract, version)
    minutes = silence_minutes(contract, default_silence) if contract else default_silence
    return host, timedelta(minutes=minutes), None if samples is None else (samples, stored)


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
    who: CachedAgent,
) -> SampleReceipt:
    """Idempotent by batch_id; a sample whose (host, time) is already stored is skipped."""
    batch_id = str(batch.batch_id)
    settings = request.app.state.settings
    credentials: HostCredentials = request.app.state.host_credentials
    try:
        with credentials.rechecked(who), db.write() as session:
            host, silence, seen = _locked_host(session, who, settings.silence_minutes, batch_id)
            if seen is not None:
                return SampleReceipt(
                    batch_id=batch.batch_id,
                    samples=seen[0],
                    stored=seen[1],
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
            connection = session.connection()
            if rows:
                dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
                stmt = (
                    dialect.insert(SampleRow)
                    .on_conflict_do_nothing(index_elements=["host_id", "at"])
                    .returning(SampleRow.id)
                )
                stored = len(connection.execute(stmt, rows).all())
            connection.execute(
                insert(SampleBatchRow).values(
                    batch_id=batch_id,
                    host_id=host.id,
                    received_at=utcnow(),
                    samples=len(rows),
                    stored=stored,
                )
            )
            observe(session, host, [s.at for s in batch.samples], silence)
    except IntegrityError:  # the same batch_id stored concurrently for another host
        with db.read() as session:
            known = session.get(SampleBatchRow, batch_id)
        if known is None:
            raise
        return SampleReceipt(
            batch_id=batch.batch_id, samples=known.samples, stored=known.stored, duplicate=True
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
    beat: Annotated[Heartbeat, Depends(json_body(Heartbeat))],
    request: Request,
    db: Db,
    who: CachedAgent,
) -> HeartbeatReply:
    """A sign of life; the answer says whether an engineer asked for an inspection now."""
    settings = request.app.state.settings
    credentials: HostCredentials = request.app.state.host_credentials
    now = utcnow()
    with credentials.rechecked(who), db.write() as session:
        host, silence, _ = _locked_host(session, who, settings.silence_minutes)
        observe(session, host, [beat.at], silence)
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
