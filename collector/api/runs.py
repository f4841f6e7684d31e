"""POST /runs (agents, and engineers submitting SSH runs) and GET /runs/{run_id}."""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Optional, Union

from fastapi import APIRouter, HTTPException, Query, Request, Response
from sqlalchemy import select
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from checks.model import InspectionRun
from checks.wire import RunReceipt
from collector.alerts.engine import after_ingest
from collector.api.body import documented, json_text, validated
from collector.api.schemas import ERRORS, NOT_FOUND, Problem, RunDetail, RunOut
from collector.auth import Db, Engineer, HostCredentials, Principal, Reader, host_principal
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
    who: Engineer,
    contract: Annotated[
        Optional[str],
        Query(description="API keys: the contract the run belongs to (SSH --submit)"),
    ] = None,
) -> Response:
    """Store a run once. Content-Encoding: gzip is accepted.

    With a host credential (an agent): the run is its host's, in its contract (`contract`, if
    given, must be that one). With an API key (engineer, admin): `contract` names the contract,
    the run names its host. Async: the run is validated and judged on the event loop, an
    agent's when its batch starts, and only the database work leaves it, batched with the runs
    of other requests (`collector.group_commit`)."""
    # (This docstring is the operation's OpenAPI description.) Agents' runs never get here:
    # `agent_lane.AgentLane` serves them ahead of FastAPI, and this route is their OpenAPI
    # entry. The database comes from the app's state, not from a dependency: every dependency
    # FastAPI solves costs more than the lookup.
    started = time.perf_counter()
    if contract is None:
        raise HTTPException(422, "query parameter 'contract' is required with an API key")
    if not who.sees(contract):
        raise HTTPException(404, f"contract {contract} not found")
    body = await json_text(request)
    run = validated(InspectionRun, body.text)  # its host is named inside
    db: Database = request.app.state.db
    host = await run_in_threadpool(host_for_submission, db, contract, run.host)
    item = prepare(host, run, "api", raw=body.text, packed=body.gzip)
    return await stored(request, who, item, started)


async def post_agent_run(request: Request, secret: str) -> Response:
    """POST /runs with a host credential (`secret`): the run is queued as posted, and validated
    and judged with its batch (`group_commit.Posted`)."""
    started = time.perf_counter()
    who = await host_principal(request.app.state, secret)
    assert who.host_id is not None and who.contract is not None
    contract = request.query_params.get("contract")
    if contract is not None and contract != who.contract:
        raise HTTPException(403, "a host posts runs to its own contract only")
    host = HostRef(who.host_id, who.contract, who.hostname, who.tags, who.credential_sha256)
    return await stored(request, who, Posted(host, await json_text(request)), started)


async def stored(
    request: Request, who: Principal, item: Union[Posted, Prepared], started: float
) -> Response:
    """The answer to a POST /runs once the group commit has stored `item`; alerts follow in the
    background, after the response, so that they never slow down or fail an ingest."""
    state = request.app.state
    credentials: HostCredentials = state.host_credentials
    writer: GroupCommit[Union[Posted, Prepared], Prepared, Ingested] = state.run_writer
    with credentials.rechecked(who):
        outcome = await writer.store(item)
    state.metrics.run_stored(outcome.receipt.duplicate, time.perf_counter() - started)
    response = receipt_response(outcome.receipt)
    if outcome.alerts_due:
        response.background = BackgroundTask(after_ingest, state.alerting, item.host.id)
    return response


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
