"""The alert engine end to end: findings from real ingests, real receivers, time driven by hand."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from typing import Any, Optional
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from collector import outbox
from collector.alerts import deliver
from collector.alerts.engine import Alerting, after_ingest, run_minute, tick
from collector.db.engine import Database
from collector.db.models import Finding, Host
from collector.db.models_reports import OutboxRow
from collector.ingest import HostRef, ingest_run
from collector.settings import SmtpSettings
from tests.alerts.conftest import (
    CONSOLE,
    DINGTALK_SECRET,
    DINGTALK_TOKEN,
    GENERIC_SECRET,
    Mailbox,
    Receivers,
    alerting_for,
    disk_run,
)
from tests.collector.conftest import free_port

pytestmark = pytest.mark.py311

SHANGHAI = ZoneInfo("Asia/Shanghai")
FRIDAY_1750 = datetime(2026, 3, 6, 17, 50, tzinfo=SHANGHAI).astimezone(timezone.utc)


def local(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI).astimezone(timezone.utc)


class Site:
    """One contract with one enrolled host, ingesting runs and draining the outbox at `now`."""

    def __init__(
        self, fx: Any, db: Database, number: str, extra: str, smtp: Optional[SmtpSettings] = None
    ) -> None:
        self.db = db
        self.number = fx.contract(number, extra)
        self.hostname = "app01"
        self.host_id, _ = fx.enroll(number, self.hostname)
        self.alerting: Alerting = alerting_for(db, smtp=smtp)

    def ingest(self, at: datetime, *, data: float, cpu: float = 10.0) -> int:
        run = disk_run(self.hostname, at, data=data, cpu=cpu)
        ingest_run(self.db, HostRef(self.host_id, self.number, self.hostname), run, now=at)
        return after_ingest(self.alerting, self.host_id, at)

    def drain(self, at: datetime) -> outbox.DrainResult:
        return outbox.drain(self.db, "test", deliver.handlers(self.alerting), now=lambda: at)

    def tick(self, at: datetime) -> dict[str, int]:
        """The scheduler's minute at `at` (delivery itself runs on the real clock)."""
        return run_minute(self.alerting, "test", at)

    def rows(self) -> list[OutboxRow]:
        with self.db.read() as session:
            return list(session.scalars(select(OutboxRow).order_by(OutboxRow.id)))


def test_p1_once_per_channel_over_ten_runs_then_resolved(
    fx: Any, db: Database, receivers: Receivers, smtp: tuple[Mailbox, SmtpSettings]
) -> None:
    box, smtp_settings = smtp
    mail = '[[alerts.channels]]\nkind = "email"\nrecipients = ["desk@vendor.example"]\n'
    site = Site(fx, db, "HT-A1", "[alerts]\n" + receivers.channels_toml() + mail, smtp_settings)
    t0 = local(2026, 3, 4, 10, 0)
    for i in range(10):
        at = t0 + timedelta(minutes=5 * i)
        site.ingest(at, data=97.0, cpu=99.0)  # disk.usage critical → P1, cpu.usage → P2
        site.drain(at)

    for channel in ("wecom", "dingtalk", "feishu", "webhook"):
        got = receivers.of(channel)
        assert len(got) == 1, (channel, got)
        assert got[0].verified, channel
    generic = receivers.of("webhook")[0].body
    assert generic["event"] == "raised" and generic["contract"] == "HT-A1"
    # Both findings of the first run in one message, P1 first by finding order.
    items = {i["check"]: i for i in generic["items"]}
    assert items["disk.usage"]["priority"] == "P1" and items["cpu.usage"]["priority"] == "P2"
    assert items["disk.usage"]["host"] == "app01"
    assert items["disk.usage"]["link"] == f"{CONSOLE}/findings/{items['disk.usage']['finding_id']}"
    # 2 h of P1 response time from Wednesday 10:00 within 09:30–18:00 → 12:00 local.
    assert items["disk.usage"]["deadline_local"] == "2026-03-04 12:00 (Asia/Shanghai)"
    wecom = receivers.of("wecom")[0].body["markdown"]["content"]
    assert "HT-A1" in wecom and "app01" in wecom and "P1" in wecom and "2026-03-04 12:00" in wecom
    dingtalk = receivers.of("dingtalk")[0].body
    assert dingtalk["msgtype"] == "markdown" and "HT-A1" in dingtalk["markdown"]["title"]
    feishu = receivers.of("feishu")[0].body
    assert feishu["msg_type"] == "interactive" and "HT-A1" in json_text(feishu)
    assert len(box.messages) == 1 and box.rcpts[0] == ["desk@vendor.example"]
    mail_text = box.messages[0].get_body(("plain",))
    assert mail_text is not None and "2026-03-04 12:00" in mail_text.get_content()
    assert "HT-A1" in str(box.messages[0]["Subject"])

    # The problem goes away: one resolved notice per channel, then silence.
    later = t0 + timedelta(hours=1)
    site.ingest(later, data=40.0)
    site.drain(later)
    site.ingest(later + timedelta(minutes=5), data=40.0)
    site.tick(later + timedelta(minutes=6))
    for channel in ("wecom", "dingtalk", "feishu", "webhook"):
        assert len(receivers.of(channel)) == 2, channel
    assert len(box.messages) == 2
    resolved = receivers.of("webhook")[1].body
    assert resolved["event"] == "resolved"
    assert {i["check"] for i in resolved["items"]} == {"disk.usage", "cpu.usage"}
    assert all(r.state == "sent" for r in site.rows())


