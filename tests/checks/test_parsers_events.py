"""Parsers for fault/error and history facts, on real-format samples of each tool's output."""

from __future__ import annotations

import json
import struct
from datetime import datetime, timedelta, timezone
from typing import List, Tuple

import pytest

from checks.facts import Coredump, PackageChange, RebootEvent, ServiceEvent
from checks.history_summary import disk_trend, percentile, summarize
from checks.parsers import ParseError, coredumps, packages, sadf, systemd_events, wtmp

UTC = timezone.utc
CST = timezone(timedelta(hours=8))


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# ---- history summary ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([5.0], 95, 5.0),
        ([1.0, 2.0, 3.0, 4.0, 5.0], 50, 3.0),
        ([1.0, 2.0, 3.0, 4.0, 5.0], 95, 4.8),
        ([10.0, 0.0], 100, 10.0),
        (list(map(float, range(101))), 95, 95.0),
    ],
)
def test_percentile_interpolates_like_numpy(values: List[float], q: float, expected: float) -> None:
    assert percentile(values, q) == pytest.approx(expected)


def test_summarize_reports_peak_time_and_skips_nan() -> None:
    base = t("2026-11-20T00:00:00+00:00")
    points = [
        (base + timedelta(minutes=i), v) for i, v in enumerate([10.0, 90.0, float("nan"), 30.0])
    ]
    s = summarize("cpu", "%", points)
    assert s is not None
    assert (s.samples, s.min, s.avg, s.max, s.max_at) == (
        3,
        10.0,
        43.33,
        90.0,
        base + timedelta(minutes=1),
    )
    assert s.p95 == 84.0
    assert summarize("cpu", "%", []) is None


def test_disk_trend_is_least_squares_per_day() -> None:
    base = t("2026-11-20T00:00:00+00:00")
    gib = 1024**3
    # a sawtooth that first-versus-last would read as 1 GiB a day; the fit says 0.6
    used = [(base + timedelta(hours=8 * i), (100.0 + i % 2) * gib) for i in range(4)]
    trend = disk_trend("/data", used, free_bytes=10 * gib)
    assert trend is not None
    assert trend.growth_bytes_per_day == pytest.approx(0.6 * gib)
    assert (trend.free_bytes, trend.span_hours) == (10 * gib, 24.0)
    flat = disk_trend("/data", [(base, 5.0), (base + timedelta(hours=1), 5.0)], free_bytes=1)
    assert flat is not None and flat.growth_bytes_per_day == 0.0 and flat.span_hours == 1.0
    assert disk_trend("/data", [(base, 5.0), (base, 6.0)], free_bytes=1) is None


# ---- sadf ---------------------------------------------------------------------------------------

MEMORY_HEADER = (
    "# hostname;interval;timestamp;kbmemfree;kbavail;kbmemused;%memused;kbbuffers;kbcached;"
    "kbcommit;%commit;kbactive;kbinact;kbdirty;kbanonpg;kbslab;kbkstack;kbpgtbl;kbvmused"
)
SADF = f"""\
# hostname;interval;timestamp;CPU;%user;%nice;%system;%iowait;%steal;%idle
vm;600;2026-11-20 08:10:01 UTC;-1;3.52;0.00;3.52;1.00;0.00;92.96
vm;600;2026-11-20 08:20:01 UTC;-1;60.00;0.00;20.00;5.00;0.00;15.00
vm;-1;2026-11-20 08:25:00 UTC;LINUX-RESTART\t(2 CPU)
{MEMORY_HEADER}
vm;600;2026-11-20 08:10:01 UTC;600;400;200;20.00;50;100;0;0.00;0;0;0;0;50;0;0;0
vm;600;2026-11-20 08:20:01 UTC;100;100;700;70.00;50;100;0;0.00;0;0;0;0;50;0;0;0
# hostname;interval;timestamp;kbswpfree;kbswpused;%swpused;kbswpcad;%swpcad
vm;600;2026-11-20 08:10:01 UTC;900;100;10.00;0;0.00
# hostname;interval;timestamp;runq-sz;plist-sz;ldavg-1;ldavg-5;ldavg-15;blocked
vm;600;2026-11-20 08:10:01 UTC;0;94;0.50;0.40;0.30;0
vm;600;2026-11-20 08:20:01 UTC;3;99;4.00;2.00;1.00;1
"""

