"""The alarm-log scan on real files: windows, multiline records, bad input, offsets, budgets,
and the grep and pure-Python paths agreeing on everything."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import List, Optional, Tuple

import pytest

from agent.config import LogsConfig
from agent.logscan.files import FileScanner, Hit
from agent.logscan.journal import consume, journal_available, read_journal
from agent.logscan.matcher import Matcher
from agent.logscan.scan import ScanState, rules_for, scan_logs
from agent.logscan.sources import LogSource, log_sources
from agent.redact import Redactor
from checks.alarms import AlarmRule, builtin_rules
from checks.facts import LogFacts
from checks.model import Window
from tests.conftest import ROOT, require_service

UTC = timezone.utc
RULES = builtin_rules()
ALL_TIME = Window(start=datetime(1970, 1, 2, tzinfo=UTC), end=datetime(2100, 1, 1, tzinfo=UTC))
HAVE_GREP = shutil.which("grep") is not None


def scan(
    paths: List[Path],
    window: Window = ALL_TIME,
    *,
    use_grep: Optional[bool] = None,
    budget: int = 1 << 40,
    state: Optional[ScanState] = None,
    rules: List[AlarmRule] = RULES,
) -> Tuple[LogFacts, ScanState]:
    return scan_logs(
        [LogSource(path=str(p)) for p in paths],
        rules,
        window,
        redact=Redactor().redact,
        budget_bytes=budget,
        state=state,
        use_grep=use_grep,
        tz=UTC,
    )


def both(paths: List[Path], window: Window = ALL_TIME, **kw: object) -> Tuple[LogFacts, ScanState]:
    """Scan with grep and in pure Python; the two must agree exactly."""
    python = scan(paths, window, use_grep=False, **kw)  # type: ignore[arg-type]
    if HAVE_GREP:
        grep = scan(paths, window, use_grep=True, **kw)  # type: ignore[arg-type]
        assert grep == python
    return python


def count(facts: LogFacts, rule: str) -> int:
    return sum(t.count for t in facts.templates if t.rule == rule)


def copy_with_mtime(src: Path, dst: Path, mtime: datetime) -> Path:
    """RFC 3164 lines take their year from the file's mtime: set it to know the year."""
    shutil.copyfile(src, dst)
    stamp = mtime.timestamp()
    os.utime(dst, (stamp, stamp))
    return dst


# -- windows on the real Loghub logs -------------------------------------------------------------


def test_window_over_part_of_linux_log(loghub: Path, tmp_path: Path) -> None:
    """The mtime says 2005, so the June/July lines are 2005; count the window independently."""
    path = copy_with_mtime(
        loghub / "Linux" / "Linux_2k.log", tmp_path / "messages", datetime(2005, 8, 1, tzinfo=UTC)
    )
    start, end = datetime(2005, 6, 20, tzinfo=UTC), datetime(2005, 7, 10, 12, 30, tzinfo=UTC)
    raw = path.read_bytes()
    complete = raw[: raw.rfind(b"\n") + 1].decode("utf-8", "replace").splitlines()
    pam = re.compile(r"authentication failure; .*rhost=")
    in_window = [
        line
        for line in complete
        if start
        <= datetime.strptime("2005 " + line[:15], "%Y %b %d %H:%M:%S").replace(tzinfo=UTC)
        <= end
    ]
    assert 100 < len(in_window) < len(complete)
    facts, state = both([path], Window(start=start, end=end))
    source = facts.sources[0]
    assert source.error is None
    assert source.lines_in_window == len(in_window)
    assert count(facts, "login.pam_failure") == sum(1 for line in in_window if pam.search(line))
    for t in facts.templates:
        assert t.first_seen is not None and t.last_seen is not None
        assert start <= t.first_seen <= t.last_seen <= end
    assert state.files[str(path)] <= raw.rfind(b"\n") + 1