def json_text(body: Any) -> str:
    return json.dumps(body, ensure_ascii=False)


def test_friday_evening_p1_escalates_monday_1120_not_saturday(
    fx: Any, db: Database, receivers: Receivers
) -> None:
    extra = (
        '[response_hours]\nP1 = 2\n[support]\nkind = "5x8"\n'
        "[alerts]\nnear_minutes = 30\n"
        f'[[alerts.channels]]\nkind = "webhook"\nname = "desk"\nurl = "{receivers.base}/generic"\n'
        f'secret = "{GENERIC_SECRET}"\n'
        f"[[alerts.escalation]]\n"
        f'kind = "dingtalk"\nname = "lead"\n'
        f'url = "{receivers.base}/robot/send?access_token={DINGTALK_TOKEN}"\n'
        f'secret = "{DINGTALK_SECRET}"\n'
    )
    site = Site(fx, db, "HT-A2", extra)
    site.ingest(FRIDAY_1750, data=97.0)
    site.drain(FRIDAY_1750)
    assert len(receivers.of("webhook")) == 1
    deadline_text = receivers.of("webhook")[0].body["items"][0]["deadline_local"]
    assert deadline_text == "2026-03-09 11:20 (Asia/Shanghai)"

    quiet = [
        local(2026, 3, 6, 17, 59),
        local(2026, 3, 6, 18, 30),
        local(2026, 3, 7, 10, 0),  # Saturday
        local(2026, 3, 7, 19, 50),  # 2 h after on the wall clock
        local(2026, 3, 8, 12, 0),  # Sunday
        local(2026, 3, 9, 9, 30),  # Monday opening
        local(2026, 3, 9, 10, 49),
    ]
    for at in quiet:
        site.ingest(at, data=97.0)  # the finding persists: nothing new to say
        site.tick(at)
        assert receivers.of("dingtalk") == [], at

    site.tick(local(2026, 3, 9, 10, 50))  # 30 min of support time left
    near = receivers.of("dingtalk")
    assert len(near) == 1 and near[0].verified
    assert "将至" in near[0].body["markdown"]["title"]

    site.tick(local(2026, 3, 9, 11, 19))
    assert len(receivers.of("dingtalk")) == 1
    site.tick(local(2026, 3, 9, 11, 20))
    past = receivers.of("dingtalk")
    assert len(past) == 2 and "已超过" in past[1].body["markdown"]["title"]
    site.tick(local(2026, 3, 9, 15, 0))
    assert len(receivers.of("dingtalk")) == 2
    assert len(receivers.of("webhook")) == 1  # escalations go to the second list only


