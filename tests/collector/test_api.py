"""The collector API end to end, in-process, on SQLite and PostgreSQL."""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from checks.model import InspectionRun
from collector.db.engine import Database
from collector.db.models import Finding, Host, Run
from collector.ingest import load_payload
from tests.collector.conftest import T0, Fixture, bearer, make_run, run_json

pytestmark = pytest.mark.py311


def _counts(db: Database) -> tuple[int, int]:
    with db.read() as s:
        return (
            s.scalar(select(func.count()).select_from(Run)) or 0,
            s.scalar(select(func.count()).select_from(Finding)) or 0,
        )


def test_enroll_is_single_use_and_expires(fx: Fixture, client: TestClient) -> None:
    fx.contract("C-1")
    token = fx.enroll_token("C-1")
    body = {"token": token, "host": {"hostname": "app01"}, "tags": ["web"]}
    first = client.post("/api/v1/enroll", json=body)
    assert first.status_code == 201
    assert first.json()["contract"] == "C-1"
    assert first.json()["credential"].startswith("xjh_")
    again = client.post("/api/v1/enroll", json=body)
    assert again.status_code == 401
    expired = fx.enroll_token("C-1", expires=timedelta(seconds=-1))
    r = client.post("/api/v1/enroll", json={**body, "token": expired})
    assert r.status_code == 401
    r = client.post("/api/v1/enroll", json={**body, "token": "xje_" + "x" * 40})
    assert r.status_code == 401


def test_reenroll_keeps_host_and_replaces_credential(fx: Fixture, client: TestClient) -> None:
    fx.contract("C-1")
    host_id, old = fx.enroll("C-1", "app01")
    host_again, new = fx.enroll("C-1", "app01")
    assert host_again == host_id and new != old
    beat = {"at": T0.isoformat()}
    assert client.post("/api/v1/heartbeat", json=beat, headers=bearer(old)).status_code == 401
    assert client.post("/api/v1/heartbeat", json=beat, headers=bearer(new)).status_code == 200


def test_run_replay_returns_original_receipt_and_conflict_changes_nothing(
    fx: Fixture, client: TestClient, db: Database
) -> None:
    fx.contract("C-1")
    host_id, cred = fx.enroll("C-1", "app01")
    run = make_run("app01", T0, cpu=99.0)
    first = client.post("/api/v1/runs", json=run_json(run), headers=bearer(cred))
    assert first.status_code == 201, first.text
    receipt = first.json()
    assert receipt["host_id"] == host_id and receipt["duplicate"] is False
    replay = client.post("/api/v1/runs", json=run_json(run), headers=bearer(cred))
    assert replay.status_code == 200
    assert replay.json() == {**receipt, "duplicate": True}
    # the same run, re-serialised (indented, keys in another order): still a replay
    text = json.dumps(dict(reversed(list(run_json(run).items()))), indent=2).encode()
    reformatted = client.post(
        "/api/v1/runs", content=text, headers={**bearer(cred), "Content-Type": "application/json"}
    )
    assert reformatted.status_code == 200, reformatted.text
    assert reformatted.json() == {**receipt, "duplicate": True}
    before = _counts(db)
    changed = run.model_copy(update={"agent_version": "9.9"})
    conflict = client.post("/api/v1/runs", json=run_json(changed), headers=bearer(cred))
    assert conflict.status_code == 409
    assert str(run.run_id) in conflict.json()["detail"]
    assert _counts(db) == before


