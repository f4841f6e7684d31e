"""Build a contract's report for a period once, store it, and queue its mail in the outbox.

The (contract, period_key) row is the claim: a collector inserts it in state `building` with a
lease, builds outside any transaction, and stores the result only while it still holds the
claim. A builder that dies leaves a lease that expires; the next collector takes it over. A
built report is never rebuilt by the scheduler; `xunjian report build` rebuilds on purpose and
bumps the report's version (so a resend gets a new delivery key and Message-ID).
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Optional

from pydantic import BaseModel
from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from collector.contracts import Contract
from collector.db.engine import Database
from collector.db.models_reports import OutboxRow, ReportRow
from collector.db.types import utcnow
from collector.mail import compose, envelope, message_id, send
from collector.outbox import STATES, Handler, OutboxItem, PermanentFailure, counts, enqueue
from collector.periods import Period
from collector.reports.data import report_summary
from collector.reports.load import count_hosts, load_inputs
from collector.reports.render import produce, workers_for
from collector.settings import CollectorSettings, SmtpSettings

log = logging.getLogger(__name__)

BUILDING, BUILT, FAILED = "building", "built", "failed"
BUILD_LEASE = timedelta(minutes=15)
REPORT_MAIL = "report_mail"


@dataclass(frozen=True)
class BuildOutcome:
    report_id: int
    version: int
    built: bool
    queued: bool
    reason: str = ""


def claim(
    db: Database,
    contract: Contract,
    period: Period,
    lang: str,
    worker: str,
    *,
    rebuild: bool = False,
    now: Optional[datetime] = None,
) -> Optional[tuple[int, int]]:
    """(report id, version) when `worker` may build; None when another has it or it is built."""
    when = now or utcnow()
    values = {
        "contract": contract.number,
        "period_key": period.key,
        "period_start": period.start,
        "period_end": period.end,
        "scheduled": period.scheduled,
        "state": BUILDING,
        "lang": lang,
        "version": 1,
        "claimed_by": worker,
        "claimed_until": when + BUILD_LEASE,
        "runs": 0,
        "hosts_inspected": 0,
        "hosts_expected": 0,
        "summary": {},
        "created_at": when,
    }
    with db.write() as session:
        insert = postgresql.insert if not db.is_sqlite else sqlite.insert
        stmt = (
            insert(ReportRow)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["contract", "period_key"])
            .returning(ReportRow.id)
        )
        inserted = session.execute(stmt).scalar()  # (rowcount is -1 here on psycopg)
        if inserted is not None:
            return inserted, 1
        row = session.scalars(
            select(ReportRow).where(
                ReportRow.contract == contract.number, ReportRow.period_key == period.key
            )
        ).one()
        takeover = or_(
            ReportRow.state == FAILED,
            (ReportRow.state == BUILDING) & (ReportRow.claimed_until < when),
        )
        if rebuild:
            takeover = or_(takeover, ReportRow.state == BUILT)
        bump = 1 if row.state == BUILT else 0
        taken = session.execute(
            update(ReportRow)
            .where(ReportRow.id == row.id, takeover)
            .values(
                state=BUILDING,
                claimed_by=worker,
                claimed_until=when + BUILD_LEASE,
                version=ReportRow.version + bump,
                lang=lang,
                error=None,
            )
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        return (row.id, row.version + bump) if taken else None


def build(
    db: Database,
    settings: CollectorSettings,
    contract: Contract,
    period: Period,
    *,
    worker: str,
    lang: Optional[str] = None,
    send_mail: bool = True,
    rebuild: bool = False,
    now: Optional[datetime] = None,
) -> Optional[BuildOutcome]:
    """Claim, build, store and (optionally) queue the mail; None when someone else builds it."""
    when = now or utcnow()
    language = lang or contract.report.language
    claimed = claim(db, contract, period, language, worker, rebuild=rebuild, now=when)
    if claimed is None:
        return None
    report_id, version = claimed
    try:
        with db.read() as session:
            hosts = count_hosts(session, contract.number)
        # started first, so that the workers' imports overlap the load
        with workers_for(hosts) as workers:
            with db.read() as session:
                inputs = load_inputs(
                    session,
                    contract,
                    period,
                    now=when,
                    version=version,
                    silence_minutes=settings.silence_minutes,
                )
            timings: dict[str, float] = {}
            ((data, out),) = produce(inputs, [language], pool=workers, timings=timings)
        log.info(
            "report %s %s built: %s",
            contract.number,
            period.key,
            ", ".join(f"{k} {v:.1f}" for k, v in timings.items()),
        )
        mail = compose(
            subject=out.subject,
            text=out.mail_text,
            html=out.mail_html,
            images=out.mail_images,
            pdf=out.pdf,
            filename=out.attachment_name,
            ascii_filename=out.attachment_ascii,
        ).as_bytes()
    except Exception as exc:
        log.exception("report %s %s failed to build", contract.number, period.key)
        with db.write() as session:
            session.execute(
                update(ReportRow)
                .where(ReportRow.id == report_id, ReportRow.claimed_by == worker)
                .values(
                    state=FAILED, error=f"{type(exc).__name__}: {exc}"[:2000], claimed_until=None
                )
            )
        raise
    runs = sum(len(h.runs) for h in inputs.hosts)
    recipients = list(contract.report.recipients)
    with db.write() as session:
        stored = session.execute(
            update(ReportRow)
            .where(
                ReportRow.id == report_id,
                ReportRow.claimed_by == worker,
                ReportRow.state == BUILDING,
            )
            .values(
                state=BUILT,
                claimed_until=None,
                runs=runs,
                hosts_inspected=data.summary.hosts_inspected,
                hosts_expected=data.summary.hosts_expected,
                score=data.summary.score,
                status=data.summary.status.value,
                html=zlib.compress(out.html.encode(), 6),
                pdf=out.pdf,
                mail=zlib.compress(mail, 6),
                summary=report_summary(data),
                built_at=when,
            )
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        if not stored:
            return BuildOutcome(report_id, version, built=False, queued=False, reason="claim lost")
        queued = False
        reason = ""
        if send_mail and recipients:
            delivery = f"v{version}"
            queued = enqueue(
                session,
                kind=REPORT_MAIL,
                key=f"report:{contract.number}:{period.key}:{delivery}",
                ref=f"report:{report_id}",
                contract=contract.number,
                payload={"report_id": report_id, "to": recipients, "cc": list(contract.report.cc)},
                message_id=message_id(contract.number, period.key, delivery, settings.smtp.sender),
                now=when,
            )
        elif send_mail:
            reason = "the contract names no report recipients"
    return BuildOutcome(report_id, version, built=True, queued=queued, reason=reason)


def report_mail_handler(db: Database, smtp: SmtpSettings) -> Handler:
    """Outbox handler for `report_mail`: the stored message, this delivery's envelope, SMTP."""

    def deliver(item: OutboxItem) -> None:
        with db.read() as session:
            row = session.get(ReportRow, int(item.payload["report_id"]))
            stored = row.mail if row is not None else None
        if stored is None:
            raise PermanentFailure(f"report {item.payload.get('report_id')} has no stored mail")
        to = list(item.payload.get("to", []))
        cc = list(item.payload.get("cc", []))
        msg = envelope(
            zlib.decompress(stored),
            sender=smtp.sender or "",
            to=to,
            cc=cc,
            msg_id=item.message_id or "",
        )
        send(smtp, msg, to + cc)

    return deliver


