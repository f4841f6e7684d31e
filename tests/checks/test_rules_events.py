"""Fault/error and history rules: exact findings for default and overridden thresholds."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from typing import List, Tuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytest
from pydantic import TypeAdapter

from checks.catalog import BY_ID
from checks.evaluate import evaluate
from checks.facts import (
    Coredump,
    CpuFacts,
    DiskTrend,
    FactSet,
    HistoryFacts,
    MetricSummary,
    PackageChange,
    RebootEvent,
    ServiceEvent,
)
from checks.model import Category, CheckResult
from checks.params import Layer, Resolver
from checks.rules import history as history_rules
from checks.text import LANGS, render
from tests.checks.rule_table import (
    CFG,
    NOW,
    Case,
    GiB,
    critical,
    info,
    ok,
    unknown,
    warning,
)


def at(hours_ago: float) -> datetime:
    return NOW - timedelta(hours=hours_ago)


def metric(name: str, p95: float, unit: str = "%") -> MetricSummary:
    return MetricSummary(
        metric=name,
        unit=unit,
        samples=1440,
        min=1.0,
        avg=p95 / 2,
        p95=p95,
        max=p95 + 1,
        max_at=at(3),
    )


def history(*metrics: MetricSummary, trends: Tuple[DiskTrend, ...] = ()) -> HistoryFacts:
    return HistoryFacts(
        source="agent", start=at(24), end=NOW, metrics=list(metrics), disk_trends=list(trends)
    )


CPU4 = CpuFacts(usage_percent=10, logical_cores=4, load1=1, load5=1, load15=1)
NGINX_CORE = Coredump(
    time=at(5), exe="/usr/sbin/nginx", pid=1234, signal="SIGSEGV", path="/var/crash/c1"
)
FAILED = ServiceEvent(
    unit="app.service", kind="failed", count=2, last_seen=at(2), sample="exited 1"
)
RESTARTS = ServiceEvent(
    unit="app.service", kind="restarted", count=12, last_seen=at(1), sample="restart 12"
)
FLAPPY = ServiceEvent(
    unit="cron.service", kind="restarted", count=2, last_seen=at(1), sample="restart 2"
)

CASES = [
    # ---- errors.coredumps
    Case(
        "cores unknown",
        "errors.coredumps",
        {"errors": {"coredumps": "no journal"}},
        [(None, unknown, None, "", None)],
    ),
    Case("no cores", "errors.coredumps", {"coredumps": []}, [(None, ok, 0, "none", None)]),
    Case(
        "cores grouped per program",
        "errors.coredumps",
        {
            "coredumps": [
                NGINX_CORE,
                NGINX_CORE.model_copy(update={"time": at(1), "pid": 1300}),
                Coredump(time=at(2), exe="/opt/app/bin/worker", signal="SIGABRT"),
            ]
        },
        [
            ("/opt/app/bin/worker", warning, 1, "bad", "default"),
            ("/usr/sbin/nginx", warning, 2, "bad", "default"),
        ],
    ),
    Case(
        "core threshold and ignore from config",
        "errors.coredumps",
        {"coredumps": [NGINX_CORE, Coredump(time=at(2), exe="/usr/bin/python3")]},
        [("/usr/sbin/nginx", critical, 1, "bad", CFG)],
        {"errors.coredumps": {"critical": 1, "ignore": ["/usr/bin/python*"]}},
    ),
    # ---- errors.services
    Case("events unknown", "errors.services", {}, [(None, unknown, None, "", None)]),
    Case("no events", "errors.services", {"service_events": []}, [(None, ok, 0, "none", None)]),
    Case(
        "failures and flapping",
        "errors.services",
        {"service_events": [FAILED, RESTARTS, FLAPPY]},
        [("app.service", critical, 2, "bad", "default"), ("cron.service", ok, 0, "ok", "default")],
    ),
    Case(
        "restart limit per unit from config",
        "errors.services",
        {"service_events": [FLAPPY, FAILED]},
        [
            ("app.service", warning, 2, "bad", "default"),
            ("cron.service", warning, 0, "bad", f"{CFG}[cron.service]"),
        ],
        {"errors.services": {"items": {"cron.service": {"restarts_warning": 2}}}},
    ),
    Case(
        "ignored unit",
        "errors.services",
        {"service_events": [FLAPPY, FAILED]},
        [("cron.service", ok, 0, "ok", "default")],
        {"errors.services": {"ignore": ["app*"]}},
    ),
    # ---- history.metrics
    Case(
        "history unknown",
        "history.metrics",
        {"errors": {"history": "no sysstat data"}},
        [(None, unknown, None, "", None)],
    ),
    Case(
        "p95 judged per metric",
        "history.metrics",
        {
            "cpu": CPU4,
            "history": history(
                metric("cpu", 90.0),
                metric("memory", 40.0),
                metric("swap", 85.0),
                metric("load5", 8.0, ""),
                metric("disk:/data", 86.0),
                metric("net_rx", 1e6, "B/s"),
            ),
        },
        [
            ("cpu", warning, 90.0, "cpu.bad", "default"),
            ("memory", ok, 40.0, "memory.ok", "default"),
            ("swap", critical, 85.0, "swap.bad", "default"),
            ("load5", warning, 2.0, "load.bad", "default"),
            ("disk:/data", warning, 86.0, "disk.bad", "default"),
            ("net_rx", info, 1e6, "other", None),
        ],
    ),
    Case(
        "per-mount override and load without core count",
        "history.metrics",
        {
            "history": history(
                metric("disk:/data", 86.0), metric("disk:/", 86.0), metric("load1", 3.0, "")
            )
        },
        [
            ("disk:/data", ok, 86.0, "disk.ok", f"{CFG}[disk:/data]"),
            ("disk:/", warning, 86.0, "disk.bad", "default"),
            ("load1", unknown, None, "", None),
        ],
        {"history.metrics": {"items": {"disk:/data": {"disk_warning": 90}}}},
    ),
    Case(
        "empty history",
        "history.metrics",
        {"history": history()},
        [(None, unknown, None, "", None)],
    ),
    # ---- history.reboots
    Case("reboots unknown", "history.reboots", {}, [(None, unknown, None, "", None)]),
    Case("no reboot", "history.reboots", {"reboots": []}, [(None, ok, 0, "none", None)]),
    Case(
        "reboot and crash",
        "history.reboots",
        {
            "reboots": [
                RebootEvent(time=at(10), kind="shutdown"),
                RebootEvent(time=at(9.9), kind="reboot"),
                RebootEvent(time=at(3), kind="crash"),
            ]
        },
        [
            (at(9.9).isoformat(timespec="seconds"), warning, "reboot", "reboot", None),
            (at(3).isoformat(timespec="seconds"), critical, "crash", "crash", None),
        ],
    ),
    Case(
        "planned reboots are only info by config",
        "history.reboots",
        {"reboots": [RebootEvent(time=at(5), kind="reboot")]},
        [(at(5).isoformat(timespec="seconds"), info, "reboot", "reboot", None)],
        {"history.reboots": {"reboot": "info"}},
    ),
    # ---- history.packages
    Case("packages unknown", "history.packages", {}, [(None, unknown, None, "", None)]),
    Case("no package change", "history.packages", {"packages": []}, [(None, ok, 0, "none", None)]),
    Case(
        "package changes listed",
        "history.packages",
        {
            "packages": [
                PackageChange(time=at(2), action="upgrade", name="openssl", version="3.0.15-1"),
                PackageChange(time=at(3), action="install", name="tcpdump", version="4.99.3-1"),
                PackageChange(time=at(1), action="remove", name="telnet"),
            ]
        },
        [(None, info, 3, "changed", None)],
    ),
    Case(
        "change control makes package changes a warning",
        "history.packages",
        {
            "packages": [
                PackageChange(time=at(2), action="upgrade", name="openssl", version="3.0.15-1")
            ]
        },
        [(None, warning, 1, "changed", None)],
        {"history.packages": {"severity": "warning"}},
    ),
    # ---- disk.forecast
    Case("forecast unknown", "disk.forecast", {}, [(None, unknown, None, "", None)]),
    Case(
        "no disk history",
        "disk.forecast",
        {"history": history(metric("cpu", 1.0))},
        [(None, unknown, None, "", None)],
    ),
    Case(
        "days until full",
        "disk.forecast",
        {
            "history": history(
                trends=(
                    DiskTrend(
                        mount="/var",
                        growth_bytes_per_day=1 * GiB,
                        free_bytes=5 * GiB,
                        span_hours=24,
                    ),
                    DiskTrend(
                        mount="/data",
                        growth_bytes_per_day=1 * GiB,
                        free_bytes=20 * GiB,
                        span_hours=24,
                    ),
                    DiskTrend(
                        mount="/", growth_bytes_per_day=1 * GiB, free_bytes=100 * GiB, span_hours=24
                    ),
                    DiskTrend(
                        mount="/boot", growth_bytes_per_day=-5.0, free_bytes=GiB, span_hours=24
                    ),
                    DiskTrend(mount="/new", growth_bytes_per_day=GiB, free_bytes=GiB, span_hours=2),
                )
            )
        },
        [
            ("/", ok, 100.0, "ok", "default"),
            ("/boot", ok, None, "stable", "default"),
            ("/data", warning, 20.0, "bad", "default"),
            ("/new", info, None, "short", None),
            ("/var", critical, 5.0, "bad", "default"),
        ],
    ),
    Case(
        "forecast limits from config",
        "disk.forecast",
        {
            "history": history(
                trends=(
                    DiskTrend(
                        mount="/data", growth_bytes_per_day=GiB, free_bytes=20 * GiB, span_hours=3
                    ),
                )
            )
        },
        [("/data", critical, 20.0, "bad", CFG)],
        {"disk.forecast": {"critical": 21, "min_hours": 2}},
    ),
]


def run(case: Case) -> List[CheckResult]:
    facts = FactSet(collected_at=NOW, **case.facts)
    resolver = Resolver([Layer(name=CFG, checks=case.overrides)]) if case.overrides else Resolver()
    return evaluate(facts, resolver, [BY_ID[case.check]])


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rule(case: Case) -> None:
    results = run(case)
    got = [
        (
            r.item,
            r.severity,
            r.value,
            r.message.key[len(case.check) + 1 :] if r.severity is not unknown else "",
            r.threshold.provenance if r.threshold else None,
        )
        for r in results
    ]
    assert got == case.expect
    expected_category = Category.errors if case.check.startswith("errors.") else Category.history
    assert all(r.category is expected_category for r in results)
    for r in results:
        if r.severity is unknown:
            assert r.message.key == "common.unknown" and r.message.params["reason"]


def test_unknown_carries_the_recorded_reason() -> None:
    (r,) = run(Case("", "history.metrics", {"errors": {"history": "no sysstat data (x)"}}, []))
    assert r.message.params == {"reason": "no sysstat data (x)"}


def test_coredump_evidence_names_program_signal_and_file() -> None:
    (r,) = run(Case("", "errors.coredumps", {"coredumps": [NGINX_CORE]}, []))
    assert r.evidence == [
        f"{at(5).isoformat(timespec='seconds')} /usr/sbin/nginx pid 1234 SIGSEGV /var/crash/c1"
    ]
    assert r.message.params["signal"] == "SIGSEGV" and r.message.params["count"] == 1


def test_service_evidence_and_counts() -> None:
    (r,) = run(Case("", "errors.services", {"service_events": [FAILED, RESTARTS]}, []))
    assert r.evidence == ["failed ×2: exited 1", "restarted ×12: restart 12"]
    assert (r.message.params["failures"], r.message.params["restarts"]) == (2, 12)
    assert r.threshold is not None and (r.threshold.warning, r.threshold.critical) == (3, 10)


def test_package_evidence_is_sorted_and_capped() -> None:
    changes = [
        PackageChange(time=at(i), action="upgrade", name=f"pkg{i}", version="1.0") for i in range(5)
    ]
    case = Case(
        "", "history.packages", {"packages": changes}, [], {"history.packages": {"max_evidence": 2}}
    )
    (r,) = run(case)
    assert r.evidence == [
        f"{at(4).isoformat(timespec='seconds')} upgrade pkg4 1.0",
        f"{at(3).isoformat(timespec='seconds')} upgrade pkg3 1.0",
    ]
    assert (r.message.params["count"], r.message.params["shown"], r.message.params["upgraded"]) == (
        5,
        2,
        5,
    )


PARSED_CHANGES = TypeAdapter(List[PackageChange]).validate_json(
    json.dumps(
        [  # as a collector parses them: pydantic's TzInfo, mixed offsets, ties, microseconds
            {"time": "2026-11-20T09:00:00+08:00", "action": "upgrade", "name": "zlib"},
            {"time": "2026-11-20T01:00:00Z", "action": "install", "name": "bash", "version": "2"},
            {"time": "2026-11-19T20:00:00-05:00", "action": "remove", "name": "curl"},
            {"time": "2026-11-20T01:00:00Z", "action": "install", "name": "bash", "version": "1"},
            {"time": "2026-11-20T00:59:59.999999Z", "action": "upgrade", "name": "zsh"},
            {"time": "2026-11-20T00:59:59.5+00:00", "action": "upgrade", "name": "apt"},
        ]
    ),
    strict=True,
)


@pytest.mark.parametrize("in_core", [True, False], ids=["pydantic-core", "datetime"])
def test_package_changes_sort_by_instant_then_name_then_as_listed(
    in_core: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The order `sorted(key=lambda c: (c.time.timestamp(), c.name))` gives, whether the epoch
    seconds come from pydantic-core or (older pydantic, on agent hosts) from `timestamp()`."""
    if not in_core:  # else whichever the installed pydantic-core can give
        monkeypatch.setattr(history_rules, "_SECONDS", None)
    (r,) = run(Case("", "history.packages", {"packages": PARSED_CHANGES}, []))
    expected = sorted(PARSED_CHANGES, key=lambda c: (c.time.timestamp(), c.name))
    assert r.evidence == [
        " ".join(filter(None, (c.time.isoformat(timespec="seconds"), c.action, c.name, c.version)))
        for c in expected
    ]
    assert r.evidence[:3] == [
        "2026-11-20T00:59:59+00:00 upgrade apt",
        "2026-11-20T00:59:59+00:00 upgrade zsh",
        "2026-11-20T01:00:00+00:00 install bash 2",
    ]
    assert (r.message.params["first"], r.message.params["last"]) == (
        "2026-11-20T00:59:59+00:00",
        "2026-11-20T09:00:00+08:00",
    )