SADF_FS = """\
# hostname;interval;timestamp;MOUNTPOINT;MBfsfree;MBfsused;%fsused;%ufsused;Ifree;Iused;%Iused
vm;600;2026-11-20 08:10:01 UTC;/;900;100;10.00;20.00;100;10;9.09
vm;600;2026-11-20 20:10:01 UTC;/;850;150;15.00;25.00;100;10;9.09
"""


def test_sadf_activities_become_metric_series() -> None:
    data = sadf.parse_sadf(SADF)
    first, second = t("2026-11-20T08:10:01+00:00"), t("2026-11-20T08:20:01+00:00")
    assert data.series["cpu"] == [(first, pytest.approx(7.04)), (second, 85.0)]
    assert data.series["iowait"] == [(first, 1.0), (second, 5.0)]
    # (total − available) / total with total = free + used + buffers + cached + slab = 1000 kB
    assert data.series["memory"] == [(first, 60.0), (second, 90.0)]
    assert data.series["swap"] == [(first, 10.0)]
    assert data.series["load1"] == [(first, 0.5), (second, 4.0)]
    assert data.series["load5"] == [(first, 0.4), (second, 2.0)]


def test_sadf_filesystems_use_df_percent_and_feed_the_trend() -> None:
    data = sadf.parse_sadf(SADF)
    data.merge(sadf.parse_sadf(SADF_FS))
    mib = 1024 * 1024
    first = data.filesystems["/"][0]
    # total 1000 MiB, 20 % used as users see it → 800 MiB available; df: 100 / (100 + 800)
    assert (first.used_bytes, first.avail_bytes) == (100 * mib, 800 * mib)
    assert first.used_percent == pytest.approx(11.111, abs=1e-3)
    facts = sadf.history_from_sadf(
        data, t("2026-11-20T08:00:00+00:00"), t("2026-11-21T08:00:00+00:00")
    )
    assert facts.source == "sysstat"
    assert [m.metric for m in facts.metrics] == [
        "cpu",
        "iowait",
        "memory",
        "swap",
        "load1",
        "load5",
        "disk:/",
    ]
    cpu = facts.metrics[0]
    assert (cpu.samples, cpu.max, cpu.max_at) == (2, 85.0, t("2026-11-20T08:20:01+00:00"))
    (trend,) = facts.disk_trends
    assert trend.mount == "/" and trend.span_hours == 12.0
    assert trend.growth_bytes_per_day == pytest.approx(100 * mib)  # 50 MiB in 12 h
    assert trend.free_bytes == 750 * mib


def test_sadf_window_filters_samples() -> None:
    facts = sadf.history_from_sadf(
        sadf.parse_sadf(SADF), t("2026-11-20T08:15:00+00:00"), t("2026-11-20T09:00:00+00:00")
    )
    assert {m.metric: m.samples for m in facts.metrics} == {
        "cpu": 1,
        "iowait": 1,
        "memory": 1,
        "load1": 1,
        "load5": 1,
    }
    assert facts.start == facts.end == t("2026-11-20T08:20:01+00:00")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("vm;600;2026-11-20 08:10:01 UTC;-1;1;0;0;0;0;99\n", "data before any header"),
        ("# not;a;header\n", "not a sadf -d header"),
        (
            "# hostname;interval;timestamp;CPU;%idle\nvm;600;2026-11-20 08:10:01 UTC;-1\n",
            "4 fields where the header has 5",
        ),
        ("# hostname;interval;timestamp;CPU;%idle\nvm;600;yesterday;-1;99\n", "timestamp"),
        (
            "# hostname;interval;timestamp;CPU;%idle\nvm;600;2026-11-20 08:10:01 UTC;-1;x\n",
            "not a number",
        ),
    ],
)
def test_sadf_garbage_is_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        sadf.parse_sadf(text)


