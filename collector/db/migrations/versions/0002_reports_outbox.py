"""Reports (one row per contract and period) and the generic delivery outbox.

Revision ID: 0002_reports_outbox
Revises: 0001_core
Create Date: 2026-11-21 06:16:59.603692
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import sqlalchemy as sa
from alembic import op

import collector.db.types

revision: str = "0002_reports_outbox"
down_revision: Union[str, Sequence[str], None] = "0001_core"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "kind",
            sa.String(length=30),
            nullable=False,
            comment="report_mail | webhook kinds (alerts)",
        ),
        sa.Column("key", sa.String(length=200), nullable=False, comment="queued once per key"),
        sa.Column(
            "ref",
            sa.String(length=100),
            nullable=False,
            comment="what it delivers: report:ID, notification:ID",
        ),
        sa.Column("contract", sa.String(length=100), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False, comment="kind-specific, never a secret"),
        sa.Column(
            "message_id", sa.String(length=250), nullable=True, comment="stable Message-ID (mail)"
        ),
        sa.Column(
            "state",
            sa.String(length=10),
            nullable=False,
            comment="pending | sending | sent | failed",
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", collector.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("leased_by", sa.String(length=200), nullable=True),
        sa.Column("leased_until", collector.db.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", collector.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", collector.db.types.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["contract"], ["contracts.number"], name=op.f("fk_outbox_contract_contracts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("key", name=op.f("uq_outbox_key")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_due", ["state", "next_attempt_at"], unique=False)
        batch_op.create_index("ix_outbox_ref", ["ref"], unique=False)

    op.create_table(
        "reports",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("contract", sa.String(length=100), nullable=False),
        sa.Column(
            "period_key",
            sa.String(length=40),
            nullable=False,
            comment="2026-Q3, 2026-09 or START..END",
        ),
        sa.Column("period_start", collector.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column(
            "period_end",
            collector.db.types.UtcDateTime(timezone=True),
            nullable=False,
            comment="exclusive",
        ),
        sa.Column(
            "scheduled",
            sa.Boolean(),
            nullable=False,
            comment="one of the contract's scheduled periods",
        ),
        sa.Column(
            "state", sa.String(length=10), nullable=False, comment="building | built | failed"
        ),
        sa.Column("lang", sa.String(length=10), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, comment="1, then +1 at every rebuild"),
        sa.Column("claimed_by", sa.String(length=200), nullable=True),
        sa.Column(
            "claimed_until",
            collector.db.types.UtcDateTime(timezone=True),
            nullable=True,
            comment="build lease",
        ),
        sa.Column("runs", sa.Integer(), nullable=False, comment="runs the report rests on"),
        sa.Column("hosts_inspected", sa.Integer(), nullable=False),
        sa.Column("hosts_expected", sa.Integer(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column(
            "status", sa.String(length=10), nullable=True, comment="ok | attention | abnormal"
        ),
        sa.Column("html", sa.LargeBinary(), nullable=True, comment="zlib-compressed HTML"),
        sa.Column("pdf", sa.LargeBinary(), nullable=True),
        sa.Column(
            "mail",
            sa.LargeBinary(),
            nullable=True,
            comment="zlib-compressed MIME message without envelope headers",
        ),
        sa.Column(
            "summary", sa.JSON(), nullable=False, comment="counts for listings, no customer text"
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", collector.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("built_at", collector.db.types.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["contract"], ["contracts.number"], name=op.f("fk_reports_contract_contracts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
        sa.UniqueConstraint("contract", "period_key", name=op.f("uq_reports_contract")),
    )


def downgrade() -> None:
    op.drop_table("reports")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_ref")
        batch_op.drop_index("ix_outbox_due")

    op.drop_table("outbox")
