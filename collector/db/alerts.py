"""What the alert engine has already said, so that it says each thing once.

Every decision is a row guarded by the database, not by process memory: a finding is claimed by
inserting its `alert_findings` row (primary key), later steps (priority change, escalation,
resolved notice) are compare-and-set updates, and a silence is claimed by its (host, since)
pair. Each message to a channel is an outbox row (collector/outbox.py) with a unique key, queued
in the transaction that made the decision. Several collectors on one PostgreSQL therefore decide
once, and the outbox delivers each notification once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint, inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from collector.db.models import Base
from collector.db.types import BigIntPK

NONE, NEAR, PAST = 0, 1, 2
"""Escalation levels of a finding: not escalated, deadline near, deadline passed."""


class AlertFinding(Base):
    """The alert lifecycle of one finding (one episode): what was notified so far."""

    __tablename__ = "alert_findings"

    finding_id: Mapped[int] = mapped_column(
        BigIntPK, ForeignKey("findings.id"), primary_key=True, autoincrement=False
    )
    contract: Mapped[str] = mapped_column(ForeignKey("contracts.number"), index=True)
    priority: Mapped[str] = mapped_column(
        String(4), comment="priority last notified: P1 | P2 | '' (no longer P1/P2)"
    )
    escalation: Mapped[int] = mapped_column(Integer, comment="0 none, 1 near, 2 past deadline")
    resolved_sent: Mapped[bool]
    notified_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class AlertSilence(Base):
    """One silence of a host (keyed by its last sign of life) and whether it was announced."""

    __tablename__ = "alert_silences"
    __table_args__ = (UniqueConstraint("host_id", "since"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    host_id: Mapped[str] = mapped_column(ForeignKey("hosts.id"))
    contract: Mapped[str] = mapped_column(ForeignKey("contracts.number"))
    since: Mapped[datetime] = mapped_column(comment="the host's last sign of life before it")
    alerted_at: Mapped[datetime]
    recovered_at: Mapped[Optional[datetime]] = mapped_column(comment="recovery notice queued")


def insert_ignore(session: Session, model: type[Base], values: dict[str, Any]) -> bool:
    """INSERT … ON CONFLICT DO NOTHING: True when this transaction inserted (claimed) the row."""
    return inserted_key(session, model, values) is not None


def inserted_key(session: Session, model: type[Base], values: dict[str, Any]) -> Optional[Any]:
    """INSERT … ON CONFLICT DO NOTHING: the new row's primary key, None when a row was there.

    Decided by RETURNING, not rowcount: psycopg through SQLAlchemy reports -1 for this INSERT.
    Executed on the session's connection (Core): the ORM's bulk-insert path around it cost more
    CPU than the statement's round trip, and it has no objects of the session to keep in step.
    """
    connection = session.connection()
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    key = inspect(model).primary_key[0]
    stmt = dialect.insert(model).values(**values).on_conflict_do_nothing().returning(key)
    return connection.execute(stmt).scalar()
