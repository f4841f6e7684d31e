"""`xunjian-agent inspect` end to end on this machine: output, exit codes, files, bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List

import pytest
from click.testing import CliRunner

import agent.config
from agent.cli import main
from agent.settings import AgentSettings
from checks.model import InspectionRun, Severity, Source


def run_cli(args: List[str]):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, args, catch_exceptions=False)


@pytest.fixture()
def quiet_config(tmp_path: Path) -> Path:
    """Switch off checks that depend on how this machine happens to be (recent boot, no NTP)."""
    path = tmp_path / "agent.toml"
    path.write_text(
        "[logs]\nfiles = []\njournald = false\n"
        '[thresholds."uptime"]\nenabled = false\n'
        '[thresholds."time.sync"]\nenabled = false\n'
        '[thresholds."services.failed"]\nenabled = false\n'
        '[thresholds."history.metrics"]\nenabled = false\n'
        '[thresholds."disk.forecast"]\nenabled = false\n'
    )
    return path


def test_json_is_a_valid_run_and_exit_code_follows_worst(quiet_config: Path) -> None:
    result = run_cli(["inspect", "--json", "--config", str(quiet_config), "--lang", "en"])
    run = InspectionRun.model_validate_json(result.output)
    assert run.source == Source.agent and run.schema_ == 1
    assert run.window.end > run.window.start
    assert run.host.hostname
    assert {r.category.value for r in run.results} >= {"status"}
    assert result.exit_code == run.worst().exit_code
    assert all(r.summary and not r.summary.startswith(r.check + ".") for r in run.results)


def test_config_threshold_makes_critical_with_provenance(
    tmp_path: Path, quiet_config: Path
) -> None:
    config = tmp_path / "strict.toml"
    config.write_text(
        quiet_config.read_text()
        + '[thresholds."memory.usage"]\nwarning = 0.0001\ncritical = 0.0002\n'
    )
    result = run_cli(["inspect", "--json", "--config", str(config)])
    assert result.exit_code == 2
    run = InspectionRun.model_validate_json(result.output)
    (memory,) = [r for r in run.results if r.check == "memory.usage"]
    assert memory.severity == Severity.critical
    assert memory.threshold is not None and memory.threshold.provenance == f"config:{config}"
    assert memory.recommendation


def test_installed_config_is_read_without_config_or_environment(
    tmp_path: Path, quiet_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On an installed host `inspect` reads /etc/xunjian/agent.toml, as the daemon does."""
    installed = tmp_path / "etc" / "agent.toml"
    installed.parent.mkdir()
    installed.write_text(
        quiet_config.read_text()
        + '[thresholds."memory.usage"]\nwarning = 0.0001\ncritical = 0.0002\n'
    )
    monkeypatch.delenv("XUNJIAN_AGENT_CONFIG", raising=False)
    monkeypatch.setattr(agent.config, "DEFAULT_CONFIG", installed)
    result = run_cli(["inspect", "--json"])
    run = InspectionRun.model_validate_json(result.output)
    (memory,) = [r for r in run.results if r.check == "memory.usage"]
    assert memory.threshold is not None and memory.threshold.provenance == f"config:{installed}"
    assert AgentSettings.load().config == installed

    monkeypatch.setenv("XUNJIAN_AGENT_CONFIG", str(quiet_config))  # the environment wins
    run = InspectionRun.model_validate_json(run_cli(["inspect", "--json"]).output)
    (memory,) = [r for r in run.results if r.check == "memory.usage"]
    assert memory.threshold is not None and memory.threshold.provenance == "default"


def test_output_writes_an_offline_bundle(tmp_path: Path, quiet_config: Path) -> None:
    out = tmp_path / "sub" / "run.json"
    result = run_cli(["inspect", "--output", str(out), "--config", str(quiet_config)])
    run = InspectionRun.model_validate_json(out.read_text())
    assert run.source == Source.bundle
    assert result.exit_code == run.worst().exit_code
    assert [p.name for p in out.parent.iterdir()] == ["run.json"]  # no temp file left behind


@pytest.mark.parametrize(("lang", "heading"), [("zh", "系统状态"), ("en", "System status")])
def test_readable_report_in_both_languages(lang: str, heading: str, quiet_config: Path) -> None:
    result = run_cli(["inspect", "--lang", lang, "--config", str(quiet_config)])
    assert heading in result.output
    assert ("建议" if lang == "zh" else "Recommendations") in result.output


def test_explicit_window(quiet_config: Path) -> None:
    result = run_cli(
        [
            "inspect",
            "--json",
            "--config",
            str(quiet_config),
            "--window",
            "2026-11-20T00:00:00+08:00..2026-11-20T12:00:00+08:00",
        ]
    )
    run = InspectionRun.model_validate_json(result.output)
    assert run.window.start.isoformat() == "2026-11-20T00:00:00+08:00"
    assert (run.window.end - run.window.start).total_seconds() == 12 * 3600


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "not a duration: 'yesterday'"),
        (["--window", "2026-11-20T00:00:00Z"], "window must be START..END"),
        (["--window", "2026-11-21T00:00:00Z..2026-11-20T00:00:00Z"], "is not after its start"),
    ],
)
def test_bad_usage_exits_64_and_says_why(args: List[str], message: str) -> None:
    result = CliRunner().invoke(main, ["inspect", *args])
    assert result.exit_code == 64
    assert message in result.output


def test_bad_config_exits_78_naming_file_and_field(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[thresholds."disk.usage"]\nwarning = "high"\n')
    result = CliRunner().invoke(main, ["inspect", "--config", str(config)])
    assert result.exit_code == 78
    assert f"config:{config}: thresholds.disk.usage.warning" in result.output
    config.write_text("[logs]\nfiles = 3\n")
    result = CliRunner().invoke(main, ["inspect", "--config", str(config)])
    assert result.exit_code == 78
    assert str(config) in result.output and "logs.files" in result.output
    config.write_text("not = [toml")
    result = CliRunner().invoke(main, ["inspect", "--config", str(config)])
    assert result.exit_code == 78 and "not valid TOML" in result.output


def test_seeded_secrets_never_reach_output(tmp_path: Path, quiet_config: Path) -> None:
    secret = "Xq9-SeCrEt-Pw-7731"
    config = tmp_path / "secret.toml"
    config.write_text(
        quiet_config.read_text()
        + f'[collect]\nhttp = [{{ url = "http://ops:{secret}@127.0.0.1:9/health?token={secret}" }}]\n'
    )
    for args in (["--json"], ["--lang", "en"]):
        result = run_cli(["inspect", "--config", str(config), *args])
        assert result.output and secret not in result.output


def test_schema_describes_the_wire_format() -> None:
    result = run_cli(["schema"])
    schema = json.loads(result.output)
    assert schema["title"] == "InspectionRun"
    assert {"schema", "run_id", "source", "host", "window", "facts", "results"} <= set(
        schema["properties"]
    )