def test_acknowledged_finding_does_not_escalate(
    fx: Any, db: Database, receivers: Receivers
) -> None:
    extra = (
        "[alerts]\n"
        f'[[alerts.channels]]\nkind = "webhook"\nurl = "{receivers.base}/generic"\n'
        f'secret = "{GENERIC_SECRET}"\n'
    )
    site = Site(fx, db, "HT-A3", extra)
    t0 = local(2026, 3, 4, 10, 0)
    site.ingest(t0, data=97.0)
    with db.write() as session:
        session.execute(update(Finding).values(ack_at=t0 + timedelta(minutes=10), ack_by="desk"))
    site.tick(t0 + timedelta(hours=5))
    events = [r.body["event"] for r in receivers.of("webhook")]
    assert events == ["raised"]


def test_priority_change_renotifies_once(fx: Any, db: Database, receivers: Receivers) -> None:
    extra = (
        "[alerts]\n"
        '[[alerts.priorities]]\ncheck = "disk.*"\nseverity = "warning"\npriority = "P2"\n'
        f'[[alerts.channels]]\nkind = "webhook"\nurl = "{receivers.base}/generic"\n'
        f'secret = "{GENERIC_SECRET}"\n'
    )
    site = Site(fx, db, "HT-A4", extra)
    t0 = local(2026, 3, 4, 10, 0)
    site.ingest(t0, data=85.0)  # warning, mapped to P2 by the contract
    site.ingest(t0 + timedelta(minutes=5), data=85.5)
    site.ingest(t0 + timedelta(minutes=10), data=97.0)  # critical → P1
    site.ingest(t0 + timedelta(minutes=15), data=97.5)
    site.drain(t0 + timedelta(minutes=15))
    got = [(r.body["event"], r.body["items"][0]["priority"]) for r in receivers.of("webhook")]
    assert got == [("raised", "P2"), ("reprioritized", "P1")]


def test_silent_host_alerts_once_and_recovers_once(
    fx: Any, db: Database, receivers: Receivers
) -> None:
    extra = "[alerts]\n" + receivers.channels_toml()
    site = Site(fx, db, "HT-A5", extra)
    t0 = local(2026, 3, 4, 10, 0)
    _seen(db, site.host_id, t0)
    site.tick(t0 + timedelta(minutes=29))
    assert receivers.got == []
    for minutes in (31, 40, 90):
        site.tick(t0 + timedelta(minutes=minutes))
    for channel in ("wecom", "dingtalk", "feishu", "webhook"):
        assert len(receivers.of(channel)) == 1, channel
    silent = receivers.of("webhook")[0].body
    assert silent["event"] == "silent" and silent["items"][0]["host"] == "app01"
    assert silent["items"][0]["link"] == f"{CONSOLE}/hosts/{site.host_id}"

    _seen(db, site.host_id, t0 + timedelta(minutes=95))
    site.tick(t0 + timedelta(minutes=96))
    site.tick(t0 + timedelta(minutes=100))
    for channel in ("wecom", "dingtalk", "feishu", "webhook"):
        assert [r.body is not None for r in receivers.of(channel)] == [True, True], channel
    recovered = receivers.of("webhook")[1].body
    assert recovered["event"] == "recovered"
    assert "95" in recovered["items"][0]["finding"]  # silent for about 95 minutes


