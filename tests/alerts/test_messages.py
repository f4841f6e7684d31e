"""Pure parts of alerts: settings layering, texts in both languages, payload shapes, redaction."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import tomllib
from babel.messages.pofile import read_po
from pydantic import ValidationError

from agent.config import ConfigError
from collector.alerts.config import (
    AlertDefaults,
    AlertSettings,
    FeishuChannel,
    WeComChannel,
    effective,
)
from collector.alerts.deliver import redact_url
from collector.alerts.messages import (
    ALERTS_LOCALE,
    MAX_ITEMS,
    WECOM_MAX_BYTES,
    AlertEvent,
    AlertLine,
    AlertMessage,
    feishu_request,
    one_line,
    render,
    wecom_request,
)
from collector.contracts import Contract, load_contract
from collector.priority import priority_of_check
from tests.alerts.conftest import feishu_verify

pytestmark = pytest.mark.py311

ROOT = Path(__file__).resolve().parents[2]
AT = datetime(2026, 3, 6, 9, 50, tzinfo=timezone.utc)


def _message(n: int = 1, lang: str = "zh_CN") -> AlertMessage:
    return AlertMessage(
        event=AlertEvent.raised,
        contract="HT-2026-001",
        customer="示例科技有限公司",
        lang=lang,
        created_at=AT,
        lines=[
            AlertLine(
                host=f"app{i:02d}",
                priority="P1",
                severity="critical",
                check="disk.usage",
                item="/data",
                finding_id=i,
                text_key="disk.usage.bad",
                text_params={"mount": "/data", "value_text": "97%"},
                evidence="/dev/sdb1 97% used " + "x" * 150,
                deadline=AT + timedelta(days=2, hours=17, minutes=30),
                link=f"http://console.test/findings/{i}",
            )
            for i in range(n)
        ],
    )


def test_catalogs_have_the_same_keys_in_both_languages() -> None:
    keys = {}
    for lang in ("zh_CN", "en"):
        with (ALERTS_LOCALE / lang / "alerts.po").open("rb") as fh:
            keys[lang] = {m.id for m in read_po(fh) if m.id and m.string}
    assert keys["zh_CN"] == keys["en"]


def test_message_says_everything_in_the_contracts_language() -> None:
    zh = render(_message()).text()
    for part in ("HT-2026-001", "示例科技有限公司", "app00", "P1", "/dev/sdb1 97% used", "证据"):
        assert part in zh
    assert "2026-03-09 01:20 (Asia/Shanghai)" not in zh  # times are local, not UTC
    assert "2026-03-09 11:20 (Asia/Shanghai)" in zh
    assert "http://console.test/findings/0" in zh
    en = render(_message(lang="en")).text()
    assert "Response deadline: 2026-03-09 11:20 (Asia/Shanghai)" in en
    assert "Evidence" in en and "证据" not in en


def test_many_findings_are_cut_and_wecom_stays_under_its_limit() -> None:
    message = _message(MAX_ITEMS + 30)
    rendered = render(message)
    assert len(rendered.blocks) == MAX_ITEMS and rendered.more and "30" in rendered.more
    content = json.loads(wecom_request(_wecom(), message).body)["markdown"]["content"]
    assert len(content.encode()) <= WECOM_MAX_BYTES


def _wecom() -> WeComChannel:
    return WeComChannel.model_validate({"url": "https://qyapi.example/send?key=k"})


def test_feishu_signature_and_text_mode() -> None:
    channel = FeishuChannel.model_validate(
        {"url": "https://open.feishu.example/hook/x", "secret": "s3cr3t", "card": False}
    )
    now = datetime.now(timezone.utc)
    body = json.loads(feishu_request(channel, _message(), now).body)
    assert body["msg_type"] == "text" and "HT-2026-001" in body["content"]["text"]
    assert feishu_verify(body["timestamp"], body["sign"], "s3cr3t")
    assert not feishu_verify(body["timestamp"], body["sign"], "other")


def test_one_line_evidence() -> None:
    assert one_line(["", "  a\tb\n c  ", "second"]) == "a b c"
    assert one_line(["y" * 500]).endswith("…") and len(one_line(["y" * 500])) == 200
    assert one_line([]) == ""


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc",
            "https://qyapi.weixin.qq.com/…",
        ),
        ("https://oapi.dingtalk.com/robot/send?access_token=t", "https://oapi.dingtalk.com/…"),
        ("https://open.feishu.cn/open-apis/bot/v2/hook/uuid", "https://open.feishu.cn/…"),
        ("http://user:pw@hooks.example:8443/x", "http://hooks.example:8443/…"),
        ("https://hooks.example", "https://hooks.example"),
    ],
)
def test_redact_url_keeps_scheme_and_host_only(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_contract_alert_settings_inherit_and_validate(tmp_path: Path) -> None:
    defaults = AlertDefaults.model_validate(
        {
            "near_minutes": 45,
            "channels": [{"kind": "wecom", "url": "https://q.example/send?key=k"}],
            "digest": {"enabled": True},
        }
    )
    own = AlertSettings.model_validate({"near_minutes": 10, "language": "en"})
    eff = effective(defaults, own, "zh_CN", "http://collector:8080/")
    assert eff.near_minutes == 10 and eff.language == "en" and eff.digest.enabled
    assert [c.kind for c in eff.channels] == ["wecom"]  # inherited
    assert eff.console_url == "http://collector:8080"
    assert effective(defaults, AlertSettings(), "zh_CN", "http://c").language == "zh_CN"

    with pytest.raises(ValidationError) as err:
        AlertSettings.model_validate(
            {"channels": [{"kind": "dingtalk", "url": "ftp://oapi.example/?access_token=TOKEN1"}]}
        )
    assert "TOKEN1" not in str(err.value) and "http" in str(err.value)
    with pytest.raises(ValidationError, match="unique"):
        AlertSettings.model_validate(
            {"channels": [{"kind": "email", "recipients": ["a@b.example"]}] * 2}
        )

    bad = tmp_path / "bad.toml"
    text = (ROOT / "config" / "contracts" / "example.toml").read_text(encoding="utf-8")
    bad.write_text(text + '\n[[alerts.channels]]\nkind = "sms"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"alerts\.channels\.0"):
        load_contract(bad)


def test_example_contract_alerts_and_priority_overrides() -> None:
    contract = load_contract(ROOT / "config" / "contracts" / "example.toml")
    data = contract.model_dump()
    data["alerts"] = {
        "priorities": [
            {"check": "cert.*", "severity": "warning", "priority": "P2"},
            {"check": "cpu.usage", "priority": "none"},
        ]
    }
    mapped = Contract.model_validate(data)
    assert priority_of_check("cert.expiry", "warning", mapped) == "P2"
    assert priority_of_check("cpu.usage", "critical", mapped) is None
    assert priority_of_check("cpu.usage", "critical", contract) == "P2"  # default mapping
    assert priority_of_check("disk.usage", "critical", mapped) == "P1"  # service-affecting


def _uncommented_alerts(path: Path) -> dict[str, Any]:
    """The file with every commented `key = value` and `[[alerts.…]]` line of its [alerts]
    part switched on, as a reader following the instructions in it would."""
    text = path.read_text(encoding="utf-8")
    head, sep, tail = text.partition("\n[alerts]")
    lines = [
        line[2:] if re.match(r"# (\[\[alerts\.|[a-z_]+ = )", line) else line
        for line in tail.splitlines()
    ]
    return tomllib.loads(head + sep + "\n".join(lines))


def test_documented_channel_examples_are_valid() -> None:
    contract = Contract.model_validate(
        _uncommented_alerts(ROOT / "config" / "contracts" / "example.toml")
    )
    assert [c.kind for c in contract.alerts.channels or []] == [
        "wecom",
        "dingtalk",
        "feishu",
        "webhook",
        "email",
    ]
    assert [c.kind for c in contract.alerts.escalation or []] == ["email"]
    data = _uncommented_alerts(ROOT / "config" / "collector.example.toml")
    defaults = AlertDefaults.model_validate(data["alerts"])
    assert [c.kind for c in defaults.channels] == ["wecom", "dingtalk", "email"]
    assert [c.kind for c in defaults.escalation] == ["feishu"]
