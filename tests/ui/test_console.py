"""The console in-process (TestClient): log-in, sessions, CSRF, rate limit, scope, actions, texts.

Each test takes its own client (cookies) and, where the rate limit could interfere, its own
client address; the data is seeded once per module and database (see conftest.py).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from agent.config import ConfigError
from collector.app import create_app
from collector.db.engine import Database
from collector.db.migrate import upgrade
from collector.db.models_ui import LoginFailure, User
from collector.settings import CollectorSettings
from collector.ui.auth import create_user
from collector.ui.routes import accept_language, safe_next
from tests.collector.conftest import bearer
from tests.ui.conftest import CONTRACT_A, CONTRACT_B, PASSWORD, Seeded, csrf_of, login

pytestmark = pytest.mark.py311


def test_pages_need_a_log_in(seeded: Seeded) -> None:
    c = seeded.client()
    for path in ("/contracts", f"/contracts/{CONTRACT_A}", "/findings", "/reports"):
        r = c.get(path)
        assert r.status_code == 303
        assert r.headers["location"].startswith("/login?next=")
    assert c.get("/login").status_code == 200


def test_log_in_then_out(seeded: Seeded) -> None:
    c = seeded.client()
    r = login(c, "Alice")  # names are case-insensitive
    assert r.status_code == 303 and r.headers["location"] == "/contracts"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    page = c.get("/contracts")
    assert page.status_code == 200
    assert CONTRACT_A in page.text and CONTRACT_B in page.text
    old_session = c.cookies.get("xj_session")
    r = c.post("/logout", data={"csrf": csrf_of(page.text)})
    assert r.status_code == 303
    stale = seeded.client()
    stale.cookies.set("xj_session", old_session or "")
    assert stale.get("/contracts").status_code == 303  # the row is gone, not only the cookie


def test_wrong_password_and_rate_limit(seeded: Seeded) -> None:
    """conftest sets max_failures_per_user = 3: the fourth try is refused even when right."""
    c = seeded.client("198.51.100.20")
    with seeded.db.write() as session:
        create_user(session, "lim", PASSWORD, "engineer", (), datetime.now(timezone.utc))
    for _ in range(3):
        r = login(c, "lim", "wrong password!")
        assert r.status_code == 401
        assert "用户名或密码错误" in r.text
    r = login(c, "lim", PASSWORD)
    assert r.status_code == 429
    assert "登录失败次数过多" in r.text and "xj_session" not in r.headers.get("set-cookie", "")
    # The limit is per name: another user from elsewhere is not affected …
    assert login(seeded.client("198.51.100.21"), "eng").status_code == 303
    # … and it is in the database, so a second collector on it refuses too.
    other = TestClient(
        create_app(seeded.settings, seeded.db), client=("198.51.100.22", 1), follow_redirects=False
    )
    assert login(other, "lim", PASSWORD).status_code == 429


def test_rate_limit_per_client_address(seeded: Seeded) -> None:
    c = seeded.client("198.51.100.30")
    limit = seeded.settings.ui.max_failures_per_client
    for i in range(limit):
        assert login(c, f"nobody{i}", "guess-guess").status_code == 401
    assert login(c, "alice").status_code == 429
    assert login(seeded.client("198.51.100.31"), "alice").status_code == 303
    with seeded.db.read() as session:
        stored = session.scalar(select(func.count()).where(LoginFailure.client == "198.51.100.30"))
    assert stored == limit  # refused attempts are not counted: the lock does not extend itself


def test_csrf_required_on_every_post(seeded: Seeded) -> None:
    anonymous = seeded.client()
    r = anonymous.post("/login", data={"name": "alice", "password": PASSWORD})
    assert r.status_code == 403 and "xj_session" not in r.headers.get("set-cookie", "")

    c = seeded.client()
    assert login(c, "eng").status_code == 303
    finding = seeded.finding("web01", "cpu.usage")
    own = csrf_of(c.get("/contracts").text)
    other = seeded.client()
    login(other, "alice")
    foreign = csrf_of(other.get("/contracts").text)
    for token in ("", "forged", foreign):
        data = {"note": "x"} | ({"csrf": token} if token else {})
        r = c.post(f"/findings/{finding.id}/ack", data=data)
        assert r.status_code == 403, token
        assert "CSRF" in r.text
    assert seeded.finding("web01", "cpu.usage").ack_at is None
    host = seeded.hosts["app01"]
    assert c.post(f"/hosts/{host}/inspect").status_code == 403
    assert c.post("/logout").status_code == 403
    assert c.post("/lang", data={"lang": "en"}).status_code == 403
    r = c.post("/lang", data={"lang": "en", "csrf": own, "next": "/findings"})
    assert r.status_code == 303 and r.headers["location"] == "/findings"


def test_viewer_sees_only_their_contract(seeded: Seeded) -> None:
    c = seeded.client()
    assert login(c, "va").status_code == 303
    listing = c.get("/contracts").text
    assert CONTRACT_A in listing and CONTRACT_B not in listing
    assert c.get(f"/contracts/{CONTRACT_A}").status_code == 200
    assert c.get(f"/hosts/{seeded.hosts['app01']}").status_code == 200
    b_finding = seeded.finding("web01", "cpu.usage")
    for path in (
        f"/contracts/{CONTRACT_B}",
        f"/hosts/{seeded.hosts['web01']}",
        f"/findings/{b_finding.id}",
        f"/reports?contract={CONTRACT_B}",
    ):
        r = c.get(path)
        assert r.status_code == 403, path
        assert "无权" in r.text
    assert "web01" not in c.get("/findings").text
    assert c.get("/contracts/NO-SUCH").status_code == 404
    assert c.get("/findings/99999999999999999999999").status_code == 422
    assert c.get("/reports/9223372036854775807").status_code == 404


def test_viewer_cannot_act(seeded: Seeded) -> None:
    c = seeded.client()
    login(c, "va")
    token = csrf_of(c.get("/contracts").text)
    finding = seeded.finding("app01", "cpu.usage")
    r = c.post(f"/findings/{finding.id}/ack", data={"csrf": token, "note": "mine"})
    assert r.status_code == 403
    assert seeded.finding("app01", "cpu.usage").ack_at is None
    r = c.post(f"/hosts/{seeded.hosts['app01']}/inspect", data={"csrf": token})
    assert r.status_code == 403
    r = c.post("/report-now", data={"csrf": token, "contract": CONTRACT_A, "period": "2026-Q1"})
    assert r.status_code == 403
    page = c.get(f"/hosts/{seeded.hosts['app01']}").text
    assert "/ack" not in page and "/inspect" not in page


def test_queue_orders_by_time_left_and_ack_is_the_apis(seeded: Seeded) -> None:
    c = seeded.client()
    login(c, "eng")
    queue = c.get("/findings").text
    ids = [int(x) for x in re.findall(r'id="finding-(\d+)"', queue)]
    a_disk = seeded.finding("app01", "disk.usage").id  # P1 under A: 1 h
    a_cpu = seeded.finding("app01", "cpu.usage").id  # P2 under A: 2 h
    b_disk = seeded.finding("web01", "disk.usage").id  # P2 under B: 4 h of 5×8
    assert ids.index(a_disk) < ids.index(a_cpu) < ids.index(b_disk)
    assert seeded.finding("db01", "disk.usage").id not in ids  # a warning has no response time

    r = c.post(
        f"/findings/{a_cpu}/ack",
        data={"csrf": csrf_of(queue), "note": "called the customer 张伟", "next": "/findings"},
    )
    assert r.status_code == 303 and r.headers["location"] == "/findings"
    api = seeded.client()
    found = api.get(
        f"/api/v1/findings?contract={CONTRACT_A}", headers=bearer(seeded.admin_key)
    ).json()
    acked = next(f for f in found if f["id"] == a_cpu)
    assert acked["ack_by"] == "user:eng" and acked["ack_note"] == "called the customer 张伟"
    assert acked["ack_at"] is not None
    assert f'id="finding-{a_cpu}"' not in c.get("/findings").text


def test_inspect_now_is_the_apis_request(seeded: Seeded) -> None:
    c = seeded.client()
    login(c, "alice")
    host = seeded.hosts["db01"]
    token = csrf_of(c.get(f"/hosts/{host}").text)
    r = c.post(f"/hosts/{host}/inspect", data={"csrf": token})
    assert r.status_code == 303
    beat = c.post(
        "/api/v1/heartbeat",
        json={"at": datetime.now(timezone.utc).isoformat()},
        headers=bearer(seeded.credentials["db01"]),
    )
    assert beat.status_code == 200 and beat.json()["inspect_now"] is True


def test_language_from_browser_cookie_and_user(seeded: Seeded) -> None:
    c = seeded.client()
    assert "登录" in c.get("/login").text  # default zh_CN
    assert "Log in" in c.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"}).text
    assert "登录" in c.get("/login", headers={"Accept-Language": "fr, zh;q=0.5, en;q=0.4"}).text
    login(c, "alice")
    page = c.get("/contracts")
    r = c.post("/lang", data={"csrf": csrf_of(page.text), "lang": "en", "next": "/contracts"})
    assert "xj_lang=en" in r.headers["set-cookie"]
    assert "Maintenance contracts" in c.get("/contracts").text
    fresh = seeded.client()  # the choice is kept with the user, on any browser
    login(fresh, "alice")
    assert "Maintenance contracts" in fresh.get("/contracts").text
    with seeded.db.write() as session:
        alice = session.scalars(select(User).where(User.name == "alice")).one()
        alice.lang = None


def test_contract_and_host_pages_show_the_promises(seeded: Seeded) -> None:
    c = seeded.client()
    login(c, "alice")
    listing = c.get("/contracts").text
    assert "2 / 3" in listing  # HT-A: app01 and db01 report, never01 is named but silent
    assert "never01" in listing
    page = c.get(f"/contracts/{CONTRACT_A}").text
    for text in ("app01", "db01", "never01", "P1", "P2", "7×24"):
        assert text in page, text
    host = c.get(f"/hosts/{seeded.hosts['app01']}").text
    assert "/data" in host and "97.0%" in host
    assert f'action="/hosts/{seeded.hosts["app01"]}/inspect"' in host
    finding = seeded.finding("app01", "disk.usage")
    r = c.get(f"/findings/{finding.id}")
    assert r.status_code == 303
    assert r.headers["location"] == f"/hosts/{seeded.hosts['app01']}#finding-{finding.id}"


def test_security_headers(seeded: Seeded) -> None:
    c = seeded.client()
    r = c.get("/login")
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-store"


def test_secure_cookie_by_default_and_refused_off_loopback(tmp_path: Path) -> None:
    settings = CollectorSettings(home=tmp_path)
    db = Database(settings.db_url)
    upgrade(db)
    with db.write() as session:
        create_user(session, "alice", PASSWORD, "admin", (), datetime.now(timezone.utc))
    app = create_app(settings, db)
    c = TestClient(app, base_url="https://testserver", follow_redirects=False)
    r = login(c, "alice")
    assert r.status_code == 303
    assert "Secure" in r.headers["set-cookie"] and "HttpOnly" in r.headers["set-cookie"]
    assert (tmp_path / "console.key").stat().st_mode & 0o777 == 0o600
    exposed = CollectorSettings(home=tmp_path, listen="0.0.0.0:8080", ui={"cookie_secure": False})
    with pytest.raises(ConfigError, match="cookie_secure"):
        create_app(exposed, db)
    db.dispose()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/hosts/x?y=1", "/hosts/x?y=1"),
        ("//evil.example/", "/contracts"),
        ("https://evil.example/", "/contracts"),
        ("/\\evil.example", "/contracts"),
        ("", "/contracts"),
        ("/x\r\nSet-Cookie: a=b", "/contracts"),
    ],
)
def test_next_stays_on_this_site(value: str, expected: str) -> None:
    assert safe_next(value) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("en-US,en;q=0.9", "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh_CN"),
        ("de, en;q=0.3, zh;q=0.7", "zh_CN"),
        ("fr", None),
        ("en;q=0, zh;q=0.1", "zh_CN"),
        ("", None),
    ],
)
def test_accept_language(header: str, expected: str) -> None:
    assert accept_language(header) == expected