def test_dead_channels_do_not_hold_up_the_others(
    fx: Any, db: Database, receivers: Receivers
) -> None:
    closed = free_port()  # nothing listens there
    extra = (
        "[alerts]\n"
        f'[[alerts.channels]]\nkind = "wecom"\nname = "refused"\n'
        f'url = "http://127.0.0.1:{closed}/cgi-bin/webhook/send?key=dead"\n'
        f'[[alerts.channels]]\nkind = "webhook"\nname = "bad"\nurl = "{receivers.base}/bad"\n'
        f'[[alerts.channels]]\nkind = "dingtalk"\nname = "badsign"\n'
        f'url = "{receivers.base}/robot/send?access_token={DINGTALK_TOKEN}"\nsecret = "SECwrong"\n'
        + receivers.channels_toml(names=True)
    )
    site = Site(fx, db, "HT-A6", extra)
    t0 = local(2026, 3, 4, 10, 0)
    site.ingest(t0, data=97.0)
    result = site.drain(t0)
    for channel in ("wecom", "feishu", "webhook"):
        assert len([r for r in receivers.of(channel) if r.verified]) == 1, channel
    states = {r.key.rsplit("/", 1)[1]: (r.state, r.attempts, r.last_error) for r in site.rows()}
    assert states["wecom"][0] == states["dingtalk"][0] == states["feishu"][0] == "sent"
    assert states["webhook"][0] == "sent"
    assert states["bad"][:2] == ("failed", 1) and "HTTP 400" in (states["bad"][2] or "")
    assert states["badsign"][:2] == ("failed", 1) and "310000" in (states["badsign"][2] or "")
    assert states["refused"][:2] == ("pending", 1)  # retried later with backoff
    assert len(result.sent) == 4 and len(result.failed) == 2 and len(result.retried) == 1

    # Later drains retry only the refused one, with backoff, and never the failed ones.
    site.drain(t0 + timedelta(minutes=1))
    again = {r.key.rsplit("/", 1)[1]: (r.state, r.attempts) for r in site.rows()}
    assert again["refused"] == ("pending", 2) and again["bad"] == ("failed", 1)


def test_digest_once_a_day_at_its_time(fx: Any, db: Database, receivers: Receivers) -> None:
    extra = (
        '[alerts]\ndigest = { enabled = true, at = "08:30:00" }\n'
        f'[[alerts.channels]]\nkind = "webhook"\nurl = "{receivers.base}/generic"\n'
        f'secret = "{GENERIC_SECRET}"\n'
    )
    site = Site(fx, db, "HT-A7", extra)
    t0 = local(2026, 3, 4, 10, 0)
    site.ingest(t0, data=97.0)
    _seen(db, site.host_id, local(2026, 3, 5, 8, 29))
    site.tick(local(2026, 3, 5, 8, 29))
    assert "digest" not in [r.body["event"] for r in receivers.of("webhook")]
    site.tick(local(2026, 3, 5, 8, 30))
    site.tick(local(2026, 3, 5, 8, 31))
    site.tick(local(2026, 3, 5, 17, 0))
    events = [r.body["event"] for r in receivers.of("webhook") if r.body["event"] == "digest"]
    assert events == ["digest"]
    digest = next(r.body for r in receivers.of("webhook") if r.body["event"] == "digest")
    assert [i["check"] for i in digest["items"]] == ["disk.usage"]


def test_concurrent_ticks_decide_once(fx: Any, db: Database, receivers: Receivers) -> None:
    """Several collectors (threads with their own engines here) ticking at once: one message."""
    extra = (
        "[alerts]\n"
        f'[[alerts.channels]]\nkind = "webhook"\nurl = "{receivers.base}/generic"\n'
        f'secret = "{GENERIC_SECRET}"\n'
    )
    site = Site(fx, db, "HT-A8", extra)
    t0 = local(2026, 3, 4, 10, 0)
    run = disk_run(site.hostname, t0, data=97.0)
    ingest_run(db, HostRef(site.host_id, site.number, site.hostname), run, now=t0)
    _seen(db, site.host_id, t0 - timedelta(hours=2))
    engines = [Database(db.url, pool_size=2) for _ in range(4)]
    try:
        threads = [
            threading.Thread(target=tick, args=(alerting_for(e), t0 + timedelta(hours=3)))
            for e in engines
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for e in engines:
            e.dispose()
    site.drain(t0 + timedelta(hours=3))
    events = sorted(r.body["event"] for r in receivers.of("webhook"))
    assert events == ["escalated", "raised", "silent"]


def _seen(db: Database, host_id: str, at: datetime) -> None:
    with db.write() as session:
        session.execute(update(Host).where(Host.id == host_id).values(last_seen_at=at))
