"""The collector's clock: report builds, outbox deliveries, alerts and the availability sweep.

Runs inside `xunjian serve` as a daemon thread driving a `schedule.Scheduler` (one per process,
started and stopped by the app's lifespan). Nothing is held in memory between ticks: every job
claims its work in the database (a report's unique (contract, period) row, outbox leases, the
alert engine's rows), so any number of collectors — or uvicorn workers — may tick at once and
each report is still built once and each message sent once. Each job as a whole is claimed too
(collector/db/job_slots.py): one collector a minute runs it, not every process.

Reports: a scheduled period's report is built in the first tick after the period ends (in the
contract's timezone) and queued for mail. Periods that ended more than CATCH_UP ago are left
alone, so a collector deployed in the middle of a contract does not mail a year of old reports;
`xunjian report build` makes those on request.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Optional

import schedule
from sqlalchemy import select

from collector import periods
from collector.alerts import deliver
from collector.alerts.engine import Alerting
from collector.alerts.engine import tick as alert_tick
from collector.availability import sweep
from collector.db.contract_store import get_contract
from collector.db.engine import Database
from collector.db.job_slots import claim_slot
from collector.db.models import ContractRow
from collector.db.models_reports import ReportRow
from collector.db.types import utcnow
from collector.outbox import Handler, drain
from collector.reports.store import REPORT_MAIL, BuildOutcome, build, report_mail_handler
from collector.settings import CollectorSettings

log = logging.getLogger(__name__)

TICK_SECONDS = 60
CATCH_UP = timedelta(days=35)


def worker_name() -> str:
    """Who holds a lease: host, process and a random part (a restarted process is someone new)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def due_reports(
    db: Database, settings: CollectorSettings, worker: str, now: Optional[datetime] = None
) -> list[BuildOutcome]:
    """Build every scheduled report whose period ended within CATCH_UP and has no built row."""
    when = now or utcnow()
    with db.read() as session:
        numbers = list(session.scalars(select(ContractRow.number)))
        built = {
            (c, k)
            for c, k in session.execute(
                select(ReportRow.contract, ReportRow.period_key).where(ReportRow.state == "built")
            )
        }
        contracts = [c for c in (get_contract(session, n) for n in numbers) if c is not None]
    outcomes: list[BuildOutcome] = []
    for contract in contracts:
        for period in periods.due(contract, when):
            if period.end < when - CATCH_UP or (contract.number, period.key) in built:
                continue
            try:
                done = build(db, settings, contract, period, worker=worker, now=when)
            except Exception:  # logged by build; the row says `failed` and the next tick retries
                continue
            if done is not None:
                log.info("report %s %s built (v%d)", contract.number, period.key, done.version)
                outcomes.append(done)
    return outcomes


def handlers(db: Database, settings: CollectorSettings) -> dict[str, Handler]:
    """Every outbox kind this collector can deliver: report mail and the alerts' kinds."""
    out: dict[str, Handler] = {REPORT_MAIL: report_mail_handler(db, settings.smtp)}
    out.update(deliver.handlers(Alerting.from_settings(db, settings)))
    return out


def tick(
    db: Database, settings: CollectorSettings, worker: str, every: int = TICK_SECONDS
) -> list[str]:
    """One round of every job this process claims; the names of those it ran.

    A job another collector ran less than `every` seconds ago is skipped (collector/db/
    job_slots.py). A failing job is logged and does not stop the others; it is due again after
    `every`, in whichever collector ticks first.
    """
    jobs: list[tuple[str, Callable[[], object]]] = [
        ("availability sweep", lambda: _sweep(db, settings)),
        ("alerts", lambda: alert_tick(Alerting.from_settings(db, settings))),
        ("reports", lambda: due_reports(db, settings, worker)),
        ("outbox", lambda: drain(db, worker, handlers(db, settings))),
    ]
    ran: list[str] = []
    for name, job in jobs:
        try:
            with db.write() as session:
                if not claim_slot(session, name, worker, timedelta(seconds=every), utcnow()):
                    continue
            ran.append(name)
            job()
        except Exception:
            log.exception("scheduled job %r failed; it is due again in %d s", name, every)
    return ran


def _sweep(db: Database, settings: CollectorSettings) -> None:
    with db.write() as session:
        sweep(session, settings.silence_minutes)


class Scheduler:
    """The background thread of one collector process."""

    def __init__(
        self, db: Database, settings: CollectorSettings, interval: int = TICK_SECONDS
    ) -> None:
        self.worker = worker_name()
        self._stop = threading.Event()
        self._jobs = schedule.Scheduler()
        self._jobs.every(interval).seconds.do(tick, db, settings, self.worker, interval)
        self._thread = threading.Thread(target=self._loop, name="xunjian-scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        self._jobs.run_all()  # once at start-up, then every interval
        while not self._stop.wait(1.0):
            self._jobs.run_pending()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
