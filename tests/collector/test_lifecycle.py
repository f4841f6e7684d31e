"""Findings across runs: new, persisting, resolved; late runs; the contract's thresholds."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from checks.model import InspectionRun
from tests.collector.conftest import T0, Fixture, bearer, make_run, run_json

pytestmark = pytest.mark.py311

H = timedelta(hours=1)


class Host:
    def __init__(self, fx: Fixture, client: TestClient, contract: str, hostname: str) -> None:
        self.client = client
        self.hostname = hostname
        self.host_id, cred = fx.enroll(contract, hostname)
        self.agent = bearer(cred)
        self.key = bearer(fx.api_key("admin"))

    def post(self, run: InspectionRun) -> None:
        r = self.client.post("/api/v1/runs", json=run_json(run), headers=self.agent)
        assert r.status_code == 201, r.text

    def findings(self, check: str, item: str = "") -> list[dict[str, Any]]:
        rows = self.client.get(f"/api/v1/findings?host={self.host_id}", headers=self.key).json()
        return sorted(
            (f for f in rows if f["check"] == check and (f["item"] or "") == item),
            key=lambda f: f["first_seen"],
        )


@pytest.fixture
def app01(fx: Fixture, client: TestClient) -> Host:
    fx.contract("C-1")
    return Host(fx, client, "C-1", "app01")


def test_new_persisting_resolved(app01: Host) -> None:
    r1, r2, r3, r4 = (make_run("app01", T0 + i * H, cpu=c) for i, c in enumerate((99, 90, 10, 97)))
    app01.post(r1)
    [f] = app01.findings("cpu.usage")
    assert (f["state"], f["severity"], f["opened_run"]) == ("open", "critical", str(r1.run_id))
    assert f["threshold"]["critical"] == 95.0 and f["threshold"]["provenance"] == "default"
    app01.post(r2)
    [f2] = app01.findings("cpu.usage")
    assert f2["id"] == f["id"]
    assert (f2["severity"], f2["max_severity"], f2["last_run"]) == (
        "warning",
        "critical",
        str(r2.run_id),
    )
    assert f2["first_seen"] == f["first_seen"] and f2["value"] == 90
    app01.post(r3)
    [f3] = app01.findings("cpu.usage")
    assert (f3["state"], f3["resolved_run"]) == ("resolved", str(r3.run_id))
    assert f3["resolved_at"] == r3.created_at.isoformat().replace("+00:00", "Z")
    app01.post(r4)
    old, new = app01.findings("cpu.usage")
    assert old["id"] == f["id"] and old["state"] == "resolved"
    assert new["state"] == "open" and new["opened_run"] == str(r4.run_id)


def test_a_run_carries_what_persists_and_resolved_findings_keep_their_last_run(
    app01: Host,
) -> None:
    r1 = make_run("app01", T0, cpu=99, memory=99)
    r2 = make_run("app01", T0 + H, cpu=99, memory=10)  # CPU persists, memory resolves
    r3 = make_run("app01", T0 + 2 * H, cpu=90, memory=10)  # CPU changes severity
    app01.post(r1)
    app01.post(r2)
    [cpu] = app01.findings("cpu.usage")
    [memory] = app01.findings("memory.usage")
    assert (cpu["state"], cpu["last_run"], cpu["last_seen"]) == (
        "open",
        str(r2.run_id),
        r2.created_at.isoformat().replace("+00:00", "Z"),
    )
    assert (memory["state"], memory["resolved_run"], memory["last_run"], memory["last_seen"]) == (
        "resolved",
        str(r2.run_id),
        str(r1.run_id),
        r1.created_at.isoformat().replace("+00:00", "Z"),
    )
    app01.post(r3)
    [cpu] = app01.findings("cpu.usage")
    [memory] = app01.findings("memory.usage")
    assert (cpu["severity"], cpu["last_run"]) == ("warning", str(r3.run_id))
    assert memory["last_run"] == str(r1.run_id)  # a later run does not touch it
    unknown = app01.findings("disk.usage")  # no filesystems: carried as unknown by every run
    assert [(f["state"], f["opened_run"], f["last_run"]) for f in unknown] == [
        ("open", str(r1.run_id), str(r3.run_id))
    ]


def test_unknown_is_a_finding_and_absence_resolves(app01: Host) -> None:
    app01.post(make_run("app01", T0, cpu=None))
    [f] = app01.findings("cpu.usage")
    assert f["severity"] == "unknown" and f["message_params"]["reason"] == "permission denied"
    app01.post(make_run("app01", T0 + H, cpu=5))
    assert app01.findings("cpu.usage")[0]["state"] == "resolved"


def test_late_run_does_not_resolve_newer_finding(app01: Host) -> None:
    newer = make_run("app01", T0 + 2 * H, cpu=99)
    app01.post(newer)
    app01.post(make_run("app01", T0 + H, cpu=10))  # delivered late from a spool
    [f] = app01.findings("cpu.usage")
    assert f["state"] == "open" and f["opened_run"] == str(newer.run_id)


def test_late_run_widens_the_episode_it_precedes(app01: Host) -> None:
    newer = make_run("app01", T0 + 2 * H, cpu=99)
    older = make_run("app01", T0 + H, cpu=98)
    app01.post(newer)
    app01.post(older)
    [f] = app01.findings("cpu.usage")
    assert f["state"] == "open" and f["opened_run"] == str(older.run_id)
    assert f["last_run"] == str(newer.run_id)


def test_late_run_records_a_past_episode_resolved_by_the_next_run(app01: Host) -> None:
    ok_later = make_run("app01", T0 + 2 * H, cpu=10)
    app01.post(make_run("app01", T0, cpu=10))
    app01.post(ok_later)
    late = make_run("app01", T0 + H, cpu=99)
    app01.post(late)
    [f] = app01.findings("cpu.usage")
    assert (f["state"], f["opened_run"], f["resolved_run"]) == (
        "resolved",
        str(late.run_id),
        str(ok_later.run_id),
    )


def test_contract_and_host_thresholds_with_provenance(fx: Fixture, client: TestClient) -> None:
    fx.contract(
        "C-T",
        """
