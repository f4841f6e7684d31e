"""job_slots: each scheduled job's next due time, claimed by one collector a minute.

Revision ID: 0006_job_slots
Revises: 0005_host_last_run_id
Create Date: 2026-11-22 06:25:05
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import sqlalchemy as sa
from alembic import op

import collector.db.types

revision: str = "0006_job_slots"
down_revision: Union[str, Sequence[str], None] = "0005_host_last_run_id"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "job_slots",
        sa.Column("job", sa.String(length=40), nullable=False),
        sa.Column(
            "due_at",
            collector.db.types.UtcDateTime(timezone=True),
            nullable=False,
            comment="the next tick at or after this runs the job",
        ),
        sa.Column(
            "ran_by", sa.String(length=200), nullable=False, comment="worker that claimed it last"
        ),
        sa.Column("ran_at", collector.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("job", name=op.f("pk_job_slots")),
    )


def downgrade() -> None:
    op.drop_table("job_slots")
