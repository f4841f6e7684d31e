"""Core tables: contracts, hosts, enroll tokens, API keys, runs, findings, samples, gaps, downtime.

Revision ID: 0001_core
Revises:
Create Date: 2026-11-21 06:13:51.130494
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import sqlalchemy as sa
from alembic import op

import collector.db.types

revision: str = "0001_core"
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:

    op.create_table(
        "contracts",
        sa.Column("number", sa.String(length=100), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("source_name", sa.String(length=500), nullable=False),
        sa.Column("source_sha256", sa.String(length=64), nullable=False),
        sa.Column("imported_at", collector.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_contracts")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("key_sha256", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "role", sa.String(length=20), nullable=False, comment="admin | engineer | viewer"
        ),
        sa.Column("contract", sa.String(length=100), nullable=True, comment="null: every contract"),
        sa.Column("created_at", collector.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", collector.db.types.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["contract"], ["contracts.number"], name=op.f("fk_api_keys_contract_contracts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_sha256", name=op.f("uq_api_keys_key_sha256")),
    )
    op.create_table(
        "hosts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("contract", sa.String(length=100), nullable=False),
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("machine_id", sa.String(length=64), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("identity", sa.JSON(), nullable=False),
        sa.Column("credential_sha256", sa.String(length=64), nullable=True),
        sa.Column("agent_version", sa.String(length=50), nullable=False),
        sa.Column("enrolled_at", collector.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", collector.db.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column(
            "last_seen_at",
            collector.db.types.UtcDateTime(timezone=True),
            nullable=True,
            comment="newest sign of life (heartbeat, sample, run) by the host's clock",
        ),
        sa.Column(
            "last_run_at",
            collector.db.types.UtcDateTime(timezone=True),
            nullable=True,
            comment="created_at of the newest run",
        ),
        sa.Column(
            "inspect_requested_at", collector.db.types.UtcDateTime(timezone=True), nullable=True
        ),
        sa.ForeignKeyConstraint(
            ["contract"], ["contracts.number"], name=op.f("fk_hosts_contract_contracts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hosts")),
        sa.UniqueConstraint("credential_sha256", name=op.f("uq_hosts_credential_sha256")),
    )
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_hosts_contract"), ["contract"], unique=False)
        batch_op.create_index(
            "ux_hosts_live_hostname",
            ["contract", "hostname"],
            unique=True,
            sqlite_where=sa.text("revoked_at IS NULL"),
            postgresql_where=sa.text("revoked_at IS NULL"),
        )

    op.create_table(
        "downtime",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("host_id", sa.String(length=36), nullable=False),
        sa.Column("start", collector.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("end", collector.db.types.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["host_id"], ["hosts.id"], name=op.f("fk_downtime_host_id_hosts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_downtime")),
    )
    with op.batch_alter_table("downtime", schema=None) as batch_op:
        batch_op.create_index("ix_downtime_host_start", ["host_id", "start"], unique=False)

    op.create_table(
        "enroll_tokens",
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("contract", sa.String(length=100), nullable=False),
        sa.Column("created_at", collector.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", collector.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("used_at", collector.db.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("used_by_host", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(
            ["contract"], ["contracts.number"], name=op.f("fk_enroll_tokens_contract_contracts")
        ),
        sa.ForeignKeyConstraint(
            ["used_by_host"], ["hosts.id"], name=op.f("fk_enroll_tokens_used_by_host_hosts")
        ),
        sa.PrimaryKeyConstraint("token_sha256", name=op.f("pk_enroll_tokens")),
    )
    op.create_table(
        "findings",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("host_id", sa.String(length=36), nullable=False),
        sa.Column("contract", sa.String(length=100), nullable=False),
        sa.Column("check", sa.String(length=100), nullable=False),
        sa.Column(
            "item", sa.String(length=500), nullable=False, comment="'' when the check has no item"
        ),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False, comment="open | resolved"),
        sa.Column("severity", sa.String(length=10), nullable=False, comment="as of the newest run"),
        sa.Column("max_severity", sa.String(length=10), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.Column("unit", sa.String(length=20), nullable=True),
        sa.Column("message_key", sa.String(length=200), nullable=False),
        sa.Column("message_params", sa.JSON(), nullable=False),
        sa.Column("threshold", sa.JSON(), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("recommendation_key", sa.String(length=200), nullable=True),
        sa.Column("opened_run", sa.String(length=36), nullable=False),
        sa.Column("last_run", sa.String(length=36), nullable=False),
        sa.Column("resolved_run", sa.String(length=36), nullable=True),
        sa.Column("first_seen", collector.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("last_seen", collector.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", collector.db.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("ack_at", collector.db.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("ack_by", sa.String(length=200), nullable=True),
        sa.Column("ack_note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["contract"], ["contracts.number"], name=op.f("fk_findings_contract_contracts")
        ),
        sa.ForeignKeyConstraint(["host_id"], ["hosts.id"], name=op.f("fk_findings_host_id_hosts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_findings")),
    )
    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.create_index("ix_findings_contract_state", ["contract", "state"], unique=False)
        batch_op.create_index(
            "ix_findings_host_check_item", ["host_id", "check", "item"], unique=False
        )
        batch_op.create_index(
            "ux_findings_open",
            ["host_id", "check", "item"],
            unique=True,
            sqlite_where=sa.text("state = 'open'"),
            postgresql_where=sa.text("state = 'open'"),
        )

    op.create_table(
        "gaps",
        sa.Column("gap_id", sa.String(length=36), nullable=False),
        sa.Column("host_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False, comment="samples | runs"),
        sa.Column("dropped", sa.BigInteger(), nullable=False),
        sa.Column("first_at", collector.db.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("last_at", collector.db.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("received_at", collector.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["host_id"], ["hosts.id"], name=op.f("fk_gaps_host_id_hosts")),
        sa.PrimaryKeyConstraint("gap_id", name=op.f("pk_gaps")),
    )
    with op.batch_alter_table("gaps", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_gaps_host_id"), ["host_id"], unique=False)

    op.create_table(
        "runs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("host_id", sa.String(length=36), nullable=False),
        sa.Column("contract", sa.String(length=100), nullable=False),
        sa.Column(
            "source",
            sa.String(length=10),
            nullable=False,
            comment="agent | ssh | bundle, as recorded",
        ),
        sa.Column(
            "via",
            sa.String(length=10),
            nullable=False,
            comment="agent | api | import: how it arrived",
        ),
        sa.Column(
            "ad_hoc", sa.Boolean(), nullable=False, comment="not the agent's scheduled inspection"
        ),
        sa.Column(
            "created_at",
            collector.db.types.UtcDateTime(timezone=True),
            nullable=False,
            comment="when the source made the run",
        ),
        sa.Column("received_at", collector.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("window_start", collector.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("window_end", collector.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column(
            "worst",
            sa.String(length=10),
            nullable=False,
            comment="worst severity of the collector's results",
        ),
        sa.Column(
            "findings", sa.Integer(), nullable=False, comment="warning/critical/unknown results"
        ),
        sa.Column("payload_sha256", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("results", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contract"], ["contracts.number"], name=op.f("fk_runs_contract_contracts")
        ),
        sa.ForeignKeyConstraint(["host_id"], ["hosts.id"], name=op.f("fk_runs_host_id_hosts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
        sa.UniqueConstraint("run_id", name=op.f("uq_runs_run_id")),
    )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_runs_contract"), ["contract"], unique=False)
        batch_op.create_index("ix_runs_host_created", ["host_id", "created_at"], unique=False)

    op.create_table(
        "sample_batches",
        sa.Column("batch_id", sa.String(length=36), nullable=False),
        sa.Column("host_id", sa.String(length=36), nullable=False),
        sa.Column("received_at", collector.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False, comment="samples in the batch"),
        sa.Column("stored", sa.Integer(), nullable=False, comment="new (host, at) rows it added"),
        sa.ForeignKeyConstraint(
            ["host_id"], ["hosts.id"], name=op.f("fk_sample_batches_host_id_hosts")
        ),
        sa.PrimaryKeyConstraint("batch_id", name=op.f("pk_sample_batches")),
    )
    op.create_table(
        "samples",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("host_id", sa.String(length=36), nullable=False),
        sa.Column("at", collector.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("cpu_percent", sa.Float(), nullable=False),
        sa.Column("load1", sa.Float(), nullable=False),
        sa.Column("load5", sa.Float(), nullable=False),
        sa.Column("load15", sa.Float(), nullable=False),
        sa.Column("memory_percent", sa.Float(), nullable=False),
        sa.Column("swap_percent", sa.Float(), nullable=False),
        sa.Column("disk_read_bytes_per_s", sa.Float(), nullable=True),
        sa.Column("disk_write_bytes_per_s", sa.Float(), nullable=True),
        sa.Column("net_rx_bytes_per_s", sa.Float(), nullable=True),
        sa.Column("net_tx_bytes_per_s", sa.Float(), nullable=True),
        sa.Column("processes", sa.BigInteger(), nullable=True),
        sa.Column("mounts", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["host_id"], ["hosts.id"], name=op.f("fk_samples_host_id_hosts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_samples")),
        sa.UniqueConstraint("host_id", "at", name=op.f("uq_samples_host_id")),
    )


def downgrade() -> None:

    op.drop_table("samples")
    op.drop_table("sample_batches")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("ix_runs_host_created")
        batch_op.drop_index(batch_op.f("ix_runs_contract"))

    op.drop_table("runs")
    with op.batch_alter_table("gaps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gaps_host_id"))

    op.drop_table("gaps")
    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.drop_index(
            "ux_findings_open",
            sqlite_where=sa.text("state = 'open'"),
            postgresql_where=sa.text("state = 'open'"),
        )
        batch_op.drop_index("ix_findings_host_check_item")
        batch_op.drop_index("ix_findings_contract_state")

    op.drop_table("findings")
    op.drop_table("enroll_tokens")
    with op.batch_alter_table("downtime", schema=None) as batch_op:
        batch_op.drop_index("ix_downtime_host_start")

    op.drop_table("downtime")
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.drop_index(
            "ux_hosts_live_hostname",
            sqlite_where=sa.text("revoked_at IS NULL"),
            postgresql_where=sa.text("revoked_at IS NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_hosts_contract"))

    op.drop_table("hosts")
    op.drop_table("api_keys")
    op.drop_table("contracts")