[thresholds."cpu.usage"]
warning = 50
critical = 60

[[hosts]]
hostname = "db01"
[hosts.thresholds."cpu.usage"]
warning = 20
critical = 40
[hosts.thresholds."disk.usage".items."/data"]
warning = 95
critical = 99
""",
    )
    app = Host(fx, client, "C-T", "app01")
    dbh = Host(fx, client, "C-T", "db01")
    app.post(make_run("app01", T0, cpu=55))
    [f] = app.findings("cpu.usage")
    assert f["severity"] == "warning"
    assert f["threshold"]["provenance"] == "contract:C-T"
    assert (f["threshold"]["warning"], f["threshold"]["critical"]) == (50, 60)
    dbh.post(make_run("db01", T0, cpu=25, disks={"/data": 92.0, "/var": 92.0}))
    [f] = dbh.findings("cpu.usage")
    assert f["severity"] == "warning" and f["threshold"]["provenance"] == "host:db01"
    assert (f["threshold"]["warning"], f["threshold"]["critical"]) == (20, 40)
    # item-level: /data is allowed up to 95 on db01, /var keeps the defaults (80/90)
    assert dbh.findings("disk.usage", "/data") == []
    [var] = dbh.findings("disk.usage", "/var")
    assert var["severity"] == "critical" and var["threshold"]["provenance"] == "default"
    # the run's own results are advisory: the collector's evaluation is what is stored
    run = make_run("app01", T0 + H, cpu=55)
    run.results = []
    app.post(run)
    assert app.findings("cpu.usage")[0]["last_run"] == str(run.run_id)
