"""Everything a report says, as one typed value (`ReportData`), assembled from plain inputs.

Assembly is pure: `assemble(ReportInputs, lang)` turns runs, findings, samples and downtime into
the report's sections with every customer-facing string already rendered from the catalogs, so
the templates only lay it out and the same value feeds the PDF, the HTML and the mail body.
`collector.reports.load` fills `ReportInputs` from the database; `inputs_from_runs` fills it from
runs alone (for `xunjian ssh --report`, where there is no database and so no lifecycle,
fulfilment or availability to report).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Optional, Union
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from checks.catalog import CATALOG
from checks.evaluate import evaluate
from checks.facts import LogTemplate, MetricSummary
from checks.model import Category, CheckResult, InspectionRun, Message, Severity, Threshold
from checks.text import Texts
from checks.wire import Gap
from collector import periods
from collector.contracts import Contract, Party
from collector.periods import Period
from collector.priority import priority_of_check
from collector.reports.samples import Samples, summaries
from collector.reports.score import HostTally, Status, contract_health, host_health
from collector.reports.texts import report_texts
from collector.support_hours import deadline, elapsed_business_hours

RENEWAL_NOTICE_DAYS = 60
TOP_ISSUES = 5
TEMPLATES_PER_HOST = 15
EVIDENCE_LINES = 5
CHECK_ORDER = {spec.id: i for i, spec in enumerate(CATALOG)}
DEFAULT_TZ = "Asia/Shanghai"


# ----------------------------------------------------------------------------------- inputs


class FindingRecord(BaseModel):
    """One episode of a problem from the findings lifecycle (collector.db.models.Finding)."""

    model_config = ConfigDict(extra="ignore")

    id: Optional[int] = None
    check: str
    item: Optional[str] = None
    category: Category
    severity: Severity
    max_severity: Severity
    value: Union[float, int, str, None] = None
    unit: Optional[str] = None
    message: Message
    recommendation_key: Optional[str] = None
    first_seen: datetime
    last_seen: datetime
    resolved_at: Optional[datetime] = None
    ack_at: Optional[datetime] = None
    ack_by: Optional[str] = None


class RunRef(BaseModel):
    run_id: str
    created_at: datetime
    source: str
    ad_hoc: bool = False


@dataclass
class HostInput:
    """What is known about one host for the period."""

    hostname: str
    host_id: Optional[str] = None
    latest: Optional[InspectionRun] = None
    results: list[CheckResult] = field(default_factory=list)
    """The collector's evaluation of `latest` (the contract's thresholds)."""
    runs: list[RunRef] = field(default_factory=list)
    samples: Samples = field(default_factory=Samples)
    """The last 24 h of the period, oldest first."""
    findings: list[FindingRecord] = field(default_factory=list)
    downtime: list[tuple[datetime, Optional[datetime]]] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    availability: Optional[float] = None
    """Percent of the period the host was up; None when not watched (no agent)."""


@dataclass
class ReportInputs:
    contract: Optional[Contract]
    period: Period
    hosts: list[HostInput]
    missing: list[str] = field(default_factory=list)
    """Hosts under contract that sent nothing in the period."""
    delivered: dict[str, int] = field(default_factory=dict)
    """Earlier scheduled periods of the contract → runs their report rested on."""
    previous_period: Optional[str] = None
    generated_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    version: int = 1
    has_lifecycle: bool = True
    """False for runs without a database: no new/persisting/resolved, no fulfilment."""


# ----------------------------------------------------------------------------------- output


class _View(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PartyView(_View):
    name: str
    address: str = ""
    contacts: list[str] = Field(default_factory=list)


class Cover(_View):
    number: str
    title: str
    customer: PartyView
    vendor: PartyView
    level: str
    period_key: str
    period_text: str
    timezone: str
    modes: list[str]
    generated: str
    version: int


class FindingView(_View):
    host: str
    check: str
    item: Optional[str]
    category: str
    severity: Severity
    severity_text: str
    priority: Optional[str]
    value_text: str
    threshold_text: str
    summary: str
    recommendation: Optional[str]
    evidence: list[str] = Field(default_factory=list)
    since: Optional[str] = None


class Changes(_View):
    previous: Optional[str]
    new: list[FindingView]
    persisting: list[FindingView]
    resolved: list[FindingView]


class HostStatusRow(_View):
    host: str
    status: Status
    status_text: str
    score: int
    last_run: str
    source: str
    critical: int
    warning: int
    unknown: int


class Summary(_View):
    status: Status
    status_text: str
    score: int
    hosts_expected: int
    hosts_inspected: int
    missing: list[str]
    by_severity: dict[str, int]
    top: list[FindingView]
    changes: Optional[Changes]
    hosts: list[HostStatusRow]


class PeriodRow(_View):
    key: str
    span: str
    state: str
    """delivered | missed | current | upcoming"""
    state_text: str
    runs: int


class AdHocRow(_View):
    host: str
    at: str
    source: str


class IncidentRow(_View):
    host: str
    check: str
    item: Optional[str]
    priority: str
    summary: str
    raised: str
    due: str
    acked: Optional[str]
    hours: float
    limit_hours: float
    met: Optional[bool]
    verdict: str


class AvailabilityRow(_View):
    host: str
    percent: Optional[float]
    target: float
    met: Optional[bool]
    downtime: str
    verdict: str


class Fulfilment(_View):
    year_span: str
    entitled: int
    due_so_far: int
    delivered: int
    periods: list[PeriodRow]
    adhoc: list[AdHocRow]
    response_hours: dict[str, float]
    support_text: str
    incidents: list[IncidentRow]
    availability: list[AvailabilityRow]
    renewal: Optional[str]


class ResultRow(_View):
    check: str
    item: Optional[str]
    severity: Severity
    severity_text: str
    value_text: str
    threshold_text: str
    summary: str
    evidence: list[str]


class TemplateRow(_View):
    rule: str
    severity: str
    severity_text: str
    template: str
    source: str
    count: int
    first_seen: str
    last_seen: str
    samples: list[str]


class MetricRow(_View):
    metric: str
    label: str
    unit: str
    samples: int
    min: float
    avg: float
    p95: float
    max: float
    max_at: str
    stats: str
    """'min / avg / P95 / max' with the unit once: the host section's one line per metric."""


