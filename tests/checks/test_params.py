"""Threshold layering: defaults → config/contract → host → item, each value with its provenance."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from checks.evaluate import evaluate
from checks.facts import CpuFacts, FactSet
from checks.model import Severity, worst
from checks.params import Layer, ParamsError, Resolver
from checks.rules.cpu import CpuUsageParams, LoadParams
from checks.text import render

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)


def facts(usage: float, load5: float = 1.0, cores: int = 2) -> FactSet:
    return FactSet(
        collected_at=NOW,
        cpu=CpuFacts(
            usage_percent=usage, logical_cores=cores, load1=load5, load5=load5, load15=load5
        ),
    )


def by_check(results, check):  # type: ignore[no-untyped-def]
    return [r for r in results if r.check == check]


@pytest.mark.parametrize(
    ("usage", "layers", "severity", "provenance"),
    [
        (50.0, [], Severity.ok, "default"),
        (85.0, [], Severity.warning, "default"),  # reaching the limit counts
        (96.0, [], Severity.critical, "default"),
        (
            70.0,
            [Layer(name="contract:HT-1", checks={"cpu.usage": {"warning": 60}})],
            Severity.warning,
            "contract:HT-1",
        ),
        (
            70.0,
            [
                Layer(name="contract:HT-1", checks={"cpu.usage": {"warning": 60}}),
                Layer(name="host:db01", checks={"cpu.usage": {"warning": 75, "critical": 80}}),
            ],
            Severity.ok,
            "host:db01",
        ),
        (
            99.0,
            [Layer(name="config:x.toml", checks={"cpu.usage": {"critical": 99.5}})],
            Severity.warning,
            "config:x.toml",
        ),
    ],
)
def test_layering(usage, layers, severity, provenance):  # type: ignore[no-untyped-def]
    (result,) = by_check(evaluate(facts(usage), Resolver(layers)), "cpu.usage")
    assert result.severity == severity
    assert result.threshold is not None
    assert result.threshold.provenance == provenance


def test_item_override_wins_within_its_layer() -> None:
    layer = Layer(
        name="contract:HT-1",
        checks={"disk.usage": {"warning": 70, "items": {"/data": {"warning": 95}}}},
    )
    resolver = Resolver([layer])
    from checks.catalog import BY_ID

    model = BY_ID["disk.usage"].params
    data = resolver.resolve("disk.usage", model, "/data")
    other = resolver.resolve("disk.usage", model, "/var")
    assert data.params.warning == 95 and data.provenance["warning"] == "contract:HT-1[/data]"
    assert other.params.warning == 70 and other.provenance["warning"] == "contract:HT-1"


def test_bad_override_names_layer_and_field() -> None:
    resolver = Resolver([Layer(name="contract:HT-9", checks={"cpu.usage": {"warning": "lots"}})])
    with pytest.raises(
        ParamsError, match=r"thresholds\.cpu\.usage\.warning \(from contract:HT-9\)"
    ):
        resolver.resolve("cpu.usage", CpuUsageParams)
    problems = Resolver([Layer(name="config:a.toml", checks={"cpu.usge": {}})]).validate(
        {"cpu.usage": CpuUsageParams, "load.per_core": LoadParams}
    )
    assert problems == ["config:a.toml: thresholds.cpu.usge: unknown check id"]


def test_disabled_check_produces_nothing() -> None:
    resolver = Resolver([Layer(name="config", checks={"cpu.usage": {"enabled": False}})])
    assert by_check(evaluate(facts(99.0), resolver), "cpu.usage") == []


def test_missing_section_is_unknown_with_reason_never_ok() -> None:
    results = evaluate(FactSet(collected_at=NOW, errors={"cpu": "permission denied: /proc/stat"}))
    cpu = by_check(results, "cpu.usage")
    assert [r.severity for r in cpu] == [Severity.unknown]
    (zh,) = render(cpu, "zh_CN")
    (en,) = render(cpu, "en")
    assert zh.summary == "无法检查：permission denied: /proc/stat"
    assert en.summary == "Could not check: permission denied: /proc/stat"


@pytest.mark.parametrize(
    ("severities", "expected", "code"),
    [
        ([], Severity.ok, 0),
        ([Severity.ok, Severity.info], Severity.info, 0),
        ([Severity.ok, Severity.unknown], Severity.unknown, 3),
        ([Severity.unknown, Severity.warning], Severity.warning, 1),
        ([Severity.warning, Severity.critical, Severity.unknown], Severity.critical, 2),
    ],
)
def test_worst_and_exit_codes(severities, expected, code):  # type: ignore[no-untyped-def]
    assert worst(severities) == expected
    assert worst(severities).exit_code == code


def test_provenance_names_the_most_specific_layer_whatever_the_field_order() -> None:
    layers = [
        Layer(name="contract:HT-1", checks={"cpu.usage": {"critical": 97}}),
        Layer(name="host:db01", checks={"cpu.usage": {"warning": 70}}),
    ]
    resolved = Resolver(layers).resolve("cpu.usage", CpuUsageParams)
    assert resolved.source_of("warning", "critical") == "host:db01"
    assert resolved.source_of("critical", "warning") == "host:db01"
    assert resolved.source_of("critical") == "contract:HT-1"
    assert resolved.source_of("enabled") == "default"
