"""`xunjian-agent logs templates`: one JSON object per input line, or a table of templates."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

from tests.conftest import ROOT

CLI = "from agent.cli import main; main()"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CLI, "logs", "templates", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


def test_json_is_one_object_per_line_in_input_order(tmp_path: Path) -> None:
    a = tmp_path / "a.log"
    a.write_text(
        "Nov 20 08:00:00 h sshd[1]: Failed password for root from 10.0.0.1 port 22 ssh2\n"
        "Nov 20 08:00:01 h sshd[2]: Failed password for root from 10.0.0.2 port 23 ssh2\n"
        "Nov 20 08:00:02 h cron[3]: job started\n"
    )
    b = tmp_path / "b.log"
    b.write_bytes(b"2026-11-20 08:00:01,123 ERROR [main] app - broken \xff pipe\n")
    out = run("--json", str(a), str(b))
    assert out.returncode == 0, out.stderr
    records: List[Dict[str, object]] = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(r["file"], r["line"]) for r in records] == [
        (str(a), 1),
        (str(a), 2),
        (str(a), 3),
        (str(b), 1),
    ]
    assert records[0]["template_id"] == records[1]["template_id"] != records[2]["template_id"]
    assert records[0]["template"] == "Failed password for root from <IP> port <NUM> ssh2"
    assert set(records[0]) == {"file", "line", "template_id", "template"}


def test_table_and_unreadable_file(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("Nov 20 08:00:00 h app[1]: login password=hunter2 ok\n" * 3)
    out = run(str(log), str(tmp_path / "missing.log"))
    assert out.returncode == 1
    assert f"cannot read {tmp_path / 'missing.log'}" in out.stderr
    assert "3 lines, 1 templates" in out.stdout
    assert "hunter2" not in out.stdout
