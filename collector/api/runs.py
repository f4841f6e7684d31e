"""POST /runs (agents, and engineers submitting SSH runs) and GET /runs/{run_id}."""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Optional, Union

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Query, Request, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from checks.model import InspectionRun
from checks.wire import RunReceipt
from collector.alerts.engine import after_ingest
from collector.api.body import documented, json_text, validated
from collector.api.schemas import ERRORS, NOT_FOUND, Problem, RunDetail, RunOut
from collector.auth import Db, HostCredentials, Principal, Reader, Role, poster
from collector.db.engine import Database
from collector.db.models import Run
from collector.group_commit import GroupCommit, Posted
from collector.ingest import (
    HostRef,
    Ingested,
    Prepared,
    host_for_submission,
    load_payload,
    load_results,
    prepare,
)

router = APIRouter(tags=["runs"])


@router.post(
    "/runs",
    response_model=RunReceipt,
    status_code=201,
    openapi_extra=documented(InspectionRun),
    responses={
        **ERRORS,
        **NOT_FOUND,
        200: {"model": RunReceipt, "description": "a replay: the original receipt"},
        409: {"model": Problem, "description": "run_id already used by a different payload"},
    },
)
async def post_run(
    request: Request,
    who: Annotated[Principal, Depends(poster)],
    background: BackgroundTasks,
    contract: Annotated[
        Optional[str],
        Query(description="API keys: the contract the run belongs to (SSH --submit)"),
    ] = None,
) -> Response:
    """Store a run once. Content-Encoding: gzip is accepted.

    Async: the run is validated and judged on the event loop, an agent's when its batch starts,
    and only the database work leaves it, batched with the runs of other requests
    (`collector.group_commit`)."""
    # (This docstring is the operation's OpenAPI description.) The receipt goes out as a
    # Response built here (`receipt_response`): handed the model, FastAPI would validate it
    # once more and serialise it through the route's field; `response_model` stays for the
    # OpenAPI document. The database comes from the app's state, not from a dependency: every
    # dependency FastAPI solves costs more than the lookup.
    started = time.perf_counter()
    body = await json_text(request)
    item: Union[Posted, Prepared]
    if who.kind == "host":
        assert who.host_id is not None and who.contract is not None
        if contract is not None and contract != who.contract:
            raise HTTPException(403, "a host posts runs to its own contract only")
        host = HostRef(who.host_id, who.contract, who.hostname, who.tags, who.credential_sha256)
        item = Posted(host, body)  # validated and judged with its batch (`group_commit.Posted`)
    else:
        if who.role == Role.viewer:
            raise HTTPException(403, "viewers may only read")
        if contract is None:
            raise HTTPException(422, "query parameter 'contract' is required with an API key")
        if not who.sees(contract):
            raise HTTPException(404, f"contract {contract} not found")
        run = validated(InspectionRun, body.text)  # its host is named inside
        db: Database = request.app.state.db
        host = await run_in_threadpool(host_for_submission, db, contract, run.host)
        item = prepare(host, run, "api", raw=body.text, packed=body.gzip)
    credentials: HostCredentials = request.app.state.host_credentials
    writer: GroupCommit[Union[Posted, Prepared], Prepared, Ingested] = request.app.state.run_writer
    with credentials.rechecked(who):
        outcome = await writer.store(item)
    receipt = outcome.receipt
    if outcome.alerts_due:  # after the response: alerts never slow down or fail an ingest
        background.add_task(after_ingest, request.app.state.alerting, host.id)
    request.app.state.metrics.run_stored(receipt.duplicate, time.perf_counter() - started)
    return receipt_response(receipt)


def receipt_response(receipt: RunReceipt) -> Response:
    """201 for a run stored now, 200 for a replay; the body as `response_model=RunReceipt`
    serialises it (by alias, nothing left out)."""
    return Response(
        receipt.model_dump_json(by_alias=True),
        status_code=200 if receipt.duplicate else 201,
        media_type="application/json",
    )


@router.get("/runs/{run_id}", response_model=RunDetail, responses={**ERRORS, **NOT_FOUND})
def get_run(run_id: uuid.UUID, db: Db, who: Reader) -> RunDetail:
    with db.read() as session:
        row = session.scalars(select(Run).where(Run.run_id == str(run_id))).first()
        if row is None or not who.sees(row.contract):
            raise HTTPException(404, "run not found")
        return RunDetail(
            **RunOut.of(row).model_dump(), run=load_payload(row), results=load_results(row)
        )