def test_whole_openssh_log(loghub: Path, tmp_path: Path) -> None:
    path = copy_with_mtime(
        loghub / "OpenSSH" / "OpenSSH_2k.log", tmp_path / "secure", datetime(2018, 1, 2, tzinfo=UTC)
    )
    facts, _ = both([path])
    raw = path.read_bytes()
    text = raw[: raw.rfind(b"\n") + 1].decode()  # the last line has no newline yet: not read
    assert facts.sources[0].lines_in_window == text.count("\n")
    assert count(facts, "login.ssh_failed") == len(
        re.findall(r"sshd.*: Failed (password|none) for", text)
    )
    assert facts.successful_logins == text.count(": Accepted ")
    assert sum(facts.failed_login_minutes.values()) > 0
    top = next(iter(facts.failed_login_sources))
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", top)
    assert all(re.fullmatch(r"2017-12-10T\d\d:\d\dZ", m) for m in facts.failed_login_minutes)


def test_apache_error_log_window(loghub: Path) -> None:
    start, end = datetime(2005, 12, 4, 5, 0, tzinfo=UTC), datetime(2005, 12, 4, 6, 0, tzinfo=UTC)
    facts, _ = both([loghub / "Apache" / "Apache_2k.log"], Window(start=start, end=end))
    lines = (loghub / "Apache" / "Apache_2k.log").read_text().splitlines()
    expected = [
        ln
        for ln in lines
        if start <= datetime.strptime(ln[5:25], "%b %d %H:%M:%S %Y").replace(tzinfo=UTC) <= end
    ]
    assert facts.sources[0].lines_in_window == len(expected)
    errors = [ln for ln in expected if "error" in ln]
    assert count(facts, "alarm.error") == len(errors)


# -- multiline records ------------------------------------------------------------------------------

JAVA = """\
2026-11-20 07:59:00,000 INFO [main] app - started
2026-11-20 08:00:01,123 ERROR [main] app - request failed
java.lang.IllegalStateException: boom
\tat com.example.App.run(App.java:10)
Caused by: java.io.IOException: disk full
\tat com.example.Disk.write(Disk.java:5)
2026-11-20 09:30:00,000 INFO [main] app - retrying
Traceback (most recent call last):
  File "job.py", line 3, in <module>
ValueError: bad input
2026-11-20 10:00:00,000 INFO [main] app - done
"""