# ---- wtmp ---------------------------------------------------------------------------------------

EMPTY, RUN_LVL, BOOT_TIME, USER_PROCESS, DEAD_PROCESS = 0, 1, 2, 7, 8


def utmp(kind: int, when: str, user: str = "", line: str = "~", pid: int = 0) -> bytes:
    """One record exactly as glibc writes it on x86_64 (384 bytes)."""
    sec = int(t(when).timestamp())
    return struct.pack(
        "<h2xi32s4s32s256shhiii16s20s",
        kind,
        pid,
        line.encode(),
        b"~~\0\0",
        user.encode(),
        b"6.1.0-28-amd64",
        0,
        0,
        0,
        sec,
        123456,
        b"\0" * 16,
        b"\0" * 20,
    )


def runlevel(when: str, level: str) -> bytes:
    return utmp(RUN_LVL, when, "runlevel", pid=ord(level) + 256 * ord("N"))


WTMP = b"".join(
    [
        utmp(BOOT_TIME, "2026-11-18T02:00:00+00:00", "reboot"),
        runlevel("2026-11-18T02:00:05+00:00", "5"),
        utmp(USER_PROCESS, "2026-11-19T09:00:00+00:00", "ops", "pts/0", pid=4242),
        utmp(DEAD_PROCESS, "2026-11-19T09:30:00+00:00", "", "pts/0", pid=4242),
        utmp(RUN_LVL, "2026-11-19T22:00:00+00:00", "shutdown"),
        utmp(BOOT_TIME, "2026-11-19T22:01:30+00:00", "reboot"),  # planned
        utmp(BOOT_TIME, "2026-11-20T03:17:00+00:00", "reboot"),  # no shutdown before: crash
        runlevel("2026-11-20T05:00:00+00:00", "6"),  # sysvinit reboot
        utmp(BOOT_TIME, "2026-11-20T05:01:00+00:00", "reboot"),
    ]
)


def test_wtmp_tells_reboots_from_crashes() -> None:
    events = wtmp.reboots(WTMP, t("2026-11-19T08:00:00+00:00"), t("2026-11-20T08:00:00+00:00"))
    assert events == [
        RebootEvent(time=t("2026-11-19T22:00:00.123456+00:00"), kind="shutdown"),
        RebootEvent(time=t("2026-11-19T22:01:30.123456+00:00"), kind="reboot"),
        RebootEvent(time=t("2026-11-20T03:17:00.123456+00:00"), kind="crash"),
        RebootEvent(time=t("2026-11-20T05:00:00.123456+00:00"), kind="shutdown"),
        RebootEvent(time=t("2026-11-20T05:01:00.123456+00:00"), kind="reboot"),
    ]


def test_wtmp_first_boot_of_a_file_is_not_called_a_crash_and_torn_tail_is_ignored() -> None:
    data = utmp(BOOT_TIME, "2026-11-20T03:00:00+00:00", "reboot") + b"\x07\x00partial"
    events = wtmp.reboots(data, t("2026-11-20T00:00:00+00:00"), t("2026-11-21T00:00:00+00:00"))
    assert events == [RebootEvent(time=t("2026-11-20T03:00:00.123456+00:00"), kind="reboot")]
    assert wtmp.reboots(b"", t("2026-11-20T00:00:00+00:00"), t("2026-11-21T00:00:00+00:00")) == []


def test_wtmp_records_fields() -> None:
    records = wtmp.parse_records(WTMP)
    assert len(records) == 9
    login = records[2]
    assert (login.type, login.pid, login.line, login.user) == (USER_PROCESS, 4242, "pts/0", "ops")


def test_wtmp_garbage_is_a_clear_error() -> None:
    with pytest.raises(ParseError, match="not a wtmp file"):
        wtmp.parse_records(b"\xff" * 384 * 3)


# ---- PID 1 journal ----------------------------------------------------------------------------