def test_package_times_from_pydantic_core_are_what_datetime_gives() -> None:
    """Epoch seconds of parsed times, across the calendar, offsets and fractions, wherever the
    installed pydantic-core gives them (see _seconds_adapter)."""
    if history_rules._SECONDS is None:
        pytest.skip("this pydantic-core cannot give the epoch seconds")
    rnd = random.Random(3)
    texts = []
    for _ in range(3000):
        at = datetime(rnd.randint(2, 9998), rnd.randint(1, 12), rnd.randint(1, 28))
        at += timedelta(seconds=rnd.randint(0, 86399), microseconds=rnd.choice([0, 500000, 1]))
        offset = rnd.choice([0, 0, 480, -330, rnd.randint(-1439, 1439)])
        sign = "-" if offset < 0 else "+"
        zone = "Z" if offset == 0 else f"{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"
        texts.append(at.isoformat() + zone)
    times = TypeAdapter(List[datetime]).validate_json(json.dumps(texts))
    assert history_rules._epoch_seconds(times) == [t.timestamp() for t in times]


def test_package_time_texts_are_each_times_own() -> None:
    """`_second_texts` formats each distinct time once: whatever shares its key must share its
    text — one instant at two offsets, one second with different microseconds, microseconds
    whose epoch seconds round together in year 9999, and a zone's skipped hour (02:30 that
    does not exist and 03:30 are one instant with two offsets)."""
    texts = [
        "2026-11-20T01:00:00Z",
        "2026-11-20T09:00:00+08:00",
        "2026-11-20T01:00:00Z",
        "2026-11-20T01:00:00.999999Z",
        "2026-11-20T01:00:00.000001Z",
        "9999-12-31T23:59:59.999998Z",
        "9999-12-31T23:59:59.999999Z",
        "9999-12-31T23:59:58.999999Z",
    ]
    times = TypeAdapter(List[datetime]).validate_json(json.dumps(texts))
    try:
        new_york = ZoneInfo("America/New_York")
    except ZoneInfoNotFoundError:  # no time zone database here: the fixed offsets still count
        new_york = None
    if new_york is not None:
        times += [datetime(2026, 3, 8, h, 30, tzinfo=new_york) for h in (2, 3)]
        assert times[-2].timestamp() == times[-1].timestamp()
    timed = [(t.timestamp(), t) for t in times]
    assert history_rules._second_texts(timed) == [history_rules._to_second(t) for t in times]
    rnd = random.Random(5)
    timed = []
    for _ in range(2000):
        t = datetime(rnd.choice([1, 2026, 9999]), rnd.randint(1, 12), rnd.randint(1, 28))
        t += timedelta(seconds=rnd.randint(0, 59), microseconds=rnd.choice([0, 1, 999999]))
        t = t.replace(tzinfo=timezone(timedelta(minutes=rnd.choice([0, 480, -330]))))
        timed.append((t.timestamp(), t))
    assert history_rules._second_texts(timed) == [history_rules._to_second(t) for _, t in timed]


def test_reboot_evidence_includes_the_shutdown_before_it() -> None:
    events = [RebootEvent(time=at(10), kind="shutdown"), RebootEvent(time=at(9.9), kind="reboot")]
    (r,) = run(Case("", "history.reboots", {"reboots": events}, []))
    assert r.evidence == [
        f"{at(10).isoformat(timespec='seconds')} shutdown",
        f"{at(9.9).isoformat(timespec='seconds')} reboot",
    ]


def test_load_history_is_per_core() -> None:
    (r,) = run(
        Case("", "history.metrics", {"cpu": CPU4, "history": history(metric("load1", 2.0, ""))}, [])
    )
    assert (r.severity, r.value, r.message.params["cores"], r.message.params["p95"]) == (
        ok,
        0.5,
        4,
        2.0,
    )


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_text_renders_in_both_languages(case: Case, lang: str) -> None:
    for r in render(run(case), lang):
        assert r.summary and "{" not in r.summary and not r.summary.startswith(case.check), (
            r.summary
        )
        if r.recommendation_key:
            assert (
                r.recommendation
                and "{" not in r.recommendation
                and r.recommendation != r.recommendation_key
            )
