"""The probe script run directly under dash and busybox sh, its quoting, and parity with the
agent's psutil source on this machine."""

from __future__ import annotations

import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import List

import pytest

from agent.config import BackupTarget, CollectConfig, InspectionConfig
from agent.history import HISTORY_FILE, HistoryStore, history_facts
from agent.logscan.scan import rules_for
from agent.redact import Redactor
from agent.sources.local import gather_status
from agent.sources.ssh_probe import ProbePlan, facts_from_output, new_nonce
from agent.window import make_window
from checks.facts import FactSet
from checks.model import Window
from checks.parsers.probe import split_sections
from tests.conftest import require_service

pytestmark = pytest.mark.py311

SHELLS = {"dash": ["dash", "-s"], "busybox": ["busybox", "sh", "-s"], "bash": ["bash", "-s"]}


def run_probe(plan: ProbePlan, shell: str) -> FactSet:
    argv = SHELLS[shell]
    require_service(shutil.which(argv[0]) is not None, f"{argv[0]} not installed")
    nonce = new_nonce()
    proc = subprocess.run(argv, input=plan.script(nonce).encode(), capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    out = split_sections(proc.stdout.decode(), nonce)
    assert out.complete and out.info["shell"].endswith(argv[0])
    _, facts = facts_from_output(
        proc.stdout.decode(),
        nonce,
        plan,
        collected_at=datetime.now(timezone.utc),
        fallback_hostname="here",
        redactor=Redactor(),
    )
    return facts


def default_plan(config: InspectionConfig = InspectionConfig()) -> ProbePlan:
    return ProbePlan(window=make_window("24h"), config=config, rules=rules_for(config.logs))


@pytest.mark.parametrize("shell", sorted(SHELLS))
def test_probe_parses_into_a_factset_under_each_shell(shell: str) -> None:
    facts = run_probe(default_plan(), shell)
    for section in ("cpu", "memory", "filesystems", "uptime", "processes", "fds", "ports"):
        assert getattr(facts, section) is not None, facts.errors.get(section)
    assert facts.logs is not None
    FactSet.model_validate(facts.model_dump())


def test_parameters_are_data_not_code(tmp_path: Path) -> None:
    """Quotes, $(…), backquotes and globs in configured paths never run anything."""
    marker = tmp_path / "pwned"
    evil = [
        f"/nonexistent/'; touch {marker}; '",
        f"/nonexistent/$(touch {marker})",
        f"/nonexistent/`touch {marker}`",
        f'/nonexistent/"; touch {marker}; "',
    ]
    backups = tmp_path / "backups"
    backups.mkdir()
    (backups / "db 1.dump").write_bytes(b"x" * 10)
    config = InspectionConfig(
        collect=CollectConfig(
            certificates=evil,
            backups=[
                BackupTarget(pattern=str(backups / "*.dump")),
                *(BackupTarget(pattern=e) for e in evil),
            ],
        )
    )
    facts = run_probe(default_plan(config), "dash")
    assert not marker.exists()
    assert facts.certificates is not None
    assert [c.path for c in facts.certificates] == evil
    assert all(c.error and "not a regular file" in c.error for c in facts.certificates)
    assert facts.backups is not None
    assert facts.backups[0].matches == 1 and facts.backups[0].newest_path == str(
        backups / "db 1.dump"
    )
    assert [b.matches for b in facts.backups[1:]] == [0, 0, 0, 0]


def test_a_newline_in_a_path_is_refused_before_anything_runs() -> None:
    config = InspectionConfig(collect=CollectConfig(certificates=["/etc/a\ntouch /tmp/x"]))
    with pytest.raises(ValueError, match="newline"):
        default_plan(config).script(new_nonce())


def _alarm_log(tmp_path: Path) -> Path:
    now = datetime.now(timezone.utc).astimezone()
    stamp = (now - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S%z")
    old = (now - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%S%z")
    log = tmp_path / "app.log"
    lines: List[str] = [f"{old} web01 kernel: Out of memory: Kill process 1 (java)"]
    lines += [
        f"{stamp} web01 sshd[{100 + i}]: Failed password for root from 10.0.0.{i} port 22 ssh2"
        for i in range(5)
    ]
    lines += [f"{stamp} web01 app[7]: request served in 12 ms"] * 50
    log.write_text("\n".join(lines) + "\n")
    return log


def _plan_with_log(log: Path, max_lines: int) -> ProbePlan:
    config = InspectionConfig()
    return ProbePlan(
        window=make_window("24h"),
        config=config,
        rules=rules_for(config.logs),
        extra_logs=[str(log)],
        max_lines=max_lines,
    )


def test_alarm_lines_are_filtered_on_the_host_and_windowed_here(tmp_path: Path) -> None:
    log = _alarm_log(tmp_path)
    facts = run_probe(_plan_with_log(log, 100), "busybox")
    assert facts.logs is not None
    source = next(s for s in facts.logs.sources if s.source == str(log))
    assert source.lines_read == 6 and not source.truncated  # only matching lines travelled
    assert source.bytes_read == log.stat().st_size
    assert sum(facts.logs.failed_login_minutes.values()) == 5
    assert facts.logs.failed_login_sources == {f"10.0.0.{i}": 1 for i in range(5)}
    assert not any(t.rule == "kernel.oom" for t in facts.logs.templates)  # 3 days old


def test_matches_are_capped_per_file_on_the_host(tmp_path: Path) -> None:
    log = _alarm_log(tmp_path)
    facts = run_probe(_plan_with_log(log, 2), "dash")
    assert facts.logs is not None
    source = next(s for s in facts.logs.sources if s.source == str(log))
    assert source.lines_read == 2 and source.truncated
    assert sum(facts.logs.failed_login_minutes.values()) == 2


def test_parity_with_the_local_psutil_source() -> None:
    """The same machine seen by the agent (psutil) and by the probe, field by field.

    Tolerances: memory and swap totals, cores, fd maximum, mounts (device, type, size, inodes)
    exact; used percentages ±2 (memory) and ±1 (disk); boot time ±2 s; 5 and 15 minute load
    ±0.5 (the 1-minute load moves too fast on a shared machine); process count ±25 or 20 %
    (processes start and end between the two readings); TCP listening ports the same.
    """
    local = gather_status(CollectConfig(), now=datetime.now(timezone.utc), cpu_seconds=0.2)
    probe = run_probe(default_plan(), "dash")
    assert local.memory is not None and probe.memory is not None
    assert probe.memory.total_bytes == local.memory.total_bytes
    assert probe.memory.swap_total_bytes == local.memory.swap_total_bytes
    assert abs(probe.memory.used_percent - local.memory.used_percent) < 2.0
    assert local.cpu is not None and probe.cpu is not None
    assert probe.cpu.logical_cores == local.cpu.logical_cores
    assert abs(probe.cpu.load5 - local.cpu.load5) < 0.5
    assert abs(probe.cpu.load15 - local.cpu.load15) < 0.5
    assert local.filesystems is not None and probe.filesystems is not None
    assert {f.mount for f in probe.filesystems} == {f.mount for f in local.filesystems}
    by_mount = {f.mount: f for f in local.filesystems}
    for fs in probe.filesystems:
        mine = by_mount[fs.mount]
        assert (fs.device, fs.fstype, fs.readonly) == (mine.device, mine.fstype, mine.readonly)
        assert fs.total_bytes == mine.total_bytes
        assert abs(fs.used_percent - mine.used_percent) < 1.0
        assert fs.inodes_total == mine.inodes_total
    assert local.uptime is not None and probe.uptime is not None
    assert abs((probe.uptime.boot_time - local.uptime.boot_time).total_seconds()) <= 2
    assert local.fds is not None and probe.fds is not None
    assert probe.fds.maximum == local.fds.maximum
    assert local.processes is not None and probe.processes is not None
    slack = max(25, local.processes.total // 5)
    assert abs(probe.processes.total - local.processes.total) <= slack
    assert local.services is not None and probe.services is not None
    assert probe.services.manager == local.services.manager
    assert local.time_sync is not None and probe.time_sync is not None
    assert (probe.time_sync.tool, probe.time_sync.synchronized) == (
        local.time_sync.tool,
        local.time_sync.synchronized,
    )
    assert local.ports is not None and probe.ports is not None
    tcp = {(p.proto, p.address, p.port) for p in local.ports if p.proto.startswith("tcp")}
    assert tcp <= {(p.proto, p.address, p.port) for p in probe.ports} | _changed_meanwhile(
        local, probe
    )


def _changed_meanwhile(local: FactSet, probe: FactSet) -> "set[tuple[str, str, int]]":
    """Listening sockets of short-lived test servers of other suites may come and go."""
    assert local.ports is not None and probe.ports is not None
    ours = {(p.proto, p.address, p.port) for p in probe.ports}
    return {
        (p.proto, p.address, p.port)
        for p in local.ports
        if p.port >= 32768 and (p.proto, p.address, p.port) not in ours
    }


def test_agent_history_over_ssh_summarises_like_the_agent(tmp_path: Path) -> None:
    """The target's store, dumped as the probe does (sqlite3 -csv), gives the agent's summary."""
    require_service(shutil.which("sqlite3") is not None, "sqlite3 not installed")
    t0 = datetime(2026, 11, 20, tzinfo=timezone.utc).timestamp()
    store = HistoryStore(tmp_path)
    for i in range(90):
        used = 10_000_000 + i * 1_000_000
        mount = {"mount": "/data", "used_percent": used / 1e9 * 100, "used_bytes": used,
                 "total_bytes": 10**9, "free_bytes": 10**9 - used}  # fmt: skip
        store.add(
            {"at": t0 + i * 60, "cpu_percent": float(i % 7), "load1": i / 10, "mounts": [mount]}
        )
    store.close()
    window = Window(
        start=datetime.fromtimestamp(t0 + 600, timezone.utc),
        end=datetime.fromtimestamp(t0 + 3600, timezone.utc),
    )
    dump = subprocess.run(
        ["sqlite3", "-readonly", "-csv", "-header", str(tmp_path / HISTORY_FILE),
         f"SELECT * FROM samples WHERE at >= {int(t0)} ORDER BY at"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    nonce = new_nonce()
    stdout = "".join(
        f"\n==== xunjian:{name} {nonce} ====\n{body}"
        for name, body in (("probe", "shell=/bin/sh\n"), ("history.agent", dump), ("end", ""))
    )
    _, facts = facts_from_output(
        stdout,
        nonce,
        ProbePlan(window=window),
        collected_at=window.end,
        fallback_hostname="here",
        redactor=Redactor(),
    )
    own = history_facts(tmp_path, window)
    assert facts.history is not None and own is not None
    assert facts.history == own and len(own.metrics) > 2 and own.disk_trends