def journal_line(when: str, message: object) -> str:
    micros = int(t(when).timestamp() * 1_000_000)
    return json.dumps({"__REALTIME_TIMESTAMP": str(micros), "_PID": "1", "MESSAGE": message})


PID1_JSON = "\n".join(
    [
        journal_line(
            "2026-11-20T03:00:00+00:00", "Started nginx.service - A high performance web server."
        ),
        journal_line(
            "2026-11-20T03:10:00+00:00",
            "nginx.service: Main process exited, code=killed, status=9/KILL",
        ),
        journal_line("2026-11-20T03:10:00+00:00", "nginx.service: Failed with result 'signal'."),
        journal_line(
            "2026-11-20T03:10:05+00:00",
            "nginx.service: Scheduled restart job, restart counter is at 1.",
        ),
        journal_line(
            "2026-11-20T04:00:00+00:00",
            "app@2.service: Main process exited, code=exited, status=1/FAILURE",
        ),
        journal_line("2026-11-20T04:00:00+00:00", "app@2.service: Failed with result 'exit-code'."),
        journal_line(
            "2026-11-20T04:00:10+00:00",
            "app@2.service: Scheduled restart job, restart counter is at 1.",
        ),
        journal_line("2026-11-20T04:00:20+00:00", "app@2.service: Failed with result 'exit-code'."),
        journal_line(
            "2026-11-20T04:00:30+00:00",
            "app@2.service: Scheduled restart job, restart counter is at 2.",
        ),
        journal_line(
            "2026-11-20T05:00:00+00:00", list(b"backup.mount: Failed with result 'exit-code'.")
        ),
        journal_line(
            "2026-11-20T06:00:00+00:00", "Reached target multi-user.target - Multi-User System."
        ),
        "",
    ]
)

EXPECTED_EVENTS = [
    ServiceEvent(
        unit="app@2.service",
        kind="failed",
        count=2,
        last_seen=t("2026-11-20T04:00:20+00:00"),
        sample="app@2.service: Main process exited, code=exited, status=1/FAILURE",
    ),
    ServiceEvent(
        unit="app@2.service",
        kind="restarted",
        count=2,
        last_seen=t("2026-11-20T04:00:30+00:00"),
        sample="app@2.service: Scheduled restart job, restart counter is at 2.",
    ),
    ServiceEvent(
        unit="nginx.service",
        kind="failed",
        count=1,
        last_seen=t("2026-11-20T03:10:00+00:00"),
        sample="nginx.service: Main process exited, code=killed, status=9/KILL",
    ),
    ServiceEvent(
        unit="nginx.service",
        kind="restarted",
        count=1,
        last_seen=t("2026-11-20T03:10:05+00:00"),
        sample="nginx.service: Scheduled restart job, restart counter is at 1.",
    ),
]


def test_pid1_json_to_service_events() -> None:
    """A MESSAGE journald exported as a byte array (not valid UTF-8 text) is decoded too."""
    backup = ServiceEvent(
        unit="backup.mount",
        kind="failed",
        count=1,
        last_seen=t("2026-11-20T05:00:00+00:00"),
        sample="backup.mount: Failed with result 'exit-code'.",
    )
    events = systemd_events.service_events(systemd_events.entries_from_json(PID1_JSON))
    assert events == [*EXPECTED_EVENTS[:2], backup, *EXPECTED_EVENTS[2:]]


