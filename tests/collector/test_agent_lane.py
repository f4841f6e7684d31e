"""Agents' POST /runs, served by `AgentLane` ahead of FastAPI, answers as FastAPI's routes do:
the same status, JSON, headers and /metrics count for every refusal, and the catch-all's 500
for what nothing handles."""

from __future__ import annotations

import gzip
import json
import logging

import pytest
from fastapi import Request, Response
from fastapi.testclient import TestClient
from sqlalchemy import text

from collector.api.agent_lane import Handler, handler_for
from collector.app import create_app
from collector.db.engine import Database
from collector.settings import CollectorSettings
from tests.collector.conftest import T0, Fixture, bearer, make_run, run_json

pytestmark = pytest.mark.py311


def _rejected(client: TestClient, reason: str) -> int:
    prefix = f'xunjian_requests_rejected_total{{reason="{reason}"}} '
    lines = [ln for ln in client.get("/metrics").text.splitlines() if ln.startswith(prefix)]
    return int(float(lines[0].removeprefix(prefix))) if lines else 0


def test_an_agents_refusals_are_the_apps_own(fx: Fixture, client: TestClient) -> None:
    fx.contract("A")
    fx.contract("B")
    _, cred = fx.enroll("A", "a01")
    run = run_json(make_run("a01", T0))

    r = client.post("/api/v1/runs", json=run, headers=bearer("xjh_unknown"))
    assert r.status_code == 401
    assert r.json() == {"detail": "unknown host credential"}
    assert r.headers["www-authenticate"] == "Bearer"
    assert _rejected(client, "unauthorized") == 1

    r = client.post("/api/v1/runs?contract=B", json=run, headers=bearer(cred))
    assert r.status_code == 403 and "own contract" in r.json()["detail"]
    assert _rejected(client, "forbidden") == 1

    bad = {**run, "facts": {**run["facts"], "cpu": {"usage_percent": "lots"}}}
    r = client.post("/api/v1/runs", json=bad, headers=bearer(cred))
    assert r.status_code == 422
    assert "body.facts.cpu.usage_percent" in r.json()["error"]
    assert all(set(e) == {"type", "loc", "msg"} for e in r.json()["detail"])  # no input echoed
    assert _rejected(client, "invalid") == 1

    headers = {**bearer(cred), "Content-Encoding": "gzip", "Content-Type": "application/json"}
    bomb = gzip.compress(b" " * (4 << 20), 9)  # 4 MiB inflated, over the tests' 1 MiB
    r = client.post("/api/v1/runs", content=bomb, headers=headers)
    assert r.status_code == 413 and "decompression" in r.json()["detail"]
    assert _rejected(client, "too_large") == 1

    r = client.post(
        "/api/v1/runs", content=gzip.compress(json.dumps(run).encode()), headers=headers
    )
    assert r.status_code == 201 and r.json()["duplicate"] is False
    first = r.json()
    changed = {**run, "agent_version": "9.9"}
    r = client.post("/api/v1/runs", json=changed, headers=bearer(cred))
    assert r.status_code == 409
    assert _rejected(client, "conflict") == 1
    r = client.post("/api/v1/runs", json=run, headers={"Authorization": f"bearer  {cred} "})
    assert r.status_code == 200 and r.json() == {**first, "duplicate": True}  # read as HTTPBearer


def test_what_nothing_handles_is_the_catch_alls_500_on_both_paths(
    fx: Fixture, settings: CollectorSettings, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """A database that cannot take the run (its table gone) fails an agent's run as it fails
    an engineer's: the catch-all's JSON 500, logged, counted."""
    fx.contract("A")
    _, cred = fx.enroll("A", "a01")
    key = fx.api_key("engineer")
    with db.write() as session:
        session.execute(text("ALTER TABLE runs RENAME TO runs_gone"))
    with TestClient(create_app(settings, db), raise_server_exceptions=False) as client:
        answers = [
            client.post("/api/v1/runs", json=run_json(make_run("a01", T0)), headers=bearer(cred)),
            client.post(
                "/api/v1/runs?contract=A",
                json=run_json(make_run("ssh01", T0)),
                headers=bearer(key),
            ),
        ]
        assert [r.status_code for r in answers] == [500, 500]
        assert answers[0].json() == answers[1].json()
        assert "collector log" in answers[0].json()["detail"]
        assert _rejected(client, "server_error") == 2
    crashes = [r for r in caplog.records if r.levelno == logging.ERROR and "POST" in r.message]
    assert len(crashes) >= 2 and all("/api/v1/runs" in r.message for r in crashes)


def test_an_agent_behind_a_root_path_takes_the_lane_too(
    fx: Fixture, settings: CollectorSettings, db: Database
) -> None:
    """Behind a proxy that mounts the collector under a prefix (uvicorn's --root-path), an
    agent's run still reaches the lane: FastAPI's route would refuse its credential (403)."""
    fx.contract("A")
    _, cred = fx.enroll("A", "a01")
    with TestClient(create_app(settings, db), root_path="/xunjian") as client:
        run = run_json(make_run("a01", T0))
        r = client.post("/xunjian/api/v1/runs", json=run, headers=bearer(cred))
        assert r.status_code == 201, r.text
        assert client.get("/xunjian/api/v1/hosts", headers=bearer(cred)).status_code == 403


class Outer(Exception):
    pass


class Inner(Outer):
    pass


def _handler() -> Handler:
    async def answer(_request: Request, _exc: Exception) -> Response:
        return Response()

    return answer


def test_the_nearest_handler_is_picked_and_the_catch_all_left_to_the_server() -> None:
    outer, inner, catch_all = _handler(), _handler(), _handler()
    handlers = {Outer: outer, Inner: inner, Exception: catch_all, 500: catch_all}
    assert handler_for(handlers, Inner()) is inner
    assert handler_for(handlers, Outer()) is outer
    assert handler_for(handlers, ValueError()) is None
    assert handler_for({Outer: outer}, Inner()) is outer
