"""POST /enroll: a single-use token and the host's facts buy a per-host credential."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from sqlalchemy import select, update

from checks.wire import EnrollRequest, EnrollResponse
from collector.api.body import documented, json_body
from collector.api.schemas import ERRORS
from collector.auth import HOST_PREFIX, Db, digest, new_secret
from collector.db.models import EnrollToken, Host
from collector.db.types import utcnow
from collector.ingest import new_host

router = APIRouter(tags=["agents"])


@router.post(
    "/enroll",
    response_model=EnrollResponse,
    status_code=201,
    responses=ERRORS,
    openapi_extra=documented(EnrollRequest),
)
def enroll(
    body: Annotated[EnrollRequest, Depends(json_body(EnrollRequest))], db: Db
) -> EnrollResponse:
    """Re-enrolling a hostname that is already live under the contract (a reinstall) keeps the
    host and its history and replaces its credential."""
    now = utcnow()
    credential = new_secret(HOST_PREFIX)
    token_hash = digest(body.token)
    with db.write() as session:
        # The conditional update is the single-use guarantee, also across collectors.
        claimed = session.execute(
            update(EnrollToken)
            .where(
                EnrollToken.token_sha256 == token_hash,
                EnrollToken.used_at.is_(None),
                EnrollToken.expires_at > now,
            )
            .values(used_at=now)
            .returning(EnrollToken.contract)
        ).first()
        if claimed is None:
            raise HTTPException(401, "enroll token unknown, used or expired")
        contract = claimed.contract
        host = session.scalars(
            select(Host).where(
                Host.contract == contract,
                Host.hostname == body.host.hostname,
                Host.revoked_at.is_(None),
            )
        ).first()
        if host is None:
            host = new_host(
                contract,
                body.host,
                tags=body.tags,
                now=now,
                credential_sha256=digest(credential),
                agent_version=body.agent_version,
            )
            session.add(host)
            session.flush()
        else:
            host.credential_sha256 = digest(credential)
            host.tags = list(body.tags)
            host.identity = body.host.model_dump(mode="json")
            host.agent_version = body.agent_version
        session.execute(
            update(EnrollToken)
            .where(EnrollToken.token_sha256 == token_hash)
            .values(used_by_host=host.id)
        )
        host_id = host.id
    return EnrollResponse(host_id=host_id, credential=credential, contract=contract)
