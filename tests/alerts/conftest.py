"""Alert test plumbing: real webhook receivers that verify signatures as the robots do.

The collector fixtures (SQLite and PostgreSQL `db`, `client`, `fx`) come from
tests/collector/conftest.py. `Receivers` is one `http.server` on loopback playing WeCom,
DingTalk, Feishu and a generic endpoint; each records what it got and whether the signature
checked out, and answers the way the real service would (errcode/code ≠ 0 for a bad signature).
"""

from __future__ import annotations

import base64
import email
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional
from urllib.parse import parse_qs, urlsplit

import pytest

from checks.facts import Filesystem
from checks.model import InspectionRun
from collector.alerts.config import AlertDefaults
from collector.alerts.engine import Alerting
from collector.db.engine import Database
from collector.settings import SmtpSettings
from tests.collector.conftest import (  # noqa: F401  (fixtures shared with the collector tests)
    client,
    db,
    db_url,
    free_port,
    fx,
    make_run,
    pg_server,
    settings,
)

WECOM_KEY = "wecom-key-693a9b5c-0d4f"
DINGTALK_TOKEN = "dingtalk-token-5e0c1f8d27"
DINGTALK_SECRET = "SECdingtalk-secret-7f3e2a"
FEISHU_HOOK = "feishu-hook-2b6d0c7e-41aa"
FEISHU_SECRET = "feishu-secret-9c8b7a"
GENERIC_SECRET = "generic-secret-31d4"
SECRETS = (WECOM_KEY, DINGTALK_TOKEN, DINGTALK_SECRET, FEISHU_HOOK, FEISHU_SECRET, GENERIC_SECRET)
CONSOLE = "http://console.test"
HOUR_MS = 3600 * 1000


@dataclass
class Received:
    channel: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    verified: bool


@dataclass
class Receivers:
    port: int
    got: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def of(self, channel: str) -> list[Received]:
        with self.lock:
            return [r for r in self.got if r.channel == channel]

    def channels_toml(self, table: str = "alerts.channels", names: bool = False) -> str:
        """All four webhook kinds, signed, pointing at this server."""
        n = (lambda x: f'name = "{x}"\n') if names else (lambda x: "")
        return (
            f'[[{table}]]\nkind = "wecom"\n{n("wecom")}'
            f'url = "{self.base}/cgi-bin/webhook/send?key={WECOM_KEY}"\n'
            f'[[{table}]]\nkind = "dingtalk"\n{n("dingtalk")}'
            f'url = "{self.base}/robot/send?access_token={DINGTALK_TOKEN}"\n'
            f'secret = "{DINGTALK_SECRET}"\n'
            f'[[{table}]]\nkind = "feishu"\n{n("feishu")}'
            f'url = "{self.base}/open-apis/bot/v2/hook/{FEISHU_HOOK}"\n'
            f'secret = "{FEISHU_SECRET}"\n'
            f'[[{table}]]\nkind = "webhook"\n{n("webhook")}'
            f'url = "{self.base}/generic"\nsecret = "{GENERIC_SECRET}"\n'
        )


def dingtalk_verify(timestamp: str, sign: str, secret: str) -> bool:
    """As DingTalk checks a signed robot call: the timestamp within an hour, the HMAC equal."""
    if not timestamp.isdigit() or abs(int(timestamp) - int(time.time() * 1000)) > HOUR_MS:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256)
    return hmac.compare_digest(base64.b64encode(expected.digest()).decode(), sign)


def feishu_verify(timestamp: str, sign: str, secret: str) -> bool:
    if not timestamp.isdigit() or abs(int(timestamp) - int(time.time())) > 3600:
        return False
    expected = hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256)
    return hmac.compare_digest(base64.b64encode(expected.digest()).decode(), sign)


class _Handler(BaseHTTPRequestHandler):
    server: Any

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        return

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        parts = urlsplit(self.path)
        # parse_qs decodes %xx and '+' as DingTalk's server does before comparing.
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        body = json.loads(raw) if raw else None
        status, answer, channel, verified = self._answer(parts.path, query, raw, body)
        sink: Receivers = self.server.sink
        with sink.lock:
            sink.got.append(
                Received(channel, parts.path, query, dict(self.headers), body, verified)
            )
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _answer(
        self, path: str, query: dict[str, str], raw: bytes, body: Any
    ) -> tuple[int, dict[str, Any], str, bool]:
        if path == "/cgi-bin/webhook/send":
            ok = query.get("key") == WECOM_KEY and body.get("msgtype") == "markdown"
            return 200, {"errcode": 0 if ok else 93000, "errmsg": "ok"}, "wecom", ok
        if path == "/robot/send":
            ok = query.get("access_token") == DINGTALK_TOKEN and dingtalk_verify(
                query.get("timestamp", ""), query.get("sign", ""), DINGTALK_SECRET
            )
            answer = (
                {"errcode": 0, "errmsg": "ok"}
                if ok
                else {"errcode": 310000, "errmsg": "sign not match"}
            )
            return 200, answer, "dingtalk", ok
        if path == f"/open-apis/bot/v2/hook/{FEISHU_HOOK}":
            ok = feishu_verify(str(body.get("timestamp", "")), body.get("sign", ""), FEISHU_SECRET)
            answer = (
                {"code": 0, "msg": "success"} if ok else {"code": 19021, "msg": "sign match fail"}
            )
            return 200, answer, "feishu", ok
        if path == "/generic":
            mac = hmac.new(GENERIC_SECRET.encode(), raw, hashlib.sha256).hexdigest()
            ok = hmac.compare_digest(self.headers.get("X-Xunjian-Signature", ""), f"sha256={mac}")
            return (200 if ok else 401), {"ok": ok}, "webhook", ok
        if path == "/bad":
            return 400, {"error": "no such robot"}, "bad", False
        return 404, {"error": "not found"}, "unknown", False


@pytest.fixture
def receivers() -> Iterator[Receivers]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    sink = Receivers(server.server_address[1])
    server.sink = sink  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class Mailbox:
    """aiosmtpd's handler: every message it accepted, parsed."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.rcpts: list[list[str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, _class=EmailMessage, policy=policy.SMTP)
        assert isinstance(msg, EmailMessage)
        self.messages.append(msg)
        self.rcpts.append(list(envelope.rcpt_tos))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, SmtpSettings]]:
    from aiosmtpd.controller import Controller

    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield (
            box,
            SmtpSettings(
                host="127.0.0.1", port=port, security="none", sender="alerts@vendor.example"
            ),
        )
    finally:
        controller.stop()


def alerting_for(
    database: Database,
    defaults: Optional[AlertDefaults] = None,
    smtp: Optional[SmtpSettings] = None,
) -> Alerting:
    return Alerting(database, defaults or AlertDefaults(), CONSOLE, 30, smtp or SmtpSettings())


def disk_run(hostname: str, at: datetime, *, data: float, cpu: float = 10.0) -> InspectionRun:
    """A run whose /data filesystem is `data` % full (disk.usage is service-affecting: P1)."""
    run = make_run(hostname, at, cpu=cpu)
    total = 100 << 30
    used = int(total * data / 100)
    fs = Filesystem(
        mount="/data",
        device="/dev/sdb1",
        fstype="ext4",
        total_bytes=total,
        used_bytes=used,
        free_bytes=total - used,
        used_percent=data,
    )
    return run.model_copy(update={"facts": run.facts.model_copy(update={"filesystems": [fs]})})
