"""The wire format refuses what the collector's columns cannot hold, in the parse itself."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import Any, List, Optional, Set, Type

import annotated_types
import pytest
from pydantic import AwareDatetime, BaseModel, ValidationError
from typing_extensions import Annotated, get_args, get_origin

from checks.bounds import INT64_MAX, INT64_MIN
from checks.facts import CpuFacts, FactSet, HostIdentity
from checks.model import InspectionRun, Source, Window
from checks.wire import EnrollRequest, EnrollResponse, Heartbeat, RunReceipt, SampleBatch

WIRE_MODELS = [InspectionRun, SampleBatch, Heartbeat, EnrollRequest, EnrollResponse, RunReceipt]


def _bounds(metadata: List[Any]) -> Set[str]:
    """Which of ge/le the metadata sets within the 64-bit range (for ints) or at all (times)."""
    found: Set[str] = set()
    for item in metadata:
        for inner in [item, *getattr(item, "metadata", [])]:
            if isinstance(inner, annotated_types.Ge):
                found.add("ge")
            elif isinstance(inner, annotated_types.Le):
                found.add("le")
    return found


def _loose(tp: Any, metadata: List[Any], where: str, seen: Set[type]) -> List[str]:
    if get_origin(tp) is Annotated:
        base, *extra = get_args(tp)
        return _loose(base, [*metadata, *extra], where, seen)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return _loose_model(tp, seen)
    if tp is int:
        lows = [
            m.ge for m in _flat(metadata) if isinstance(m, annotated_types.Ge) and m.ge >= INT64_MIN
        ]
        highs = [
            m.le for m in _flat(metadata) if isinstance(m, annotated_types.Le) and m.le <= INT64_MAX
        ]
        return [] if lows and highs else [f"{where}: int without 64-bit bounds"]
    if tp is datetime:
        return [f"{where}: datetime that may be naive"]
    if tp is AwareDatetime:
        return [] if _bounds(metadata) == {"ge", "le"} else [f"{where}: time without bounds"]
    return [p for arg in get_args(tp) for p in _loose(arg, [], where, seen)]


def _flat(metadata: List[Any]) -> List[Any]:
    return [inner for item in metadata for inner in [item, *getattr(item, "metadata", [])]]


def _loose_model(model: Type[BaseModel], seen: Set[type]) -> List[str]:
    if model in seen:
        return []
    seen.add(model)
    problems = []
    if model.model_config.get("allow_inf_nan", True):
        problems.append(f"{model.__name__}: floats may be NaN or infinite")
    for name, field in model.model_fields.items():
        where = f"{model.__name__}.{name}"
        problems += _loose(field.annotation, list(field.metadata), where, seen)
    return problems


def test_every_wire_field_is_bounded() -> None:
    """A field added later as a bare `int` or `datetime` would let the collector take a value
    it cannot store: this walk names it."""
    seen: Set[type] = set()
    problems = [p for model in WIRE_MODELS for p in _loose_model(model, seen)]
    assert problems == []
    assert len(seen) > 30  # the walk really went through the facts


def test_the_walk_finds_a_bare_int_and_time() -> None:
    class Loose(BaseModel):
        count: int
        at: Optional[datetime] = None

    assert _loose_model(Loose, set()) == [
        "Loose: floats may be NaN or infinite",
        "Loose.count: int without 64-bit bounds",
        "Loose.at: datetime that may be naive",
    ]


def _run() -> dict:
    now = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)
    run = InspectionRun(
        source=Source.agent,
        host=HostIdentity(hostname="h1"),
        window=Window(start=now, end=now),
        facts=FactSet(
            collected_at=now,
            cpu=CpuFacts(usage_percent=5, logical_cores=2, load1=0.1, load5=0.1, load15=0.1),
        ),
    )
    data: dict = json.loads(run.to_json())
    data["results"] = [
        {
            "check": "cpu.usage",
            "category": "status",
            "severity": "ok",
            "value": 5,
            "message": {"key": "cpu.usage.ok", "params": {"value": 5}},
        }
    ]
    return data


def _refused(data: dict) -> List[str]:
    text = json.dumps(data).replace('"@NaN"', "NaN").replace('"@BIG"', str(2**64))
    with pytest.raises(ValidationError) as caught:
        InspectionRun.model_validate_json(text, strict=True)
    return [".".join(str(part) for part in e["loc"]) for e in caught.value.errors()]


@pytest.mark.parametrize(
    ("path", "value", "loc"),
    [
        (("facts", "cpu", "load1"), "@NaN", "facts.cpu.load1"),
        (("facts", "cpu", "logical_cores"), "@BIG", "facts.cpu.logical_cores"),
        (("results", 0, "value"), "@NaN", "results.0.value.float"),
        (("window", "start"), "2026-11-20T08:00:00", "window.start"),
        (("window", "start"), "0001-01-01T00:00:00+01:00", "window.start"),
        (("created_at",), "9999-12-31T23:00:00-05:00", "created_at"),
    ],
)
def test_values_no_column_holds_are_refused_naming_the_field(
    path: tuple, value: Any, loc: str
) -> None:
    data = _run()
    node: Any = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert loc in _refused(data)


def test_the_calendar_edges_themselves_pass() -> None:
    data = _run()
    data["window"] = {"start": "0001-01-01T00:00:00Z", "end": "9999-12-31T23:59:59+00:00"}
    data["facts"]["memory"] = {"total_bytes": INT64_MAX, "available_bytes": 0, "used_percent": 1}
    run = InspectionRun.model_validate_json(json.dumps(data), strict=True)
    assert run.window.end.astimezone(timezone.utc).year == 9999
    assert run.facts.memory is not None and run.facts.memory.total_bytes == INT64_MAX


def test_a_huge_integer_where_a_float_may_stand_arrives_as_a_float() -> None:
    """A value that may be a number of either kind and no longer fits 64 bits is stored as the
    float it rounds to (JSON and a double hold it), not refused."""
    data = _run()
    data["results"][0]["value"] = data["results"][0]["message"]["params"]["value"] = "@BIG"
    text = json.dumps(data).replace('"@BIG"', str(2**64))
    (result,) = InspectionRun.model_validate_json(text, strict=True).results
    assert result.value == result.message.params["value"] == float(2**64)
    assert isinstance(result.value, float)


def test_a_source_meets_the_bounds_when_it_builds_facts() -> None:
    """Where the agent builds facts, a NaN is refused at once: its section fails, not the run."""
    with pytest.raises(ValidationError, match="finite number"):
        CpuFacts(usage_percent=math.nan, logical_cores=1, load1=0, load5=0, load15=0)