class ChartRef(_View):
    cid: str
    kind: str
    """cpu | memory | load | disk"""
    title: str
    peak: str


class HostSection(_View):
    hostname: str
    host_id: Optional[str]
    os: str
    kernel: str
    addresses: str
    run_at: str
    window: str
    source: str
    run_id: str
    status: Status
    status_text: str
    score: int
    system: list[ResultRow]
    """Results that need a look (not ok); passes are listed compactly in `passed`."""
    passed: dict[str, list[str]]
    """category → 'check item value' of every ok result"""
    alarm_results: list[ResultRow]
    templates: list[TemplateRow]
    templates_more: int
    errors: list[ResultRow]
    history: list[ResultRow]
    history_source: str
    metrics: list[MetricRow]
    charts: list[ChartRef]
    findings: list[FindingView]
    advice: list[Recommendation]
    """The host's findings grouped by recommendation (their descriptions are in the tables)."""
    unadvised: list[str]
    """'check item' of findings that carry no recommendation"""


class Recommendation(_View):
    text: str
    severity: Severity
    severity_text: str
    priority: Optional[str]
    targets: list[str]


class ThresholdRow(_View):
    check: str
    item: Optional[str]
    warning: str
    critical: str
    provenance: str
    hosts: int


class GapRow(_View):
    host: str
    kind: str
    detail: str


class Appendix(_View):
    thresholds: list[ThresholdRow]
    modes: dict[str, int]
    method: list[str]
    gaps: list[GapRow]


class ReportData(_View):
    lang: str
    cover: Cover
    summary: Summary
    fulfilment: Optional[Fulfilment]
    hosts: list[HostSection]
    recommendations: list[Recommendation]
    appendix: Appendix


# -------------------------------------------------------------------------------- assembly


