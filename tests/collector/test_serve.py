"""The real thing: `xunjian` commands and two `xunjian serve` processes on one PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.collector.conftest import T0, PgServer, contract_toml, free_port, make_run, run_json

pytestmark = [pytest.mark.py311, pytest.mark.services, pytest.mark.slow]

XUNJIAN = str(Path(sys.executable).parent / "xunjian")


def cli(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([XUNJIAN, *args], env=env, capture_output=True, text=True, timeout=120)
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture
def pg_env(pg_server: PgServer, tmp_path: Path) -> Iterator[dict[str, str]]:
    url = pg_server.new_database()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("XUNJIAN_")},
        "XUNJIAN_HOME": str(tmp_path / "home"),
        "XUNJIAN_DATABASE_URL": url,
    }
    try:
        yield env
    finally:
        pg_server.drop_database(url)


def serve(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [XUNJIAN, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"xunjian serve did not start: {log.read_text()}")


def test_cli_and_two_collectors_store_each_run_once(pg_env: dict[str, str], tmp_path: Path) -> None:
    assert "no tables" in cli(pg_env, "contract", "list", ok=False).stderr
    cli(pg_env, "db", "upgrade")
    cli(pg_env, "db", "upgrade")  # repeatable
    contract = tmp_path / "c.toml"
    contract.write_text(contract_toml("HT-1"), encoding="utf-8")
    assert cli(pg_env, "contract", "import", str(contract)).stdout.split() == ["HT-1"]
    listed = json.loads(cli(pg_env, "contract", "list", "--json").stdout)
    assert [c["number"] for c in listed] == ["HT-1"]
    token = cli(pg_env, "token", "create", "--contract", "HT-1", "--expires", "1h").stdout
    assert token.count("\n") == 1 and token.startswith("xje_")
    key = cli(pg_env, "apikey", "create", "--role", "viewer", "--contract", "HT-1").stdout.strip()
    assert key.startswith("xjk_")
    assert cli(pg_env, "token", "create", "--contract", "NOPE", ok=False).returncode != 0

    ports = free_port(), free_port()
    servers = [serve(pg_env, port, tmp_path / f"serve{port}.log") for port in ports]
    try:
        urls = [f"http://127.0.0.1:{port}/api/v1" for port in ports]
        enrolled = httpx.post(
            f"{urls[0]}/enroll", json={"token": token.strip(), "host": {"hostname": "app01"}}
        ).json()
        agent = {"Authorization": f"Bearer {enrolled['credential']}"}
        runs = [
            run_json(make_run("app01", T0.replace(minute=i), cpu=99.0 - i / 10)) for i in range(30)
        ]

        def post(job: tuple[int, dict[str, object]]) -> int:
            index, run = job
            r = httpx.post(f"{urls[index % 2]}/runs", json=run, headers=agent, timeout=60)
            return r.status_code

        # every run goes to both collectors at once
        jobs = [(i, run) for run in runs for i in (0, 1)]
        with ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(post, jobs))
        for n in range(len(runs)):
            assert sorted(codes[2 * n : 2 * n + 2]) == [200, 201], codes
        viewer = {"Authorization": f"Bearer {key}"}
        host_runs = httpx.get(
            f"{urls[1]}/hosts/{enrolled['host_id']}/runs?limit=1000", headers=viewer
        ).json()
        assert len(host_runs) == len(runs)
        assert sorted(r["run_id"] for r in host_runs) == sorted(r["run_id"] for r in runs)
        findings = httpx.get(f"{urls[0]}/findings?state=open", headers=viewer).json()
        assert len([f for f in findings if f["check"] == "cpu.usage"]) == 1

        hosts = json.loads(cli(pg_env, "host", "list", "--json").stdout)
        assert [h["hostname"] for h in hosts] == ["app01"]
        cli(pg_env, "host", "revoke", "app01")
        r = httpx.post(f"{urls[1]}/heartbeat", json={"at": T0.isoformat()}, headers=agent)
        assert r.status_code == 401
    finally:
        for proc in servers:
            proc.terminate()
        for proc in servers:
            proc.wait(timeout=30)


def test_import_run_offline_bundle(pg_env: dict[str, str], tmp_path: Path) -> None:
    cli(pg_env, "db", "upgrade")
    contract = tmp_path / "c.toml"
    contract.write_text(contract_toml("HT-2"), encoding="utf-8")
    cli(pg_env, "contract", "import", str(contract))
    run = make_run("airgap01", T0, cpu=99.0)
    bundle = tmp_path / "run.json"
    bundle.write_text(json.dumps(run_json(run), indent=2), encoding="utf-8")
    lines = tmp_path / "runs.jsonl"
    second = make_run("airgap02", T0)
    lines.write_text(
        "\n".join(json.dumps(run_json(r)) for r in (run, second)) + "\n", encoding="utf-8"
    )
    out = cli(pg_env, "import-run", str(bundle), "--contract", "HT-2").stdout
    assert out.split("\t")[:3] == [str(run.run_id), "airgap01", "stored"]
    out = cli(pg_env, "import-run", str(lines), "--contract", "HT-2").stdout.splitlines()
    assert [line.split("\t")[2] for line in out] == ["duplicate", "stored"]
    broken = tmp_path / "broken.json"
    data = run_json(make_run("x", T0))
    del data["window"]
    broken.write_text(json.dumps(data), encoding="utf-8")
    err = cli(pg_env, "import-run", str(broken), "--contract", "HT-2", ok=False).stderr
    assert "broken.json" in err and "window" in err
    hosts = json.loads(cli(pg_env, "host", "list", "--contract", "HT-2", "--json").stdout)
    assert sorted(h["hostname"] for h in hosts) == ["airgap01", "airgap02"]
    assert not any(h["enrolled"] for h in hosts)
