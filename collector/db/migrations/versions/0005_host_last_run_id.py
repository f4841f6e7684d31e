"""hosts.last_run_id: the host's newest run, which open findings read as their last run.

Revision ID: 0005_host_last_run_id
Revises: 0004_console_users_sessions
Create Date: 2026-11-21 23:05:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import sqlalchemy as sa
from alembic import op

revision: str = "0005_host_last_run_id"
down_revision: Union[str, Sequence[str], None] = "0004_console_users_sessions"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("last_run_id", sa.String(length=36), nullable=True, comment="the newest run")
        )
    # Ingest moves a host to a run whose created_at is at least its newest one's, so of equal
    # times the one stored last is the newest.
    op.execute(
        "UPDATE hosts SET last_run_id = (SELECT runs.run_id FROM runs WHERE runs.host_id = hosts.id"
        " ORDER BY runs.created_at DESC, runs.id DESC LIMIT 1)"
    )


def downgrade() -> None:
    # Open findings carried their last run and time in their own rows before this revision:
    # give them the host's newest run back before the column goes.
    op.execute(
        "UPDATE findings SET last_run = (SELECT hosts.last_run_id FROM hosts"
        " WHERE hosts.id = findings.host_id), last_seen = (SELECT hosts.last_run_at FROM hosts"
        " WHERE hosts.id = findings.host_id) WHERE state = 'open' AND EXISTS (SELECT 1 FROM"
        " hosts WHERE hosts.id = findings.host_id AND hosts.last_run_id IS NOT NULL)"
    )
    # ALTER TABLE … DROP COLUMN on both (SQLite ≥ 3.35): batch mode would copy `hosts`, which
    # foreign keys from every other table forbid dropping
    op.drop_column("hosts", "last_run_id")