class _Ctx:
    """The language, the timezone and the contract every formatter needs."""

    def __init__(self, lang: str, contract: Optional[Contract]) -> None:
        self.tz = ZoneInfo(contract.timezone if contract else DEFAULT_TZ)
        self.t: Texts = report_texts(lang).in_zone(self.tz)
        self.lang = self.t.lang
        self.contract = contract

    def dt(self, value: Optional[datetime]) -> str:
        return value.astimezone(self.tz).strftime("%Y-%m-%d %H:%M") if value else "—"

    def day(self, value: date) -> str:
        return value.isoformat()

    def sev(self, s: Severity) -> str:
        return self.t(f"severity.{s.value}")

    def status(self, s: Status) -> str:
        return self.t(f"report.status.{s.value}")


def _fmt_number(t: Texts, value: Union[float, int, str, None], unit: Optional[str]) -> str:
    if value is None:
        return "—"
    return t.quantity(round(value, 1) if isinstance(value, float) else value, unit)


def _threshold_parts(c: _Ctx, th: Optional[Threshold]) -> tuple[str, str, str]:
    if th is None:
        return "—", "—", "—"
    sign = "≥" if th.direction == "above" else "≤"
    w = f"{sign} {_fmt_number(c.t, th.warning, th.unit)}" if th.warning is not None else "—"
    crit = f"{sign} {_fmt_number(c.t, th.critical, th.unit)}" if th.critical is not None else "—"
    return w, crit, _provenance(c, th.provenance)


def _provenance(c: _Ctx, prov: str) -> str:
    kind, _, rest = prov.partition(":")
    key = f"report.provenance.{kind}"
    return c.t(key, {"name": rest}) if c.t.has(key) else prov


def _threshold_text(c: _Ctx, th: Optional[Threshold]) -> str:
    if th is None:
        return "—"
    w, crit, prov = _threshold_parts(c, th)
    return c.t("report.threshold", {"warning": w, "critical": crit, "provenance": prov})


def _value_text(c: _Ctx, r: Union[CheckResult, FindingRecord]) -> str:
    given = r.message.params.get("value_text")
    return str(given) if given is not None else _fmt_number(c.t, r.value, r.unit)


def _result_row(c: _Ctx, r: CheckResult) -> ResultRow:
    return ResultRow(
        check=r.check,
        item=r.item,
        severity=r.severity,
        severity_text=c.sev(r.severity),
        value_text=_value_text(c, r),
        threshold_text=_threshold_text(c, r.threshold),
        summary=c.t(r.message.key, r.message.params),
        evidence=r.evidence[:EVIDENCE_LINES],
    )


def _finding_view(c: _Ctx, host: str, r: Union[CheckResult, FindingRecord]) -> FindingView:
    threshold = r.threshold if isinstance(r, CheckResult) else None
    evidence = r.evidence[:EVIDENCE_LINES] if isinstance(r, CheckResult) else []
    priority = priority_of_check(r.check, r.severity, c.contract)
    return FindingView(
        host=host,
        check=r.check,
        item=r.item,
        category=c.t(f"category.{r.category.value}"),
        severity=r.severity,
        severity_text=c.sev(r.severity),
        priority=priority.value if priority else None,
        value_text=_value_text(c, r),
        threshold_text=_threshold_text(c, threshold),
        summary=c.t(r.message.key, r.message.params),
        recommendation=c.t(r.recommendation_key, r.message.params)
        if r.recommendation_key
        else None,
        evidence=evidence,
        since=c.dt(r.first_seen) if isinstance(r, FindingRecord) else None,
    )


def _order(r: Union[CheckResult, FindingRecord, FindingView]) -> tuple[int, int, str]:
    return (-r.severity.rank, CHECK_ORDER.get(r.check, len(CHECK_ORDER)), r.item or "")


def _is_finding(r: CheckResult) -> bool:
    return r.severity in (Severity.warning, Severity.critical)


def _tally(results: Sequence[CheckResult], availability_met: Optional[bool]) -> HostTally:
    counts = Counter(r.severity for r in results)
    return HostTally(
        critical=counts[Severity.critical],
        warning=counts[Severity.warning],
        unknown=counts[Severity.unknown],
        availability_met=availability_met,
    )


def _availability_met(c: _Ctx, h: HostInput) -> Optional[bool]:
    if h.availability is None or c.contract is None:
        return None
    return h.availability >= c.contract.availability_target