def test_stack_traces_belong_to_the_line_before(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_text(JAVA)
    eight = Window(
        start=datetime(2026, 11, 20, 8, tzinfo=UTC), end=datetime(2026, 11, 20, 9, tzinfo=UTC)
    )
    facts, _ = both([path], eight)
    assert count(facts, "app.error") == 1
    assert count(facts, "app.java_exception") == 1  # the exception and its cause: one record
    assert count(facts, "app.python_traceback") == 0  # its record starts at 09:30
    java = next(t for t in facts.templates if t.rule == "app.java_exception")
    assert java.first_seen == datetime(2026, 11, 20, 8, 0, 1, 123000, tzinfo=UTC)
    assert java.samples[0].startswith("2026-11-20 08:00:01,123 ERROR [main] app - request failed\n")
    nine = Window(
        start=datetime(2026, 11, 20, 9, tzinfo=UTC), end=datetime(2026, 11, 20, 10, tzinfo=UTC)
    )
    facts, _ = both([path], nine)
    assert count(facts, "app.python_traceback") == 1
    assert count(facts, "app.error") == 0
    assert facts.sources[0].lines_in_window == 5  # 09:30 record (4 lines) and the 10:00 line


@pytest.mark.parametrize("use_grep", [False, True] if HAVE_GREP else [False])
def test_text_in_memory_scans_like_the_same_file(
    loghub: Path, tmp_path: Path, use_grep: bool
) -> None:
    """`scan_bytes` (the SSH mode's lines) finds what `scan` finds in a file of that content."""
    cases = [
        (
            (loghub / "Linux" / "Linux_2k.log").read_bytes(),
            datetime(2005, 8, 1, tzinfo=UTC),
            Window(start=datetime(2005, 6, 20, tzinfo=UTC), end=datetime(2005, 7, 10, tzinfo=UTC)),
        ),
        (
            JAVA.encode(),
            datetime(2026, 11, 20, 10, tzinfo=UTC),
            Window(
                start=datetime(2026, 11, 20, 8, tzinfo=UTC),
                end=datetime(2026, 11, 20, 9, tzinfo=UTC),
            ),
        ),
    ]
    rules = set()
    for data, mtime, window in cases:
        path = tmp_path / "messages"
        path.write_bytes(data)
        os.utime(path, (mtime.timestamp(), mtime.timestamp()))
        on_disk: List[Hit] = []
        in_memory: List[Hit] = []
        on_file = FileScanner(Matcher(RULES), window, on_disk.append, tz=UTC, use_grep=use_grep)
        from_file, _ = on_file.scan(str(path))
        in_bytes = FileScanner(Matcher(RULES), window, in_memory.append, tz=UTC)
        assert in_bytes.scan_bytes(str(path), data, mtime) == from_file
        assert in_memory == on_disk and from_file.lines_in_window > 2
        rules |= {h.rule.id for h in on_disk}
    assert {"login.pam_failure", "app.java_exception"} <= rules


def test_a_file_without_timestamps_counts_nothing_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "plain.log"
    path.write_text("all good\nERROR: something broke\nfatal error again\n")
    facts, _ = both([path])
    assert facts.templates == []
    assert facts.sources[0].lines_without_time == 2
    assert facts.sources[0].lines_in_window == 0


# -- bad input ---------------------------------------------------------------------------------------


def test_sources_that_cannot_be_read(tmp_path: Path) -> None:
    """A directory, a dangling symlink and a FIFO (which would block a reader) each give a clear
    error; none stops the scan of the others."""
    good = tmp_path / "good.log"
    good.write_text("Nov 20 08:00:00 h kernel: Out of memory: Killed process 1 (java)\n")
    dangling = tmp_path / "gone.log"
    dangling.symlink_to(tmp_path / "missing")
    fifo = tmp_path / "pipe.log"
    os.mkfifo(fifo)
    facts, state = both([tmp_path, dangling, fifo, good])
    errors = [s.error for s in facts.sources]
    assert errors == [
        f"not a regular file: {tmp_path}",
        f"not found: {dangling}",
        f"not a regular file: {fifo}",
        None,
    ]
    assert count(facts, "kernel.oom") == 1
    assert state.files[str(tmp_path)] == 0


def test_permission_denied(tmp_path: Path) -> None:
    """Root reads everything, so the scan runs in a child without the DAC capabilities."""
    secret = tmp_path / "secure"
    secret.write_text(
        "Nov 20 08:00:00 h sshd[1]: Failed password for root from 1.2.3.4 port 2 ssh2\n"
    )
    secret.chmod(0)
    prefix: List[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        require_service(
            setpriv is not None, "setpriv (util-linux) is needed to drop root's DAC override"
        )
        prefix = [str(setpriv), "--bounding-set=-dac_override,-dac_read_search"]
    code = (
        "import sys; from datetime import timezone; "
        "from agent.logscan.scan import scan_logs; from agent.logscan.sources import LogSource; "
        "from checks.alarms import builtin_rules; from tests.agent.test_logscan_scan import ALL_TIME; "
        "f, _ = scan_logs([LogSource(path=sys.argv[1])], builtin_rules(), ALL_TIME, redact=str, "
        "budget_bytes=1 << 30, tz=timezone.utc); print(f.model_dump_json())"
    )
    out = subprocess.run(
        [*prefix, sys.executable, "-c", code, str(secret)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    facts = LogFacts.model_validate_json(out.stdout)
    assert facts.sources[0].error == f"permission denied: {secret}"
    assert facts.templates == []


def test_binary_garbage_invalid_utf8_and_a_10mb_line(tmp_path: Path) -> None:
    path = tmp_path / "messages"
    garbage = bytes(range(256)) * 64 + b"\x00\x00ERROR\x00\xff\n"
    long_line = (
        b"Nov 20 08:00:00 h kernel: Out of memory: Killed process 9 (x) "
        + b"A" * (10 * 1024 * 1024)
        + b"\n"
    )
    invalid = b"Nov 20 08:00:01 h app[3]: error opening \xff\xfe\xc3(file)\n"
    tail_of_long = b"Nov 20 08:00:02 h app[3]: " + b"B" * (200 * 1024) + b" panic at the end\n"
    path.write_bytes(garbage + long_line + invalid + tail_of_long + garbage)
    os.utime(path, (datetime(2026, 11, 20, 9, tzinfo=UTC).timestamp(),) * 2)
    facts, state = both([path])
    source = facts.sources[0]
    assert source.error is None
    assert state.files[str(path)] == path.stat().st_size
    assert count(facts, "kernel.oom") == 1
    oom = next(t for t in facts.templates if t.rule == "kernel.oom")
    assert all(len(s) <= 2000 for s in oom.samples)
    error = next(t for t in facts.templates if t.rule == "alarm.error")
    assert "\ufffd" in error.samples[0] and error.count == 1
    assert count(facts, "alarm.panic") == 0  # beyond the 64 KiB kept of a line
    # The first garbage block lies before the first timestamp, outside any window; the second
    # block's "ERROR" line has no timestamped line within 64 KiB before it: counted as timeless.
    assert source.lines_without_time == 1


def test_partial_last_line_waits_for_its_newline(tmp_path: Path) -> None:
    path = tmp_path / "syslog"
    first = b"Nov 20 08:00:00 h kernel: Out of memory: Killed process 1 (a)\n"
    partial = b"Nov 20 08:00:05 h kernel: Out of memory: Killed process 2 (b)"
    path.write_bytes(first + partial)
    facts, state = both([path])
    assert count(facts, "kernel.oom") == 1
    assert state.files[str(path)] == len(first)
    with path.open("ab") as fh:
        fh.write(b"\n")
    facts, state = both([path], state=state)
    assert count(facts, "kernel.oom") == 1  # only the finished line, not the first again
    assert facts.sources[0].lines_read == 1
    assert state.files[str(path)] == len(first) + len(partial) + 1
    path.write_bytes(first)  # truncated below the offset: start over
    facts, state = both([path], state=state)
    assert count(facts, "kernel.oom") == 1 and state.files[str(path)] == len(first)


def test_byte_budget_truncates_and_resumes(tmp_path: Path) -> None:
    path = tmp_path / "syslog"
    lines = [
        f"Nov 20 08:{i // 60:02d}:{i % 60:02d} h kernel: Out of memory: Killed process {i} (x)\n"
        for i in range(600)
    ]
    path.write_text("".join(lines))
    whole, _ = both([path])
    size = path.stat().st_size
    other = path.with_name("other")
    other.write_text(lines[0])
    first, state = both([path, other], budget=size // 3)
    assert first.sources[0].truncated and first.sources[1].truncated
    offset = state.files[str(path)]
    assert 0 < offset <= size // 3 and path.read_bytes()[offset - 1 : offset] == b"\n"
    total = count(first, "kernel.oom")
    while state.files[str(path)] != size:
        more, state = both([path], budget=size // 3, state=state)
        total += count(more, "kernel.oom")
    assert total == count(whole, "kernel.oom") == 600


def test_samples_and_templates_are_redacted(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_text(
        "2026-11-20 08:00:01,000 ERROR [main] db - login failed password=hunter2 for 13812345678\n"
        "2026-11-20 08:00:02,000 ERROR [main] db - login failed password=hunter2 for 13812345678\n"
    )
    facts, _ = both([path])
    dump = facts.model_dump_json()
    assert "hunter2" not in dump and "13812345678" not in dump
    assert count(facts, "app.error") == 2


def test_rules_from_config_replace_by_id_and_are_validated(tmp_path: Path) -> None:
    config = LogsConfig(
        rules=[{"id": "kernel.oom", "pattern": "OOMish", "severity": "warning", "family": "kernel"}]
    )
    rules = rules_for(config)
    oom = next(r for r in rules if r.id == "kernel.oom")
    assert (oom.pattern, oom.severity) == ("OOMish", "warning")
    assert len(rules) == len(RULES)
    with pytest.raises(ValueError, match=r"\\\\d"):
        rules_for(LogsConfig(rules=[{"id": "x", "pattern": r"\d+"}]))


def test_ignore_case_rules_agree_between_paths(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_text(
        "Nov 20 08:00:00 h app[1]: Disk QUOTA exceeded\nNov 20 08:00:01 h app[1]: disk quota exceeded\n"
    )
    rule = AlarmRule(id="site.quota", pattern="disk quota", ignore_case=True, severity="info")
    facts, _ = both([path], rules=[rule])
    assert count(facts, "site.quota") == 2


# -- sources -------------------------------------------------------------------------------------------


def test_log_sources_refuse_paths_outside_allowed_roots(tmp_path: Path) -> None:
    logs = tmp_path / "log"
    logs.mkdir()
    (logs / "app.log").write_text("x\n")
    (logs / "app.log-20261119").write_text("y\n")
    (logs / "app.log.2.gz").write_bytes(b"")
    escape = logs / "escape.log"
    escape.symlink_to("/etc/hostname")
    config = LogsConfig(
        files=[str(logs / "app.log"), str(logs / "missing.log"), "/etc/passwd"],
        globs=[str(logs / "*.log")],
        allowed_roots=[str(logs)],
        journald=False,
    )
    window = Window(start=datetime.now(UTC) - timedelta(days=1), end=datetime.now(UTC))
    sources = log_sources(config, window, operator_files=["/etc/hostname"])
    by_path = {s.path: s.error for s in sources}
    assert by_path[str(logs / "app.log")] is None
    assert by_path[str(logs / "app.log-20261119")] is None  # rotated inside the window
    assert str(logs / "app.log.2.gz") not in by_path
    assert by_path[str(logs / "missing.log")] == f"not found: {logs / 'missing.log'}"
    assert by_path["/etc/passwd"] == f"outside allowed roots ({logs}): /etc/passwd"
    assert by_path[str(escape)] == f"outside allowed roots ({logs}): {escape}"
    assert by_path["/etc/hostname"] is None  # named by the operator on the command line
    assert [s.path for s in sources].index(str(logs / "app.log-20261119")) < [
        s.path for s in sources
    ].index(str(logs / "app.log"))
    facts, _ = scan_logs(sources, RULES, window, redact=str, budget_bytes=1 << 20)
    assert [s.error for s in facts.sources if s.source == "/etc/passwd"] == [by_path["/etc/passwd"]]


def test_journald_only_where_no_syslog_file_exists() -> None:
    from agent.config import DEFAULT_LOG_FILES

    window = Window(start=datetime.now(UTC) - timedelta(days=1), end=datetime.now(UTC))
    sources = log_sources(LogsConfig(), window, journal=False)
    journald = [s for s in sources if s.kind == "journald"]
    if any(os.path.exists(p) for p in DEFAULT_LOG_FILES):
        assert journald == []
    else:
        assert [s.error for s in journald] == ["no journal"]


# -- journald ---------------------------------------------------------------------------------------------


def entry(
    when: datetime, message: object, ident: str = "sshd", pid: str = "42", cursor: str = "c"
) -> bytes:
    return (
        json.dumps(
            {
                "__CURSOR": cursor,
                "__REALTIME_TIMESTAMP": str(int(when.timestamp() * 1e6)),
                "MESSAGE": message,
                "SYSLOG_IDENTIFIER": ident,
                "_PID": pid,
            }
        ).encode()
        + b"\n"
    )


def test_journal_entries_are_matched_like_syslog_lines() -> None:
    at = datetime(2026, 11, 20, 8, tzinfo=UTC)
    stream = io.BytesIO(
        entry(at, "Failed password for root from 10.0.0.9 port 22 ssh2", cursor="s=1")
        + entry(at, "Accepted publickey for ops from 10.0.0.8 port 22 ssh2", cursor="s=2")
        + entry(
            at,
            list(b"Out of memory: Killed process 7 (\xff)"),
            ident="kernel",
            pid="",
            cursor="s=3",
        )
        + b"not json\n"
        + entry(at - timedelta(days=3), "Failed password for root from 10.0.0.9", cursor="s=4")
    )
    hits: List[Hit] = []
    window = Window(start=at - timedelta(hours=1), end=at + timedelta(hours=1))
    facts, cursor, stopped = consume(stream, Matcher(RULES), window, hits.append)
    assert not stopped and cursor == "s=4"
    assert (facts.lines_read, facts.lines_in_window) == (5, 3)
    assert sorted(h.rule.id for h in hits) == [
        "kernel.oom",
        "login.ssh_accepted",
        "login.ssh_failed",
    ]
    oom = next(h for h in hits if h.rule.id == "kernel.oom")
    assert oom.header.program == "kernel" and "\ufffd" in oom.sample


def test_no_journal_is_a_clear_error() -> None:
    require_service(not journal_available(), "this host has a journal")
    facts, cursor = read_journal(Matcher(RULES), ALL_TIME, lambda hit: None, cursor="abc")
    assert facts.error == "no journal" and cursor == "abc"
