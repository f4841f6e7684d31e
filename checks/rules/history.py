"""The last 24 hours: how busy the host was, whether it went down, what was changed on it.

Metrics are judged on their 95th percentile: a host that is saturated for more than an hour a
day needs capacity, one spike does not; min, average, max and the time of the peak go along so
the report can show the shape of the day. Load is judged per core, like load.per_core.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from itertools import count
from typing import Any, Dict, List, Optional, Tuple

from pydantic import ConfigDict, Field, TypeAdapter

from checks.facts import FactSet, MetricSummary, RebootEvent
from checks.levels import judge, threshold_of
from checks.model import Category, CheckResult, Severity
from checks.spec import CheckParams, CheckSpec, RuleContext
from checks.units import human_bytes


class HistoryMetricsParams(CheckParams):
    """Limits on the p95 of each metric; per metric overrides go under items ('disk:/data')."""

    cpu_warning: Optional[float] = Field(85.0, description="% busy")
    cpu_critical: Optional[float] = Field(95.0, description="% busy")
    iowait_warning: Optional[float] = Field(20.0, description="% of CPU time waiting for I/O")
    iowait_critical: Optional[float] = Field(40.0, description="% of CPU time waiting for I/O")
    memory_warning: Optional[float] = Field(90.0, description="% used")
    memory_critical: Optional[float] = Field(97.0, description="% used")
    swap_warning: Optional[float] = Field(50.0, description="% used")
    swap_critical: Optional[float] = Field(80.0, description="% used")
    load_warning: Optional[float] = Field(1.5, description="load per core")
    load_critical: Optional[float] = Field(3.0, description="load per core")
    disk_warning: Optional[float] = Field(85.0, description="% used")
    disk_critical: Optional[float] = Field(95.0, description="% used")


def _kind(metric: str) -> str:
    """'disk:/data' → 'disk', 'load5' → 'load'; the family whose limits and texts apply."""
    if metric.startswith("disk:"):
        return "disk"
    if metric.startswith("load"):
        return "load"
    return metric


_JUDGED = ("cpu", "iowait", "memory", "swap", "load", "disk")


def history_metrics(facts: FactSet, ctx: RuleContext) -> List[CheckResult]:
    if facts.history is None:
        return [ctx.unknown(facts.missing("history") or "")]
    if not facts.history.metrics:
        return [ctx.unknown(f"no samples in the {facts.history.source} history")]
    return [_metric(m, facts, ctx) for m in facts.history.metrics]


def _metric(m: MetricSummary, facts: FactSet, ctx: RuleContext) -> CheckResult:
    kind = _kind(m.metric)
    summary: Dict[str, Any] = {
        "metric": m.metric,
        "source": facts.history.source if facts.history else "",
        "samples": m.samples,
        "min": m.min,
        "avg": m.avg,
        "p95": m.p95,
        "max": m.max,
        "metric_unit": m.unit,
        "max_at": m.max_at.isoformat(timespec="seconds") if m.max_at else None,
        "mount": m.metric[len("disk:") :] if kind == "disk" else None,
    }
    if kind not in _JUDGED:
        if m.unit == "B/s":  # rates read as 1.2 MiB/s, not 1258291.2B/s
            summary.update(
                {k: human_bytes(summary[k]) + "/s" for k in ("min", "avg", "p95", "max")},
                metric_unit="",
            )
        return ctx.result(
            Severity.info, "other", item=m.metric, value=m.p95, unit=m.unit, **summary
        )
    value = m.p95
    unit: Optional[str] = m.unit or None
    if kind == "load":
        if facts.cpu is None:
            return ctx.unknown(f"core count unknown: {facts.missing('cpu')}", item=m.metric)
        value = m.p95 / facts.cpu.logical_cores
        unit = None
        summary["cores"] = facts.cpu.logical_cores
        summary["value_per_core"] = round(value, 2)
    threshold = threshold_of(
        ctx.params(m.metric), unit, "above", f"{kind}_warning", f"{kind}_critical"
    )
    severity = judge(value, threshold)
    bad = severity in (Severity.warning, Severity.critical)
    return ctx.result(
        severity,
        f"{kind}.{'bad' if bad else 'ok'}",
        item=m.metric,
        value=round(value, 2),
        unit=unit,
        threshold=threshold,
        advice=kind if bad else None,
        **summary,
    )


class RebootParams(CheckParams):
    reboot: Severity = Field(Severity.warning, description="a boot after a clean shutdown")
    crash: Severity = Field(Severity.critical, description="a boot with no shutdown before it")


def history_reboots(facts: FactSet, ctx: RuleContext) -> List[CheckResult]:
    if facts.reboots is None:
        return [ctx.unknown(facts.missing("reboots") or "")]
    events = sorted(facts.reboots, key=lambda e: e.time)
    boots = [e for e in events if e.kind != "shutdown"]
    if not boots:
        return [ctx.result(Severity.ok, "none", value=0)]
    params = ctx.params().params
    results: List[CheckResult] = []
    for boot in boots:
        shutdowns = [e for e in _since_previous_boot(events, boot) if e.kind == "shutdown"]
        crashed = boot.kind == "crash"
        results.append(
            ctx.result(
                params.crash if crashed else params.reboot,
                boot.kind,
                item=boot.time.isoformat(timespec="seconds"),
                value=boot.kind,
                evidence=[
                    f"{e.time.isoformat(timespec='seconds')} {e.kind}" for e in [*shutdowns, boot]
                ],
                advice=boot.kind,
                time=boot.time.isoformat(timespec="seconds"),
            )
        )
    return results


def _since_previous_boot(events: List[RebootEvent], boot: RebootEvent) -> List[RebootEvent]:
    before = [e for e in events if e.time < boot.time]
    last_boot = max((i for i, e in enumerate(before) if e.kind != "shutdown"), default=-1)
    return before[last_boot + 1 :]


class PackageParams(CheckParams):
    severity: Severity = Field(
        Severity.info, description="raise to warning where every change needs a change ticket"
    )
    max_evidence: int = Field(50, ge=1, description="changes listed as evidence")


def _seconds_adapter() -> Optional[TypeAdapter[List[datetime]]]:
    """pydantic-core turning datetimes into what `datetime.timestamp()` returns, or None where
    the installed pydantic cannot: before 2.12 it has no such option, and pydantic-core 2.46
    still left the UTC offset out (agent hosts may have either)."""
    adapter = TypeAdapter(List[datetime], config=ConfigDict(ser_json_temporal="seconds"))
    probes = [
        datetime(2000, 1, 1, 0, 0, 0, 1, tzinfo=timezone(timedelta(hours=8))),
        datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=timezone(-timedelta(hours=5.5))),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
    ]
    same = adapter.dump_python(probes, mode="json") == [p.timestamp() for p in probes]
    return adapter if same else None


_SECONDS = _seconds_adapter()


def _epoch_seconds(times: List[datetime]) -> List[float]:
    """Each time as `datetime.timestamp()` gives it.

    Parsed times carry pydantic's TzInfo, which answers a call from Python in ~0.6 µs:
    comparing two such datetimes asks both for their offset, and even `timestamp()` on each of
    a 200-change log was half of the collector's judging of a run. pydantic-core reads the
    offset without that call, in a third of the time."""
    if _SECONDS is None:
        return [t.timestamp() for t in times]
    seconds: List[float] = _SECONDS.dump_python(times, mode="json")
    return seconds


def _to_second(t: datetime) -> str:
    """`t.isoformat(timespec="seconds")`; the keyword alone costs a third of the call, and
    without it the text is the same whenever there are no microseconds to cut."""
    return t.isoformat(timespec="seconds") if t.microsecond else t.isoformat()


def _second_texts(timed: List[Tuple[float, datetime]]) -> List[str]:
    """`_to_second` of each (epoch seconds, time), each distinct time formatted once: a package
    manager stamps a whole transaction with one second (the bench's 50 listed changes hold 8
    distinct times), and `isoformat` is ~2 µs a call on a parsed time. The key is the epoch
    seconds, the microsecond and the UTC offset: the text shows the instant moved by the
    offset, and the seconds alone could round microseconds together far from 1970."""
    texts: Dict[Tuple[float, int, Optional[timedelta]], str] = {}
    out: List[str] = []
    for seconds, t in timed:
        key = (seconds, t.microsecond, t.utcoffset())
        text = texts.get(key)
        if text is None:
            text = texts[key] = _to_second(t)
        out.append(text)
    return out


def history_packages(facts: FactSet, ctx: RuleContext) -> List[CheckResult]:
    if facts.packages is None:
        return [ctx.unknown(facts.missing("packages") or "")]
    posted = facts.packages
    if not posted:
        return [ctx.result(Severity.ok, "none", value=0)]
    # by time, then name, then as listed: see _epoch_seconds for why not on the datetimes
    order = sorted(zip(_epoch_seconds([c.time for c in posted]), [c.name for c in posted], count()))
    params = ctx.params().params
    listed = order[: params.max_evidence]
    ends = [order[0], order[-1]]
    *times, first, last = _second_texts([(s, posted[i].time) for s, _, i in [*listed, *ends]])
    shown: List[Tuple[str, str, str, str]] = [
        (text, c.action, c.name, c.version)
        for text, c in zip(times, [posted[i] for _, _, i in listed])
    ]
    actions = [c.action for c in posted]
    return [
        ctx.result(
            params.severity,
            "changed",
            value=len(posted),
            advice="changed",
            evidence=[" ".join(filter(None, row)) for row in shown],
            count=len(posted),
            shown=len(shown),
            installed=actions.count("install"),
            upgraded=actions.count("upgrade"),
            downgraded=actions.count("downgrade"),
            removed=actions.count("remove"),
            first=first,
            last=last,
        )
    ]


CHECKS = [
    CheckSpec("history.metrics", Category.history, HistoryMetricsParams, history_metrics),
    CheckSpec(
        "history.reboots", Category.history, RebootParams, history_reboots, service_affecting=True
    ),
    CheckSpec("history.packages", Category.history, PackageParams, history_packages),
]