def _party(p: Party) -> PartyView:
    contacts = [
        " ".join(x for x in (ct.name, ct.email or "", ct.phone or "") if x) for ct in p.contacts
    ]
    return PartyView(name=p.name, address=p.address, contacts=contacts)


def _modes(hosts: Sequence[HostInput]) -> Counter[str]:
    return Counter(run.source for h in hosts for run in h.runs)


def _cover(c: _Ctx, inputs: ReportInputs, modes: Counter[str]) -> Cover:
    contract, period = inputs.contract, inputs.period
    dates = {"key": period.key, "first": c.day(period.first_day), "last": c.day(period.last_day)}
    named = ".." not in period.key  # 2026-Q3 / 2026-09: say the dates too
    span = c.t("report.period_span" if named else "report.period_range", dates)
    unnamed = PartyView(name="—")
    return Cover(
        number=contract.number if contract else "—",
        title=(contract.title if contract else "") or c.t("report.title"),
        customer=_party(contract.customer) if contract else unnamed,
        vendor=_party(contract.vendor) if contract else unnamed,
        level=c.t(f"report.level.{contract.level.value}") if contract else "—",
        period_key=period.key,
        period_text=span,
        timezone=str(c.tz.key),
        modes=[c.t(f"report.mode.{m}") for m in sorted(modes)],
        generated=c.dt(inputs.generated_at),
        version=inputs.version,
    )


def _changes(c: _Ctx, inputs: ReportInputs) -> Optional[Changes]:
    if not inputs.has_lifecycle:
        return None
    start, end = inputs.period.start, inputs.period.end
    new: list[FindingView] = []
    persisting: list[FindingView] = []
    resolved: list[FindingView] = []
    for h in inputs.hosts:
        for f in sorted(h.findings, key=_order):
            if f.severity is Severity.unknown or f.first_seen >= end:
                continue
            if f.resolved_at is not None and start <= f.resolved_at < end:
                resolved.append(_finding_view(c, h.hostname, f))
            elif f.resolved_at is None or f.resolved_at >= end:
                (new if f.first_seen >= start else persisting).append(
                    _finding_view(c, h.hostname, f)
                )
    return Changes(
        previous=inputs.previous_period, new=new, persisting=persisting, resolved=resolved
    )


def _incidents(c: _Ctx, inputs: ReportInputs, contract: Contract) -> list[IncidentRow]:
    rows: list[IncidentRow] = []
    period = inputs.period
    for h in inputs.hosts:
        for f in h.findings:
            priority = priority_of_check(f.check, f.max_severity, contract)
            if priority is None or not period.contains(f.first_seen):
                continue
            limit = getattr(contract.response_hours, priority.value)
            due = deadline(f.first_seen, limit, contract.support, contract.timezone)
            until = f.ack_at or min(period.end, inputs.generated_at)
            hours = elapsed_business_hours(f.first_seen, until, contract.support, contract.timezone)
            met: Optional[bool]
            if f.ack_at is not None:
                met = f.ack_at <= due
                verdict = "met" if met else "late"
            else:
                met = False if until > due else None
                verdict = "overdue" if met is False else "open"
            rows.append(
                IncidentRow(
                    host=h.hostname,
                    check=f.check,
                    item=f.item,
                    priority=priority.value,
                    summary=c.t(f.message.key, f.message.params),
                    raised=c.dt(f.first_seen),
                    due=c.dt(due),
                    acked=c.dt(f.ack_at) if f.ack_at else None,
                    hours=round(hours, 2),
                    limit_hours=limit,
                    met=met,
                    verdict=c.t(f"report.incident.{verdict}"),
                )
            )
    return sorted(rows, key=lambda r: (r.priority, r.raised))


def _downtime_total(h: HostInput, period: Period, now: datetime) -> timedelta:
    total = timedelta()
    for start, end in h.downtime:
        a, b = max(start, period.start), min(end or now, period.end, now)
        if b > a:
            total += b - a
    return total


