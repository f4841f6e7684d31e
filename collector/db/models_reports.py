"""Reports (one per contract and period) and the outbox that delivers them (and alerts).

The unique (contract, period_key) row *is* the claim to build a report: whoever inserts it
builds, a lease lets another collector take over a builder that died. The outbox is generic:
one row per message to send (`kind` says how: `report_mail` here, webhook kinds for alerts),
with a unique `key` so a message is queued once, and a lease so it is sent by one collector.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from collector.db.models import Base
from collector.db.types import BigIntPK


class ReportRow(Base):
    __tablename__ = "reports"
    __table_args__ = (UniqueConstraint("contract", "period_key"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    contract: Mapped[str] = mapped_column(ForeignKey("contracts.number"))
    period_key: Mapped[str] = mapped_column(String(40), comment="2026-Q3, 2026-09 or START..END")
    period_start: Mapped[datetime]
    period_end: Mapped[datetime] = mapped_column(comment="exclusive")
    scheduled: Mapped[bool] = mapped_column(comment="one of the contract's scheduled periods")
    state: Mapped[str] = mapped_column(String(10), comment="building | built | failed")
    lang: Mapped[str] = mapped_column(String(10))
    version: Mapped[int] = mapped_column(Integer, comment="1, then +1 at every rebuild")
    claimed_by: Mapped[Optional[str]] = mapped_column(String(200))
    claimed_until: Mapped[Optional[datetime]] = mapped_column(comment="build lease")
    runs: Mapped[int] = mapped_column(Integer, default=0, comment="runs the report rests on")
    hosts_inspected: Mapped[int] = mapped_column(Integer, default=0)
    hosts_expected: Mapped[int] = mapped_column(Integer, default=0)
    score: Mapped[Optional[int]] = mapped_column(Integer)
    status: Mapped[Optional[str]] = mapped_column(String(10), comment="ok | attention | abnormal")
    html: Mapped[Optional[bytes]] = mapped_column(LargeBinary, comment="zlib-compressed HTML")
    pdf: Mapped[Optional[bytes]] = mapped_column(LargeBinary)
    mail: Mapped[Optional[bytes]] = mapped_column(
        LargeBinary, comment="zlib-compressed MIME message without envelope headers"
    )
    summary: Mapped[dict[str, Any]] = mapped_column(comment="counts for listings, no customer text")
    error: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[datetime]
    built_at: Mapped[Optional[datetime]]


class OutboxRow(Base):
    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "state", "next_attempt_at"),
        Index("ix_outbox_ref", "ref"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    kind: Mapped[str] = mapped_column(String(30), comment="report_mail | webhook kinds (alerts)")
    key: Mapped[str] = mapped_column(String(200), unique=True, comment="queued once per key")
    ref: Mapped[str] = mapped_column(
        String(100), comment="what it delivers: report:ID, notification:ID"
    )
    contract: Mapped[Optional[str]] = mapped_column(ForeignKey("contracts.number"))
    payload: Mapped[dict[str, Any]] = mapped_column(comment="kind-specific, never a secret")
    message_id: Mapped[Optional[str]] = mapped_column(
        String(250), comment="stable Message-ID (mail)"
    )
    state: Mapped[str] = mapped_column(String(10), comment="pending | sending | sent | failed")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime]
    leased_by: Mapped[Optional[str]] = mapped_column(String(200))
    leased_until: Mapped[Optional[datetime]]
    last_error: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[Optional[datetime]]
