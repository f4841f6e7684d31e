"""Which collector runs a scheduled job this minute: one row per job, claimed in the database.

Every collector process (and every uvicorn worker of one) ticks once a minute. The jobs were
already safe to run side by side — each claims its own work (report rows, outbox leases, the
alert engine's rows) — but each process still did all of it: two workers on one host swept
availability and evaluated alerts twice a minute, five collectors five times, every pass
reading every host. A job's row says when it is next due; the first tick to find it due moves
the time on and runs the job, the others skip it until then. The process that ran a job finds
it due again at its own next tick (the schedule counts the interval from the end of a tick), so
one process keeps each job while it lives, and one that dies holds its jobs for an interval.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from collector.db.alerts import insert_ignore
from collector.db.models import Base


class JobSlot(Base):
    __tablename__ = "job_slots"

    job: Mapped[str] = mapped_column(String(40), primary_key=True)
    due_at: Mapped[datetime] = mapped_column(comment="the next tick at or after this runs the job")
    ran_by: Mapped[str] = mapped_column(String(200), comment="worker that claimed it last")
    ran_at: Mapped[datetime]


def claim_slot(session: Session, job: str, worker: str, every: timedelta, now: datetime) -> bool:
    """True when `worker` should run `job` now: it was due, and this transaction moved it on.

    A compare-and-set on the job's row; the first claim ever inserts the row instead. Two
    claims at once: PostgreSQL makes the second UPDATE wait for the first to commit and then
    finds the row no longer due (or the INSERT's conflict); SQLite's writers take turns.
    """
    values = {"due_at": now + every, "ran_by": worker, "ran_at": now}
    moved = session.execute(
        update(JobSlot)
        .where(JobSlot.job == job, JobSlot.due_at <= now)
        .values(**values)
        .returning(JobSlot.job)
    ).first()
    return moved is not None or insert_ignore(session, JobSlot, {"job": job, **values})


def metrics_text(session: Session) -> str:
    """Prometheus lines: when each job last ran, in whichever collector. A scheduler that has
    stopped everywhere shows as `time() - xunjian_scheduled_job_last_run_timestamp_seconds`
    growing past a minute or two, which no counter of one process could tell."""
    name = "xunjian_scheduled_job_last_run_timestamp_seconds"
    lines = [
        f"# HELP {name} When each scheduled job last started (Unix time), in any collector.",
        f"# TYPE {name} gauge",
    ]
    for job, ran_at in session.execute(select(JobSlot.job, JobSlot.ran_at).order_by(JobSlot.job)):
        lines.append(f'{name}{{job="{job}"}} {ran_at.timestamp():.3f}')
    return "\n".join(lines) + "\n"
