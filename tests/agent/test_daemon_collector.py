"""End to end against the real collector served by uvicorn on loopback (collector fixtures):
enrollment, an outage with replays, heartbeats with gap markers, and inspect_now → a real run."""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator, Optional

import pytest

pytest.importorskip("fastapi")

import uvicorn
from fastapi import FastAPI

from agent.client import enroll
from agent.daemon import HEARTBEAT_FILE, Daemon
from agent.settings import AgentSettings
from agent.ship import flush, open_spool, spool_run
from collector.app import create_app
from collector.db.engine import Database
from collector.settings import CollectorSettings
from tests.agent.test_daemon_outage import run as make_run
from tests.collector import conftest as collector_fixtures
from tests.collector.conftest import Fixture, bearer, free_port

# the collector's own fixtures (a migrated database, its settings, an in-process client, `fx`)
client = collector_fixtures.client
db = collector_fixtures.db
fx = collector_fixtures.fx
settings = collector_fixtures.settings

pytestmark = [pytest.mark.py311, pytest.mark.services]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'xunjian.db'}"


class Served:
    """The collector app under uvicorn on a loopback port; stop() closes the port."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = app
        self.server: Optional[uvicorn.Server] = None
        self.thread: Optional[threading.Thread] = None

    def start(self) -> None:
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "collector did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(20)
        self.server = self.thread = None


@pytest.fixture
def served(settings: CollectorSettings, db: Database) -> Iterator[Served]:
    s = Served(create_app(settings, db))
    yield s
    s.stop()


def test_agent_against_the_real_collector(
    tmp_path: Path, fx: Fixture, served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in [k for k in os.environ if k.startswith("XUNJIAN_AGENT_")]:
        monkeypatch.delenv(key)
    state = tmp_path / "agent"
    config = tmp_path / "agent.toml"
    log = tmp_path / "log" / "app.log"
    log.parent.mkdir()
    an_hour_ago = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat(timespec="seconds")
    log.write_text(f"{an_hour_ago} web app[7]: ERROR disk quota exceeded\n")  # inside the 24 h
    config.write_text(
        f'[logs]\nfiles = ["{log}"]\nallowed_roots = ["{log.parent}"]\njournald = false\n'
    )
    env = {
        "XUNJIAN_AGENT_STATE_DIR": str(state),
        "XUNJIAN_AGENT_CONFIG": str(config),
        "XUNJIAN_AGENT_ALLOW_INSECURE": "1",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)  # the inspect worker the daemon spawns reads the same
    agent = AgentSettings.load()
    contract = fx.contract("WB-AGENT-E2E")
    served.start()
    answer = enroll(served.url, fx.enroll_token(contract), agent)
    served.stop()  # the collector goes away; the agent keeps producing
    produced = [make_run(i) for i in range(10)]
    for r in produced:
        assert spool_run(r, agent)
    assert flush(agent, force=True).delivered.get("delivered", 0) == 0
    served.start()
    assert flush(agent, force=True).pending == 0
    spool = open_spool(agent)
    for marker in (state / "spool").glob("*.ack"):
        marker.unlink()  # forget the receipts: a replay of all ten must not store anything twice
    for r in produced:
        spool_run(r, agent)
    assert flush(agent, force=True).pending == 0 and spool.stats()["dead_letters"] == 0
    key = fx.api_key("admin")
    runs = fx.client.get(
        f"/api/v1/hosts/{answer.host_id}/runs?limit=100", headers=bearer(key)
    ).json()
    assert sorted(r["run_id"] for r in runs) == sorted(str(r.run_id) for r in produced)
    # the collector asks for an inspection; the resident's heartbeat starts the worker
    asked = fx.client.post(f"/api/v1/hosts/{answer.host_id}/inspect", headers=bearer(key))
    assert asked.status_code == 202
    daemon = Daemon(agent.daemon_plan())
    daemon.heartbeat()
    assert '"ok": true' in (state / HEARTBEAT_FILE).read_text()
    assert "inspect" in daemon.workers
    assert daemon.workers["inspect"].wait(120) == 0
    runs = fx.client.get(
        f"/api/v1/hosts/{answer.host_id}/runs?limit=100", headers=bearer(key)
    ).json()
    assert len(runs) == 11


def test_inspect_ship_checks_an_install(
    tmp_path: Path, fx: Fixture, served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`xunjian-agent inspect --ship`: one real inspection, spooled, delivered, stored once;
    with the collector gone it stays in the spool and says so (exit 75). The agent prints its
    own results and sends only the facts; the collector stores its own judgement of them."""
    import json

    from click.testing import CliRunner

    from agent.cli import main
    from checks.model import InspectionRun

    for key in [k for k in os.environ if k.startswith("XUNJIAN_AGENT_")]:
        monkeypatch.delenv(key)
    config = tmp_path / "agent.toml"
    config.write_text("[logs]\nfiles = []\njournald = false\n")
    monkeypatch.setenv("XUNJIAN_AGENT_STATE_DIR", str(tmp_path / "agent"))
    monkeypatch.setenv("XUNJIAN_AGENT_CONFIG", str(config))
    monkeypatch.setenv("XUNJIAN_AGENT_ALLOW_INSECURE", "1")
    served.start()
    answer = enroll(served.url, fx.enroll_token(fx.contract("WB-SHIP")), AgentSettings.load())

    shipped = CliRunner().invoke(main, ["inspect", "--ship", "--json"], catch_exceptions=False)
    run = InspectionRun.model_validate_json(shipped.stdout)
    assert shipped.exit_code == run.worst().exit_code
    assert "delivered" in shipped.stderr and "0 record(s) waiting" in shipped.stderr
    stored = fx.client.get(f"/api/v1/runs/{run.run_id}", headers=bearer(fx.api_key("admin")))
    assert stored.status_code == 200
    assert json.dumps(stored.json()).count(str(run.run_id)) >= 1
    assert run.results and stored.json()["run"]["results"] == []
    assert stored.json()["run"]["facts"] == json.loads(shipped.stdout)["facts"]
    judged = {(r["check"], r["item"]) for r in stored.json()["results"]}
    assert judged == {(r.check, r.item) for r in run.results}

    served.stop()
    offline = CliRunner().invoke(main, ["inspect", "--ship", "--json"], catch_exceptions=False)
    assert offline.exit_code == 75
    assert "not delivered" in offline.stderr and "1 record(s) waiting" in offline.stderr
    runs = fx.client.get(
        f"/api/v1/hosts/{answer.host_id}/runs?limit=10", headers=bearer(fx.api_key("admin"))
    ).json()
    assert [r["run_id"] for r in runs] == [str(run.run_id)]
