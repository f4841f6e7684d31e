"""Findings (one row per episode of a problem) and their acknowledgement."""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from fastapi import APIRouter, Depends, HTTPException, Query
from sqlalchemy import select

from checks.model import Severity
from collector.api.body import documented, json_body
from collector.api.schemas import ERRORS, NOT_FOUND, AckRequest, FindingOut
from collector.auth import Db, Engineer, Reader
from collector.db.models import Finding
from collector.db.types import utcnow

router = APIRouter(tags=["findings"])


@router.get("/findings", response_model=list[FindingOut], responses=ERRORS)
def list_findings(
    db: Db,
    who: Reader,
    contract: Optional[str] = None,
    host: Optional[str] = None,
    state: Optional[Literal["open", "resolved"]] = None,
    severity: Annotated[Optional[list[Severity]], Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[FindingOut]:
    """Newest first; `severity` may repeat (?severity=critical&severity=warning)."""
    query = select(Finding).order_by(Finding.last_seen.desc(), Finding.id.desc())
    if who.contract is not None:
        query = query.where(Finding.contract == who.contract)
    if contract is not None:
        query = query.where(Finding.contract == contract)
    if host is not None:
        query = query.where(Finding.host_id == host)
    if state is not None:
        query = query.where(Finding.state == state)
    if severity:
        query = query.where(Finding.severity.in_([s.value for s in severity]))
    with db.read() as session:
        return [FindingOut.of(f) for f in session.scalars(query.limit(limit).offset(offset))]


@router.post(
    "/findings/{finding_id}/ack",
    response_model=FindingOut,
    responses={**ERRORS, **NOT_FOUND},
    openapi_extra=documented(AckRequest),
)
def acknowledge(
    finding_id: int,
    body: Annotated[AckRequest, Depends(json_body(AckRequest))],
    db: Db,
    who: Engineer,
) -> FindingOut:
    """The first acknowledgement counts (response times are measured on it); repeating it
    changes nothing."""
    with db.write() as session:
        finding = session.get(Finding, finding_id)
        if finding is None or not who.sees(finding.contract):
            raise HTTPException(404, "finding not found")
        if finding.ack_at is None:
            finding.ack_at = utcnow()
            finding.ack_by = who.label
            finding.ack_note = body.note
        return FindingOut.of(finding)
