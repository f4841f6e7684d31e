"""Hosts under contract, their runs, and "inspect now"."""

from __future__ import annotations

from typing import Annotated, Optional

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.api.schemas import ERRORS, NOT_FOUND, HostOut, InspectRequested, RunOut
from collector.auth import Db, Engineer, Principal, Reader
from collector.db.models import Host, Run
from collector.db.types import utcnow

router = APIRouter(tags=["hosts"])

Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0)]


def visible_host(session: Session, who: Principal, host_id: str) -> Host:
    host = session.get(Host, host_id)
    if host is None or not who.sees(host.contract):
        raise HTTPException(404, "host not found")
    return host


@router.get("/hosts", response_model=list[HostOut], responses=ERRORS)
def list_hosts(
    db: Db,
    who: Reader,
    contract: Optional[str] = None,
    include_revoked: bool = False,
    limit: Limit = 200,
    offset: Offset = 0,
) -> list[HostOut]:
    query = select(Host).order_by(Host.contract, Host.hostname, Host.id)
    if who.contract is not None:
        query = query.where(Host.contract == who.contract)
    if contract is not None:
        query = query.where(Host.contract == contract)
    if not include_revoked:
        query = query.where(Host.revoked_at.is_(None))
    with db.read() as session:
        return [HostOut.of(h) for h in session.scalars(query.limit(limit).offset(offset))]


@router.get("/hosts/{host_id}", response_model=HostOut, responses={**ERRORS, **NOT_FOUND})
def get_host(host_id: str, db: Db, who: Reader) -> HostOut:
    with db.read() as session:
        return HostOut.of(visible_host(session, who, host_id))


@router.get("/hosts/{host_id}/runs", response_model=list[RunOut], responses={**ERRORS, **NOT_FOUND})
def host_runs(
    host_id: str, db: Db, who: Reader, limit: Limit = 100, offset: Offset = 0
) -> list[RunOut]:
    """Newest first."""
    with db.read() as session:
        visible_host(session, who, host_id)
        rows = session.scalars(
            select(Run)
            .where(Run.host_id == host_id)
            .order_by(Run.created_at.desc(), Run.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return [RunOut.of(r) for r in rows]


@router.post(
    "/hosts/{host_id}/inspect",
    response_model=InspectRequested,
    status_code=202,
    responses={**ERRORS, **NOT_FOUND},
)
def request_inspection(host_id: str, db: Db, who: Engineer) -> InspectRequested:
    """The agent hears of it in its next heartbeat answer and runs the built-in inspection."""
    with db.write() as session:
        host = visible_host(session, who, host_id)
        if host.revoked_at is not None or host.credential_sha256 is None:
            raise HTTPException(404, "host has no enrolled agent to ask")
        host.inspect_requested_at = host.inspect_requested_at or utcnow()
        return InspectRequested(host_id=host.id, inspect_requested_at=host.inspect_requested_at)