def test_gzip_accepted_and_gzip_bomb_refused(fx: Fixture, client: TestClient, db: Database) -> None:
    fx.contract("C-1")
    _, cred = fx.enroll("C-1", "app01")
    run = make_run("app01", T0)
    headers = {**bearer(cred), "Content-Encoding": "gzip", "Content-Type": "application/json"}
    body = gzip.compress(json.dumps(run_json(run)).encode())
    assert client.post("/api/v1/runs", content=body, headers=headers).status_code == 201
    with db.read() as session:  # stored in the compression it was posted in, and read back
        stored = session.scalar(select(Run).where(Run.run_id == str(run.run_id)))
        assert stored is not None and stored.payload == body
        assert load_payload(stored) == InspectionRun.model_validate_json(gzip.decompress(body))
    second = make_run("app01", T0 + timedelta(hours=1))
    two = gzip.compress(json.dumps(run_json(second)).encode()) + gzip.compress(b"{}")
    r = client.post("/api/v1/runs", content=two, headers=headers)
    assert r.status_code == 400 and "after the end" in r.json()["detail"]
    # 64 MiB of JSON whitespace squeezes into ~64 KiB: refused while inflating (limit 1 MiB).
    bomb = gzip.compress(b" " * (64 << 20), 9)
    assert len(bomb) < 1 << 20
    r = client.post("/api/v1/runs", content=bomb, headers=headers)
    assert r.status_code == 413
    assert "decompression" in r.json()["detail"]
    corrupt = client.post("/api/v1/runs", content=b"\x1f\x8bnot gzip", headers=headers)
    assert corrupt.status_code == 400
    br = client.post("/api/v1/runs", content=b"{}", headers={**headers, "Content-Encoding": "br"})
    assert br.status_code == 415
    assert _counts(db)[0] == 1


def test_nul_in_a_string_is_kept_as_a_replacement_character(
    fx: Fixture, client: TestClient, db: Database
) -> None:
    """PostgreSQL text cannot hold NUL: the run is stored with U+FFFD in its place (so not as
    the gzip bytes posted, which still say NUL)."""
    fx.contract("C-1")
    _, cred = fx.enroll("C-1", "app01")
    run = run_json(make_run("app01", T0))
    run["agent_version"] = "1.0\u0000beta"
    body = gzip.compress(json.dumps(run).encode())
    headers = {**bearer(cred), "Content-Encoding": "gzip", "Content-Type": "application/json"}
    assert client.post("/api/v1/runs", content=body, headers=headers).status_code == 201
    with db.read() as session:
        stored = session.scalar(select(Run).where(Run.run_id == run["run_id"]))
        assert stored is not None and stored.payload != body
        assert load_payload(stored).agent_version == "1.0\ufffdbeta"


def test_plain_body_over_limit_is_413(fx: Fixture, client: TestClient) -> None:
    fx.contract("C-1")
    _, cred = fx.enroll("C-1", "app01")
    big = b'{"x": "' + b"a" * (2 << 20) + b'"}'
    r = client.post(
        "/api/v1/runs", content=big, headers={**bearer(cred), "Content-Type": "application/json"}
    )
    assert r.status_code == 413

    def chunks():  # streamed without Content-Length: counted as it arrives
        for _ in range(40):
            yield b" " * 65536

    r = client.post(
        "/api/v1/samples",
        content=chunks(),
        headers={**bearer(cred), "Content-Type": "application/json"},
    )
    assert r.status_code == 413


