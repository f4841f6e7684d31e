"""What each console page shows, read from the database for one user at one instant.

Page data is plain dataclasses with every string a person reads already in the page's language,
so templates only lay it out. The promises come from the code that keeps them elsewhere: P1/P2
from `collector.priority`, response deadlines from the alert engine (support hours aware),
periods from `collector.periods`, silences from `collector.availability`, charts from the
reports. Scope is checked here: a contract, host, finding or report outside the user's
contracts raises `PageError(403)`, one that does not exist `PageError(404)`.
"""

from __future__ import annotations

import base64
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Optional, Union
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from checks.model import Severity, Threshold
from checks.text import Texts
from collector import periods
from collector.alerts.engine import response_deadline
from collector.availability import silence_of
from collector.contracts import Contract, Priority
from collector.db.contract_store import get_contract
from collector.db.models import ContractRow, Finding, Host, Run
from collector.db.models_reports import OutboxRow, ReportRow
from collector.priority import priority_of_check
from collector.support_hours import elapsed_business_hours
from collector.ui.auth import ConsoleUser

EXPIRY_WARNING_DAYS = 60
REPORTING_RUN_AGE = timedelta(hours=24)
"""A host without an agent counts as reporting when its newest run is younger than this."""
RUN_HISTORY = 30
RESOLVED_SHOWN = 10
EVIDENCE_SHOWN = 20
PROBLEMS = (Severity.critical.value, Severity.warning.value)
"""Open findings that are problems; `unknown` ones (a check could not run) are listed apart."""
OPEN_KINDS = (*PROBLEMS, Severity.unknown.value)


class PageError(Exception):
    """A page the user may not see (403) or that does not exist (404); `key` names the text."""

    def __init__(self, status: int, key: str, params: Optional[dict[str, Any]] = None) -> None:
        super().__init__(key)
        self.status, self.key, self.params = status, key, params or {}