def test_pid1_short_iso_gives_the_same_events() -> None:
    lines = []
    for line in PID1_JSON.splitlines():
        if not line:
            continue
        record = json.loads(line)
        if isinstance(record["MESSAGE"], list):
            continue
        when = datetime.fromtimestamp(int(record["__REALTIME_TIMESTAMP"]) / 1e6, CST)
        lines.append(
            f"{when.strftime('%Y-%m-%dT%H:%M:%S%z')} web01 systemd[1]: {record['MESSAGE']}"
        )
    text = "-- Logs begin at Thu 2026-11-19 00:00:00 CST. --\n" + "\n".join(lines)
    assert (
        systemd_events.service_events(systemd_events.entries_from_short_iso(text))
        == EXPECTED_EVENTS
    )


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("nginx.service: Failed with result 'exit-code'.", ("nginx.service", "failed")),
        ("Unit nginx.service entered failed state.", ("nginx.service", "failed")),
        ("nginx.service holdoff time over, scheduling restart.", ("nginx.service", "restarted")),
        (
            "nginx.service: main process exited, code=dumped, status=11/SEGV",
            ("nginx.service", "exited"),
        ),
        ("Failed to start nginx.service - A high performance web server.", None),
        ("nginx.service: Deactivated successfully.", None),
        ("Failed password for root from 10.0.0.1 port 22 ssh2", None),
    ],
)
def test_pid1_message_classification(message: str, expected: object) -> None:
    assert systemd_events.classify(message) == expected


def test_journal_garbage_is_a_clear_error() -> None:
    with pytest.raises(ParseError, match="line 2 is not a journal entry"):
        systemd_events.entries_from_json(
            journal_line("2026-11-20T03:00:00+00:00", "x") + "\nnot json\n"
        )
    with pytest.raises(ParseError, match="short-iso"):
        systemd_events.entries_from_short_iso("Nov 20 03:00:00 web01 systemd[1]: x\n")


LIST_BOOTS = """\
IDX BOOT ID                          FIRST ENTRY                 LAST ENTRY
 -2 0b5d3c0e8f1a4f6b9c2d7e8f9a0b1c2d Tue 2026-11-17 01:00:00 UTC Wed 2026-11-19 23:59:00 UTC
 -1 5c8f0b8e3b2a4f0c9d6e7f8a9b0c1d2e Thu 2026-11-20 03:17:05 UTC Thu 2026-11-20 04:59:00 UTC
  0 9a1b2c3d4e5f60718293a4b5c6d7e8f9 Thu 2026-11-20 05:01:10 UTC Fri 2026-11-20 08:00:00 UTC
"""


def test_list_boots_first_entries_in_window() -> None:
    events = systemd_events.boots_from_list_boots(
        LIST_BOOTS, t("2026-11-19T08:00:00+00:00"), t("2026-11-20T08:00:00+00:00")
    )
    assert events == [
        RebootEvent(time=t("2026-11-20T03:17:05+00:00"), kind="reboot"),
        RebootEvent(time=t("2026-11-20T05:01:10+00:00"), kind="reboot"),
    ]
    old_style = (
        " -1 5c8f0b8e3b2a4f0c9d6e7f8a9b0c1d2e Thu 2026-11-20 03:17:05 UTC"
        "—Thu 2026-11-20 04:59:00 UTC\n"
    )
    assert (
        len(
            systemd_events.boots_from_list_boots(
                old_style, t("2026-11-20T00:00:00+00:00"), t("2026-11-21T00:00:00+00:00")
            )
        )
        == 1
    )
    with pytest.raises(ParseError, match="UTC"):
        systemd_events.boots_from_list_boots(
            LIST_BOOTS.replace("UTC", "CST"),
            t("2026-11-19T08:00:00+00:00"),
            t("2026-11-20T08:00:00+00:00"),
        )


# ---- core dumps -------------------------------------------------------------------------------


def test_coredumps_from_the_journal() -> None:
    micros = int(t("2026-11-20T03:09:59+00:00").timestamp() * 1_000_000)
    entry = {
        "__REALTIME_TIMESTAMP": str(micros + 900_000),
        "MESSAGE_ID": coredumps.COREDUMP_MESSAGE_ID,
        "COREDUMP_EXE": "/usr/sbin/nginx",
        "COREDUMP_PID": "1234",
        "COREDUMP_SIGNAL": "11",
        "COREDUMP_TIMESTAMP": str(micros),
        "COREDUMP_FILENAME": "/var/lib/systemd/coredump/core.nginx.0.x.1234.1.zst",
    }
    old = {
        "__REALTIME_TIMESTAMP": str(micros),
        "COREDUMP_COMM": "java",
        "COREDUMP_SIGNAL_NAME": "SIGABRT",
    }
    text = json.dumps(entry) + "\n" + json.dumps(old) + "\n"
    assert coredumps.from_journal_json(text) == [
        Coredump(
            time=t("2026-11-20T03:09:59+00:00"),
            exe="/usr/sbin/nginx",
            pid=1234,
            signal="SIGSEGV",
            path="/var/lib/systemd/coredump/core.nginx.0.x.1234.1.zst",
        ),
        Coredump(time=t("2026-11-20T03:09:59+00:00"), exe="java", signal="SIGABRT"),
    ]


