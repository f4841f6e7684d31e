"""POST /runs answers with a Response it builds itself (`receipt_response`), not through
FastAPI's `response_model` serialisation: the bytes, status and headers must stay what
`response_model=RunReceipt` gave."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from checks.wire import RunReceipt
from collector.api.runs import receipt_response

RECEIPTS = [
    RunReceipt(
        run_id=uuid.UUID(int=7),
        host_id="h-1",
        received_at=datetime(2026, 11, 20, 8, 0, 0, 123456, tzinfo=timezone.utc),
        findings=3,
    ),
    RunReceipt(
        run_id=uuid.uuid4(),
        host_id="主机-2",
        received_at=datetime(2026, 11, 20, 16, 0, tzinfo=timezone(timedelta(hours=8))),
        findings=0,
        duplicate=True,
    ),
]


@pytest.mark.parametrize("receipt", RECEIPTS)
def test_receipt_response_is_what_response_model_gave(receipt: RunReceipt) -> None:
    app = FastAPI()

    @app.post("/model", response_model=RunReceipt, status_code=201)
    def by_model() -> RunReceipt:
        return receipt

    @app.post("/built", response_model=RunReceipt, status_code=201)
    def built() -> object:
        return receipt_response(receipt)

    with TestClient(app) as client:
        expected, answer = client.post("/model"), client.post("/built")
    assert answer.content == expected.content
    assert answer.headers["content-type"] == expected.headers["content-type"]
    assert answer.headers["content-length"] == expected.headers["content-length"]
    # a replay answers 200 (FastAPI's route gave the status the endpoint set on `response`)
    assert answer.status_code == (200 if receipt.duplicate else 201)