def test_schema_errors_name_the_field_path(fx: Fixture, client: TestClient) -> None:
    fx.contract("C-1")
    _, cred = fx.enroll("C-1", "app01")
    data = run_json(make_run("app01", T0))
    data["facts"]["cpu"]["usage_percent"] = "lots"
    r = client.post("/api/v1/runs", json=data, headers=bearer(cred))
    assert r.status_code == 422
    assert "body.facts.cpu.usage_percent" in r.json()["error"]
    r = client.post(
        "/api/v1/runs",
        content=b'{"run_id": ',
        headers={**bearer(cred), "Content-Type": "application/json"},
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["type"] == "json_invalid"


def test_credentials_unknown_missing_or_revoked_are_401(
    fx: Fixture, client: TestClient, db: Database
) -> None:
    fx.contract("C-1")
    host_id, cred = fx.enroll("C-1", "app01")
    run = run_json(make_run("app01", T0))
    assert client.post("/api/v1/runs", json=run).status_code == 401
    assert client.post("/api/v1/runs", json=run, headers=bearer("xjh_nope")).status_code == 401
    assert client.get("/api/v1/hosts", headers=bearer("garbage")).status_code == 401
    with db.write() as s:
        host = s.get(Host, host_id)
        assert host is not None
        host.revoked_at = T0
    r = client.post("/api/v1/runs", json=run, headers=bearer(cred))
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


def test_cached_credential_stops_at_once_when_revoked_or_replaced(
    fx: Fixture, client: TestClient, db: Database
) -> None:
    fx.contract("C-1")
    host_id, cred = fx.enroll("C-1", "app01")
    _, other = fx.enroll("C-1", "app02")
    first = run_json(make_run("app01", T0))
    assert client.post("/api/v1/runs", json=first, headers=bearer(cred)).status_code == 201
    assert client.post("/api/v1/runs", json=first, headers=bearer(cred)).status_code == 200
    _, new = fx.enroll("C-1", "app01")  # re-enrolment replaces the credential
    later = run_json(make_run("app01", T0 + timedelta(hours=1)))
    before = _counts(db)
    r = client.post("/api/v1/runs", json=later, headers=bearer(cred))
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert _counts(db) == before
    assert client.post("/api/v1/runs", json=later, headers=bearer(new)).status_code == 201
    second = run_json(make_run("app02", T0))
    assert client.post("/api/v1/runs", json=second, headers=bearer(other)).status_code == 201
    with db.write() as s:
        host = s.get(Host, host_id)
        assert host is not None
        host.revoked_at = T0
    third = run_json(make_run("app01", T0 + timedelta(hours=2)))
    assert client.post("/api/v1/runs", json=third, headers=bearer(new)).status_code == 401
    assert client.post("/api/v1/runs", json=third, headers=bearer(new)).status_code == 401


def test_cached_credential_on_samples_and_heartbeat_stops_at_once(
    fx: Fixture, client: TestClient, db: Database
) -> None:
    """Samples and heartbeats share the runs' credential cache: a replaced or revoked
    credential that was just accepted (so cached) is refused on the very next request."""
    fx.contract("C-1")
    host_id, cred = fx.enroll("C-1", "app01")
    sample = {
        "at": T0.isoformat(),
        "cpu_percent": 5,
        "load1": 0.1,
        "load5": 0.1,
        "load15": 0.1,
        "memory_percent": 30,
        "swap_percent": 0,
    }
    beat = {"at": T0.isoformat()}

    def post(path: str, body: dict, key: str) -> int:  # type: ignore[type-arg]
        return client.post(path, json=body, headers=bearer(key)).status_code

    assert post("/api/v1/samples", {"samples": [sample]}, cred) == 200
    assert post("/api/v1/heartbeat", beat, cred) == 200
    _, new = fx.enroll("C-1", "app01")  # re-enrolment replaces the credential
    later = {**sample, "at": (T0 + timedelta(minutes=1)).isoformat()}
    assert post("/api/v1/samples", {"samples": [later]}, cred) == 401
    assert post("/api/v1/heartbeat", beat, cred) == 401
    assert post("/api/v1/samples", {"samples": [later]}, new) == 200
    with db.write() as s:
        host = s.get(Host, host_id)
        assert host is not None
        host.revoked_at = T0
    latest = {**sample, "at": (T0 + timedelta(minutes=2)).isoformat()}
    assert post("/api/v1/samples", {"samples": [latest]}, new) == 401
    assert post("/api/v1/heartbeat", beat, new) == 401


def test_scope(fx: Fixture, client: TestClient) -> None:
    fx.contract("A")
    fx.contract("B")
    host_a, cred_a = fx.enroll("A", "a01")
    host_b, cred_b = fx.enroll("B", "b01")
    run_b = make_run("b01", T0, cpu=99.0)
    assert (
        client.post("/api/v1/runs", json=run_json(run_b), headers=bearer(cred_b)).status_code == 201
    )
    # an agent writes only its own host and contract, and reads nothing
    r = client.post(
        "/api/v1/runs?contract=B", json=run_json(make_run("a01", T0)), headers=bearer(cred_a)
    )
    assert r.status_code == 403
    assert client.get("/api/v1/hosts", headers=bearer(cred_a)).status_code == 403
    assert client.post(f"/api/v1/hosts/{host_b}/inspect", headers=bearer(cred_a)).status_code == 403
    # a key scoped to A reads nothing of B
    key_a = bearer(fx.api_key("viewer", contract="A"))
    assert [h["id"] for h in client.get("/api/v1/hosts", headers=key_a).json()] == [host_a]
    assert client.get("/api/v1/hosts?contract=B", headers=key_a).json() == []
    assert client.get(f"/api/v1/hosts/{host_b}", headers=key_a).status_code == 404
    assert client.get(f"/api/v1/hosts/{host_b}/runs", headers=key_a).status_code == 404
    assert client.get(f"/api/v1/runs/{run_b.run_id}", headers=key_a).status_code == 404
    assert client.get("/api/v1/findings", headers=key_a).json() == []
    assert client.get("/api/v1/findings?contract=B", headers=key_a).json() == []
    assert [c["number"] for c in client.get("/api/v1/contracts", headers=key_a).json()] == ["A"]
    assert client.get("/api/v1/contracts/B", headers=key_a).status_code == 404
    # viewers read only
    assert client.post(f"/api/v1/hosts/{host_a}/inspect", headers=key_a).status_code == 403
    assert (
        client.post(
            "/api/v1/runs?contract=A", json=run_json(make_run("x", T0)), headers=key_a
        ).status_code
        == 403
    )
    # an engineer key scoped to A cannot act on B
    eng_a = bearer(fx.api_key("engineer", contract="A"))
    assert client.post(f"/api/v1/hosts/{host_b}/inspect", headers=eng_a).status_code == 404
    r = client.post("/api/v1/runs?contract=B", json=run_json(make_run("x", T0)), headers=eng_a)
    assert r.status_code == 404
    finding_b = client.get("/api/v1/findings", headers=bearer(fx.api_key("admin"))).json()[0]
    assert (
        client.post(f"/api/v1/findings/{finding_b['id']}/ack", json={}, headers=eng_a).status_code
        == 404
    )


def test_engineer_submits_ssh_run_as_ad_hoc(fx: Fixture, client: TestClient) -> None:
    fx.contract("A")
    key = bearer(fx.api_key("engineer", name="li.na"))
    run = make_run("db01", T0, source=__import__("checks.model").model.Source.ssh)
    r = client.post("/api/v1/runs?contract=A", json=run_json(run), headers=key)
    assert r.status_code == 201, r.text
    assert client.post("/api/v1/runs", json=run_json(run), headers=key).status_code == 422
    assert (
        client.post("/api/v1/runs?contract=NOPE", json=run_json(run), headers=key).status_code
        == 404
    )
    detail = client.get(f"/api/v1/runs/{run.run_id}", headers=key).json()
    assert (detail["source"], detail["via"], detail["ad_hoc"]) == ("ssh", "api", True)
    assert detail["run"]["run_id"] == str(run.run_id)
    assert {r["check"] for r in detail["results"]} >= {"cpu.usage", "memory.usage"}
    host = client.get(f"/api/v1/hosts/{detail['host_id']}", headers=key).json()
    assert host["hostname"] == "db01" and host["enrolled"] is False
    # the second SSH run of the same host lands on the same host row
    run2 = make_run("db01", T0 + timedelta(hours=1), source=run.source)
    assert (
        client.post("/api/v1/runs?contract=A", json=run_json(run2), headers=key).json()["host_id"]
        == host["id"]
    )


def test_inspect_request_reaches_the_heartbeat_once(fx: Fixture, client: TestClient) -> None:
    fx.contract("A")
    host_id, cred = fx.enroll("A", "a01")
    key = bearer(fx.api_key("engineer"))
    beat = {"at": T0.isoformat()}
    assert client.post("/api/v1/heartbeat", json=beat, headers=bearer(cred)).json() == {
        "inspect_now": False
    }
    assert client.post(f"/api/v1/hosts/{host_id}/inspect", headers=key).status_code == 202
    assert client.post("/api/v1/heartbeat", json=beat, headers=bearer(cred)).json() == {
        "inspect_now": True
    }
    assert client.post("/api/v1/heartbeat", json=beat, headers=bearer(cred)).json() == {
        "inspect_now": False
    }


def test_ack_records_who_when_and_note(fx: Fixture, client: TestClient) -> None:
    fx.contract("A")
    _, cred = fx.enroll("A", "a01")
    client.post("/api/v1/runs", json=run_json(make_run("a01", T0, cpu=99.0)), headers=bearer(cred))
    key = bearer(fx.api_key("engineer", name="li.na"))
    finding = client.get("/api/v1/findings?severity=critical&state=open", headers=key).json()[0]
    assert finding["check"] == "cpu.usage" and finding["ack_at"] is None
    r = client.post(f"/api/v1/findings/{finding['id']}/ack", json={"note": "on it"}, headers=key)
    assert r.status_code == 200
    acked = r.json()
    assert acked["ack_by"].endswith("(li.na)") and acked["ack_note"] == "on it" and acked["ack_at"]
    again = client.post(
        f"/api/v1/findings/{finding['id']}/ack", json={"note": "x"}, headers=key
    ).json()
    assert (again["ack_at"], again["ack_note"]) == (acked["ack_at"], "on it")
    assert client.post("/api/v1/findings/999999/ack", json={}, headers=key).status_code == 404


def test_samples_idempotent_by_batch_and_time(fx: Fixture, client: TestClient) -> None:
    fx.contract("A")
    _, cred = fx.enroll("A", "a01")
    sample = {
        "at": T0.isoformat(),
        "cpu_percent": 5,
        "load1": 0.1,
        "load5": 0.1,
        "load15": 0.1,
        "memory_percent": 30,
        "swap_percent": 0,
        "mounts": [{"mount": "/", "used_percent": 40, "used_bytes": 4, "total_bytes": 10}],
    }
    batch = {"batch_id": str(uuid.uuid4()), "samples": [sample]}
    first = client.post("/api/v1/samples", json=batch, headers=bearer(cred)).json()
    assert (first["stored"], first["duplicate"]) == (1, False)
    again = client.post("/api/v1/samples", json=batch, headers=bearer(cred)).json()
    assert (again["stored"], again["duplicate"]) == (1, True)
    other = client.post("/api/v1/samples", json={"samples": [sample]}, headers=bearer(cred)).json()
    assert (other["stored"], other["duplicate"]) == (0, False)


def test_health_and_metrics(fx: Fixture, client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    fx.contract("A")
    _, cred = fx.enroll("A", "a01")
    run = run_json(make_run("a01", T0))
    client.post("/api/v1/runs", json=run, headers=bearer(cred))
    client.post("/api/v1/runs", json=run, headers=bearer(cred))
    client.post("/api/v1/runs", json=run)
    text = client.get("/metrics").text
    assert 'xunjian_runs_ingested_total{outcome="stored"} 1' in text
    assert 'xunjian_runs_ingested_total{outcome="duplicate"} 1' in text
    assert 'xunjian_requests_rejected_total{reason="unauthorized"} 1' in text
    assert "xunjian_ingest_seconds_count 2" in text
    assert "xunjian_hosts_silent " in text


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"at": "2026-11-20T08:00:00"}, "body.at: Input should have timezone info"),
        (
            {"at": "0001-01-01T00:00:00+05:00"},
            "body.at: Input should be greater than or equal to 0001-01-01T00:00:00Z",
        ),
        (
            {"at": "2026-11-20T08:00:00Z", "gaps": [{"kind": "runs", "dropped": 10**20}]},
            "body.gaps.0.dropped: Input should be less than or equal to 9223372036854775807",
        ),
        ({"at": "2026-11-20T08:00:00Z", "spool_depth": True}, "body.spool_depth"),
    ],
)
def test_values_no_column_can_hold_are_422(
    fx: Fixture, client: TestClient, body: dict[str, object], path: str
) -> None:
    fx.contract("A")
    _, cred = fx.enroll("A", "a01")
    r = client.post("/api/v1/heartbeat", json=body, headers=bearer(cred))
    assert r.status_code == 422 and path in r.json()["error"], r.text
    nan = b'{"samples": [{"at": "2026-11-20T08:00:00Z", "cpu_percent": NaN, "load1": 0, "load5": 0,'
    nan += b' "load15": 0, "memory_percent": 0, "swap_percent": 0}]}'
    r = client.post(
        "/api/v1/samples",
        content=nan,
        headers={**bearer(cred), "Content-Type": "application/json"},
    )
    assert r.status_code == 422
    for number in (b"1e400", b"-2.5E+0400"):  # parsed as an infinity
        r = client.post(
            "/api/v1/samples",
            content=nan.replace(b"NaN", number),
            headers={**bearer(cred), "Content-Type": "application/json"},
        )
        assert r.status_code == 422 and "finite" in r.json()["error"], (number, r.text)
    assert client.get("/api/v1/hosts/a%00b", headers=bearer(fx.api_key())).status_code == 422