MTIME = t("2026-11-20T06:00:00+00:00")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "core.nginx.0.4c0e0d3b9b2f4d1e8a7c6b5a49382716.1234.1795230000000000.zst",
            Coredump(time=datetime.fromtimestamp(1795230000, UTC), exe="nginx", pid=1234),
        ),
        ("_usr_sbin_nginx.0.crash", Coredump(time=MTIME, exe="/usr/sbin/nginx")),
        ("ccpp-2026-11-20-06:00:00.123456-1234", Coredump(time=MTIME, pid=1234)),
        ("core.1234", Coredump(time=MTIME)),
    ],
)
def test_core_file_names(name: str, expected: Coredump) -> None:
    path = f"/var/crash/{name}"
    assert coredumps.from_filename(name, path, MTIME) == expected.model_copy(update={"path": path})


@pytest.mark.parametrize(
    ("sig", "name"),
    [("11", "SIGSEGV"), ("6", "SIGABRT"), ("SIGBUS", "SIGBUS"), ("99", "99"), (None, None)],
)
def test_signal_names(sig: object, name: object) -> None:
    assert coredumps.signal_name(sig) == name  # type: ignore[arg-type]


# ---- package logs -----------------------------------------------------------------------------

DPKG = """\
2026-11-20 06:03:40 startup archives unpack
2026-11-20 06:03:41 install dbus:amd64 <none> 1.14.10-1~deb12u1
2026-11-20 06:03:41 status half-installed dbus:amd64 1.14.10-1~deb12u1
2026-11-20 06:03:42 upgrade libc6:amd64 2.36-9+deb12u9 2.36-9+deb12u10
2026-11-20 06:03:43 configure libc6:amd64 2.36-9+deb12u10 <none>
2026-11-20 06:03:44 remove nano:amd64 7.2-1 <none>
2026-11-20 06:03:45 purge vim-tiny:amd64 2:9.0.1378-2 <none>
2026-11-20 06:03:46 trigproc man-db:amd64 2.11.2-2 <none>
"""


def test_dpkg_log_in_local_time() -> None:
    assert packages.from_dpkg_log(DPKG, tz=CST) == [
        PackageChange(
            time=t("2026-11-20T06:03:41+08:00"),
            action="install",
            name="dbus",
            version="1.14.10-1~deb12u1",
        ),
        PackageChange(
            time=t("2026-11-20T06:03:42+08:00"),
            action="upgrade",
            name="libc6",
            version="2.36-9+deb12u10",
        ),
        PackageChange(
            time=t("2026-11-20T06:03:44+08:00"), action="remove", name="nano", version="7.2-1"
        ),
        PackageChange(
            time=t("2026-11-20T06:03:45+08:00"),
            action="remove",
            name="vim-tiny",
            version="2:9.0.1378-2",
        ),
    ]
    with pytest.raises(ParseError, match="line 1"):
        packages.from_dpkg_log("\x00\x01 binary garbage\n")


APT = """\

Start-Date: 2026-11-20  06:03:40
Commandline: apt-get install -y dbus
Requested-By: ops (1000)
Install: dbus:amd64 (1.14.10-1~deb12u1), libdbus-1-3:amd64 (1.14.10-1~deb12u1, automatic)
Upgrade: libc6:amd64 (2.36-9+deb12u9, 2.36-9+deb12u10)
End-Date: 2026-11-20  06:03:45

Start-Date: 2026-11-20  07:00:00
Commandline: apt-get purge nano
Purge: nano:amd64 (7.2-1)
End-Date: 2026-11-20  07:00:01
"""


