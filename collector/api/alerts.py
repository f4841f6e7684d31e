"""GET /notifications: every alert message queued to a channel and how its delivery went.

A notification is an outbox row of an alert kind; its state (pending | sending | sent | failed),
attempts and last error come from the outbox, which is what actually delivers it. Scoped like
the rest: a contract-scoped key sees only its contract. URLs and secrets are never part of it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Optional

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from collector.alerts.deliver import Envelope, alert_kinds
from collector.api.schemas import ERRORS
from collector.auth import Db, Reader
from collector.db.models_reports import OutboxRow

router = APIRouter(tags=["alerts"])


class NotificationOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: int
    key: str = Field(..., description="event/level/channel: unique per message and channel")
    contract: Optional[str]
    kind: str = Field(..., description="alert_mail | webhook:wecom|dingtalk|feishu|webhook")
    channel: str = Field(..., description="the channel's name in the contract")
    level: str = Field(..., description="main | escalation")
    event: str = Field(..., description="raised | reprioritized | escalated | resolved | …")
    items: int = Field(..., description="findings or hosts in the message")
    state: str = Field(..., description="pending | sending | sent | failed")
    attempts: int
    max_attempts: int
    last_error: Optional[str]
    created_at: datetime
    next_attempt_at: datetime
    sent_at: Optional[datetime]

    @classmethod
    def of(cls, row: OutboxRow) -> NotificationOut:
        envelope = Envelope.model_validate(row.payload)
        return cls(
            id=row.id,
            key=row.key,
            contract=row.contract,
            kind=row.kind,
            channel=envelope.channel,
            level=envelope.level,
            event=str(envelope.message.get("event", "")),
            items=len(envelope.message.get("lines", [])),
            state=row.state,
            attempts=row.attempts,
            max_attempts=row.max_attempts,
            last_error=row.last_error,
            created_at=row.created_at,
            next_attempt_at=row.next_attempt_at,
            sent_at=row.sent_at,
        )


@router.get("/notifications", response_model=list[NotificationOut], responses=ERRORS)
def list_notifications(
    db: Db,
    who: Reader,
    contract: Optional[str] = None,
    state: Optional[Literal["pending", "sending", "sent", "failed"]] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[NotificationOut]:
    """Newest first."""
    query = (
        select(OutboxRow)
        .where(OutboxRow.kind.in_(alert_kinds()))
        .order_by(OutboxRow.created_at.desc(), OutboxRow.id.desc())
    )
    if who.contract is not None:
        query = query.where(OutboxRow.contract == who.contract)
    if contract is not None:
        query = query.where(OutboxRow.contract == contract)
    if state is not None:
        query = query.where(OutboxRow.state == state)
    with db.read() as session:
        return [NotificationOut.of(r) for r in session.scalars(query.limit(limit).offset(offset))]
