"""Decides what the service desk must hear, once: P1/P2 findings, deadlines, silent hosts, digests.

Called after each ingest transaction commits (for that host) and by the scheduler every minute
(for everything, which also catches up on whatever a crashed hook missed). Each step runs in its
own write transaction, claims its decisions in the database (see collector/db/alerts.py) and
queues one notification per channel in the same transaction, so a decision and its messages
exist together or not at all, on any number of collectors. Time is always passed in (`now`):
deadlines are counted in the contract's support hours, so tests drive the clock explicitly.

Noise rules:
- a finding is announced when it first maps to P1/P2, again only when its priority changes or it
  escalates, and once more when it resolves — never per run;
- findings raised by one run go out as one message per channel;
- an unacknowledged finding escalates to the second list when its response deadline is near
  (`near_minutes` of support time left) and again when it has passed; with no second list the
  escalation goes to the main channels;
- a host silent longer than its contract allows is announced once, and its recovery once;
- contracts with alerts disabled, without channels, or outside their start..end dates are quiet.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Optional

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from collector import outbox
from collector.alerts import deliver
from collector.alerts.config import AlertDefaults, EffectiveAlerts, effective
from collector.alerts.messages import (
    AlertEvent,
    AlertLine,
    AlertMessage,
    finding_link,
    host_link,
    local_time,
    one_line,
)
from collector.availability import silence_of
from collector.contracts import Contract, Priority
from collector.db.alerts import (
    NEAR,
    NONE,
    PAST,
    AlertFinding,
    AlertSilence,
    insert_ignore,
)
from collector.db.contract_store import get_contract
from collector.db.engine import Database
from collector.db.models import ContractRow, Finding, Host
from collector.db.models_reports import OutboxRow
from collector.db.types import utcnow
from collector.priority import priority_of_check
from collector.settings import CollectorSettings, SmtpSettings
from collector.support_hours import deadline

log = logging.getLogger(__name__)

OPEN, RESOLVED = "open", "resolved"
ALERTABLE = ("warning", "critical")
"""Severities a priority rule can map to P1/P2 (the default mapping uses only critical)."""


@dataclass(frozen=True)
class Alerting:
    """The engine's view of the collector: its database and the settings alerts depend on."""

    db: Database
    defaults: AlertDefaults
    base_url: str
    silence_minutes: int
    smtp: SmtpSettings = field(default_factory=SmtpSettings)

    @classmethod
    def from_settings(cls, db: Database, settings: CollectorSettings) -> Alerting:
        return cls(db, settings.alerts, settings.base_url, settings.silence_minutes, settings.smtp)

    def settings_for(self, contract: Contract) -> EffectiveAlerts:
        return effective(self.defaults, contract.alerts, contract.report.language, self.base_url)


def response_deadline(first_seen: datetime, priority: Priority, contract: Contract) -> datetime:
    """When the contract's response time for `priority` runs out, counted in its support hours."""
    hours = getattr(contract.response_hours, priority.value)
    return deadline(first_seen, hours, contract.support, contract.timezone)


def _near(first_seen: datetime, priority: Priority, contract: Contract, minutes: int) -> datetime:
    """When only `minutes` of support time are left before the response deadline."""
    hours = getattr(contract.response_hours, priority.value)
    return deadline(first_seen, max(hours - minutes / 60, 0.0), contract.support, contract.timezone)


class _Contracts:
    """Contracts and their effective alert settings, loaded once per transaction."""

    def __init__(self, alerting: Alerting, session: Session, now: datetime) -> None:
        self.alerting, self.session, self.now = alerting, session, now
        self._seen: dict[str, Optional[tuple[Contract, EffectiveAlerts]]] = {}

    def active(self, number: str) -> Optional[tuple[Contract, EffectiveAlerts]]:
        if number not in self._seen:
            self._seen[number] = self._load(number)
        return self._seen[number]

    def _load(self, number: str) -> Optional[tuple[Contract, EffectiveAlerts]]:
        contract = get_contract(self.session, number)
        if contract is None:
            return None
        eff = self.alerting.settings_for(contract)
        today = self.now.astimezone(contract.tz).date()
        if not eff.enabled or not eff.channels or not contract.start <= today <= contract.end:
            return None
        return contract, eff


