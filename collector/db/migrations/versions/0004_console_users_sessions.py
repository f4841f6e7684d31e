"""Web console: users (hashed passwords, roles, contract scope), sessions and failed log-ins.

Revision ID: 0004_console_users_sessions
Revises: 0003_alerts
Create Date: 2026-11-21 06:21:58.834168
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import sqlalchemy as sa
from alembic import op

import collector.db.types

revision: str = "0004_console_users_sessions"
down_revision: Union[str, Sequence[str], None] = "0003_alerts"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "ui_login_failures",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "name", sa.String(length=100), nullable=False, comment="the name tried, lower case"
        ),
        sa.Column("client", sa.String(length=100), nullable=False),
        sa.Column("at", collector.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ui_login_failures")),
    )
    with op.batch_alter_table("ui_login_failures", schema=None) as batch_op:
        batch_op.create_index("ix_ui_login_failures_client_at", ["client", "at"], unique=False)
        batch_op.create_index("ix_ui_login_failures_name_at", ["name", "at"], unique=False)

    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False, comment="log-in name, lower case"),
        sa.Column(
            "password_hash", sa.String(length=255), nullable=False, comment="argon2id, PHC string"
        ),
        sa.Column(
            "role", sa.String(length=20), nullable=False, comment="admin | engineer | viewer"
        ),
        sa.Column(
            "contracts",
            sa.JSON(),
            nullable=False,
            comment="contract numbers the user may see; empty: every contract (not for viewers)",
        ),
        sa.Column("lang", sa.String(length=10), nullable=True, comment="zh_CN | en; null: browser"),
        sa.Column("created_at", collector.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", collector.db.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("last_login_at", collector.db.types.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("name", name=op.f("uq_users_name")),
    )
    op.create_table(
        "ui_sessions",
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "csrf", sa.String(length=64), nullable=False, comment="the form token of this session"
        ),
        sa.Column("created_at", collector.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", collector.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("client", sa.String(length=100), nullable=False, comment="address at log-in"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_ui_sessions_user_id_users")
        ),
        sa.PrimaryKeyConstraint("token_sha256", name=op.f("pk_ui_sessions")),
    )
    with op.batch_alter_table("ui_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ui_sessions_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ui_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ui_sessions_user_id"))

    op.drop_table("ui_sessions")
    op.drop_table("users")
    with op.batch_alter_table("ui_login_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_ui_login_failures_name_at")
        batch_op.drop_index("ix_ui_login_failures_client_at")

    op.drop_table("ui_login_failures")
