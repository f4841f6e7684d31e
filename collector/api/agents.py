"""What an enrolled agent sends besides runs: sample batches and heartbeats."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from checks.wire import Heartbeat, HeartbeatReply, SampleBatch
from collector.api.body import documented, json_body
from collector.api.schemas import ERRORS, SampleReceipt
from collector.auth import CachedAgent, Db, HostCredentials, Principal
from collector.availability import Seen, observe, silence_at
from collector.db.models import ContractRow, GapRow, Host
from collector.db.types import utcnow
from collector.group_commit import GroupCommit
from collector.ingest import check_credential
from collector.sample_ingest import SamplesIn

router = APIRouter(tags=["agents"])


def _locked_host(session: Session, who: Principal, default_silence: int) -> tuple[Host, timedelta]:
    """The caller's host row, locked, its cached credential re-checked, and the contract's
    silence limit, in one round trip."""
    assert who.host_id is not None
    host, version = session.execute(
        select(Host, ContractRow.source_sha256)
        .join(ContractRow, ContractRow.number == Host.contract)
        .where(Host.id == who.host_id)
        .with_for_update(of=Host)
    ).one()
    check_credential(host, who.credential_sha256)
    return host, silence_at(session, host.contract, version, default_silence)


@router.post(
    "/samples",
    response_model=SampleReceipt,
    responses=ERRORS,
    openapi_extra=documented(SampleBatch),
)
async def post_samples(
    batch: Annotated[SampleBatch, Depends(json_body(SampleBatch))],
    request: Request,
    who: CachedAgent,
) -> SampleReceipt:
    """Idempotent by batch_id; a sample whose (host, time) is already stored is skipped.

    Stored with the batches other agents post meanwhile, in one transaction
    (`collector.group_commit`, `collector.sample_ingest`)."""
    assert who.host_id is not None
    credentials: HostCredentials = request.app.state.host_credentials
    writer: GroupCommit[SamplesIn, SamplesIn, SampleReceipt] = request.app.state.sample_writer
    with credentials.rechecked(who):
        receipt = await writer.store(SamplesIn(who.host_id, who.credential_sha256, batch))
    if not receipt.duplicate:
        request.app.state.metrics.count_samples(receipt.stored)
    return receipt


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
        host, silence = _locked_host(session, who, settings.silence_minutes)
        last = host.last_seen_at or host.enrolled_at
        moved = observe(session, [Seen(host.id, last, [beat.at], silence)], now)
        host.last_seen_at = moved.get(host.id, host.last_seen_at)
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