def _duration(c: _Ctx, span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    return c.t("report.duration", {"hours": minutes // 60, "minutes": minutes % 60})


def _fulfilment(c: _Ctx, inputs: ReportInputs, modes: Counter[str]) -> Optional[Fulfilment]:
    contract = inputs.contract
    if contract is None or not inputs.has_lifecycle:
        return None
    period = inputs.period
    year = periods.contract_year(contract, period.start)
    runs_now = sum(len(h.runs) for h in inputs.hosts)
    rows: list[PeriodRow] = []
    for p in periods.schedule(contract):
        if not (year.start <= p.start < year.end):
            continue
        if p.key == period.key:
            state, runs = ("delivered" if runs_now else "missed"), runs_now
        elif p.end > period.end:
            state, runs = "upcoming", 0
        else:
            runs = inputs.delivered.get(p.key, 0)
            state = "delivered" if runs else "missed"
        rows.append(
            PeriodRow(
                key=p.key,
                span=f"{c.day(p.first_day)} – {c.day(p.last_day)}",
                state=state,
                state_text=c.t(f"report.delivery.{state}"),
                runs=runs,
            )
        )
    adhoc = [
        AdHocRow(host=h.hostname, at=c.dt(r.created_at), source=c.t(f"report.mode.{r.source}"))
        for h in inputs.hosts
        for r in h.runs
        if r.ad_hoc
    ]
    availability: list[AvailabilityRow] = []
    for h in inputs.hosts:
        met = _availability_met(c, h)
        verdict = "na" if met is None else ("met" if met else "missed")
        availability.append(
            AvailabilityRow(
                host=h.hostname,
                percent=h.availability,
                target=contract.availability_target,
                met=met,
                downtime=_duration(c, _downtime_total(h, period, inputs.generated_at)),
                verdict=c.t(f"report.availability.{verdict}"),
            )
        )
    days_left = (contract.end - period.last_day).days
    renewal = None
    if 0 <= days_left <= RENEWAL_NOTICE_DAYS:
        renewal = c.t("report.renewal", {"end": c.day(contract.end), "days": days_left})
    s = contract.support
    support_text = (
        c.t("report.support.7x24")
        if s.kind == "7x24"
        else c.t(
            "report.support.5x8",
            {"start": s.start.strftime("%H:%M"), "end": s.end.strftime("%H:%M")},
        )
    )
    return Fulfilment(
        year_span=f"{c.day(year.first_day)} – {c.day(year.last_day)}",
        entitled=contract.entitlements.remote_inspections_per_year,
        due_so_far=sum(1 for r in rows if r.state != "upcoming"),
        delivered=sum(1 for r in rows if r.state == "delivered"),
        periods=rows,
        adhoc=adhoc,
        response_hours={"P1": contract.response_hours.P1, "P2": contract.response_hours.P2},
        support_text=support_text,
        incidents=_incidents(c, inputs, contract),
        availability=availability,
        renewal=renewal,
    )


def metric_series(samples: Samples) -> Optional[Samples]:
    """The samples when there are enough to draw (report and the console's host page)."""
    return samples if len(samples) >= 2 else None


def _metric_summaries(h: HostInput) -> tuple[str, list[MetricSummary]]:
    """From the collector's samples when there are any, else the run's own history facts."""
    if len(h.samples):
        return "samples", summaries(h.samples)
    history = h.latest.facts.history if h.latest else None
    if history is not None and history.metrics:
        return history.source, list(history.metrics)
    return "none", []


def _metric_label(c: _Ctx, metric: str) -> str:
    kind, _, mount = metric.partition(":")
    return c.t(f"report.metric.{kind}", {"mount": mount})


def _charts(
    c: _Ctx, h: HostInput, series: Optional[Samples], metrics: Sequence[MetricSummary]
) -> list[ChartRef]:
    if series is None:
        return []
    peaks = {m.metric: m for m in metrics}
    refs: list[ChartRef] = []
    for kind, metric in (("cpu", "cpu"), ("memory", "memory"), ("load", "load1"), ("disk", None)):
        if kind == "disk" and not series.disks:
            continue
        if metric is None:
            disk_peaks = [m for m in metrics if m.metric.startswith("disk:")]
            peak = max(disk_peaks, key=lambda m: m.max, default=None)
        else:
            peak = peaks.get(metric)
        peak_text = (
            c.t(
                "report.chart.peak",
                {
                    "value": _fmt_number(c.t, peak.max, peak.unit or None),
                    "at": c.dt(peak.max_at),
                    "what": _metric_label(c, peak.metric),
                },
            )
            if peak
            else ""
        )
        refs.append(
            ChartRef(
                cid=chart_cid(h.host_id or h.hostname, kind),
                kind=kind,
                title=c.t(f"report.chart.{kind}"),
                peak=peak_text,
            )
        )
    return refs


def chart_cid(host: str, kind: str) -> str:
    """Content-ID of a host's chart: ASCII, stable, unique within one report."""
    safe = "".join(ch if ch.isalnum() or ch in "-." else "-" for ch in host)
    return f"chart-{kind}-{safe}@xunjian"


def _template_row(c: _Ctx, t: LogTemplate) -> TemplateRow:
    sev = Severity(t.severity) if t.severity in Severity.__members__ else Severity.warning
    return TemplateRow(
        rule=t.rule,
        severity=t.severity,
        severity_text=c.sev(sev),
        template=t.template,
        source=t.source,
        count=t.count,
        first_seen=c.dt(t.first_seen),
        last_seen=c.dt(t.last_seen),
        samples=t.samples[:3],
    )


def _host_section(c: _Ctx, h: HostInput) -> HostSection:
    run = h.latest
    by_cat: dict[Category, list[ResultRow]] = defaultdict(list)
    passed: dict[str, list[str]] = defaultdict(list)
    for r in sorted(
        h.results, key=lambda r: (CHECK_ORDER.get(r.check, len(CHECK_ORDER)), r.item or "")
    ):
        if r.severity is Severity.ok:  # a pass is one short entry, not a table row
            entry = (r.check, r.item, _value_text(c, r))
            passed[r.category.value].append(" ".join(x for x in entry if x and x != "—"))
        else:
            by_cat[r.category].append(_result_row(c, r))
    health = host_health(_tally(h.results, _availability_met(c, h)))
    templates = sorted(
        (run.facts.logs.templates if run and run.facts.logs else []), key=lambda t: -t.count
    )
    source, summaries = _metric_summaries(h)
    series = metric_series(h.samples)
    identity = run.host if run else None
    findings = [
        _finding_view(c, h.hostname, r) for r in sorted(h.results, key=_order) if _is_finding(r)
    ]
    return HostSection(
        hostname=h.hostname,
        host_id=h.host_id,
        os=" ".join(x for x in (identity.os.name, identity.os.version) if x) if identity else "—",
        kernel=identity.kernel if identity else "—",
        addresses=", ".join(identity.addresses) if identity else "—",
        run_at=c.dt(run.created_at) if run else "—",
        window=f"{c.dt(run.window.start)} – {c.dt(run.window.end)}" if run else "—",
        source=c.t(f"report.mode.{run.source.value}") if run else "—",
        run_id=str(run.run_id) if run else "—",
        status=health.status,
        status_text=c.status(health.status),
        score=health.score,
        system=by_cat[Category.status],
        passed=dict(passed),
        alarm_results=by_cat[Category.alarm_logs],
        templates=[_template_row(c, t) for t in templates[:TEMPLATES_PER_HOST]],
        templates_more=max(0, len(templates) - TEMPLATES_PER_HOST),
        errors=by_cat[Category.errors],
        history=by_cat[Category.history],
        history_source=c.t(f"report.history_source.{source}"),
        metrics=[
            MetricRow(
                metric=m.metric,
                label=_metric_label(c, m.metric),
                unit=m.unit,
                samples=m.samples,
                min=m.min,
                avg=m.avg,
                p95=m.p95,
                max=m.max,
                max_at=c.dt(m.max_at),
                stats=" / ".join(
                    [
                        *(_fmt_number(c.t, x, None) for x in (m.min, m.avg, m.p95)),
                        _fmt_number(c.t, m.max, m.unit or None),
                    ]
                ),
            )
            for m in summaries
        ],
        charts=_charts(c, h, series, summaries),
        findings=findings,
        advice=_advice(findings, _check_item),
        unadvised=[_check_item(f) for f in findings if not f.recommendation],
    )


def _check_item(f: FindingView) -> str:
    return f"{f.check} {f.item or ''}".strip()


def _advice(
    views: Iterable[FindingView], target: Callable[[FindingView], str]
) -> list[Recommendation]:
    """Findings grouped by their recommendation, the most urgent first; `target` names each."""
    grouped: dict[str, list[FindingView]] = defaultdict(list)
    for f in views:
        if f.recommendation:
            grouped[f.recommendation].append(f)
    recs = []
    for text, group in grouped.items():
        worst_view = min(group, key=_order)
        priorities = sorted({v.priority for v in group if v.priority})
        recs.append(
            Recommendation(
                text=text,
                severity=worst_view.severity,
                severity_text=worst_view.severity_text,
                priority=priorities[0] if priorities else None,
                targets=sorted({target(v) for v in group}),
            )
        )
    return sorted(recs, key=lambda r: (r.priority or "P9", -r.severity.rank, -len(r.targets)))


def _recommendations(sections: Sequence[HostSection]) -> list[Recommendation]:
    views = (f for s in sections for f in s.findings)
    return _advice(views, lambda v: f"{v.host} {v.item or ''}".strip())


def _appendix(c: _Ctx, inputs: ReportInputs, modes: Counter[str]) -> Appendix:
    seen: dict[tuple[str, Optional[str], str, str, str], set[str]] = defaultdict(set)
    for h in inputs.hosts:
        for r in h.results:
            if r.threshold is None:
                continue
            w, crit, prov = _threshold_parts(c, r.threshold)
            # item-level thresholds are listed per item; the rest once per check
            item = r.item if "[" in r.threshold.provenance else None
            seen[(r.check, item, w, crit, prov)].add(h.hostname)
    thresholds = [
        ThresholdRow(
            check=k[0], item=k[1], warning=k[2], critical=k[3], provenance=k[4], hosts=len(v)
        )
        for k, v in sorted(
            seen.items(), key=lambda kv: (CHECK_ORDER.get(kv[0][0], 999), kv[0][1] or "", kv[0][4])
        )
    ]
    gaps: list[GapRow] = [
        GapRow(host=m, kind=c.t("report.gap.missing"), detail="") for m in inputs.missing
    ]
    for h in inputs.hosts:
        for start, end in h.downtime:
            if start < inputs.period.end and (end is None or end > inputs.period.start):
                gaps.append(
                    GapRow(
                        host=h.hostname,
                        kind=c.t("report.gap.silent"),
                        detail=f"{c.dt(start)} – {c.dt(end) if end else c.t('report.ongoing')}",
                    )
                )
        for g in h.gaps:
            gaps.append(
                GapRow(
                    host=h.hostname,
                    kind=c.t("report.gap.dropped"),
                    detail=c.t(
                        "report.gap.dropped_detail",
                        {
                            "count": g.dropped,
                            "kind": g.kind,
                            "first": c.dt(g.first_at),
                            "last": c.dt(g.last_at),
                        },
                    ),
                )
            )
        for r in sorted(h.results, key=_order):
            if r.severity is Severity.unknown:
                gaps.append(
                    GapRow(
                        host=h.hostname,
                        kind=c.t("report.gap.unknown", {"check": r.check}),
                        detail=c.t(r.message.key, r.message.params),
                    )
                )
    method = [c.t("report.method.checks", {"count": len(CATALOG)})]
    method += [c.t(f"report.method.{m}", {"count": n}) for m, n in sorted(modes.items())]
    method.append(c.t("report.method.thresholds"))
    return Appendix(thresholds=thresholds, modes=dict(modes), method=method, gaps=gaps)


def assemble(inputs: ReportInputs, lang: str) -> ReportData:
    c = _Ctx(lang, inputs.contract)
    modes = _modes(inputs.hosts)
    inspected = [h for h in inputs.hosts if h.latest is not None]
    sections = [_host_section(c, h) for h in sorted(inspected, key=lambda h: h.hostname)]
    tallies = [_tally(h.results, _availability_met(c, h)) for h in inspected]
    health = contract_health(tallies, len(inputs.missing))
    severity_counts = Counter(r.severity.value for h in inspected for r in h.results)
    all_findings = sorted((f for s in sections for f in s.findings), key=_order)
    summary = Summary(
        status=health.status,
        status_text=c.status(health.status),
        score=health.score,
        hosts_expected=len(inspected) + len(inputs.missing),
        hosts_inspected=len(inspected),
        missing=sorted(inputs.missing),
        by_severity={s.value: severity_counts.get(s.value, 0) for s in Severity},
        top=all_findings[:TOP_ISSUES],
        changes=_changes(c, inputs),
        hosts=[
            HostStatusRow(
                host=s.hostname,
                status=s.status,
                status_text=s.status_text,
                score=s.score,
                last_run=s.run_at,
                source=s.source,
                critical=sum(1 for f in s.findings if f.severity is Severity.critical),
                warning=sum(1 for f in s.findings if f.severity is Severity.warning),
                unknown=sum(
                    1
                    for r in s.system + s.alarm_results + s.errors + s.history
                    if r.severity is Severity.unknown
                ),
            )
            for s in sections
        ],
    )
    return ReportData(
        lang=c.lang,
        cover=_cover(c, inputs, modes),
        summary=summary,
        fulfilment=_fulfilment(c, inputs, modes),
        hosts=sections,
        recommendations=_recommendations(sections),
        appendix=_appendix(c, inputs, modes),
    )


# ------------------------------------------------------------------------- runs, no database


def inputs_from_runs(
    contract: Optional[Contract],
    runs: Iterable[InspectionRun],
    *,
    now: Optional[datetime] = None,
) -> ReportInputs:
    """Inputs for a report on just these runs (the newest per hostname counts).

    With a contract, each run is judged with the contract's thresholds for its host (as the
    collector would) and hosts named in the contract but absent from `runs` are listed as
    missing; without one, the runs' own results are used. The period spans the runs' windows.
    """
    by_host: dict[str, list[InspectionRun]] = defaultdict(list)
    for run in runs:
        by_host[run.host.hostname].append(run)
    if not by_host:
        raise ValueError("no runs to report on")
    hosts: list[HostInput] = []
    for hostname, host_runs in by_host.items():
        host_runs.sort(key=lambda r: r.created_at)
        latest = host_runs[-1]
        if contract is not None:
            selector = contract.host_selector(hostname, None, ())
            results = evaluate(latest.facts, contract.resolver_for(selector))
        else:
            results = list(latest.results)
        hosts.append(
            HostInput(
                hostname=hostname,
                latest=latest,
                results=results,
                runs=[
                    RunRef(
                        run_id=str(r.run_id),
                        created_at=r.created_at,
                        source=r.source.value,
                        ad_hoc=True,
                    )
                    for r in host_runs
                ],
            )
        )
    start = min(r.window.start for rs in by_host.values() for r in rs)
    end = max(r.window.end for rs in by_host.values() for r in rs)
    period = _adhoc_period(contract, start, end)
    missing = []
    if contract is not None:
        missing = [s.hostname for s in contract.hosts if s.hostname and s.hostname not in by_host]
    return ReportInputs(
        contract=contract,
        period=period,
        hosts=hosts,
        missing=missing,
        generated_at=now or datetime.now(timezone.utc),
        has_lifecycle=False,
    )


def _adhoc_period(contract: Optional[Contract], start: datetime, end: datetime) -> Period:
    tz = contract.tz if contract else ZoneInfo(DEFAULT_TZ)
    first, last = start.astimezone(tz).date(), end.astimezone(tz).date()
    return Period(
        start=periods.local_midnight(first, tz),
        end=periods.local_midnight(last + timedelta(days=1), tz),
        first_day=first,
        last_day=last,
        scheduled=False,
    )


def report_summary(data: ReportData) -> dict[str, Any]:
    """Language-free counts stored with the report row for listings and the API."""
    return {
        "score": data.summary.score,
        "status": data.summary.status.value,
        "hosts_inspected": data.summary.hosts_inspected,
        "hosts_expected": data.summary.hosts_expected,
        "missing": data.summary.missing,
        "by_severity": data.summary.by_severity,
    }
