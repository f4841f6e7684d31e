"""/healthz for load balancers and /metrics for Prometheus (outside /api/v1, no auth)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from sqlalchemy import func, select, text

from collector.alerts.deliver import metrics_text
from collector.auth import Db
from collector.availability import silent_hosts
from collector.db.job_slots import metrics_text as job_metrics
from collector.db.models import Host
from collector.reports.store import metrics_text as report_metrics

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz(db: Db) -> dict[str, str]:
    with db.read() as session:
        session.execute(text("SELECT 1"))
    return {"status": "ok"}


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(request: Request, db: Db) -> PlainTextResponse:
    settings = request.app.state.settings
    with db.read() as session:
        silent = len(silent_hosts(session, settings.silence_minutes))
        live = session.scalar(
            select(func.count()).where(
                Host.revoked_at.is_(None), Host.credential_sha256.is_not(None)
            )
        )
        alerts = metrics_text(session) + report_metrics(session) + job_metrics(session)
    text_out = request.app.state.metrics.render(
        [
            ("xunjian_hosts_enrolled", "Live hosts with an agent.", float(live or 0)),
            (
                "xunjian_hosts_silent",
                "Agents silent longer than their contract allows.",
                float(silent),
            ),
        ]
    )
    text_out += alerts
    return PlainTextResponse(text_out, media_type="text/plain; version=0.0.4; charset=utf-8")
