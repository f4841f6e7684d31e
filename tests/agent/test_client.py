"""Enrollment and transport policy against a real HTTP server; the token never reaches a log."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator

import pytest

from agent.client import (
    ENROLLMENT_FILE,
    CollectorError,
    classify,
    enroll,
    load_enrollment,
    retry_after,
)
from agent.settings import AgentSettings
from tests.agent.stub_collector import StubCollector

AGENT = [str(Path(sys.executable).parent / "xunjian-agent")]


@pytest.fixture
def stub() -> Iterator[StubCollector]:
    s = StubCollector()
    yield s
    s.stop()


def agent_env(tmp_path: Path, **extra: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XUNJIAN_AGENT_")}
    env.update(XUNJIAN_AGENT_STATE_DIR=str(tmp_path / "state"), **extra)
    return env


def test_enroll_stores_the_credential_0600_and_never_logs_the_token(
    tmp_path: Path,
    stub: StubCollector,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key in [k for k in os.environ if k.startswith("XUNJIAN_AGENT_")]:
        monkeypatch.delenv(key)
    caplog.set_level(logging.DEBUG)  # httpx and httpcore included
    token = stub.issue_token()
    settings = AgentSettings(state_dir=tmp_path / "state", allow_insecure=True)
    answer = enroll(stub.url, token, settings)
    path = tmp_path / "state" / ENROLLMENT_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = load_enrollment(tmp_path / "state")
    assert (
        saved is not None
        and saved.credential == answer.credential
        and saved.collector_url == stub.url
    )
    assert token not in path.read_text()
    with pytest.raises(CollectorError) as err:  # single use: the stub refuses and echoes it back
        enroll(stub.url, token, settings)
    assert "401" in str(err.value) and token not in str(err.value)
    assert caplog.records and token not in caplog.text


def test_enroll_cli_keeps_the_token_out_of_its_output(tmp_path: Path, stub: StubCollector) -> None:
    token = stub.issue_token()
    env = agent_env(tmp_path, XUNJIAN_AGENT_ALLOW_INSECURE="1")
    ok = subprocess.run(
        [*AGENT, "enroll", stub.url, "--token", token], env=env, capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    again = subprocess.run(
        [*AGENT, "enroll", stub.url, "--token", token], env=env, capture_output=True, text=True
    )
    assert again.returncode != 0 and "401" in again.stderr
    for out in (ok.stdout, ok.stderr, again.stdout, again.stderr):
        assert token not in out
    status = subprocess.run([*AGENT, "status", "--json"], env=env, capture_output=True, text=True)
    assert status.returncode == 0 and '"host_id": "h-' in status.stdout
    saved = load_enrollment(tmp_path / "state")
    assert saved is not None
    assert token not in status.stdout and saved.credential not in status.stdout


def test_plain_http_is_refused_unless_allowed(tmp_path: Path, stub: StubCollector) -> None:
    token = stub.issue_token()
    run = subprocess.run(
        [*AGENT, "enroll", stub.url, "--token", token],
        env=agent_env(tmp_path),
        capture_output=True,
        text=True,
    )
    assert run.returncode != 0 and "refusing plain http://" in run.stderr
    assert not (tmp_path / "state" / ENROLLMENT_FILE).exists()
    bad = subprocess.run(
        [*AGENT, "status"],
        env=agent_env(tmp_path, XUNJIAN_AGENT_COLLECTOR_URL="http://collector.example"),
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and "XUNJIAN_AGENT_ALLOW_INSECURE" in bad.stderr


def test_response_policy() -> None:
    assert classify(201, {}).status == "ok"
    assert classify(503, {}).status == "retry"
    assert classify(408, {}).status == "retry"
    assert classify(429, {"retry-after": "30"}).retry_after == 30.0
    assert classify(400, {}).status == "reject" and classify(413, {}).status == "reject"
    assert classify(401, {}).status == "auth"
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert retry_after("soon") is None