def test_apt_history() -> None:
    assert packages.from_apt_history(APT, tz=UTC) == [
        PackageChange(
            time=t("2026-11-20T06:03:40+00:00"),
            action="install",
            name="dbus",
            version="1.14.10-1~deb12u1",
        ),
        PackageChange(
            time=t("2026-11-20T06:03:40+00:00"),
            action="install",
            name="libdbus-1-3",
            version="1.14.10-1~deb12u1",
        ),
        PackageChange(
            time=t("2026-11-20T06:03:40+00:00"),
            action="upgrade",
            name="libc6",
            version="2.36-9+deb12u10",
        ),
        PackageChange(
            time=t("2026-11-20T07:00:00+00:00"), action="remove", name="nano", version="7.2-1"
        ),
    ]
    with pytest.raises(ParseError, match="before any Start-Date"):
        packages.from_apt_history("Install: x:amd64 (1)\n")


YUM = """\
Dec 31 23:59:00 Installed: httpd-2.4.6-97.el7.centos.x86_64
Jan 01 00:01:00 Updated: 1:openssl-1.0.2k-25.el7_9.x86_64
Jan  1 00:02:00 Erased: nano
"""


def test_yum_log_year_is_inferred_across_new_year() -> None:
    now = t("2026-01-01T08:00:00+00:00")
    assert packages.from_yum_log(YUM, now, tz=UTC) == [
        PackageChange(
            time=t("2025-12-31T23:59:00+00:00"),
            action="install",
            name="httpd",
            version="2.4.6-97.el7.centos",
        ),
        PackageChange(
            time=t("2026-01-01T00:01:00+00:00"),
            action="upgrade",
            name="openssl",
            version="1:1.0.2k-25.el7_9",
        ),
        PackageChange(
            time=t("2026-01-01T00:02:00+00:00"), action="remove", name="nano", version=""
        ),
    ]
    with pytest.raises(ParseError, match=r"yum\.log: line 1"):
        packages.from_yum_log("2026-01-01 not yum\n", now)


DNF = """\
2026-11-20T06:03:40+0800 INFO --- logging initialized ---
2026-11-20T06:03:41+0800 SUBDEBUG Installed: vim-enhanced-2:8.2.2637-20.el9_1.x86_64
2026-11-20T06:03:42+0800 SUBDEBUG Upgrade: bash-5.1.8-6.el9_1.x86_64
2026-11-20T06:03:42+0800 SUBDEBUG Upgraded: bash-5.1.8-5.el9.x86_64
2026-11-20T06:03:43+0800 SUBDEBUG Erase: nano-5.6.1-5.el9.x86_64
2026-11-19T22:03:44Z SUBDEBUG Upgraded: kernel-core-5.14.0-70.el9.x86_64
"""


def test_dnf_rpm_log() -> None:
    assert packages.from_dnf_rpm_log(DNF) == [
        PackageChange(
            time=t("2026-11-20T06:03:41+08:00"),
            action="install",
            name="vim-enhanced",
            version="2:8.2.2637-20.el9_1",
        ),
        PackageChange(
            time=t("2026-11-20T06:03:42+08:00"),
            action="upgrade",
            name="bash",
            version="5.1.8-6.el9_1",
        ),
        PackageChange(
            time=t("2026-11-20T06:03:43+08:00"), action="remove", name="nano", version="5.6.1-5.el9"
        ),
        PackageChange(
            time=t("2026-11-19T22:03:44+00:00"),
            action="upgrade",
            name="kernel-core",
            version="5.14.0-70.el9",
        ),
    ]


def test_in_window_sorts_and_filters() -> None:
    changes = packages.from_dnf_rpm_log(DNF)
    window: Tuple[datetime, datetime] = (
        t("2026-11-19T22:03:42+00:00"),
        t("2026-11-19T22:03:44+00:00"),
    )
    assert [c.name for c in packages.in_window(changes, *window)] == ["bash", "nano", "kernel-core"]