def after_ingest(alerting: Alerting, host_id: str, now: Optional[datetime] = None) -> int:
    """The ingest hook: new, re-prioritised and resolved findings of one host. Never raises."""
    try:
        return process_findings(alerting, now or utcnow(), host_id=host_id)
    except Exception:  # an alert problem must never fail an ingest that already committed
        log.exception("alerts after ingest of host %s failed; the scheduler will catch up", host_id)
        return 0


def tick(alerting: Alerting, now: Optional[datetime] = None) -> dict[str, int]:
    """The scheduler's minute: every step for every contract; returns notifications queued."""
    when = now or utcnow()
    done: dict[str, int] = {}
    for name, step in (
        ("findings", process_findings),
        ("escalations", process_escalations),
        ("silences", process_silences),
        ("digests", process_digests),
    ):
        try:
            done[name] = step(alerting, when)
        except Exception:  # one failing step must not stop the others; the next tick retries
            log.exception("alert step %s failed", name)
            done[name] = 0
    return done


def run_minute(alerting: Alerting, worker: str, now: Optional[datetime] = None) -> dict[str, int]:
    """The scheduler's job (every minute, in every collector): decide, then deliver what is due.

    Draining only alert kinds here keeps a slow report mail out of the alerts' way; the report
    drain may also include `deliver.handlers(alerting)` — claims make either order safe.
    """
    done = tick(alerting, now)
    sent = outbox.drain(alerting.db, worker, deliver.handlers(alerting))
    done["sent"], done["failed"] = len(sent.sent), len(sent.failed)
    return done


# -- findings ---------------------------------------------------------------------------------


def process_findings(alerting: Alerting, now: datetime, host_id: Optional[str] = None) -> int:
    """Announce findings that became P1/P2, changed priority or resolved (one host or all).

    For one host (the ingest hook) a read-only pass comes first, so that the common run that
    changes nothing alert-worthy costs no write transaction.
    """
    if host_id is not None:
        with alerting.db.read() as session:
            contracts = _Contracts(alerting, session, now)
            if not any(
                _change(f, s, active[0]) is not None
                for f, s in _candidates(session, host_id, contracts)
                if (active := contracts.active(f.contract)) is not None
            ):
                return 0
    queued = 0
    with alerting.db.write() as session:
        contracts = _Contracts(alerting, session, now)
        groups: dict[tuple[str, AlertEvent, str], list[tuple[Finding, Optional[Priority]]]]
        groups = defaultdict(list)
        for finding, state in _candidates(session, host_id, contracts):
            active = contracts.active(finding.contract)
            change = _change(finding, state, active[0]) if active is not None else None
            if change is None or not _claim(session, finding, state, change, now):
                continue
            event, priority = change
            if priority is None and event is not AlertEvent.resolved:
                continue  # dropped below P2: noted quietly, announced again if it comes back
            run = finding.resolved_run if event is AlertEvent.resolved else finding.last_run
            groups[(finding.contract, event, run or finding.last_run)].append((finding, priority))
        hostnames = _hostnames(session, {f.host_id for items in groups.values() for f, _ in items})
        for (number, event, run), items in groups.items():
            contract, eff = contracts.active(number)  # type: ignore[misc]
            lines = [_finding_line(f, p, contract, eff, hostnames, event) for f, p in items]
            message = _message(contract, eff, event, now, lines)
            key = f"{event.value}:{run}:{uuid.uuid4().hex}"
            queued += _enqueue(session, eff, "main", key, message)
    return queued


def _candidates(
    session: Session, host_id: Optional[str], contracts: _Contracts
) -> Sequence[tuple[Finding, Optional[AlertFinding]]]:
    """Open findings, and announced ones whose resolution has not been announced yet.

    Of all hosts, only those of contracts whose alerting is on: the others' would be loaded
    whole only to be passed over, and in the scheduler's minute that was every open finding of
    every host (~2,400 rows at the ingest bench's 200 hosts, in each worker)."""
    query = (
        select(Finding, AlertFinding)
        .outerjoin(AlertFinding, AlertFinding.finding_id == Finding.id)
        .where(
            or_(
                Finding.state == OPEN,
                and_(AlertFinding.finding_id.is_not(None), AlertFinding.resolved_sent.is_(False)),
            )
        )
        .order_by(Finding.id)
    )
    if host_id is not None:
        query = query.where(Finding.host_id == host_id)
    else:
        numbers = [n for n in session.scalars(select(ContractRow.number)) if contracts.active(n)]
        if not numbers:
            return []
        query = query.where(Finding.contract.in_(numbers))
    return [(f, s) for f, s in session.execute(query)]


