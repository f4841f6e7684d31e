"""Read what a report on (contract, period) needs from the collector's database.

Only the newest run of each host in the period is decoded (payload and results); the others
are counted from their columns, so a quarter of hourly runs on a hundred hosts stays cheap.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Optional

from sqlalchemy import Text, cast, func, or_, select
from sqlalchemy.orm import Session

from checks.model import Message
from checks.wire import Gap
from collector import periods
from collector.availability import availability
from collector.contracts import Contract
from collector.db.models import Downtime, Finding, GapRow, Host, Run, SampleRow
from collector.db.models_reports import ReportRow
from collector.ingest import load_payload, load_results
from collector.periods import Period
from collector.reports.data import FindingRecord, HostInput, ReportInputs, RunRef
from collector.reports.samples import Samples

HISTORY = timedelta(hours=24)


def load_inputs(
    session: Session,
    contract: Contract,
    period: Period,
    *,
    now: datetime,
    version: int = 1,
    silence_minutes: int = 30,
) -> ReportInputs:
    number = contract.number
    hosts = session.scalars(select(Host).where(Host.contract == number)).all()
    by_id = {h.id: h for h in hosts}
    run_rows = session.execute(
        select(Run.id, Run.run_id, Run.host_id, Run.created_at, Run.source, Run.ad_hoc)
        .where(Run.contract == number, Run.created_at >= period.start, Run.created_at < period.end)
        .order_by(Run.created_at)
    ).all()
    refs: dict[str, list[RunRef]] = defaultdict(list)
    newest: dict[str, int] = {}
    for pk, run_id, host_id, created_at, source, ad_hoc in run_rows:
        refs[host_id].append(
            RunRef(run_id=run_id, created_at=created_at, source=source, ad_hoc=ad_hoc)
        )
        newest[host_id] = pk
    inputs: list[HostInput] = []
    for host_id, pk in newest.items():
        host = by_id[host_id]
        row = session.get(Run, pk)
        assert row is not None
        inputs.append(
            HostInput(
                hostname=host.hostname,
                host_id=host_id,
                latest=load_payload(row),
                results=load_results(row),
                runs=refs[host_id],
                # the period's last 24 h, or the last 24 h so far for a period still running
                samples=load_samples(session, host_id, min(period.end, now)),
                findings=_findings(session, host_id, period),
                downtime=_downtime(session, host_id, period),
                gaps=_gaps(session, host_id, period),
                availability=availability(
                    session,
                    host_id,
                    period.start,
                    period.end,
                    default_minutes=silence_minutes,
                    now=now,
                ),
            )
        )
    inspected = {h.hostname for h in inputs}
    expected = {s.hostname for s in contract.hosts if s.hostname}
    expected |= {h.hostname for h in hosts if h.revoked_at is None or h.revoked_at > period.start}
    return ReportInputs(
        contract=contract,
        period=period,
        hosts=inputs,
        missing=sorted(expected - inspected),
        delivered=_delivered(session, number),
        previous_period=_previous(session, contract, period),
        generated_at=now,
        version=version,
    )


def count_hosts(session: Session, number: str) -> int:
    """Hosts registered under the contract: how large its report will be, before loading it."""
    counted = select(func.count()).select_from(Host).where(Host.contract == number)
    return session.scalar(counted) or 0


def load_samples(session: Session, host_id: str, end: datetime) -> Samples:
    """The host's samples of the 24 h up to `end`, for reports and the console's host page.

    Only the columns charts and summaries use, straight into arrays: a day of minute samples
    on a hundred hosts is 144,000 rows, too many for an object each."""
    rows = session.execute(
        select(
            SampleRow.at,
            SampleRow.cpu_percent,
            SampleRow.memory_percent,
            SampleRow.swap_percent,
            SampleRow.load1,
            # as text: Samples.from_rows decodes all rows' JSON at once
            cast(SampleRow.mounts, Text),
        )
        .where(
            SampleRow.host_id == host_id,
            SampleRow.at >= end - HISTORY,
            SampleRow.at < end,
        )
        .order_by(SampleRow.at)
    )
    return Samples.from_rows(rows)


def _findings(session: Session, host_id: str, period: Period) -> list[FindingRecord]:
    rows = session.scalars(
        select(Finding).where(
            Finding.host_id == host_id,
            Finding.first_seen < period.end,
            or_(Finding.resolved_at.is_(None), Finding.resolved_at >= period.start),
        )
    ).all()
    return [
        FindingRecord(
            id=f.id,
            check=f.check,
            item=f.item or None,
            category=f.category,
            severity=f.severity,
            max_severity=f.max_severity,
            value=f.value,
            unit=f.unit,
            message=Message(key=f.message_key, params=f.message_params),
            recommendation_key=f.recommendation_key,
            first_seen=f.first_seen,
            last_seen=f.last_seen,
            resolved_at=f.resolved_at,
            ack_at=f.ack_at,
            ack_by=f.ack_by,
        )
        for f in rows
    ]


def _downtime(
    session: Session, host_id: str, period: Period
) -> list[tuple[datetime, Optional[datetime]]]:
    rows = session.scalars(
        select(Downtime).where(
            Downtime.host_id == host_id,
            Downtime.start < period.end,
            or_(Downtime.end.is_(None), Downtime.end > period.start),
        )
    ).all()
    return [(d.start, d.end) for d in rows]


def _gaps(session: Session, host_id: str, period: Period) -> list[Gap]:
    rows = session.scalars(
        select(GapRow).where(
            GapRow.host_id == host_id,
            GapRow.received_at >= period.start,
            GapRow.received_at < period.end,
        )
    ).all()
    return [
        Gap(gap_id=g.gap_id, kind=g.kind, dropped=g.dropped, first_at=g.first_at, last_at=g.last_at)
        for g in rows
    ]


def _delivered(session: Session, number: str) -> dict[str, int]:
    rows = session.execute(
        select(ReportRow.period_key, ReportRow.runs).where(
            ReportRow.contract == number, ReportRow.scheduled.is_(True), ReportRow.state == "built"
        )
    ).all()
    return {key: runs for key, runs in rows}


def _previous(session: Session, contract: Contract, period: Period) -> Optional[str]:
    """The newest report before this period, else the scheduled period just before it."""
    key = session.scalar(
        select(ReportRow.period_key)
        .where(ReportRow.contract == contract.number, ReportRow.period_end <= period.start)
        .order_by(ReportRow.period_end.desc())
        .limit(1)
    )
    if key:
        return key
    earlier = [p for p in periods.schedule(contract) if p.end <= period.start]
    return earlier[-1].key if earlier else None