def deliveries(db: Database, report_id: int) -> list[OutboxRow]:
    with db.read() as session:
        return list(
            session.scalars(
                select(OutboxRow)
                .where(OutboxRow.ref == f"report:{report_id}")
                .order_by(OutboxRow.id)
            ).all()
        )


class DeliveryInfo(BaseModel):
    id: int
    state: str
    attempts: int
    max_attempts: int
    next_attempt_at: datetime
    sent_at: Optional[datetime]
    last_error: Optional[str]
    message_id: Optional[str]
    to: list[str]


class ReportInfo(BaseModel):
    """A report as listings show it (`xunjian report list`, the API, the console)."""

    id: int
    contract: str
    period: str
    period_start: datetime
    period_end: datetime
    scheduled: bool
    state: str
    lang: str
    version: int
    score: Optional[int]
    status: Optional[str]
    hosts_inspected: int
    hosts_expected: int
    runs: int
    built_at: Optional[datetime]
    error: Optional[str]
    delivery: str
    """none | pending | sending | sent | failed: the state of the newest delivery"""
    deliveries: list[DeliveryInfo]


def list_reports(
    session: Session, contract: Optional[str] = None, report_id: Optional[int] = None
) -> list[ReportInfo]:
    query = select(ReportRow).order_by(ReportRow.contract, ReportRow.period_start)
    if contract is not None:
        query = query.where(ReportRow.contract == contract)
    if report_id is not None:
        query = query.where(ReportRow.id == report_id)
    rows = session.scalars(query).all()
    refs = [f"report:{r.id}" for r in rows]
    by_ref: dict[str, list[OutboxRow]] = {}
    if refs:
        for o in session.scalars(
            select(OutboxRow).where(OutboxRow.ref.in_(refs)).order_by(OutboxRow.id)
        ):
            by_ref.setdefault(o.ref, []).append(o)
    out = []
    for r in rows:
        sent = by_ref.get(f"report:{r.id}", [])
        out.append(
            ReportInfo(
                id=r.id,
                contract=r.contract,
                period=r.period_key,
                period_start=r.period_start,
                period_end=r.period_end,
                scheduled=r.scheduled,
                state=r.state,
                lang=r.lang,
                version=r.version,
                score=r.score,
                status=r.status,
                hosts_inspected=r.hosts_inspected,
                hosts_expected=r.hosts_expected,
                runs=r.runs,
                built_at=r.built_at,
                error=r.error,
                delivery=sent[-1].state if sent else "none",
                deliveries=[
                    DeliveryInfo(
                        id=o.id,
                        state=o.state,
                        attempts=o.attempts,
                        max_attempts=o.max_attempts,
                        next_attempt_at=o.next_attempt_at,
                        sent_at=o.sent_at,
                        last_error=o.last_error,
                        message_id=o.message_id,
                        to=list(o.payload.get("to", [])) + list(o.payload.get("cc", [])),
                    )
                    for o in sent
                ],
            )
        )
    return out