def _change(
    finding: Finding, state: Optional[AlertFinding], contract: Contract
) -> Optional[tuple[AlertEvent, Optional[Priority]]]:
    """What a finding's alert state should become now, if anything (decided, not yet claimed)."""
    if finding.state == RESOLVED:
        if state is None or state.resolved_sent:
            return None
        return AlertEvent.resolved, None
    priority = (
        priority_of_check(finding.check, finding.severity, contract)
        if finding.severity in ALERTABLE
        else None
    )
    if state is None:
        return (AlertEvent.raised, priority) if priority is not None else None
    if state.priority == (priority.value if priority else ""):
        return None
    return AlertEvent.reprioritized, priority


def _claim(
    session: Session,
    finding: Finding,
    state: Optional[AlertFinding],
    change: tuple[AlertEvent, Optional[Priority]],
    now: datetime,
) -> bool:
    """Make the change in the database; False when another transaction made it first."""
    event, priority = change
    if event is AlertEvent.resolved:
        return _cas(
            session,
            finding.id,
            AlertFinding.resolved_sent.is_(False),
            resolved_sent=True,
            updated_at=now,
        )
    wanted = priority.value if priority else ""
    if state is None:
        return _claim_finding(session, finding, wanted, now)
    return _cas(
        session,
        finding.id,
        AlertFinding.priority == state.priority,
        priority=wanted,
        escalation=NONE,
        updated_at=now,
    )


def _claim_finding(session: Session, finding: Finding, priority: str, now: datetime) -> bool:
    return insert_ignore(
        session,
        AlertFinding,
        {
            "finding_id": finding.id,
            "contract": finding.contract,
            "priority": priority,
            "escalation": NONE,
            "resolved_sent": False,
            "notified_at": now,
            "updated_at": now,
        },
    )


