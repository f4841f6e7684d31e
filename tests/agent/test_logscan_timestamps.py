"""Timestamp and header parsing for every log format the scan reads (table-driven)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Optional

import pytest

from agent.logscan.header import split_header
from agent.logscan.timestamps import infer_year, parse_timestamp

UTC = timezone.utc
CST = timezone(timedelta(hours=8))
REF = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "line, expected, head",
    [
        # RFC 3164: year from the reference time, zone from tz
        (
            "Jun 14 15:16:01 combo sshd[1]: x",
            datetime(2026, 6, 14, 15, 16, 1, tzinfo=CST),
            "Jun 14 15:16:01",
        ),
        ("Jun  4 05:06:07 h p: x", datetime(2026, 6, 4, 5, 6, 7, tzinfo=CST), "Jun  4 05:06:07"),
        (
            "<13>Nov 21 11:00:00 h p: x",
            datetime(2026, 11, 21, 11, 0, tzinfo=CST),
            "<13>Nov 21 11:00:00",
        ),
        (
            "Nov 22 11:00:00 h p: x",
            datetime(2026, 11, 22, 11, 0, tzinfo=CST),
            "Nov 22 11:00:00",
        ),  # skew
        (
            "Dec 31 23:59:59 h p: x",
            datetime(2025, 12, 31, 23, 59, 59, tzinfo=CST),
            "Dec 31 23:59:59",
        ),
        (
            "Jun 14 15:16:01.123456 h p: x",
            datetime(2026, 6, 14, 15, 16, 1, 123456, tzinfo=CST),
            None,
        ),
        # RFC 5424
        (
            "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - msg",
            datetime(2003, 10, 11, 22, 14, 15, 3000, tzinfo=UTC),
            "<34>1 2003-10-11T22:14:15.003Z",
        ),
        # ISO 8601 with and without zone
        (
            "2026-11-20T08:00:01+08:00 host kernel: x",
            datetime(2026, 11, 20, 0, 0, 1, tzinfo=UTC),
            None,
        ),
        ("2026-11-20T00:00:01.5Z x", datetime(2026, 11, 20, 0, 0, 1, 500000, tzinfo=UTC), None),
        ("2026-11-20T08:00:01+0800 x", datetime(2026, 11, 20, 0, 0, 1, tzinfo=UTC), None),
        ("2026-11-20T08:00:01 x", datetime(2026, 11, 20, 8, 0, 1, tzinfo=CST), None),
        # log4j / logback and Python logging (comma before the milliseconds)
        (
            "2026-11-20 08:00:01,123 ERROR [main] a.B - x",
            datetime(2026, 11, 20, 8, 0, 1, 123000, tzinfo=CST),
            None,
        ),
        (
            "[2026-11-20 08:00:01,123] ERROR x",
            datetime(2026, 11, 20, 8, 0, 1, 123000, tzinfo=CST),
            None,
        ),
        # nginx error log
        (
            "2026/11/20 08:00:01 [error] 12#0: *5 x",
            datetime(2026, 11, 20, 8, 0, 1, tzinfo=CST),
            None,
        ),
        # Apache error log, 2.2 and 2.4 (microseconds)
        (
            "[Sun Dec 04 04:47:44 2005] [error] x",
            datetime(2005, 12, 4, 4, 47, 44, tzinfo=CST),
            None,
        ),
        (
            "[Fri Sep 09 10:42:29.902022 2011] [core:error] [pid 1:tid 2] x",
            datetime(2011, 9, 9, 10, 42, 29, 902022, tzinfo=CST),
            "[Fri Sep 09 10:42:29.902022 2011]",
        ),
    ],
)
def test_formats(line: str, expected: datetime, head: Optional[str]) -> None:
    stamp = parse_timestamp(line, REF, CST)
    assert stamp is not None
    assert stamp.time == expected
    assert stamp.time.tzinfo is not None
    if head is not None:
        assert line[: stamp.end] == head


@pytest.mark.parametrize(
    "line",
    [
        "\tat com.example.App.run(App.java:10)",
        "Traceback (most recent call last):",
        "Feb 30 10:00:00 h p: impossible date",
        "2026-13-01 10:00:00 month 13",
        "Jun 14 25:00:00 h p: hour 25",
        "",
        "\x00\x01\xff garbage",
        "Jun 1415:16:01 glued",
    ],
)
def test_not_a_timestamp(line: str) -> None:
    assert parse_timestamp(line, REF, CST) is None


@pytest.mark.parametrize(
    "month, day, ref, year",
    [
        (12, 31, datetime(2027, 1, 2, tzinfo=UTC), 2026),  # a December line read in January
        (1, 1, datetime(2027, 1, 2, tzinfo=UTC), 2027),
        (1, 3, datetime(2027, 1, 2, tzinfo=UTC), 2027),  # a day of clock skew
        (1, 4, datetime(2027, 1, 2, tzinfo=UTC), 2026),
        (6, 14, datetime(2026, 11, 21, tzinfo=UTC), 2026),
        (2, 29, datetime(2027, 3, 1, tzinfo=UTC), 2024),  # the latest leap year
        (2, 29, datetime(2028, 3, 1, tzinfo=UTC), 2028),
    ],
)
def test_year_inference(month: int, day: int, ref: datetime, year: int) -> None:
    assert infer_year(month, day, ref) == year


def test_new_year_through_the_parser() -> None:
    january = datetime(2027, 1, 1, 0, 5, tzinfo=UTC)
    late = parse_timestamp("Dec 31 23:59:58 h p: x", january, UTC)
    early = parse_timestamp("Jan  1 00:00:02 h p: x", january, UTC)
    assert late is not None and early is not None
    assert late.time == datetime(2026, 12, 31, 23, 59, 58, tzinfo=UTC)
    assert early.time - late.time == timedelta(seconds=4)


def test_naive_times_default_to_the_host_zone() -> None:
    stamp = parse_timestamp("2026-07-01 12:00:00 x", REF)
    assert stamp is not None
    assert stamp.time == datetime(2026, 7, 1, 12, 0).astimezone()


@pytest.mark.parametrize(
    "line, program, pid, level, message",
    [
        (
            "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; rhost=1.2.3.4",
            "sshd(pam_unix)",
            "19939",
            None,
            "authentication failure; rhost=1.2.3.4",
        ),
        ("Jul 27 14:41:57 combo syslogd 1.4.1: restart.", "syslogd 1.4.1", None, None, "restart."),
        (
            "Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user x",
            "sshd",
            "24200",
            None,
            "Invalid user x",
        ),
        (
            "Jun 14 15:16:01 h kernel: [ 12.345678] EXT4-fs error",
            "kernel",
            None,
            None,
            "EXT4-fs error",
        ),
        ("Jun 14 15:16:01 h postfix/smtpd[7]: connect", "postfix/smtpd", "7", None, "connect"),
        ("2026-11-20T08:00:01.1+08:00 h01 cron[5]: run", "cron", "5", None, "run"),
        (
            "<34>1 2003-10-11T22:14:15.003Z host su 77 ID47 - 'su root' failed",
            "su",
            "77",
            None,
            "'su root' failed",
        ),
        ('<34>1 2003-10-11T22:14:15Z h app - - [x@1 a="\\]"][y@2] msg', "app", None, None, "msg"),
        (
            "2026-11-20 08:00:01,123 ERROR [main] c.e.App - boom",
            None,
            None,
            "ERROR",
            "[main] c.e.App - boom",
        ),
        ("2026-11-20 08:00:01,123 - app.db - WARNING - slow", None, None, "WARNING", "slow"),
        (
            "2026/11/20 08:00:01 [error] 1234#0: *5 open() failed",
            None,
            None,
            "error",
            "open() failed",
        ),
        (
            "[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok",
            None,
            None,
            "notice",
            "workerEnv.init() ok",
        ),
        (
            "[Fri Sep 09 10:42:29.902022 2011] [core:error] [pid 35708:tid 4328] [client 1.2.3.4] gone",
            None,
            None,
            "error",
            "[client 1.2.3.4] gone",
        ),
        (
            "    at com.example.App.run(App.java:10)",
            None,
            None,
            None,
            "at com.example.App.run(App.java:10)",
        ),
    ],
)
def test_header_stripping(
    line: str, program: Optional[str], pid: Optional[str], level: Optional[str], message: str
) -> None:
    header = split_header(line, REF, CST)
    assert (header.program, header.pid, header.level, header.message) == (
        program,
        pid,
        level,
        message,
    )
