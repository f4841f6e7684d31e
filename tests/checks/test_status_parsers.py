"""Parsers of time-sync and systemd output, on samples in each tool's real format."""

from __future__ import annotations

import pytest

from checks.facts import TimeSyncFacts, UnitState
from checks.parsers import ParseError
from checks.parsers.systemd import parse_list_units
from checks.parsers.timesync import (
    merge_time_sync,
    parse_chronyc_tracking,
    parse_ntpq_peers,
    parse_timedatectl_show,
)

TIMEDATECTL = """Timezone=Asia/Shanghai
LocalRTC=no
CanNTP=yes
NTP=yes
NTPSynchronized={state}
TimeUSec=Thu 2026-11-19 10:00:00 CST
RTCTimeUSec=Thu 2026-11-19 02:00:00 CST
"""
CHRONY_SYNCED = (
    "C0A80101,192.168.1.1,3,1776153600.123456,-0.000123000,0.000045,0.000067,"
    "12.345,0.010,0.250,0.001200,0.004500,64.0,Normal\n"
)
CHRONY_UNSYNCED = (
    "00000000,,0,0.000000000,0.000000000,0.000000000,0.000000000,"
    "0.000,0.000,0.000,0.000000000,0.000000000,0.0,Not synchronised\n"
)
NTPQ = """     remote           refid      st t when poll reach   delay   offset  jitter
==============================================================================
{mark}192.168.1.10    .GPS.            1 u   33   64  377    0.512   -12.500   0.045
+10.0.0.2        192.168.1.10     2 u   12   64  377    1.234    0.456   0.078
"""
UNITS = """cron.service                     loaded    active   running Regular background program
● nginx.service                  loaded    failed   failed  A high performance web server
ntp.service                      not-found inactive dead    ntp.service
"""


def test_timedatectl() -> None:
    assert parse_timedatectl_show(TIMEDATECTL.format(state="yes")) == TimeSyncFacts(
        tool="timedatectl", synchronized=True
    )
    assert parse_timedatectl_show(TIMEDATECTL.format(state="no")).synchronized is False
    with pytest.raises(ParseError, match="no NTPSynchronized"):
        parse_timedatectl_show("Timezone=UTC\n")


def test_chronyc() -> None:
    synced = parse_chronyc_tracking(CHRONY_SYNCED)
    assert (synced.tool, synced.synchronized, synced.offset_seconds, synced.ntp_service) == (
        "chronyc",
        True,
        -0.000123,
        "chronyd",
    )
    unsynced = parse_chronyc_tracking(CHRONY_UNSYNCED)
    assert (unsynced.synchronized, unsynced.offset_seconds) == (False, None)
    with pytest.raises(ParseError, match="expected 14 fields, got 3"):
        parse_chronyc_tracking("a,b,c\n")
    with pytest.raises(ParseError, match="expected one CSV line, got 0"):
        parse_chronyc_tracking("")
    with pytest.raises(ParseError, match="'x' is not a number"):
        parse_chronyc_tracking(CHRONY_SYNCED.replace("-0.000123000", "x"))


def test_ntpq() -> None:
    peer = parse_ntpq_peers(NTPQ.format(mark="*"))
    assert (peer.synchronized, peer.offset_seconds) == (True, -0.0125)
    pps = parse_ntpq_peers(NTPQ.format(mark="o"))
    assert pps.synchronized is True
    none = parse_ntpq_peers(NTPQ.format(mark=" "))
    assert (none.synchronized, none.offset_seconds) == (False, None)
    with pytest.raises(ParseError, match="no peer table header"):
        parse_ntpq_peers("ntpq: read: Connection refused\n")


def test_merge_takes_state_from_the_first_and_offset_from_any() -> None:
    merged = merge_time_sync(
        [
            parse_timedatectl_show(TIMEDATECTL.format(state="yes")),
            parse_chronyc_tracking(CHRONY_SYNCED),
        ],
        [],
    )
    assert merged == TimeSyncFacts(
        tool="timedatectl", synchronized=True, offset_seconds=-0.000123, ntp_service="chronyd"
    )
    nothing = merge_time_sync([], ["chronyc: not installed", "ntpq: not installed"])
    assert nothing == TimeSyncFacts(
        tool="none", error="chronyc: not installed; ntpq: not installed"
    )


def test_systemd_units() -> None:
    assert parse_list_units(UNITS) == [
        UnitState(name="cron.service", active="active", sub="running"),
        UnitState(name="nginx.service", active="failed", sub="failed"),
        UnitState(name="ntp.service", active="inactive", sub="dead"),
    ]
    assert parse_list_units("\n") == []
    with pytest.raises(ParseError, match="unexpected line 2"):
        parse_list_units("cron.service loaded active running Cron\nFailed to connect to bus\n")