def _cas(session: Session, finding_id: int, condition: Any, **values: Any) -> bool:
    """Compare-and-set on a finding's alert state: True when this transaction made the change."""
    result = session.execute(
        update(AlertFinding)
        .where(AlertFinding.finding_id == finding_id, condition)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def _hostnames(session: Session, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    rows = session.execute(select(Host.id, Host.hostname).where(Host.id.in_(ids)))
    return {host_id: hostname for host_id, hostname in rows}


def _evidence(finding: Finding) -> str:
    line = one_line(finding.evidence or [])
    if line or finding.value is None:
        return line
    return f"{finding.value}{finding.unit or ''}"


def _finding_line(
    finding: Finding,
    priority: Optional[Priority],
    contract: Contract,
    eff: EffectiveAlerts,
    hostnames: dict[str, str],
    event: AlertEvent,
) -> AlertLine:
    return AlertLine(
        host=hostnames.get(finding.host_id, finding.host_id),
        priority=priority.value if priority else None,
        severity=finding.severity,
        check=finding.check,
        item=finding.item or None,
        finding_id=finding.id,
        text_key=finding.message_key,
        text_params=finding.message_params or {},
        wrap_key="alerts.resolved.finding" if event is AlertEvent.resolved else None,
        evidence=_evidence(finding),
        deadline=response_deadline(finding.first_seen, priority, contract) if priority else None,
        link=finding_link(eff.console_url, finding.id),
    )


def _message(
    contract: Contract,
    eff: EffectiveAlerts,
    event: AlertEvent,
    now: datetime,
    lines: Sequence[AlertLine],
    *,
    escalation: Optional[Literal["near", "past"]] = None,
    date: Optional[str] = None,
) -> AlertMessage:
    return AlertMessage(
        event=event,
        escalation=escalation,
        contract=contract.number,
        customer=contract.customer.name,
        timezone=contract.timezone,
        lang=eff.language,
        created_at=now,
        date=date,
        lines=list(lines),
    )


# -- escalation -------------------------------------------------------------------------------


def process_escalations(alerting: Alerting, now: datetime) -> int:
    queued = 0
    with alerting.db.write() as session:
        contracts = _Contracts(alerting, session, now)
        rows = session.execute(
            select(Finding, AlertFinding)
            .join(AlertFinding, AlertFinding.finding_id == Finding.id)
            .where(
                Finding.state == OPEN,
                Finding.ack_at.is_(None),
                AlertFinding.priority.in_(("P1", "P2")),
                AlertFinding.escalation < PAST,
            )
            .order_by(Finding.id)
        )
        groups: dict[tuple[str, int], list[tuple[Finding, Priority]]] = defaultdict(list)
        for finding, state in rows:
            active = contracts.active(finding.contract)
            if active is None:
                continue
            contract, eff = active
            priority = Priority(state.priority)
            if now >= response_deadline(finding.first_seen, priority, contract):
                level = PAST
            elif now >= _near(finding.first_seen, priority, contract, eff.near_minutes):
                level = NEAR
            else:
                continue
            if level > state.escalation and _cas(
                session,
                finding.id,
                and_(AlertFinding.escalation < level, AlertFinding.priority == state.priority),
                escalation=level,
                updated_at=now,
            ):
                groups[(finding.contract, level)].append((finding, priority))
        hostnames = _hostnames(session, {f.host_id for items in groups.values() for f, _ in items})
        for (number, level), items in groups.items():
            contract, eff = contracts.active(number)  # type: ignore[misc]
            event = AlertEvent.escalated
            lines = [_finding_line(f, p, contract, eff, hostnames, event) for f, p in items]
            which: Literal["near", "past"] = "past" if level == PAST else "near"
            message = _message(contract, eff, event, now, lines, escalation=which)
            key = f"escalated-{which}:{number}:{uuid.uuid4().hex}"
            queued += _enqueue(session, eff, "escalation", key, message)
    return queued


# -- silent hosts -----------------------------------------------------------------------------


def process_silences(alerting: Alerting, now: datetime) -> int:
    queued = 0
    with alerting.db.write() as session:
        contracts = _Contracts(alerting, session, now)
        open_rows = {
            s.host_id: s
            for s in session.scalars(
                select(AlertSilence).where(AlertSilence.recovered_at.is_(None))
            ).all()
        }
        hosts = session.scalars(
            select(Host).where(Host.revoked_at.is_(None), Host.credential_sha256.is_not(None))
        ).all()
        silent: dict[str, list[AlertLine]] = defaultdict(list)
        recovered: dict[str, list[AlertLine]] = defaultdict(list)
        for host in hosts:
            active = contracts.active(host.contract)
            if active is None:
                continue
            contract, eff = active
            last = host.last_seen_at or host.enrolled_at
            ongoing = open_rows.pop(host.id, None)
            if ongoing is not None and last > ongoing.since and _close(session, ongoing, now):
                recovered[host.contract].append(_recovered_line(host, ongoing, last, contract, eff))
            limit = silence_of(contract, alerting.silence_minutes)
            if now - last <= limit or (ongoing is not None and ongoing.since == last):
                continue
            if insert_ignore(
                session,
                AlertSilence,
                {"host_id": host.id, "contract": host.contract, "since": last, "alerted_at": now},
            ):
                silent[host.contract].append(_silent_line(host, last, limit, now, contract, eff))
        for leftover in open_rows.values():  # revoked hosts, contracts gone quiet: close silently
            _close(session, leftover, now)
        for event, by_contract in ((AlertEvent.silent, silent), (AlertEvent.recovered, recovered)):
            for number, lines in by_contract.items():
                contract, eff = contracts.active(number)  # type: ignore[misc]
                message = _message(contract, eff, event, now, lines)
                key = f"{event.value}:{number}:{uuid.uuid4().hex}"
                queued += _enqueue(session, eff, "main", key, message)
    return queued


def _close(session: Session, silence: AlertSilence, now: datetime) -> bool:
    result = session.execute(
        update(AlertSilence)
        .where(AlertSilence.id == silence.id, AlertSilence.recovered_at.is_(None))
        .values(recovered_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def _minutes(delta: timedelta) -> int:
    return int(delta.total_seconds() // 60)


def _silent_line(
    host: Host,
    last: datetime,
    limit: timedelta,
    now: datetime,
    contract: Contract,
    eff: EffectiveAlerts,
) -> AlertLine:
    return AlertLine(
        host=host.hostname,
        text_key="alerts.silent.finding",
        text_params={
            "minutes": _minutes(now - last),
            "limit": _minutes(limit),
            "since": local_time(last, contract.timezone),
        },
        link=host_link(eff.console_url, host.id),
    )


def _recovered_line(
    host: Host, silence: AlertSilence, last: datetime, contract: Contract, eff: EffectiveAlerts
) -> AlertLine:
    return AlertLine(
        host=host.hostname,
        text_key="alerts.recovered.finding",
        text_params={
            "minutes": _minutes(last - silence.since),
            "since": local_time(silence.since, contract.timezone),
        },
        link=host_link(eff.console_url, host.id),
    )


# -- daily digest -----------------------------------------------------------------------------


def process_digests(alerting: Alerting, now: datetime) -> int:
    queued = 0
    with alerting.db.write() as session:
        contracts = _Contracts(alerting, session, now)
        for number in session.scalars(select(ContractRow.number)).all():
            active = contracts.active(number)
            if active is None:
                continue
            contract, eff = active
            local = now.astimezone(contract.tz)
            if not eff.digest.enabled or local.time() < eff.digest.at:
                continue
            date = local.date().isoformat()
            prefix = f"digest:{number}:{date}"
            done = session.scalar(
                select(OutboxRow.id).where(OutboxRow.key.startswith(prefix + "/")).limit(1)
            )
            if done is not None:
                continue
            lines = _digest_lines(alerting, session, contract, eff, now)
            message = _message(contract, eff, AlertEvent.digest, now, lines, date=date)
            queued += _enqueue(session, eff, "main", prefix, message)
    return queued


def _digest_lines(
    alerting: Alerting, session: Session, contract: Contract, eff: EffectiveAlerts, now: datetime
) -> list[AlertLine]:
    """Open unacknowledged P1/P2 findings by priority and age, then hosts still silent."""
    rows = session.execute(
        select(Finding, AlertFinding)
        .join(AlertFinding, AlertFinding.finding_id == Finding.id)
        .where(
            Finding.contract == contract.number,
            Finding.state == OPEN,
            Finding.ack_at.is_(None),
            AlertFinding.priority.in_(("P1", "P2")),
        )
        .order_by(AlertFinding.priority, Finding.first_seen)
    )
    items = [(f, Priority(s.priority)) for f, s in rows]
    hostnames = _hostnames(session, {f.host_id for f, _ in items})
    lines = [_finding_line(f, p, contract, eff, hostnames, AlertEvent.digest) for f, p in items]
    silences = session.execute(
        select(AlertSilence, Host)
        .join(Host, Host.id == AlertSilence.host_id)
        .where(AlertSilence.contract == contract.number, AlertSilence.recovered_at.is_(None))
        .order_by(AlertSilence.since)
    )
    for silence, host in silences:
        limit = silence_of(contract, alerting.silence_minutes)
        lines.append(_silent_line(host, silence.since, limit, now, contract, eff))
    return lines


# -- queueing ---------------------------------------------------------------------------------


def _enqueue(
    session: Session, eff: EffectiveAlerts, level: str, event_key: str, message: AlertMessage
) -> int:
    """One outbox row per channel of the list (the main list when no second list is set)."""
    channels = eff.channels
    if level == "escalation" and eff.escalation:
        channels = eff.escalation
    else:
        level = "main"
    body = message.model_dump(mode="json")
    queued = 0
    for channel in channels:
        queued += outbox.enqueue(
            session,
            kind=deliver.kind_of(channel),
            key=f"{event_key}/{level}/{channel.label}",
            ref=f"alert:{event_key}"[:100],
            contract=message.contract,
            payload=deliver.Envelope(level=level, channel=channel.label, message=body).model_dump(
                mode="json"
            ),
            now=message.created_at,
        )
    return queued
