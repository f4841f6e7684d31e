"""Log-based rules (logs.alarms, errors.kernel, errors.app, history.logins): exact findings for
default and overridden parameters, table-driven."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Optional, Tuple

import pytest

from checks.catalog import BY_ID
from checks.evaluate import evaluate
from checks.facts import FactSet, LogFacts, LogSourceFacts, LogTemplate
from checks.model import Severity
from checks.params import Layer, Resolver
from checks.rules.logins import max_in_window
from checks.text import LANGS, render

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)
CFG = "config:test.toml"
CHECKS = [BY_ID[c] for c in ("logs.alarms", "errors.kernel", "errors.app", "history.logins")]
ok, info, warning, critical, unknown = (
    Severity.ok,
    Severity.info,
    Severity.warning,
    Severity.critical,
    Severity.unknown,
)
# (check, item, severity, value, message key, threshold provenance or None)
Expect = Tuple[str, Optional[str], Severity, Any, str, Optional[str]]


def tpl(
    rule: str,
    family: str,
    severity: str,
    count: int,
    text: str = "x <NUM>",
    source: str = "/var/log/messages",
) -> LogTemplate:
    return LogTemplate(
        rule=rule,
        family=family,
        severity=severity,
        template_id=f"id-{rule}-{count}",
        template=text,
        source=source,
        count=count,
        first_seen=NOW - timedelta(hours=2),
        last_seen=NOW - timedelta(hours=1),
        samples=[f"sample of {rule}"],
    )


READ = LogSourceFacts(source="/var/log/messages", lines_read=100, lines_in_window=80)
DENIED = LogSourceFacts(source="/var/log/secure", error="permission denied: /var/log/secure")
QUIET: List[Expect] = [
    ("logs.alarms", None, ok, 0, "logs.alarms.ok", None),
    ("errors.kernel", None, ok, 0, "errors.kernel.ok", None),
    ("errors.app", None, ok, 0, "errors.app.ok", None),
    ("history.logins", None, ok, 0, "history.logins.ok", "default"),
]
TEMPLATES = [
    tpl("alarm.error", "alarm", "warning", 3),
    tpl("alarm.timeout", "alarm", "info", 1),
    tpl("alarm.critical", "alarm", "critical", 2),
    tpl("kernel.oom", "kernel", "critical", 2),
    tpl("kernel.oom", "kernel", "critical", 1, "other"),
    tpl("kernel.segfault", "kernel", "warning", 1),
    tpl("kernel.site_rule", "kernel", "info", 4),
    tpl("app.error", "app", "warning", 7),
    tpl("login.ssh_failed", "login.failed", "info", 40),
]


def minutes(counts: Dict[int, int]) -> Dict[str, int]:
    return {(NOW + timedelta(minutes=m)).strftime("%Y-%m-%dT%H:%MZ"): n for m, n in counts.items()}


@dataclass
class Case:
    name: str
    logs: Optional[LogFacts]
    expect: List[Expect]
    overrides: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    errors: Dict[str, str] = field(default_factory=dict)


CASES = [
    Case(
        "not gathered",
        None,
        [(c.id, None, unknown, None, "common.unknown", None) for c in CHECKS],
        errors={"logs": "log scan failed: boom"},
    ),
    Case(
        "nothing readable",
        LogFacts(sources=[DENIED]),
        [(c.id, None, unknown, None, "common.unknown", None) for c in CHECKS],
    ),
    Case(
        "no sources",
        LogFacts(),
        [(c.id, None, unknown, None, "common.unknown", None) for c in CHECKS],
    ),
    Case("quiet host", LogFacts(sources=[READ]), QUIET),
    Case(
        "one source unreadable, one truncated",
        LogFacts(
            sources=[
                READ,
                DENIED,
                LogSourceFacts(source="/opt/app.log", truncated=True, bytes_read=9),
            ]
        ),
        [
            ("logs.alarms", None, ok, 0, "logs.alarms.ok", None),
            ("logs.alarms", "/var/log/secure", unknown, None, "common.unknown", None),
            ("logs.alarms", "/opt/app.log", info, 9, "logs.alarms.truncated", None),
            *QUIET[1:],
        ],
    ),
    Case(
        "templates, defaults",
        LogFacts(
            sources=[READ],
            templates=TEMPLATES,
            successful_logins=2,
            failed_login_minutes=minutes({0: 10, 5: 11, 30: 3}),
        ),
        [
            (
                "logs.alarms",
                "alarm.error:id-alarm.error-3",
                warning,
                3,
                "logs.alarms.match",
                "default",
            ),
            (
                "logs.alarms",
                "alarm.timeout:id-alarm.timeout-1",
                info,
                1,
                "logs.alarms.match",
                "default",
            ),
            (
                "logs.alarms",
                "alarm.critical:id-alarm.critical-2",
                critical,
                2,
                "logs.alarms.match",
                "default",
            ),
            ("errors.kernel", "kernel.oom", critical, 3, "errors.kernel.oom", None),
            ("errors.kernel", "kernel.segfault", warning, 1, "errors.kernel.segfault", None),
            ("errors.kernel", "kernel.site_rule", info, 4, "errors.kernel.other", None),
            ("errors.app", "app.error:id-app.error-7", warning, 7, "errors.app.match", "default"),
            ("history.logins", None, warning, 21, "history.logins.bad", "default"),
            ("history.logins", "successful", info, 2, "history.logins.success", None),
        ],
    ),
    Case(
        "templates, overridden",
        LogFacts(
            sources=[READ], templates=TEMPLATES, failed_login_minutes=minutes({0: 10, 5: 11, 30: 3})
        ),
        [
            (
                "logs.alarms",
                "alarm.timeout:id-alarm.timeout-1",
                info,
                1,
                "logs.alarms.match",
                "default",
            ),
            (
                "logs.alarms",
                "alarm.critical:id-alarm.critical-2",
                critical,
                2,
                "logs.alarms.match",
                CFG,
            ),
            ("errors.kernel", "kernel.oom", critical, 3, "errors.kernel.oom", None),
            ("errors.kernel", "kernel.site_rule", info, 4, "errors.kernel.other", None),
            ("errors.app", None, ok, 0, "errors.app.ok", None),
            ("history.logins", None, ok, 11, "history.logins.ok", CFG),
        ],
        overrides={
            "logs.alarms": {"min_count_warning": 5, "min_count_critical": 2},
            "errors.kernel": {"min_count": 2, "ignore": ["kernel.segfault"]},
            "errors.app": {"ignore": ["app.error"]},
            "history.logins": {"window_minutes": 5, "warning": 15, "critical": 50},
        },
    ),
    Case(
        "login burst critical",
        LogFacts(
            sources=[READ],
            failed_login_minutes=minutes({0: 60, 9: 60}),
            failed_login_sources={"10.0.0.9": 100, "10.0.0.8": 20},
        ),
        [*QUIET[:3], ("history.logins", None, critical, 120, "history.logins.bad", "default")],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rules(case: Case) -> None:
    facts = FactSet(collected_at=NOW, logs=case.logs, errors=case.errors)
    resolver = Resolver([Layer(name=CFG, checks=case.overrides)])
    results = evaluate(facts, resolver, CHECKS)
    got = [
        (
            r.check,
            r.item,
            r.severity,
            r.value,
            r.message.key,
            r.threshold.provenance if r.threshold else None,
        )
        for r in results
    ]
    assert got == case.expect
    for lang in LANGS:
        for r in render(results, lang):
            assert r.summary and "{" not in r.summary, (lang, r.summary)
            assert r.recommendation is None or "{" not in r.recommendation


def test_evidence_and_reasons() -> None:
    facts = FactSet(
        collected_at=NOW,
        logs=LogFacts(
            sources=[READ],
            templates=[
                tpl("kernel.oom", "kernel", "critical", 2),
                tpl("app.error", "app", "warning", 1),
            ],
            failed_login_minutes=minutes({0: 30}),
            failed_login_sources={"10.0.0.9": 20, "10.0.0.8": 10},
        ),
    )
    results = {r.check: r for r in evaluate(facts, Resolver(), CHECKS)}
    assert results["errors.kernel"].evidence == ["sample of kernel.oom"]
    assert results["errors.kernel"].recommendation_key == "errors.kernel.advice.oom"
    assert results["errors.app"].evidence == ["sample of app.error"]
    assert results["history.logins"].evidence == ["10.0.0.9: 20", "10.0.0.8: 10"]
    denied = FactSet(collected_at=NOW, logs=LogFacts(sources=[DENIED]))
    result = evaluate(denied, Resolver(), CHECKS)[0]
    assert result.message.params["reason"] == "permission denied: /var/log/secure"
    assert BY_ID["errors.kernel"].service_affecting


@pytest.mark.parametrize(
    "counts, window, expected",
    [
        ({}, 10, 0),
        ({0: 5}, 10, 5),
        ({0: 5, 9: 5}, 10, 10),
        ({0: 5, 10: 5}, 10, 5),
        ({0: 1, 1: 1, 2: 1, 30: 2}, 3, 3),
    ],
)
def test_sliding_window(counts: Dict[int, int], window: int, expected: int) -> None:
    per_minute = sorted((NOW + timedelta(minutes=m), n) for m, n in counts.items())
    assert max_in_window(per_minute, window) == expected
