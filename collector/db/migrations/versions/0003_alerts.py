"""Alert state: what was announced per finding (priority, escalation, resolved) and per silence.

Revision ID: 0003_alerts
Revises: 0002_reports_outbox
Create Date: 2026-11-21 06:18:36.238237
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import sqlalchemy as sa
from alembic import op

import collector.db.types

revision: str = "0003_alerts"
down_revision: Union[str, Sequence[str], None] = "0002_reports_outbox"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "alert_silences",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("host_id", sa.String(length=36), nullable=False),
        sa.Column("contract", sa.String(length=100), nullable=False),
        sa.Column(
            "since",
            collector.db.types.UtcDateTime(timezone=True),
            nullable=False,
            comment="the host's last sign of life before it",
        ),
        sa.Column("alerted_at", collector.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column(
            "recovered_at",
            collector.db.types.UtcDateTime(timezone=True),
            nullable=True,
            comment="recovery notice queued",
        ),
        sa.ForeignKeyConstraint(
            ["contract"], ["contracts.number"], name=op.f("fk_alert_silences_contract_contracts")
        ),
        sa.ForeignKeyConstraint(
            ["host_id"], ["hosts.id"], name=op.f("fk_alert_silences_host_id_hosts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_silences")),
        sa.UniqueConstraint("host_id", "since", name=op.f("uq_alert_silences_host_id")),
    )
    op.create_table(
        "alert_findings",
        sa.Column(
            "finding_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("contract", sa.String(length=100), nullable=False),
        sa.Column(
            "priority",
            sa.String(length=4),
            nullable=False,
            comment="priority last notified: P1 | P2 | '' (no longer P1/P2)",
        ),
        sa.Column(
            "escalation", sa.Integer(), nullable=False, comment="0 none, 1 near, 2 past deadline"
        ),
        sa.Column("resolved_sent", sa.Boolean(), nullable=False),
        sa.Column("notified_at", collector.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", collector.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contract"], ["contracts.number"], name=op.f("fk_alert_findings_contract_contracts")
        ),
        sa.ForeignKeyConstraint(
            ["finding_id"], ["findings.id"], name=op.f("fk_alert_findings_finding_id_findings")
        ),
        sa.PrimaryKeyConstraint("finding_id", name=op.f("pk_alert_findings")),
    )
    with op.batch_alter_table("alert_findings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_findings_contract"), ["contract"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("alert_findings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_findings_contract"))

    op.drop_table("alert_findings")
    op.drop_table("alert_silences")