def stored_document(session: Session, report_id: int, kind: str) -> Optional[tuple[str, bytes]]:
    """(contract, HTML or PDF bytes) of a built report, or None."""
    row = session.get(ReportRow, report_id)
    if row is None or row.state != BUILT:
        return None
    if kind == "pdf":
        return (row.contract, row.pdf) if row.pdf else None
    return (row.contract, zlib.decompress(row.html)) if row.html else None


def metrics_text(session: Session) -> str:
    """Prometheus lines: reports by build state and report mail by delivery state (zeros too,
    so an alerting rule on `xunjian_report_mail{state="failed"} > 0` has a series at once)."""
    mail = counts(session)
    built = dict(
        session.execute(select(ReportRow.state, func.count()).group_by(ReportRow.state)).all()
    )
    lines = [
        "# HELP xunjian_reports Reports by build state.",
        "# TYPE xunjian_reports gauge",
        *(f'xunjian_reports{{state="{s}"}} {built.get(s, 0)}' for s in (BUILDING, BUILT, FAILED)),
        "# HELP xunjian_report_mail Report mail in the outbox, by delivery state.",
        "# TYPE xunjian_report_mail gauge",
        *(f'xunjian_report_mail{{state="{s}"}} {mail.get((REPORT_MAIL, s), 0)}' for s in STATES),
    ]
    return "\n".join(lines) + "\n"