class Fmt:
    """Times, ages and names in the page's language; times in a contract's timezone."""

    def __init__(self, t: Texts, now: datetime) -> None:
        self.t, self.now = t, now

    def dt(self, instant: Optional[datetime], tz: Union[ZoneInfo, str]) -> str:
        if instant is None:
            return "—"
        zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
        return instant.astimezone(zone).strftime("%Y-%m-%d %H:%M")

    def span(self, delta: timedelta) -> str:
        minutes = max(int(delta.total_seconds() // 60), 0)
        if minutes < 60:
            return self.t("ui.span.minutes", {"m": minutes})
        if minutes < 48 * 60:
            return self.t("ui.span.hours", {"h": minutes // 60, "m": minutes % 60})
        return self.t("ui.span.days", {"d": minutes // 1440, "h": minutes % 1440 // 60})

    def hours(self, hours: float) -> str:
        return self.span(timedelta(hours=hours))

    def ago(self, instant: Optional[datetime]) -> str:
        if instant is None:
            return self.t("ui.never")
        return self.t("ui.ago", {"span": self.span(self.now - instant)})

    def sev(self, severity: str) -> str:
        return self.t(f"severity.{severity}")

    def value(self, value: Any, unit: Optional[str]) -> str:
        if value is None:
            return "—"
        return self.t.quantity(round(value, 1) if isinstance(value, float) else value, unit)

    def threshold(self, raw: Optional[dict[str, Any]]) -> str:
        if not raw:
            return "—"
        th = Threshold.model_validate(raw)
        sign = "≥" if th.direction == "above" else "≤"
        parts = [
            self.t(f"ui.threshold.{level}", {"limit": f"{sign} {self.value(limit, th.unit)}"})
            for level, limit in (("warning", th.warning), ("critical", th.critical))
            if limit is not None
        ]
        kind, _, name = th.provenance.partition(":")
        key = f"ui.provenance.{kind}"
        source = self.t(key, {"name": name}) if self.t.has(key) else th.provenance
        return self.t("ui.threshold", {"limits": " / ".join(parts) or "—", "provenance": source})


# ------------------------------------------------------------------------------------ scope


def visible_contracts(session: Session, user: ConsoleUser) -> list[Contract]:
    numbers = session.scalars(select(ContractRow.number).order_by(ContractRow.number)).all()
    out = []
    for number in numbers:
        contract = get_contract(session, number) if user.sees(number) else None
        if contract is not None:
            out.append(contract)
    return out


def contract_in_scope(session: Session, user: ConsoleUser, number: str) -> Contract:
    contract = get_contract(session, number)
    if contract is None:
        raise PageError(404, "ui.error.no_contract", {"number": number})
    if not user.sees(number):
        raise PageError(403, "ui.error.forbidden")
    return contract


def host_in_scope(session: Session, user: ConsoleUser, host_id: str) -> tuple[Host, Contract]:
    host = session.get(Host, host_id)
    if host is None:
        raise PageError(404, "ui.error.no_host")
    return host, contract_in_scope(session, user, host.contract)


def report_in_scope(session: Session, user: ConsoleUser, report_id: int) -> ReportRow:
    row = session.get(ReportRow, report_id)
    if row is None:
        raise PageError(404, "ui.error.no_report")
    contract_in_scope(session, user, row.contract)
    return row


# ------------------------------------------------------------------------------------ hosts


@dataclass
class HostLine:
    id: str
    hostname: str
    watched: bool
    """An enrolled agent reports signs of life; hosts seen only over SSH or import are not."""
    silent: bool
    reporting: bool
    last_seen: str
    last_seen_ago: str
    last_run: str
    last_run_ago: str
    worst: Optional[str]
    worst_text: str
    open_findings: int
    unknown: int


def _host_line(
    session: Session,
    f: Fmt,
    host: Host,
    contract: Contract,
    silence_default: int,
    counts: Counter[str],
) -> HostLine:
    watched = host.credential_sha256 is not None and host.revoked_at is None
    silent = watched and f.now - (host.last_seen_at or host.enrolled_at) > silence_of(
        contract, silence_default
    )
    recent_run = host.last_run_at is not None and f.now - host.last_run_at <= REPORTING_RUN_AGE
    worst = session.scalar(
        select(Run.worst)
        .where(Run.host_id == host.id)
        .order_by(Run.created_at.desc(), Run.id.desc())
        .limit(1)
    )
    return HostLine(
        id=host.id,
        hostname=host.hostname,
        watched=watched,
        silent=silent,
        reporting=(watched and not silent) or recent_run,
        last_seen=f.dt(host.last_seen_at, contract.tz),
        last_seen_ago=f.ago(host.last_seen_at) if watched and host.last_seen_at else "",
        last_run=f.dt(host.last_run_at, contract.tz),
        last_run_ago=f.ago(host.last_run_at),
        worst=worst,
        worst_text=f.sev(worst) if worst else "—",
        open_findings=sum(counts[s] for s in PROBLEMS),
        unknown=counts[Severity.unknown.value],
    )


def _live_hosts(session: Session, number: str) -> list[Host]:
    return list(
        session.scalars(
            select(Host)
            .where(Host.contract == number, Host.revoked_at.is_(None))
            .order_by(Host.hostname, Host.id)
        )
    )


def _open_counts(session: Session, number: str) -> dict[str, Counter[str]]:
    """host id → severity → open findings."""
    rows = session.execute(
        select(Finding.host_id, Finding.severity, func.count())
        .where(Finding.contract == number, Finding.state == "open")
        .group_by(Finding.host_id, Finding.severity)
    ).all()
    out: dict[str, Counter[str]] = {}
    for host_id, severity, n in rows:
        out.setdefault(host_id, Counter())[severity] = int(n)
    return out


def _missing(contract: Contract, hosts: list[Host]) -> list[str]:
    """Hosts the contract names by hostname that have never reported."""
    names = {h.hostname for h in hosts}
    return sorted({s.hostname for s in contract.hosts if s.hostname and s.hostname not in names})


# -------------------------------------------------------------------------------- contracts


@dataclass
class Fulfilment:
    next_due: str
    next_period: str
    delivered: int
    owed: int
    per_year: int


def _fulfilment(session: Session, f: Fmt, contract: Contract) -> Fulfilment:
    """Inspections of the current contract year: reports built for ended periods vs periods
    ended; and when the running period's report falls due."""
    current = periods.containing(contract, f.now)
    year = periods.contract_year(contract, f.now)
    ended = [
        p for p in periods.schedule(contract) if year.start <= p.start < year.end and p.end <= f.now
    ]
    built = set(
        session.scalars(
            select(ReportRow.period_key).where(
                ReportRow.contract == contract.number,
                ReportRow.scheduled.is_(True),
                ReportRow.state == "built",
            )
        )
    )
    return Fulfilment(
        next_due=current.last_day.isoformat() if current else "—",
        next_period=current.key if current else "",
        delivered=sum(1 for p in ended if p.key in built),
        owed=len(ended),
        per_year=contract.entitlements.remote_inspections_per_year,
    )


@dataclass
class ContractCard:
    number: str
    title: str
    customer: str
    level: str
    start: str
    end: str
    days_left: int
    expiry: Optional[str]
    """ui.expiry.soon / ui.expiry.past text, or None when the end is far."""
    hosts_total: int
    hosts_reporting: int
    missing: list[str]
    worst: Optional[str]
    worst_text: str
    worst_finding: Optional[FindingLine]
    open_findings: int
    unknown: int
    fulfilment: Fulfilment


def _expiry(f: Fmt, contract: Contract) -> tuple[int, Optional[str]]:
    days = (contract.end - f.now.astimezone(contract.tz).date()).days
    if days < 0:
        return days, f.t("ui.expiry.past", {"days": -days})
    if days <= EXPIRY_WARNING_DAYS:
        return days, f.t("ui.expiry.soon", {"days": days})
    return days, None


def contract_card(
    session: Session, f: Fmt, contract: Contract, silence_default: int
) -> tuple[ContractCard, list[HostLine], list[Host]]:
    hosts = _live_hosts(session, contract.number)
    opened = _open_counts(session, contract.number)
    lines = [
        _host_line(session, f, h, contract, silence_default, opened.get(h.id, Counter()))
        for h in hosts
    ]
    problems = session.scalars(
        select(Finding).where(
            Finding.contract == contract.number,
            Finding.state == "open",
            Finding.severity.in_(PROBLEMS),
        )
    ).all()
    worst_row = min(
        problems, key=lambda x: (-Severity(x.severity).rank, x.first_seen, x.id), default=None
    )
    worst = (
        finding_line(
            f,
            worst_row,
            contract,
            _hostnames(session, {worst_row.host_id}).get(worst_row.host_id, worst_row.host_id),
            with_deadline=False,
        )
        if worst_row is not None
        else None
    )
    missing = _missing(contract, hosts)
    days_left, expiry = _expiry(f, contract)
    card = ContractCard(
        number=contract.number,
        title=contract.title,
        customer=contract.customer.name,
        level=f.t(f"ui.level.{contract.level.value}"),
        start=contract.start.isoformat(),
        end=contract.end.isoformat(),
        days_left=days_left,
        expiry=expiry,
        hosts_total=len(hosts) + len(missing),
        hosts_reporting=sum(1 for line in lines if line.reporting),
        missing=missing,
        worst=worst.severity if worst else None,
        worst_text=worst.severity_text if worst else f.t("ui.none_open"),
        worst_finding=worst,
        open_findings=len(problems),
        unknown=sum(c[Severity.unknown.value] for c in opened.values()),
        fulfilment=_fulfilment(session, f, contract),
    )
    return card, lines, hosts


def contract_cards(
    session: Session, f: Fmt, user: ConsoleUser, silence_default: int
) -> list[ContractCard]:
    return [
        contract_card(session, f, c, silence_default)[0] for c in visible_contracts(session, user)
    ]


# --------------------------------------------------------------------------------- findings


@dataclass
class FindingLine:
    id: int
    contract: str
    host_id: str
    hostname: str
    check: str
    item: str
    severity: str
    severity_text: str
    category: str
    priority: Optional[str]
    summary: str
    recommendation: Optional[str]
    value: str
    threshold: str
    evidence: list[str]
    first_seen: str
    last_seen: str
    state: str
    deadline: Optional[datetime] = None
    deadline_text: str = ""
    time_left: str = ""
    overdue: bool = False
    acked: bool = False
    ack_text: str = ""


def finding_line(
    f: Fmt, finding: Finding, contract: Contract, hostname: str, *, with_deadline: bool = True
) -> FindingLine:
    priority = priority_of_check(finding.check, finding.severity, contract)
    params = finding.message_params or {}
    line = FindingLine(
        id=finding.id,
        contract=finding.contract,
        host_id=finding.host_id,
        hostname=hostname,
        check=finding.check,
        item=finding.item,
        severity=finding.severity,
        severity_text=f.sev(finding.severity),
        category=f.t(f"category.{finding.category}"),
        priority=priority.value if priority else None,
        summary=f.t.in_zone(contract.tz)(finding.message_key, params),
        recommendation=f.t.in_zone(contract.tz)(finding.recommendation_key, params)
        if finding.recommendation_key
        else None,
        value=f.value(finding.value, finding.unit),
        threshold=f.threshold(finding.threshold),
        evidence=list(finding.evidence)[:EVIDENCE_SHOWN],
        first_seen=f.dt(finding.first_seen, contract.tz),
        last_seen=f.dt(finding.last_seen, contract.tz),
        state=finding.state,
        acked=finding.ack_at is not None,
    )
    if finding.ack_at is not None:
        line.ack_text = f.t(
            "ui.acked_by",
            {"who": finding.ack_by or "?", "at": f.dt(finding.ack_at, contract.tz)},
        ) + (f" — {finding.ack_note}" if finding.ack_note else "")
    if priority is not None and with_deadline and finding.state == "open":
        _deadline(f, line, finding, priority, contract)
    return line


def _deadline(
    f: Fmt, line: FindingLine, finding: Finding, priority: Priority, contract: Contract
) -> None:
    """Response deadline and the support time left (or overdue) before it."""
    due = response_deadline(finding.first_seen, priority, contract)
    line.deadline = due
    line.deadline_text = f.dt(due, contract.tz)
    if finding.ack_at is not None:
        return
    if f.now < due:
        left = elapsed_business_hours(f.now, due, contract.support, contract.timezone)
        line.time_left = f.t("ui.time_left", {"span": f.hours(left)})
    else:
        late = elapsed_business_hours(due, f.now, contract.support, contract.timezone)
        line.overdue = True
        line.time_left = f.t("ui.overdue_by", {"span": f.hours(late)})


def _hostnames(session: Session, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    rows = session.execute(select(Host.id, Host.hostname).where(Host.id.in_(ids))).all()
    return {host_id: name for host_id, name in rows}


def open_findings(session: Session, f: Fmt, contract: Contract) -> list[FindingLine]:
    """Open findings of a contract (problems and checks that could not run): P1, P2, then the
    rest, worst and oldest first."""
    rows = session.scalars(
        select(Finding).where(
            Finding.contract == contract.number,
            Finding.state == "open",
            Finding.severity.in_(OPEN_KINDS),
        )
    ).all()
    names = _hostnames(session, {r.host_id for r in rows})
    lines = [finding_line(f, r, contract, names.get(r.host_id, r.host_id)) for r in rows]
    return sorted(
        lines,
        key=lambda x: (x.priority or "P9", -Severity(x.severity).rank, x.first_seen, x.id),
    )


def queue(session: Session, f: Fmt, user: ConsoleUser) -> list[FindingLine]:
    """Unacknowledged open P1/P2 findings the user may see, the least time left first."""
    contracts = {c.number: c for c in visible_contracts(session, user)}
    if not contracts:
        return []
    rows = session.scalars(
        select(Finding).where(
            Finding.contract.in_(contracts),
            Finding.state == "open",
            Finding.ack_at.is_(None),
            Finding.severity.in_(PROBLEMS),
        )
    ).all()
    names = _hostnames(session, {r.host_id for r in rows})
    lines = [
        finding_line(f, r, contracts[r.contract], names.get(r.host_id, r.host_id)) for r in rows
    ]
    due = [x for x in lines if x.priority is not None and x.deadline is not None]
    return sorted(due, key=lambda x: (x.deadline, x.priority, x.id))


def finding_in_scope(session: Session, user: ConsoleUser, finding_id: int) -> Finding:
    finding = session.get(Finding, finding_id)
    if finding is None:
        raise PageError(404, "ui.error.no_finding")
    contract_in_scope(session, user, finding.contract)
    return finding


# ------------------------------------------------------------------------------------- host


@dataclass
class RunLine:
    run_id: str
    created: str
    ago: str
    source: str
    via: str
    ad_hoc: bool
    worst: str
    worst_text: str
    findings: int


@dataclass
class Chart:
    title: str
    src: str
    """data: URI of the PNG."""


@dataclass
class HostPage:
    host: Host
    contract: Contract
    line: HostLine
    identity: list[tuple[str, str]]
    runs: list[RunLine]
    findings: list[FindingLine]
    resolved: list[FindingLine]
    charts: list[Chart] = field(default_factory=list)
    inspect_requested: str = ""


def _identity(f: Fmt, host: Host) -> list[tuple[str, str]]:
    ident = host.identity or {}
    addresses = ident.get("addresses") or []
    raw_os = ident.get("os")
    os_info: dict[str, Any] = raw_os if isinstance(raw_os, dict) else {}
    os_text = f"{os_info.get('name') or ''} {os_info.get('version') or ''}".strip()
    return [
        (f.t("ui.host.id"), host.id),
        (f.t("ui.host.machine_id"), host.machine_id or "—"),
        (f.t("ui.host.os"), os_text or "—"),
        (f.t("ui.host.arch"), str(ident.get("arch") or "—")),
        (f.t("ui.host.kernel"), str(ident.get("kernel") or "—")),
        (f.t("ui.host.addresses"), ", ".join(str(a) for a in addresses) or "—"),
        (f.t("ui.host.tags"), ", ".join(host.tags) or "—"),
        (f.t("ui.host.agent"), host.agent_version or "—"),
        (f.t("ui.host.enrolled"), f.dt(host.enrolled_at, "UTC") + " UTC"),
    ]


def _charts(session: Session, f: Fmt, host: Host, contract: Contract) -> list[Chart]:
    """The last 24 h of samples drawn by the reports' chart code (PNG, inlined as data: URIs)."""
    from collector.reports.data import chart_cid, metric_series
    from collector.reports.load import load_samples

    series = metric_series(load_samples(session, host.id, f.now))
    if series is None:
        return []
    from collector.reports.charts import host_charts  # matplotlib only when there is a chart

    pngs = host_charts(host.id, series, contract.tz)
    out = []
    for kind in ("cpu", "memory", "load", "disk"):
        png = pngs.get(chart_cid(host.id, kind))
        if png is not None:
            out.append(
                Chart(
                    title=f.t(f"ui.chart.{kind}"),
                    src="data:image/png;base64," + base64.b64encode(png).decode("ascii"),
                )
            )
    return out


def host_page(
    session: Session, f: Fmt, user: ConsoleUser, host_id: str, silence_default: int
) -> HostPage:
    host, contract = host_in_scope(session, user, host_id)
    findings = session.scalars(
        select(Finding)
        .where(Finding.host_id == host.id, Finding.state == "open")
        .order_by(Finding.first_seen)
    ).all()
    resolved = session.scalars(
        select(Finding)
        .where(Finding.host_id == host.id, Finding.state == "resolved")
        .order_by(Finding.resolved_at.desc())
        .limit(RESOLVED_SHOWN)
    ).all()
    runs = session.scalars(
        select(Run)
        .where(Run.host_id == host.id)
        .order_by(Run.created_at.desc(), Run.id.desc())
        .limit(RUN_HISTORY)
    ).all()
    counts = Counter(x.severity for x in findings)
    lines = [
        finding_line(f, x, contract, host.hostname) for x in findings if x.severity in OPEN_KINDS
    ]
    return HostPage(
        host=host,
        contract=contract,
        line=_host_line(session, f, host, contract, silence_default, counts),
        identity=_identity(f, host),
        runs=[
            RunLine(
                run_id=r.run_id,
                created=f.dt(r.created_at, contract.tz),
                ago=f.ago(r.created_at),
                source=f.t(f"ui.source.{r.source}"),
                via=r.via,
                ad_hoc=r.ad_hoc,
                worst=r.worst,
                worst_text=f.sev(r.worst),
                findings=r.findings,
            )
            for r in runs
        ],
        findings=sorted(
            lines, key=lambda x: (x.priority or "P9", -Severity(x.severity).rank, x.id)
        ),
        resolved=[
            finding_line(f, x, contract, host.hostname, with_deadline=False) for x in resolved
        ],
        charts=_charts(session, f, host, contract),
        inspect_requested=f.dt(host.inspect_requested_at, contract.tz)
        if host.inspect_requested_at
        else "",
    )


# ---------------------------------------------------------------------------------- reports


@dataclass
class Delivery:
    kind: str
    state: str
    state_text: str
    attempts: int
    max_attempts: int
    last_error: str
    next_attempt: str
    sent: str
    message_id: str
    recipients: str


@dataclass
class ReportLine:
    id: int
    contract: str
    period: str
    span: str
    scheduled: bool
    version: int
    lang: str
    state: str
    state_text: str
    status_text: str
    score: Optional[int]
    built: str
    has_html: bool
    has_pdf: bool
    delivery: str
    delivery_text: str
    error: str
    deliveries: list[Delivery] = field(default_factory=list)


def _delivery_state(items: list[Delivery]) -> str:
    """One word for a report's mail: none queued, or the least advanced state among them."""
    if not items:
        return "none"
    for state in ("failed", "pending", "sending"):
        if any(d.state == state for d in items):
            return state
    return "sent"


def _deliveries(
    session: Session, f: Fmt, ids: list[int], tz: ZoneInfo
) -> dict[int, list[Delivery]]:
    refs = {f"report:{i}": i for i in ids}
    out: dict[int, list[Delivery]] = {i: [] for i in ids}
    if not refs:
        return out
    rows = session.scalars(
        select(OutboxRow).where(OutboxRow.ref.in_(refs)).order_by(OutboxRow.id)
    ).all()
    for row in rows:
        payload = row.payload or {}
        recipients = payload.get("to") or payload.get("recipients") or []
        out[refs[row.ref]].append(
            Delivery(
                kind=row.kind,
                state=row.state,
                state_text=f.t(f"ui.delivery.{row.state}"),
                attempts=row.attempts,
                max_attempts=row.max_attempts,
                last_error=row.last_error or "",
                next_attempt=f.dt(row.next_attempt_at, tz) if row.state == "pending" else "",
                sent=f.dt(row.sent_at, tz) if row.sent_at else "",
                message_id=row.message_id or "",
                recipients=", ".join(str(r) for r in recipients)
                if isinstance(recipients, list)
                else str(recipients),
            )
        )
    return out


def report_lines(
    session: Session, f: Fmt, contracts: list[Contract], limit: int = 200
) -> list[ReportLine]:
    by_number = {c.number: c for c in contracts}
    if not by_number:
        return []
    rows = session.scalars(
        select(ReportRow)
        .where(ReportRow.contract.in_(by_number))
        .order_by(ReportRow.period_start.desc(), ReportRow.contract, ReportRow.id.desc())
        .limit(limit)
    ).all()
    out = []
    for row in rows:
        contract = by_number[row.contract]
        tz = contract.tz
        deliveries = _deliveries(session, f, [row.id], tz)[row.id]
        state = _delivery_state(deliveries)
        first = row.period_start.astimezone(tz).date()
        last = (row.period_end.astimezone(tz) - timedelta(seconds=1)).date()
        out.append(
            ReportLine(
                id=row.id,
                contract=row.contract,
                period=row.period_key,
                span=f"{first.isoformat()} – {last.isoformat()}",
                scheduled=row.scheduled,
                version=row.version,
                lang=row.lang,
                state=row.state,
                state_text=f.t(f"ui.report_state.{row.state}"),
                status_text=f.t(f"ui.status.{row.status}") if row.status else "—",
                score=row.score,
                built=f.dt(row.built_at, tz),
                has_html=row.html is not None,
                has_pdf=row.pdf is not None,
                delivery=state,
                delivery_text=f.t(f"ui.delivery.{state}"),
                error=row.error or "",
                deliveries=deliveries,
            )
        )
    return out


def report_html(row: ReportRow) -> str:
    if row.html is None:
        raise PageError(404, "ui.error.no_report_file")
    return zlib.decompress(row.html).decode("utf-8")


def report_periods(contract: Contract, now: datetime) -> list[tuple[str, str, bool]]:
    """Scheduled periods that have begun, newest first: (key, label, the default choice)."""
    begun = [p for p in periods.schedule(contract) if p.start <= now]
    ended = [p for p in begun if p.end <= now]
    default = (ended or begun)[-1] if begun else None
    return [
        (
            p.key,
            f"{p.key} ({p.first_day.isoformat()} – {p.last_day.isoformat()})",
            p is default,
        )
        for p in reversed(begun)
    ]
