"""agent.toml + environment → AgentSettings, and the resident's reading of heartbeat replies."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from agent.config import ConfigError
from agent.daemon import parse_reply, splayed
from agent.settings import AgentSettings
from checks.wire import HeartbeatReply

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "agent.example.toml"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("XUNJIAN_AGENT_")]:
        monkeypatch.delenv(key)


def test_the_example_config_is_valid_and_complete() -> None:
    settings = AgentSettings.load(EXAMPLE)
    assert settings.state_dir == Path("/var/lib/xunjian") and settings.spool_max_bytes == 64 * 2**20
    inspection = settings.inspection()
    assert inspection.logs.allowed_roots == ["/var/log"] and inspection.redaction.enabled
    documented = EXAMPLE.read_text()
    for name in AgentSettings.model_fields:
        if name != "config":
            assert f"{name} =" in documented, f"{name} missing from the example"


def test_environment_wins_over_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(
        '[agent]\nsample_interval = 30\nstate_dir = "/srv/x"\n[logs]\njournald = false\n'
    )
    monkeypatch.setenv("XUNJIAN_AGENT_CONFIG", str(config))
    monkeypatch.setenv("XUNJIAN_AGENT_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("XUNJIAN_AGENT_SPOOL_MAX_BYTES", "1048576")
    monkeypatch.setenv("XUNJIAN_AGENT_INSPECTION_TIMES", '["07:30", "19:30"]')
    settings = AgentSettings.load()
    assert settings.config == config and settings.sample_interval == 30
    assert settings.state_dir == tmp_path and settings.spool_max_bytes == 1048576
    assert settings.inspection_times == ["07:30", "19:30"]
    assert settings.env()["XUNJIAN_AGENT_STATE_DIR"] == str(tmp_path)


@pytest.mark.parametrize(
    "text, message",
    [
        ('[agent]\ncollector_url = "http://c.example"\n', "refusing plain http://"),
        ("[agent]\nsample_intervall = 60\n", "sample_intervall"),
        ('[agent]\ninspection_times = ["8am"]\n', "HH:MM"),
        ("[agents]\n", "unknown table"),
        ("[logs]\nfiles = 3\n", "logs.files"),
        ("[agent\n", "not valid TOML"),
    ],
)
def test_mistakes_name_the_file_and_the_field(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(text)
    with pytest.raises(ConfigError) as err:
        AgentSettings.load(config)
    assert message in str(err.value) and str(config) in str(err.value)


def test_heartbeat_reply_only_inspect_now_counts(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    assert parse_reply(b'{"inspect_now": true}') is True
    assert parse_reply(b"{}") is False and parse_reply(b"") is False
    assert parse_reply(b'{"inspect_now": "yes"}') is False
    assert (
        parse_reply(b'{"inspect_now": true, "exec": "rm -rf /", "paths": ["/etc/shadow"]}') is True
    )
    assert "ignored: exec, paths" in caplog.text
    assert parse_reply(b"[1, 2]") is False and parse_reply(b"<html>") is False
    # the collector's own model agrees on the one field that matters
    assert HeartbeatReply.model_validate_json(b'{"inspect_now": true, "exec": "x"}').inspect_now


def test_splay_stays_within_the_bound() -> None:
    import random

    rng = random.Random(1)
    times = {splayed("08:00", 900, rng) for _ in range(50)}
    assert all("08:00:00" <= t <= "08:15:00" for t in times) and len(times) > 40
