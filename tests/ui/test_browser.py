"""The console in Debian's Chromium (Playwright) against a real `xunjian serve` on loopback.

The collector runs as a subprocess on a temporary XUNJIAN_HOME (SQLite). Fixture data goes in
the way it does in production: contracts and users with the CLI, agents enrolled with a token and
posting samples and runs over the API. Every page visited is saved as a PNG under
test-artifacts/ui/ so a person can look at it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from collector.db.engine import Database
from collector.ui.auth import create_user
from tests.collector.conftest import Fixture, free_port
from tests.conftest import ARTIFACTS, ROOT, require_service
from tests.reports.fixtures import make_run, make_samples

pytestmark = [pytest.mark.py311, pytest.mark.services, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
XUNJIAN = Path(sys.executable).with_name("xunjian")
PASSWORD = "correct horse battery"
A, B = "HT-2026-001", "HT-2026-002"
SHOTS = ARTIFACTS / "ui"


@dataclass
class Server:
    url: str
    home: Path
    env: dict[str, str]
    admin_key: str
    hosts: dict[str, str]

    def cli(self, *args: str, stdin: str = "") -> str:
        done = subprocess.run(
            [str(XUNJIAN), *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.admin_key}"}
        return httpx.request(method, self.url + path, headers=headers, timeout=30, **kwargs)


def _contracts(home: Path) -> list[Path]:
    """The example contract (A) and a copy for another customer (B)."""
    example = (ROOT / "config" / "contracts" / "example.toml").read_text(encoding="utf-8")
    a = home / "a.toml"
    a.write_text(example, encoding="utf-8")
    b = home / "b.toml"
    b.write_text(
        example.replace(A, B).replace("示例科技有限公司", "远方制造股份有限公司"), encoding="utf-8"
    )
    return [a, b]


def _wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"xunjian serve exited with {proc.returncode}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("xunjian serve did not answer /healthz within 60 s")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    require_service(CHROMIUM.exists(), "Debian chromium not installed (/usr/bin/chromium)")
    home = tmp_path_factory.mktemp("serve")
    port = free_port()
    env = {
        **os.environ,
        "XUNJIAN_HOME": str(home),
        "XUNJIAN_LISTEN": f"127.0.0.1:{port}",
        "XUNJIAN_UI_COOKIE_SECURE": "false",
    }
    env.pop("XUNJIAN_CONFIG", None)
    env.pop("XUNJIAN_DATABASE_URL", None)
    srv = Server(f"http://127.0.0.1:{port}", home, env, "", {})
    srv.cli("contract", "import", *map(str, _contracts(home)))
    password_file = home / "pw"
    password_file.write_text(PASSWORD + "\n", encoding="utf-8")
    srv.cli("user", "create", "alice", "--role", "admin", "--password-file", str(password_file))
    # The rest straight into the database (each CLI call is a Python start-up on a busy box).
    db = Database(f"sqlite:///{home / 'xunjian.db'}")
    with db.write() as session:
        create_user(session, "va", PASSWORD, "viewer", (A,), datetime.now(timezone.utc))
        create_user(session, "mallory", PASSWORD, "engineer", (), datetime.now(timezone.utc))
    setup = Fixture(db, cast(Any, None), home)
    srv.admin_key = setup.api_key("admin")
    proc = subprocess.Popen(
        [str(XUNJIAN), "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        _wait_healthy(srv.url, proc)
        now = datetime.now(timezone.utc)
        for i, (contract, hostname, tags) in enumerate(
            ((A, "app01", []), (A, "db01", []), (B, "web01", ["web"]))
        ):
            token = setup.enroll_token(contract)
            r = httpx.post(
                srv.url + "/api/v1/enroll",
                json={"token": token, "host": {"hostname": hostname}, "tags": tags},
            )
            assert r.status_code == 201, r.text
            host_id, credential = r.json()["host_id"], r.json()["credential"]
            srv.hosts[hostname] = host_id
            auth = {"Authorization": f"Bearer {credential}"}
            samples = make_samples(now, step_minutes=10, seed=i)
            batch = {"samples": [s.model_dump(mode="json") for s in samples]}
            assert httpx.post(srv.url + "/api/v1/samples", json=batch, headers=auth).is_success
            run = make_run(hostname, now - timedelta(minutes=20),
                           data_used_percent=97.0 if i != 1 else 60.0)  # fmt: skip
            body = run.model_dump(mode="json", by_alias=True)
            r = httpx.post(srv.url + "/api/v1/runs", json=body, headers=auth, timeout=30)
            assert r.status_code == 201, r.text
            beat = {"at": datetime.now(timezone.utc).isoformat()}
            assert httpx.post(srv.url + "/api/v1/heartbeat", json=beat, headers=auth).is_success
        db.dispose()
        yield srv
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_service(CHROMIUM.exists(), "Debian chromium not installed (/usr/bin/chromium)")
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        b.close()


def _login(context: Any, server: Server, name: str, password: str = PASSWORD) -> Any:
    page = context.new_page()
    page.goto(server.url + "/contracts")  # → the log-in page, and back here afterwards
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("section.login button[type=submit]")
    return page


def _shot(page: Any, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_engineer_flow(server: Server, browser: Any, tmp_path: Path) -> None:
    context = browser.new_context(locale="zh-CN", viewport={"width": 1366, "height": 900})
    page = _login(context, server, "alice")
    page.wait_for_url("**/contracts")
    assert page.locator("h1").inner_text() == "维保合同"
    assert page.locator(f"a[href='/contracts/{A}']").count() == 1
    _shot(page, "01-contracts-zh")

    page.click(f"a[href='/contracts/{A}']")
    page.wait_for_url(f"**/contracts/{A}")
    assert "示例科技有限公司" in page.content()
    assert page.locator("text=never01").count() == 0  # example names app01 and db01
    _shot(page, "02-contract-zh")

    # Build and send the report now: the reports' builder runs inside the collector. The
    # newest period is the running one, which holds the runs posted above.
    page.select_option("select[name=period]", index=0)
    with page.expect_navigation(timeout=180_000):
        page.click("form[action='/report-now'] button")
    assert "/reports/" in page.url
    assert page.locator("text=已生成").count() >= 1
    _shot(page, "03-report-zh")
    with page.expect_download(timeout=60_000) as download:
        page.click("a[href$='/pdf']")
    pdf = tmp_path / "report.pdf"
    download.value.save_as(pdf)
    assert pdf.read_bytes().startswith(b"%PDF")
    assert A in (download.value.suggested_filename or "")
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True)
        assert A in text.stdout
    report_page = page.url
    page.click("a[href$='/html']")
    assert "巡检报告" in page.content() and A in page.content()
    _shot(page, "03b-report-html-zh")
    page.goto(report_page)

    page.goto(server.url + f"/hosts/{server.hosts['app01']}")
    assert page.locator(".charts img").count() >= 3  # CPU, memory, load (and disk)
    assert page.locator("article.finding").count() >= 1
    _shot(page, "04-host-zh")

    page.goto(server.url + "/findings")
    first = page.locator("article.finding").first
    finding_id = int(first.get_attribute("id").removeprefix("finding-"))
    first.locator("input[name=note]").fill("已电话通知客户 / customer called")
    _shot(page, "05-queue-zh")
    with page.expect_navigation():
        first.locator("form.ack button").click()
    acked = server.api("GET", "/api/v1/findings", params={"limit": 1000}).json()
    mine = next(f for f in acked if f["id"] == finding_id)
    assert mine["ack_by"] == "user:alice"
    assert mine["ack_note"] == "已电话通知客户 / customer called"
    assert page.locator(f"#finding-{finding_id}").count() == 0

    page.click("form.langs button[value=en]")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text().startswith("Findings awaiting response")
    page.goto(server.url + "/contracts")
    _shot(page, "06-contracts-en")
    page.goto(server.url + f"/contracts/{A}")
    _shot(page, "07-contract-en")
    page.goto(server.url + "/reports")
    _shot(page, "08-reports-en")
    context.close()


def test_viewer_of_a_gets_403_on_b(server: Server, browser: Any) -> None:
    context = browser.new_context(locale="zh-CN", viewport={"width": 1366, "height": 800})
    page = _login(context, server, "va")
    page.wait_for_url("**/contracts")
    assert page.locator(f"a[href='/contracts/{B}']").count() == 0
    assert page.locator("form[action='/report-now']").count() == 0
    for path in (f"/contracts/{B}", f"/hosts/{server.hosts['web01']}", f"/reports?contract={B}"):
        response = page.goto(server.url + path)
        assert response is not None and response.status == 403, path
    _shot(page, "09-viewer-403-zh")
    response = page.goto(server.url + f"/hosts/{server.hosts['app01']}")
    assert response is not None and response.status == 200
    assert page.locator("form.ack").count() == 0 and page.locator("text=立即巡检").count() == 0
    context.close()


def test_csrf_and_rate_limit(server: Server, browser: Any) -> None:
    context = browser.new_context(locale="zh-CN")
    page = _login(context, server, "alice")
    page.wait_for_url("**/contracts")
    finding = server.api("GET", "/api/v1/findings", params={"state": "open"}).json()[0]
    # The browser's own cookies, but no token: refused, nothing acknowledged.
    refused = context.request.post(
        server.url + f"/findings/{finding['id']}/ack", form={"note": "forged"}
    )
    assert refused.status == 403
    again = server.api("GET", "/api/v1/findings", params={"state": "open"}).json()
    assert next(f for f in again if f["id"] == finding["id"])["ack_note"] != "forged"
    context.close()

    context = browser.new_context(locale="zh-CN", viewport={"width": 1024, "height": 640})
    page = context.new_page()
    page.goto(server.url + "/login")
    for _ in range(5):  # the default limit: five failures per name in 15 minutes
        page.fill("input[name=name]", "mallory")
        page.fill("input[name=password]", "not the password")
        page.click("section.login button[type=submit]")
        assert page.locator("p.alert").inner_text() == "用户名或密码错误。"
    page.fill("input[name=name]", "mallory")
    page.fill("input[name=password]", PASSWORD)
    page.click("section.login button[type=submit]")
    assert "登录失败次数过多" in page.locator("p.alert").inner_text()
    _shot(page, "10-login-locked-zh")
    context.close()
