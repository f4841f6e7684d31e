"""`xunjian-agent enroll | run | status`: the commands around the resident agent."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Dict, Optional

import click

from agent.config import ConfigError
from agent.settings import AgentSettings, InsecureTransport

CONFIG_OPTION = click.option(
    "--config",
    "config",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="agent.toml (default: $XUNJIAN_AGENT_CONFIG, else /etc/xunjian/agent.toml if present)",
)


def _settings(config: Optional[Path]) -> AgentSettings:
    try:
        return AgentSettings.load(config)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@click.command()
@click.argument("url")
@click.option("--token", required=True, help="single-use enroll token from `xunjian token create`")
@CONFIG_OPTION
def enroll(url: str, token: str, config: Optional[Path]) -> None:
    """Exchange an enroll token for this host's credential (stored 0600 in the state dir)."""
    from agent.client import CollectorError
    from agent.client import enroll as do_enroll

    settings = _settings(config)
    try:
        answer = do_enroll(url, token, settings)
    except (CollectorError, InsecureTransport, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"enrolled: host {answer.host_id}, contract {answer.contract}; "
        f"credential in {settings.state_dir}"
    )


@click.command()
@CONFIG_OPTION
def run(config: Optional[Path]) -> None:
    """Run the resident agent (what the systemd unit starts)."""
    settings = _settings(config)
    settings.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    env = settings.env()
    from agent.daemon import PLAN_ENV

    env[PLAN_ENV] = json.dumps(settings.daemon_plan())
    sys.stdout.flush()
    sys.stderr.flush()
    # exec: same PID for systemd, and the validated-once settings leave pydantic behind
    os.execve(sys.executable, [sys.executable, "-m", "agent.daemon"], env)


def gather_status(settings: AgentSettings) -> Dict[str, Any]:
    from agent.client import CollectorError, load_enrollment
    from agent.daemon import DAEMON_FILE, HEARTBEAT_FILE
    from agent.history import HISTORY_FILE, HistoryStore
    from agent.ship import open_spool
    from agent.worker import LAST_INSPECTION_FILE

    def read(name: str) -> Dict[str, Any]:
        try:
            data = json.loads((settings.state_dir / name).read_text("utf-8"))
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    out: Dict[str, Any] = {"state_dir": str(settings.state_dir)}
    try:
        enrollment = load_enrollment(settings.state_dir)
        out["enrolled"] = enrollment is not None
        out["host_id"] = enrollment.host_id if enrollment else None
        out["contract"] = enrollment.contract if enrollment else None
        out["collector_url"] = settings.collector_url or (
            enrollment.collector_url if enrollment else None
        )
    except CollectorError as exc:
        out.update(
            enrolled=False, host_id=None, contract=None, collector_url=settings.collector_url
        )
        out["enrollment_error"] = str(exc)
    last_sample = None
    if (settings.state_dir / HISTORY_FILE).is_file():
        from datetime import datetime, timezone

        store = HistoryStore(settings.state_dir, readonly=True)
        try:
            ts = store.last_at()
        finally:
            store.close()
        last_sample = datetime.fromtimestamp(ts, timezone.utc).isoformat() if ts else None
    out["last_sample"] = last_sample
    out["last_inspection"] = read(LAST_INSPECTION_FILE) or None
    daemon = read(DAEMON_FILE)
    pid = daemon.get("pid")
    out["daemon"] = dict(daemon, running=bool(pid and _alive(int(pid))))
    out["heartbeat"] = read(HEARTBEAT_FILE) or None
    spool = open_spool(settings).stats()
    out["spool"] = spool
    errors = [e for e in ((out["heartbeat"] or {}).get("error"), spool["last_error"]) if e]
    out["last_error"] = errors[0] if errors else None
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@click.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@CONFIG_OPTION
def status(as_json: bool, config: Optional[Path]) -> None:
    """What the agent is doing: enrollment, last sample and inspection, spool, errors."""
    data = gather_status(_settings(config))
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    spool = data["spool"]
    last = data["last_inspection"] or {}
    rows = [
        ("collector", data["collector_url"] or "-"),
        ("host id", data["host_id"] or "not enrolled"),
        (
            "agent",
            f"running (pid {data['daemon'].get('pid')})"
            if data["daemon"]["running"]
            else "not running",
        ),
        ("last sample", data["last_sample"] or "-"),
        ("last inspection", last.get("finished_at") or "-"),
        ("last heartbeat ok", (data["heartbeat"] or {}).get("last_ok") or "-"),
        ("spool", f"{spool['depth']} records, {spool['bytes']} of {spool['max_bytes']} bytes"),
        ("oldest unsent", spool["oldest_unsent"] or "-"),
        ("dropped", ", ".join(f"{k} {v}" for k, v in spool["dropped"].items())),
        ("dead letters", str(spool["dead_letters"])),
        ("corrupt skipped", str(spool["corrupt"])),
        ("last error", data["last_error"] or "-"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(f"{key.ljust(width)}  {value}")
