"""What people and scripts see of alerts: the ingest hook, the API, /metrics, the CLI, the logs."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from collector import outbox
from collector.alerts import deliver
from collector.cli import main
from collector.db.engine import Database
from collector.db.models_reports import OutboxRow
from collector.settings import SmtpSettings
from tests.alerts.conftest import (
    DINGTALK_TOKEN,
    SECRETS,
    WECOM_KEY,
    Mailbox,
    Receivers,
    disk_run,
)
from tests.collector.conftest import bearer, free_port, run_json

pytestmark = pytest.mark.py311


def _webhook_contract(receivers: Receivers, *extra_channels: str) -> str:
    return "[alerts]\n" + receivers.channels_toml() + "".join(extra_channels)


def _bad_channels(receivers: Receivers) -> str:
    closed = free_port()
    return (
        f'[[alerts.channels]]\nkind = "webhook"\nname = "bad"\n'
        f'url = "{receivers.base}/bad?token={WECOM_KEY}"\n'
        f'[[alerts.channels]]\nkind = "dingtalk"\nname = "badsign"\n'
        f'url = "{receivers.base}/robot/send?access_token={DINGTALK_TOKEN}"\n'
        'secret = "SECnot-the-right-one"\n'
        f'[[alerts.channels]]\nkind = "wecom"\nname = "refused"\n'
        f'url = "http://127.0.0.1:{closed}/cgi-bin/webhook/send?key={WECOM_KEY}"\n'
    )


def test_posted_run_alerts_through_the_hook_and_shows_in_api_and_metrics(
    fx: Any, db: Database, client: TestClient, receivers: Receivers, caplog: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    number = fx.contract("HT-S1", _webhook_contract(receivers, _bad_channels(receivers)))
    _, credential = fx.enroll(number, "db01")
    now = datetime.now(timezone.utc)
    r = client.post(
        "/api/v1/runs", json=run_json(disk_run("db01", now, data=97.0)), headers=bearer(credential)
    )
    assert r.status_code == 201, r.text
    # The hook ran after the response and queued one row per channel; deliver them now.
    outbox.drain(db, "test", deliver.handlers(client.app.state.alerting))  # type: ignore[attr-defined]
    for channel in ("wecom", "dingtalk", "feishu", "webhook"):
        assert len([x for x in receivers.of(channel) if x.verified]) == 1, channel

    admin = bearer(fx.api_key("admin"))
    listed = client.get("/api/v1/notifications", headers=admin).json()
    by_channel = {n["channel"]: n for n in listed}
    assert set(by_channel) == {
        "wecom",
        "dingtalk",
        "feishu",
        "webhook",
        "bad",
        "badsign",
        "refused",
    }
    assert by_channel["wecom"]["state"] == "sent" and by_channel["wecom"]["event"] == "raised"
    assert by_channel["bad"]["state"] == "failed" and "HTTP 400" in by_channel["bad"]["last_error"]
    assert by_channel["badsign"]["state"] == "failed"
    assert by_channel["refused"]["state"] == "pending" and by_channel["refused"]["attempts"] == 1
    failed = client.get("/api/v1/notifications?state=failed", headers=admin).json()
    assert {n["channel"] for n in failed} == {"bad", "badsign"}

    other = fx.contract("HT-S2")
    scoped = bearer(fx.api_key("viewer", contract=other))
    assert client.get("/api/v1/notifications", headers=scoped).json() == []
    own = bearer(fx.api_key("viewer", contract=number))
    assert len(client.get("/api/v1/notifications", headers=own).json()) == 7
    assert client.get("/api/v1/notifications", headers=bearer(credential)).status_code == 403

    metrics = client.get("/metrics").text
    assert 'xunjian_alert_notifications{channel="wecom",state="sent"} 1' in metrics
    assert 'xunjian_alert_notifications{channel="wecom",state="pending"} 1' in metrics  # refused
    assert 'xunjian_alert_notifications{channel="webhook",state="failed"} 1' in metrics
    assert 'xunjian_alert_notifications{channel="email",state="sent"} 0' in metrics

    # No secret anywhere people can look: API answers, the contract as served, logs, stored errors.
    contract_json = client.get(f"/api/v1/contracts/{number}", headers=admin).text
    seen = [json.dumps(listed), contract_json, metrics, caplog.text]
    with db.read() as session:
        seen += [str(row.last_error) for row in session.query(OutboxRow).all()]
        seen += [json.dumps(row.payload) for row in session.query(OutboxRow).all()]
    for text in seen:
        for secret in SECRETS:
            assert secret not in text, secret
    assert "**********" in contract_json
    assert f"http://127.0.0.1:{receivers.port}/…" in caplog.text  # logged, redacted


def test_alert_test_command_reports_each_channel(
    fx: Any,
    db: Database,
    receivers: Receivers,
    smtp: tuple[Mailbox, SmtpSettings],
    tmp_path: Any,
) -> None:
    box, smtp_settings = smtp
    mail = '[[alerts.escalation]]\nkind = "email"\nrecipients = ["lead@vendor.example"]\n'
    bad = f'[[alerts.channels]]\nkind = "webhook"\nname = "bad"\nurl = "{receivers.base}/bad"\n'
    number = fx.contract("HT-S3", _webhook_contract(receivers, bad, mail))
    env = {
        "XUNJIAN_HOME": str(tmp_path),
        "XUNJIAN_DATABASE_URL": db.url,
        "XUNJIAN_SMTP_HOST": "127.0.0.1",
        "XUNJIAN_SMTP_PORT": str(smtp_settings.port),
        "XUNJIAN_SMTP_SECURITY": "none",
        "XUNJIAN_SMTP_FROM": "alerts@vendor.example",
        "XUNJIAN_CONFIG": "",
    }
    result = CliRunner().invoke(main, ["alert", "test", "--contract", number, "--json"], env=env)
    assert result.exit_code == 1, result.output  # one channel is dead
    rows = {r["channel"]: r for r in json.loads(result.output)}
    assert {k: v["ok"] for k, v in rows.items()} == {
        "wecom": True,
        "dingtalk": True,
        "feishu": True,
        "webhook": True,
        "bad": False,
        "email": True,
    }
    assert rows["email"]["level"] == "escalation"
    assert "HTTP 400" in rows["bad"]["detail"]
    assert rows["wecom"]["target"] == f"http://127.0.0.1:{receivers.port}/…"
    for secret in SECRETS:
        assert secret not in result.output
    for channel in ("wecom", "dingtalk", "feishu", "webhook"):
        got = receivers.of(channel)
        assert len(got) == 1 and got[0].verified, channel
    assert receivers.of("webhook")[0].body["event"] == "test"
    assert len(box.messages) == 1 and box.rcpts == [["lead@vendor.example"]]

    missing = CliRunner().invoke(main, ["alert", "test", "--contract", "NOPE"], env=env)
    assert missing.exit_code != 0 and "NOPE is not imported" in missing.output
