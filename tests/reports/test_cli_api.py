"""`xunjian report build|list`, the reports API with its scoping, and the scheduler's report job."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from collector.app import create_app
from collector.auth import KEY_PREFIX, digest, new_secret
from collector.cli import main
from collector.db.contract_store import import_contracts
from collector.db.engine import Database
from collector.db.migrate import upgrade
from collector.db.models import ApiKey
from collector.db.models_reports import ReportRow
from collector.scheduler import due_reports
from collector.settings import CollectorSettings
from tests.collector.conftest import contract_toml, free_port
from tests.reports.helpers import EXAMPLE
from tests.reports.seed import seed
from tests.reports.smtp_server import smtp_server

pytestmark = pytest.mark.py311

END_OF_Q3 = datetime(2026, 9, 30, 16, 0, tzinfo=timezone.utc)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    db = Database(f"sqlite:///{tmp_path / 'xunjian.db'}")
    upgrade(db)
    seed(db, EXAMPLE, ["app01"], run_times=[END_OF_Q3 - timedelta(hours=6)])
    other = tmp_path / "other.toml"
    other.write_text(contract_toml("HT-OTHER"), encoding="utf-8")
    import_contracts(db, [other])
    db.dispose()
    return tmp_path


def _key(home: Path, contract: str | None) -> str:
    secret = new_secret(KEY_PREFIX)
    db = Database(f"sqlite:///{home / 'xunjian.db'}")
    with db.write() as session:
        session.add(
            ApiKey(
                key_sha256=digest(secret),
                role="viewer",
                contract=contract,
                name="t",
                created_at=datetime.now(timezone.utc),
            )
        )
    db.dispose()
    return secret


def test_build_send_list_and_api(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    for name, value in {
        "HOME": str(home),
        "DATABASE_URL": f"sqlite:///{home / 'xunjian.db'}",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(port),
        "SMTP_SECURITY": "none",
        "SMTP_FROM": "reports@vendor.example",
    }.items():
        monkeypatch.setenv(f"XUNJIAN_{name}", value)
    runner = CliRunner()
    out = home / "out"
    with smtp_server(port) as sink:
        r = runner.invoke(
            main,
            [
                "report",
                "build",
                "--contract",
                "HT-2026-001",
                "--period",
                "2026-Q3",
                "--lang",
                "en",
                "--out",
                str(out),
                "--send",
            ],
        )
    assert r.exit_code == 0, r.output
    assert "delivery: sent" in r.output
    assert (out / "HT-2026-001_2026-Q3.pdf").read_bytes()[:5] == b"%PDF-"
    assert "Inspection Report" in (out / "HT-2026-001_2026-Q3.html").read_text(encoding="utf-8")
    [msg] = sink.parsed()
    assert msg["Subject"].startswith("[Inspection report] HT-2026-001")

    bad = runner.invoke(
        main, ["report", "build", "--contract", "HT-2026-001", "--period", "2031-Q1"]
    )
    assert bad.exit_code != 0 and "outside contract" in bad.output

    listed = runner.invoke(main, ["report", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    [info] = json.loads(listed.output)
    assert (info["contract"], info["period"], info["state"], info["delivery"]) == (
        "HT-2026-001",
        "2026-Q3",
        "built",
        "sent",
    )

    settings = CollectorSettings(home=home, database_url=f"sqlite:///{home / 'xunjian.db'}")
    with TestClient(create_app(settings)) as client:
        mine = {"Authorization": f"Bearer {_key(home, 'HT-2026-001')}"}
        theirs = {"Authorization": f"Bearer {_key(home, 'HT-OTHER')}"}
        assert [x["period"] for x in client.get("/api/v1/reports", headers=mine).json()] == [
            "2026-Q3"
        ]
        pdf = client.get(f"/api/v1/reports/{info['id']}/pdf", headers=mine)
        assert pdf.status_code == 200 and pdf.content[:5] == b"%PDF-"
        html = client.get(f"/api/v1/reports/{info['id']}/html", headers=mine)
        assert html.status_code == 200 and "HT-2026-001" in html.text
        assert client.get("/api/v1/reports", headers=theirs).json() == []
        assert client.get(f"/api/v1/reports/{info['id']}/pdf", headers=theirs).status_code == 404
        assert client.get("/api/v1/reports").status_code == 401
        metrics = client.get("/metrics").text
        assert 'xunjian_report_mail{state="sent"} 1' in metrics


def test_scheduler_builds_a_due_report_once_and_skips_old_ones(home: Path) -> None:
    db = Database(f"sqlite:///{home / 'xunjian.db'}")
    settings = CollectorSettings(home=home, database_url=db.url)
    just_after = END_OF_Q3 + timedelta(minutes=5)
    first = due_reports(db, settings, "a", now=just_after)
    # Q1 and Q2 ended more than CATCH_UP before: left to `report build`. HT-OTHER names no
    # recipients, so its report is built but not queued.
    assert sorted((o.built, o.queued, o.reason) for o in first) == [
        (True, False, "the contract names no report recipients"),
        (True, True, ""),
    ]
    assert due_reports(db, settings, "b", now=just_after + timedelta(minutes=1)) == []
    with db.read() as session:
        keys = session.scalars(select(ReportRow.period_key)).all()
        assert keys == ["2026-Q3", "2026-Q3"]
        assert session.scalar(select(func.count()).select_from(ReportRow)) == 2
    end_of_q4 = datetime(2026, 12, 31, 16, 0, tzinfo=timezone.utc)
    assert len(due_reports(db, settings, "c", now=end_of_q4 + timedelta(days=1))) == 2  # Q4s
    db.dispose()
