"""Fault/event and sysstat sources on this real machine and on real files made by the tests.

This machine may have no journal and an empty wtmp; both paths must give either facts or a
clear reason. sysstat's own collector (sadc) writes a real sa file that `sadf` then reads.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psutil
import pytest

from agent.sources import ToolError, gather
from agent.sources.events import (
    NO_JOURNAL,
    NotRecorded,
    PackageLog,
    coredumps,
    journal_problem,
    kernel_boot_time,
    packages,
    reboots,
    sections,
    service_events,
)
from agent.sources.sysstat import NO_SYSSTAT, NoHistory, history
from checks.facts import RebootEvent
from checks.model import Window
from checks.parsers import packages as pkg_parser
from tests.conftest import require_service

NOW = datetime.now(timezone.utc)
WINDOW = Window(start=NOW - timedelta(hours=24), end=NOW)


def test_every_section_gives_facts_or_a_plain_reason() -> None:
    values, errors = gather(sections(WINDOW))
    assert set(values) | set(errors) == {"coredumps", "service_events", "reboots", "packages"}
    for name, reason in errors.items():
        assert reason and "Error:" not in reason, (name, reason)
    for name, value in values.items():
        assert isinstance(value, list), name


def test_service_events_need_a_readable_journal() -> None:
    problem = journal_problem()
    if problem is None:
        assert isinstance(service_events(WINDOW), list)
    else:
        with pytest.raises(NotRecorded) as exc:
            service_events(WINDOW)
        assert str(exc.value) == problem
        assert problem == NO_JOURNAL or "not readable" in problem


def test_journal_presence_is_decided_by_journal_files(tmp_path: Path) -> None:
    assert journal_problem([str(tmp_path)]) == NO_JOURNAL
    machine = tmp_path / "0123456789abcdef0123456789abcdef"
    machine.mkdir()
    (machine / "system.journal").write_bytes(b"LPKSHHRH")
    assert journal_problem([str(tmp_path)]) is None


# ---- reboots ------------------------------------------------------------------------------


def test_real_reboots_agree_with_the_kernel_boot_time() -> None:
    booted = kernel_boot_time()
    assert abs(booted.timestamp() - psutil.boot_time()) < 2
    events = reboots(WINDOW)
    if WINDOW.start <= booted:
        assert any(
            abs((e.time - booted).total_seconds()) <= 120 for e in events if e.kind != "shutdown"
        )
    else:
        assert [e for e in events if e.kind != "shutdown" and e.time >= booted] == []


def utmp(kind: int, when: datetime, user: str) -> bytes:
    return struct.pack(
        "<h2xi32s4s32s256shhiii16s20s",
        kind, 0, b"~", b"~~", user.encode(), b"", 0, 0, 0, int(when.timestamp()), 0, b"", b"",
    )  # fmt: skip


def test_reboots_from_a_wtmp_file_and_the_boot_time(tmp_path: Path) -> None:
    start = NOW.replace(microsecond=0) - timedelta(hours=24)
    crash = start + timedelta(hours=3)
    booted = start + timedelta(hours=20)
    wtmp_file = tmp_path / "wtmp"
    wtmp_file.write_bytes(
        utmp(2, start - timedelta(days=3), "reboot")
        + utmp(2, crash, "reboot")
        + utmp(1, booted - timedelta(minutes=2), "shutdown")
    )  # the last boot's own record is missing: the kernel's btime supplies it
    stat = tmp_path / "stat"
    stat.write_text(f"cpu  1 2 3 4\nbtime {int(booted.timestamp())}\nprocesses 10\n")
    window = Window(start=start, end=NOW)
    assert reboots(window, str(wtmp_file), str(stat)) == [
        RebootEvent(time=crash, kind="crash"),
        RebootEvent(time=booted - timedelta(minutes=2), kind="shutdown"),
        RebootEvent(time=booted, kind="reboot"),
    ]
    # without wtmp (and, here, without a journal) the boot time alone still answers
    if journal_problem() is not None:
        assert reboots(window, str(tmp_path / "absent"), str(stat)) == [
            RebootEvent(time=booted, kind="reboot")
        ]


def test_garbage_wtmp_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "wtmp"
    bad.write_bytes(b"\xff" * 384 * 4)
    _, errors = gather({"reboots": lambda: reboots(WINDOW, str(bad))})
    assert errors == {"reboots": "wtmp: 4 of 4 records are not utmp records (not a wtmp file?)"}


# ---- core dumps ---------------------------------------------------------------------------


def touch(path: Path, hours_ago: float) -> None:
    when = (NOW - timedelta(hours=hours_ago)).timestamp()
    os.utime(path, (when, when))


def write_core_pattern(tmp_path: Path, pattern: str) -> str:
    path = tmp_path / "core_pattern"
    path.write_text(pattern + "\n")
    return str(path)


def test_cores_in_the_directory_of_an_absolute_core_pattern(tmp_path: Path) -> None:
    cores = tmp_path / "cores"
    cores.mkdir()
    recent = cores / "core.java.4242"
    recent.write_bytes(b"\x7fELF")
    touch(recent, 1)
    old = cores / "core.java.1"
    old.write_bytes(b"\x7fELF")
    touch(old, 48)
    pattern = write_core_pattern(tmp_path, f"{cores}/core.%e.%p")
    found = coredumps(WINDOW, pattern, dirs=())
    assert [c.path for c in found] == [str(recent)]


def test_cores_in_a_crash_handler_directory(tmp_path: Path) -> None:
    crash = tmp_path / "crash"
    crash.mkdir()
    report = crash / "_usr_sbin_nginx.0.crash"
    report.write_text("ProblemType: Crash\n")
    touch(report, 2)
    pattern = write_core_pattern(tmp_path, "|/usr/share/apport/apport -p%p -s%s -c%c")
    found = coredumps(WINDOW, pattern, dirs=(str(crash),))
    assert [c.exe for c in found] == ["/usr/sbin/nginx"]


def test_relative_core_pattern_cannot_be_listed(tmp_path: Path) -> None:
    pattern = write_core_pattern(tmp_path, "core")
    with pytest.raises(NotRecorded, match="working directory"):
        coredumps(WINDOW, pattern, dirs=(str(tmp_path),))


def test_real_core_pattern_gives_cores_or_a_reason() -> None:
    values, errors = gather({"coredumps": lambda: coredumps(WINDOW)})
    if errors:
        assert "core_pattern" in errors["coredumps"]
    else:
        assert isinstance(values["coredumps"], list)


# ---- package changes ----------------------------------------------------------------------


def test_package_changes_from_a_real_dpkg_log(tmp_path: Path) -> None:
    local = (NOW - timedelta(hours=1)).astimezone()
    older = (NOW - timedelta(days=3)).astimezone()
    log = tmp_path / "dpkg.log"
    log.write_text(
        f"{older:%Y-%m-%d %H:%M:%S} install old:amd64 <none> 1.0\n"
        f"{local:%Y-%m-%d %H:%M:%S} upgrade openssl:amd64 3.0.14-1 3.0.15-1\n"
        f"{local:%Y-%m-%d %H:%M:%S} status installed openssl:amd64 3.0.15-1\n"
    )
    dpkg = PackageLog(
        "dpkg", (str(log), str(tmp_path / "dpkg.log.1")), lambda t, _: pkg_parser.from_dpkg_log(t)
    )
    (change,) = packages(WINDOW, [dpkg])
    assert (change.action, change.name, change.version) == ("upgrade", "openssl", "3.0.15-1")
    assert change.time == local.replace(microsecond=0).astimezone(timezone.utc)


def test_no_package_log_is_a_reason_not_an_empty_list(tmp_path: Path) -> None:
    absent = PackageLog(
        "dpkg", (str(tmp_path / "dpkg.log"),), lambda t, _: pkg_parser.from_dpkg_log(t)
    )
    with pytest.raises(NotRecorded, match="no package manager log found"):
        packages(WINDOW, [absent])


def test_unreadable_and_garbage_package_logs_name_the_file(tmp_path: Path) -> None:
    directory = tmp_path / "dpkg.log"
    directory.mkdir()
    dpkg = PackageLog("dpkg", (str(directory),), lambda t, _: pkg_parser.from_dpkg_log(t))
    _, errors = gather({"packages": lambda: packages(WINDOW, [dpkg])})
    assert errors["packages"] == f"Is a directory: {directory}"
    garbage = tmp_path / "yum.log"
    garbage.write_bytes(b"\x00\xff\xfe binary\n")
    yum = PackageLog("yum", (str(garbage),), pkg_parser.from_yum_log)
    _, errors = gather({"packages": lambda: packages(WINDOW, [yum])})
    assert errors["packages"].startswith(f"{garbage}: yum.log: line 1")


# ---- sysstat ------------------------------------------------------------------------------

SADC_PATHS = ("/usr/lib/sysstat/sadc", "/usr/lib64/sa/sadc", "/usr/lib/sa/sadc")


def sadc() -> str:
    found = next((p for p in SADC_PATHS if os.access(p, os.X_OK)), None)
    require_service(
        found is not None and shutil.which("sadf") is not None, "sysstat (sadc, sadf) not installed"
    )
    assert found is not None
    return found


def test_sysstat_history_end_to_end(tmp_path: Path) -> None:
    sa = tmp_path / f"sa{datetime.now():%d}"
    subprocess.run([sadc(), "-S", "XDISK", "1", "3", str(sa)], check=True, timeout=30)
    window = Window(
        start=NOW - timedelta(hours=1), end=datetime.now(timezone.utc) + timedelta(minutes=1)
    )
    facts = history(window, dirs=[str(tmp_path)])
    assert facts.source == "sysstat"
    names = [m.metric for m in facts.metrics]
    assert names[:6] == ["cpu", "iowait", "memory", "swap", "load1", "load5"]
    assert "disk:/" in names
    for m in facts.metrics:
        assert m.samples == 2 and m.min <= m.avg <= m.max and m.min <= m.p95 <= m.max
        assert m.max_at is not None and window.start <= m.max_at <= window.end
    memory = next(m for m in facts.metrics if m.metric == "memory")
    assert abs(memory.avg - psutil.virtual_memory().percent) < 15
    root = next(t for t in facts.disk_trends if t.mount == "/")
    assert abs(root.free_bytes - psutil.disk_usage("/").free) < 0.02 * psutil.disk_usage("/").total


def test_sysstat_without_files_for_the_window(tmp_path: Path) -> None:
    with pytest.raises(NoHistory) as exc:
        history(WINDOW, dirs=[str(tmp_path)])
    assert str(exc.value) == NO_SYSSTAT
    stale = tmp_path / f"sa{datetime.now():%d}"
    subprocess.run([sadc(), "1", "2", str(stale)], check=True, timeout=30)
    last_month = (NOW - timedelta(days=31)).timestamp()
    os.utime(stale, (last_month, last_month))  # saDD of the same day number, a month ago
    with pytest.raises(NoHistory):
        history(WINDOW, dirs=[str(tmp_path)])


def test_sysstat_garbage_file_is_a_clear_error(tmp_path: Path) -> None:
    sadc()
    # today's file and a window ending now, both read at once: WINDOW ends when the module was
    # imported, and a suite that crosses midnight would name the file after a day outside it
    now = datetime.now(timezone.utc)
    (tmp_path / f"sa{now.astimezone():%d}").write_bytes(b"not a sysstat file\n")
    with pytest.raises(ToolError, match=r"sadf .*exit status"):
        history(Window(start=now - timedelta(hours=24), end=now), dirs=[str(tmp_path)])
