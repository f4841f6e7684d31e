"""Report mail through a real SMTP server (aiosmtpd): structure, inline charts, the PDF, TLS, retries."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from collector.contracts import Contract
from collector.db.engine import Database
from collector.db.migrate import upgrade
from collector.db.models_reports import OutboxRow
from collector.outbox import drain, enqueue
from collector.periods import parse
from collector.reports.store import REPORT_MAIL, build, report_mail_handler
from collector.settings import SmtpSettings
from tests.collector.conftest import free_port
from tests.reports.helpers import EXAMPLE
from tests.reports.seed import seed
from tests.reports.smtp_server import self_signed, smtp_server

pytestmark = pytest.mark.py311

END_OF_Q3 = datetime(2026, 9, 30, 16, 0, tzinfo=timezone.utc)
SENDER = "reports@vendor.example"


@dataclass
class Built:
    db: Database
    contract: Contract
    report_id: int
    tmp: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    tmp = tmp_path_factory.mktemp("mail")
    db = Database(f"sqlite:///{tmp / 'x.db'}")
    upgrade(db)
    contract = seed(
        db,
        EXAMPLE,
        ["app01", "db01"],
        run_times=[END_OF_Q3 - timedelta(hours=6)],
        samples_until=END_OF_Q3 - timedelta(hours=1),
        sample_step_minutes=10,
    )
    from collector.settings import CollectorSettings

    settings = CollectorSettings(home=tmp, database_url=db.url, smtp={"from": SENDER})
    outcome = build(
        db, settings, contract, parse("2026-Q3", contract), worker="builder", now=END_OF_Q3
    )
    assert outcome is not None and outcome.built and outcome.queued
    yield Built(db, contract, outcome.report_id, tmp)
    db.dispose()


def _queue(b: Built) -> str:
    """Another delivery of the built report; returns its Message-ID."""
    msg_id = f"<test.{uuid.uuid4().hex}@vendor.example>"
    with b.db.write() as session:
        enqueue(
            session,
            kind=REPORT_MAIL,
            key=f"test:{msg_id}",
            ref=f"report:{b.report_id}",
            payload={"report_id": b.report_id, "to": ["zhang.wei@customer.example"], "cc": []},
            message_id=msg_id,
        )
    return msg_id


def _state(b: Built, msg_id: str) -> OutboxRow:
    with b.db.read() as session:
        return session.scalars(select(OutboxRow).where(OutboxRow.message_id == msg_id)).one()


def test_report_mail_structure_inline_charts_and_pdf(built: Built) -> None:
    port = free_port()
    smtp = SmtpSettings(host="127.0.0.1", port=port, security="none", **{"from": SENDER})
    with smtp_server(port) as sink:
        result = drain(built.db, "w1", {REPORT_MAIL: report_mail_handler(built.db, smtp)})
    assert len(result.sent) == 1 and not result.retried and not result.failed
    [(mail_from, rcpts, _)] = sink.messages
    assert mail_from == SENDER
    assert sorted(rcpts) == ["li.na@vendor.example", "zhang.wei@customer.example"]  # to + cc
    [msg] = sink.parsed()
    assert (
        "HT-2026-001" in msg["Subject"]
        and "示例科技有限公司" in msg["Subject"]
        and "2026-Q3" in msg["Subject"]
    )
    with built.db.read() as session:
        row = session.scalars(
            select(OutboxRow).where(OutboxRow.ref == f"report:{built.report_id}")
        ).first()
        assert row is not None and row.state == "sent"
    assert msg["Message-ID"] == row.message_id
    # multipart/mixed [ multipart/alternative [ text/plain, multipart/related [ html, png… ] ], pdf ]
    assert msg.get_content_type() == "multipart/mixed"
    alternative, attachment = list(msg.iter_parts())
    assert alternative.get_content_type() == "multipart/alternative"
    plain, related = list(alternative.iter_parts())
    assert plain.get_content_type() == "text/plain"
    assert "HT-2026-001" in plain.get_content()
    assert related.get_content_type() == "multipart/related"
    html_part, *images = list(related.iter_parts())
    html = html_part.get_content()
    cids = set(re.findall(r'src="cid:([^"]+)"', html))
    assert cids, "the mail shows charts inline"
    parts = {str(p["Content-ID"]).strip("<>"): p for p in images}
    assert cids <= set(parts), "every cid: reference resolves to a part"
    assert all(
        p.get_content_type() == "image/png" and p.get_content()[:4] == b"\x89PNG"
        for p in parts.values()
    )
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content()[:5] == b"%PDF-"
    assert attachment.get_filename() == "巡检报告_HT-2026-001_2026-Q3.pdf"  # RFC 2231, read back
    assert str(attachment.get("Content-Disposition")).startswith("attachment")
    raw = sink.messages[0][2].decode("ascii")  # 7-bit clean on the wire
    assert "filename*0*=utf-8''%E5%B7%A1%E6%A3%80" in raw
    assert 'filename="inspection-report_HT-2026-001_2026-Q3.pdf"' in raw  # ASCII fallback


def test_starttls_with_auth_and_a_wrong_password(built: Built, tmp_path: Path) -> None:
    port = free_port()
    cert, key = self_signed(tmp_path)
    secret = tmp_path / "smtp-password"
    secret.write_text("s3cret-Pa55\n")
    good = SmtpSettings(
        host="127.0.0.1",
        port=port,
        security="starttls",
        user="xunjian",
        password_file=secret,
        ca_file=cert,
        **{"from": SENDER},
    )
    bad = SmtpSettings.model_validate(
        {**good.model_dump(by_alias=True), "password_file": None, "password": "wrong"}
    )
    with smtp_server(port, tls=(cert, key), user="xunjian", password="s3cret-Pa55") as sink:
        refused = _queue(built)
        drain(built.db, "w1", {REPORT_MAIL: report_mail_handler(built.db, bad)})
        row = _state(built, refused)
        assert row.state == "failed" and row.attempts == 1, row.last_error  # 535: permanent
        assert "535" in (row.last_error or "") and "wrong" not in (row.last_error or "")
        accepted = _queue(built)
        drain(built.db, "w1", {REPORT_MAIL: report_mail_handler(built.db, good)})
    assert _state(built, accepted).state == "sent"
    assert [m["Message-ID"] for m in sink.parsed()] == [accepted]


def test_smtp_down_then_4xx_then_delivered_later(built: Built) -> None:
    port = free_port()
    smtp = SmtpSettings(host="127.0.0.1", port=port, security="none", **{"from": SENDER})
    handlers = {REPORT_MAIL: report_mail_handler(built.db, smtp)}
    msg_id = _queue(built)
    t0 = datetime.now(timezone.utc)
    first = drain(built.db, "w1", handlers, now=lambda: t0)  # nothing listens: connection refused
    row = _state(built, msg_id)
    assert row.id in first.retried and row.state == "pending" and row.attempts == 1
    assert row.next_attempt_at > t0 and "Connection" in (row.last_error or "")
    with smtp_server(port) as sink:
        assert not drain(built.db, "w1", handlers, now=lambda: t0).sent  # not due yet
        sink.replies.append("451 4.3.0 try again later")
        drain(built.db, "w1", handlers, now=lambda: t0 + timedelta(minutes=1))
        row = _state(built, msg_id)
        assert row.state == "pending" and row.attempts == 2 and "451" in (row.last_error or "")
        later = drain(built.db, "w1", handlers, now=lambda: t0 + timedelta(hours=1))
    assert row.id in later.sent
    assert _state(built, msg_id).state == "sent"
    assert [m["Message-ID"] for m in sink.parsed()] == [msg_id]  # delivered once, nothing lost
