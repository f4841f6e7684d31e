"""`xunjian ssh --submit` into the real collector under uvicorn on loopback, with an engineer key."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, List

import pytest

pytest.importorskip("fastapi")

from click.testing import Result
from fastapi.testclient import TestClient

from collector.app import create_app
from collector.db.engine import Database
from collector.settings import CollectorSettings
from tests.agent.test_daemon_collector import Served
from tests.collector import conftest as collector_fixtures
from tests.collector.conftest import Fixture, bearer
from tests.ssh.conftest import Sshd, SshLab
from tests.ssh.test_ssh_mode import runs_of, target, xunjian_ssh

db = collector_fixtures.db
settings = collector_fixtures.settings
client = collector_fixtures.client
fx = collector_fixtures.fx

pytestmark = [pytest.mark.py311, pytest.mark.services]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'xunjian.db'}"  # the submit path, not the storage engines


@pytest.fixture
def served(settings: CollectorSettings, db: Database) -> Iterator[Served]:
    s = Served(create_app(settings, db))
    s.start()
    yield s
    s.stop()


def submit(
    lab: SshLab, hosts: List[Sshd], known: Path, contract: str, key: str, url: str
) -> Result:
    """`xunjian ssh --json --submit` of `hosts` to the collector at `url`, the key from the env."""
    lab_env = lab.env()
    lab.env = lambda: {**lab_env, "XUNJIAN_API_KEY": key}  # type: ignore[method-assign]
    try:
        return xunjian_ssh(
            lab,
            [
                *(target(h) for h in hosts),
                "-i",
                str(lab.user_key),
                "--known-hosts",
                str(known),
                "--json",
                "--submit",
                "--contract",
                contract,
                "--collector",
                url,
            ],
        )
    finally:
        del lab.env


def test_submit_posts_each_run_to_the_contract(
    lab: SshLab, hosts: List[Sshd], fx: Fixture, served: Served, client: TestClient
) -> None:
    contract = fx.contract("WB-SSH-SUBMIT")
    key = fx.api_key("engineer", contract)
    known = lab.known_hosts(hosts[:2], "known_submit")
    result = submit(lab, hosts[:2], known, contract, key, served.url)
    runs = runs_of(result)
    assert len(runs) == 2, result.stderr
    assert "not submitted" not in result.stderr
    assert key not in result.stdout + result.stderr
    for run in runs:
        stored = client.get(f"/api/v1/runs/{run.run_id}", headers=bearer(key))
        assert stored.status_code == 200, stored.text
        assert stored.json()["run"]["source"] == "ssh"


def test_submit_with_a_bad_key_says_so_per_run(
    lab: SshLab, hosts: List[Sshd], served: Served, fx: Fixture
) -> None:
    contract = fx.contract("WB-SSH-BADKEY")
    known = lab.known_hosts(hosts[:1], "known_badkey")
    result = submit(lab, hosts[:1], known, contract, "xk_not-a-real-key", served.url)
    assert len(runs_of(result)) == 1
    assert "notsubmitted:HTTP401" in "".join(result.stderr.split()).replace("│", "")
    assert "xk_not-a-real-key" not in result.stdout + result.stderr
