"""Console test plumbing: two contracts with hosts, runs and users, seeded once per module and
database (SQLite and the real PostgreSQL of tests/collector/conftest.py).

Contract HT-A runs 7×24 with P1 = 1 h and P2 = 2 h and maps critical disk findings to P1; HT-B
keeps the defaults (5×8, P1 = 2 h, P2 = 4 h; critical disk/CPU → P2). Hosts app01 and db01 report
to A, web01 to B; A also names never01, which never reports. Users: alice (admin, every
contract), eng (engineer, every contract), va (viewer of A only).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Optional

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from collector.app import create_app
from collector.db.engine import Database
from collector.db.migrate import upgrade
from collector.db.models import Finding
from collector.settings import CollectorSettings
from collector.ui.auth import create_user
from tests.collector.conftest import (  # noqa: F401  (pg_server is a fixture)
    Fixture,
    PgServer,
    bearer,
    contract_toml,
    make_run,
    pg_server,
    run_json,
)

PASSWORD = "correct horse battery"
CONTRACT_A = "HT-A"
CONTRACT_B = "HT-B"
EXTRA_A = """[support]
kind = "7x24"
[response_hours]
P1 = 1
P2 = 2
[alerts]
priorities = [{ check = "disk.usage", severity = "critical", priority = "P1" }]
[[hosts]]
hostname = "app01"
[[hosts]]
hostname = "never01"
"""
USERS = (("alice", "admin", ()), ("eng", "engineer", ()), ("va", "viewer", (CONTRACT_A,)))
CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Seeded:
    app: FastAPI
    db: Database
    settings: CollectorSettings
    hosts: dict[str, str] = field(default_factory=dict)
    """hostname → host id"""
    credentials: dict[str, str] = field(default_factory=dict)
    admin_key: str = ""

    def finding(self, hostname: str, check: str) -> Finding:
        with self.db.read() as session:
            row = session.scalars(
                select(Finding).where(
                    Finding.host_id == self.hosts[hostname], Finding.check == check
                )
            ).one()
        return row

    def client(self, address: str = "198.51.100.1") -> TestClient:
        """A browser of its own: its own cookies and client address."""
        return TestClient(self.app, client=(address, 40000), follow_redirects=False)


def csrf_of(html: str) -> str:
    found = CSRF_RE.search(html)
    assert found is not None, "page has no CSRF field"
    return found.group(1)


def login(c: TestClient, name: str, password: str = PASSWORD) -> httpx.Response:
    token = csrf_of(c.get("/login").text)
    return c.post("/login", data={"csrf": token, "name": name, "password": password})


def seed(db: Database, app: FastAPI, tmp: Path, now: datetime) -> Seeded:
    """Contracts, enrolled hosts with one run each (30 min old), users and an admin API key."""
    seeded = Seeded(app=app, db=db, settings=app.state.settings)
    with TestClient(app) as api:
        fx = Fixture(db, api, tmp)
        fx.contract(CONTRACT_A, EXTRA_A)
        fx.contract(CONTRACT_B)
        seeded.admin_key = fx.api_key("admin")
        at = now - timedelta(minutes=30)
        for contract, hostname, cpu, disks in (
            (CONTRACT_A, "app01", 99.0, {"/data": 97.0}),
            (CONTRACT_A, "db01", 10.0, {"/": 85.0}),
            (CONTRACT_B, "web01", 99.0, {"/data": 97.0}),
        ):
            host_id, credential = fx.enroll(contract, hostname)
            seeded.hosts[hostname], seeded.credentials[hostname] = host_id, credential
            run = make_run(hostname, at, cpu=cpu, disks=disks)
            r = api.post("/api/v1/runs", json=run_json(run), headers=bearer(credential))
            assert r.status_code == 201, r.text
    with db.write() as session:
        for name, role, contracts in USERS:
            create_user(session, name, PASSWORD, role, contracts, now)
    return seeded


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Seeded]:
    home = tmp_path_factory.mktemp("console")
    url: Optional[str] = None
    server: Optional[PgServer] = None
    if request.param == "postgresql":
        server = request.getfixturevalue("pg_server")
        url = server.new_database()
    settings = CollectorSettings(
        home=home,
        database_url=url,
        ui={"cookie_secure": False, "max_failures_per_user": 3, "max_failures_per_client": 4},
    )
    db = Database(settings.db_url, pool_size=5)
    upgrade(db)
    app = create_app(settings, db)
    try:
        yield seed(db, app, home, datetime.now(timezone.utc))
    finally:
        db.dispose()
        if server is not None and url is not None:
            server.drop_database(url)


def field_of(html: str, name: str) -> Any:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    return found.group(1) if found else None
