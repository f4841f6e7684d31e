"""Collector test plumbing, shared by every collector-side test (reports, alerts, console too).

- `pg_server` (session): a real PostgreSQL from Debian's binaries, `initdb` into a temp dir and
  started on a loopback port (as the `postgres` user when the tests run as root).
- `db_url`: parametrised over SQLite and that PostgreSQL; each test gets a fresh database.
- `db`: a migrated `Database`; `settings`, `app`, `client`: the collector on it, in-process.
- `Fixture` (`fx`): import contracts, create API keys, enroll hosts, build runs.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Optional

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from checks.facts import CpuFacts, FactSet, Filesystem, HostIdentity, MemoryFacts
from checks.model import InspectionRun, Source, Window
from collector.app import create_app
from collector.auth import ENROLL_PREFIX, KEY_PREFIX, digest, new_secret
from collector.db.contract_store import import_contracts
from collector.db.engine import Database
from collector.db.migrate import upgrade
from collector.db.models import ApiKey, EnrollToken
from collector.ingest import HostRef
from collector.settings import CollectorSettings
from tests.conftest import require_service

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@dataclass
class PgServer:
    port: int
    admin_url: str

    def new_database(self) -> str:
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def drop_database(self, url: str) -> None:
        import psycopg

        name = make_url(url).database
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    require_service(bool(found), "PostgreSQL server binaries not installed (Debian: postgresql)")
    bindir = Path(found[-1]).parent
    root = Path(tempfile.mkdtemp(prefix="xj-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
    port = free_port()
    subprocess.run(
        _as_postgres(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ]
        ),
        check=True,
        capture_output=True,
    )
    options = (
        f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
    )
    subprocess.run(
        _as_postgres(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-w",
                "-l",
                str(root / "log"),
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield PgServer(port, f"postgresql://postgres@127.0.0.1:{port}/postgres")
    finally:
        subprocess.run(
            _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'xunjian.db'}"
        return
    server: PgServer = request.getfixturevalue("pg_server")
    url = server.new_database()
    try:
        yield url
    finally:
        server.drop_database(url)


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url, pool_size=5)
    upgrade(database)
    yield database
    database.dispose()


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> CollectorSettings:
    return CollectorSettings(home=tmp_path, database_url=db_url, max_body_bytes=1024 * 1024)


@pytest.fixture
def client(settings: CollectorSettings, db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(settings, db)) as c:
        yield c


def contract_toml(number: str, extra: str = "") -> str:
    """A contract whose term covers the real clock for years: tests that post runs made "now"
    must land inside it (an ended contract raises no alerts), whatever day CI runs."""
    return (
        f'number = "{number}"\nlevel = "regular"\nstart = 2026-01-01\nend = 2030-12-31\n'
        f'{extra}\n[customer]\nname = "Customer of {number}"\n[vendor]\nname = "Vendor"\n'
    )


def make_run(
    hostname: str,
    at: datetime,
    *,
    cpu: Optional[float] = 10.0,
    memory: Optional[float] = 40.0,
    disks: Optional[dict[str, float]] = None,
    run_id: Optional[uuid.UUID] = None,
    source: Source = Source.agent,
) -> InspectionRun:
    """A run with CPU, memory and (mount → used %) disk facts; sections left out become
    `unknown` findings."""
    facts = FactSet(
        collected_at=at,
        cpu=CpuFacts(usage_percent=cpu, logical_cores=4, load1=0.5, load5=0.5, load15=0.5)
        if cpu is not None
        else None,
        memory=MemoryFacts(
            total_bytes=8 << 30,
            available_bytes=int((8 << 30) * (1 - memory / 100)),
            used_percent=memory,
        )
        if memory is not None
        else None,
        filesystems=[
            Filesystem(
                mount=mount,
                fstype="ext4",
                total_bytes=100 << 30,
                used_bytes=int(pct * (1 << 30)),
                free_bytes=int((100 - pct) * (1 << 30)),
                used_percent=pct,
            )
            for mount, pct in (disks or {}).items()
        ]
        if disks is not None
        else None,
        errors={} if cpu is not None else {"cpu": "permission denied"},
    )
    return InspectionRun(
        run_id=run_id or uuid.uuid4(),
        source=source,
        created_at=at,
        host=HostIdentity(hostname=hostname, machine_id=uuid.uuid4().hex),
        window=Window(start=at - timedelta(hours=24), end=at),
        facts=facts,
    )


def run_json(run: InspectionRun) -> dict[str, Any]:
    data: dict[str, Any] = run.model_dump(mode="json", by_alias=True)
    return data


@dataclass
class Fixture:
    """Builds the state a test needs through the same code paths the CLI uses."""

    db: Database
    client: TestClient
    tmp: Path

    def contract(self, number: str, extra: str = "") -> str:
        path = self.tmp / f"{number.replace('/', '_')}.toml"
        path.write_text(contract_toml(number, extra), encoding="utf-8")
        import_contracts(self.db, [path])
        return number

    def enroll_token(self, contract: str, expires: timedelta = timedelta(days=1)) -> str:
        secret = new_secret(ENROLL_PREFIX)
        now = datetime.now(timezone.utc)
        with self.db.write() as session:
            session.add(
                EnrollToken(
                    token_sha256=digest(secret),
                    contract=contract,
                    created_at=now,
                    expires_at=now + expires,
                )
            )
        return secret

    def api_key(self, role: str = "admin", contract: Optional[str] = None, name: str = "") -> str:
        secret = new_secret(KEY_PREFIX)
        with self.db.write() as session:
            session.add(
                ApiKey(
                    key_sha256=digest(secret),
                    role=role,
                    contract=contract,
                    name=name,
                    created_at=datetime.now(timezone.utc),
                )
            )
        return secret

    def enroll(self, contract: str, hostname: str, tags: tuple[str, ...] = ()) -> tuple[str, str]:
        """(host_id, credential) of a freshly enrolled agent."""
        r = self.client.post(
            "/api/v1/enroll",
            json={
                "token": self.enroll_token(contract),
                "host": {"hostname": hostname},
                "tags": list(tags),
            },
        )
        assert r.status_code == 201, r.text
        body = r.json()
        return body["host_id"], body["credential"]

    def host_ref(self, contract: str, hostname: str) -> HostRef:
        """A freshly enrolled agent's host as ingest takes it, with the credential the API
        would have cached."""
        host_id, credential = self.enroll(contract, hostname)
        return HostRef(host_id, contract, hostname, (), digest(credential))


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def fx(db: Database, client: TestClient, tmp_path: Path) -> Fixture:
    return Fixture(db, client, tmp_path)
