"""The collector's tables (SQLAlchemy 2, typed). Migrations in migrations/versions/ mirror them.

Times are UTC (`UtcDateTime`). Secrets (enroll tokens, host credentials, API keys) are stored
only as SHA-256 hashes of high-entropy random strings.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Optional, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    case,
    func,
    select,
    text,
)
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    MappedSQLExpression,
    column_property,
    mapped_column,
)

from collector.db.types import BigIntPK, UtcDateTime

# Stable constraint names, so later migrations can alter them on both databases.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UtcDateTime(),
        dict[str, Any]: JSON(),
        list[str]: JSON(),
    }


class ContractRow(Base):
    """An imported contract; `data` is the validated model as JSON (fields the file set)."""

    __tablename__ = "contracts"

    number: Mapped[str] = mapped_column(String(100), primary_key=True)
    data: Mapped[dict[str, Any]]
    source_name: Mapped[str] = mapped_column(String(500))
    source_sha256: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[datetime]


class Host(Base):
    __tablename__ = "hosts"
    __table_args__ = (
        # One live host per hostname and contract; revoked ones stay for their history.
        Index(
            "ux_hosts_live_hostname",
            "contract",
            "hostname",
            unique=True,
            sqlite_where=text("revoked_at IS NULL"),
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    contract: Mapped[str] = mapped_column(ForeignKey("contracts.number"), index=True)
    hostname: Mapped[str] = mapped_column(String(255))
    machine_id: Mapped[Optional[str]] = mapped_column(String(64))
    tags: Mapped[list[str]]
    identity: Mapped[dict[str, Any]]
    credential_sha256: Mapped[Optional[str]] = mapped_column(String(64), unique=True)
    agent_version: Mapped[str] = mapped_column(String(50), default="")
    enrolled_at: Mapped[datetime]
    revoked_at: Mapped[Optional[datetime]]
    last_seen_at: Mapped[Optional[datetime]] = mapped_column(
        comment="newest sign of life (heartbeat, sample, run) by the host's clock"
    )
    last_run_at: Mapped[Optional[datetime]] = mapped_column(comment="created_at of the newest run")
    last_run_id: Mapped[Optional[str]] = mapped_column(String(36), comment="the newest run")
    inspect_requested_at: Mapped[Optional[datetime]]


class EnrollToken(Base):
    __tablename__ = "enroll_tokens"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    contract: Mapped[str] = mapped_column(ForeignKey("contracts.number"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[Optional[datetime]]
    used_by_host: Mapped[Optional[str]] = mapped_column(ForeignKey("hosts.id"))


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    key_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(20), comment="admin | engineer | viewer")
    contract: Mapped[Optional[str]] = mapped_column(
        ForeignKey("contracts.number"), comment="null: every contract"
    )
    created_at: Mapped[datetime]
    revoked_at: Mapped[Optional[datetime]]


class Run(Base):
    """A stored inspection. `payload` is the run's JSON as the sender posted it (the canonical
    form when it came in as a model, e.g. `import-run`): gzip as posted, else zlib-compressed
    here; `payload_sha256` is the digest of the JSON; `results` is the collector's own
    evaluation with the contract's thresholds (zlib JSON)."""

    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_host_created", "host_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    run_id: Mapped[str] = mapped_column(String(36), unique=True)
    host_id: Mapped[str] = mapped_column(ForeignKey("hosts.id"))
    contract: Mapped[str] = mapped_column(ForeignKey("contracts.number"), index=True)
    source: Mapped[str] = mapped_column(String(10), comment="agent | ssh | bundle, as recorded")
    via: Mapped[str] = mapped_column(String(10), comment="agent | api | import: how it arrived")
    ad_hoc: Mapped[bool] = mapped_column(Boolean, comment="not the agent's scheduled inspection")
    created_at: Mapped[datetime] = mapped_column(comment="when the source made the run")
    received_at: Mapped[datetime]
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    worst: Mapped[str] = mapped_column(
        String(10), comment="worst severity of the collector's results"
    )
    findings: Mapped[int] = mapped_column(Integer, comment="warning/critical/unknown results")
    payload_sha256: Mapped[str] = mapped_column(String(64))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    results: Mapped[bytes] = mapped_column(LargeBinary)


T = TypeVar("T")


def _newest_while_open(
    state: Mapped[str], host_id: Mapped[str], newest: Mapped[Optional[T]], stored: Mapped[T]
) -> MappedSQLExpression[T]:
    """A finding's column as read: while it is open, the host's newest run's (see `Finding`),
    the stored one once resolved — or should the host know no newest run."""
    of_host = select(newest).where(Host.id == host_id).scalar_subquery()
    return column_property(case((state == "open", func.coalesce(of_host, stored)), else_=stored))


class Finding(Base):
    """One episode of a problem on a host: opened by a run, kept by later runs, resolved by one."""

    __tablename__ = "findings"
    __table_args__ = (
        Index(
            "ux_findings_open",
            "host_id",
            "check",
            "item",
            unique=True,
            sqlite_where=text("state = 'open'"),
            postgresql_where=text("state = 'open'"),
        ),
        Index("ix_findings_contract_state", "contract", "state"),
        Index("ix_findings_host_check_item", "host_id", "check", "item"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    host_id: Mapped[str] = mapped_column(ForeignKey("hosts.id"))
    contract: Mapped[str] = mapped_column(ForeignKey("contracts.number"))
    check: Mapped[str] = mapped_column(String(100))
    item: Mapped[str] = mapped_column(String(500), comment="'' when the check has no item")
    category: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(10), comment="open | resolved")
    severity: Mapped[str] = mapped_column(String(10), comment="as of the newest run")
    max_severity: Mapped[str] = mapped_column(String(10))
    value: Mapped[Optional[Any]] = mapped_column(JSON)
    unit: Mapped[Optional[str]] = mapped_column(String(20))
    message_key: Mapped[str] = mapped_column(String(200))
    message_params: Mapped[dict[str, Any]]
    threshold: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)
    evidence: Mapped[list[str]]
    recommendation_key: Mapped[Optional[str]] = mapped_column(String(200))
    opened_run: Mapped[str] = mapped_column(String(36))
    # The last run that saw a resolved finding. An open one is seen by its host's newest run
    # (ingest resolves whatever that run did not see), so for it these hold the run of its last
    # change only, and `last_run` / `last_seen` below read the host's newest run instead:
    # carrying them to every open finding at every run was the database's largest write.
    stored_last_run: Mapped[str] = mapped_column("last_run", String(36))
    resolved_run: Mapped[Optional[str]] = mapped_column(String(36))
    first_seen: Mapped[datetime]
    stored_last_seen: Mapped[datetime] = mapped_column("last_seen")
    resolved_at: Mapped[Optional[datetime]]
    ack_at: Mapped[Optional[datetime]]
    ack_by: Mapped[Optional[str]] = mapped_column(String(200))
    ack_note: Mapped[Optional[str]] = mapped_column(Text)

    last_run: Mapped[str] = _newest_while_open(state, host_id, Host.last_run_id, stored_last_run)
    last_seen: Mapped[datetime] = _newest_while_open(
        state, host_id, Host.last_run_at, stored_last_seen
    )


class SampleRow(Base):
    __tablename__ = "samples"
    __table_args__ = (UniqueConstraint("host_id", "at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    host_id: Mapped[str] = mapped_column(ForeignKey("hosts.id"))
    at: Mapped[datetime]
    cpu_percent: Mapped[float] = mapped_column(Float)
    load1: Mapped[float] = mapped_column(Float)
    load5: Mapped[float] = mapped_column(Float)
    load15: Mapped[float] = mapped_column(Float)
    memory_percent: Mapped[float] = mapped_column(Float)
    swap_percent: Mapped[float] = mapped_column(Float)
    disk_read_bytes_per_s: Mapped[Optional[float]] = mapped_column(Float)
    disk_write_bytes_per_s: Mapped[Optional[float]] = mapped_column(Float)
    net_rx_bytes_per_s: Mapped[Optional[float]] = mapped_column(Float)
    net_tx_bytes_per_s: Mapped[Optional[float]] = mapped_column(Float)
    processes: Mapped[Optional[int]] = mapped_column(BigInteger)
    mounts: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


class SampleBatchRow(Base):
    __tablename__ = "sample_batches"

    batch_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    host_id: Mapped[str] = mapped_column(ForeignKey("hosts.id"))
    received_at: Mapped[datetime]
    samples: Mapped[int] = mapped_column(Integer, comment="samples in the batch")
    stored: Mapped[int] = mapped_column(Integer, comment="new (host, at) rows it added")


class GapRow(Base):
    """What an agent's full spool dropped: reports state these as data gaps."""

    __tablename__ = "gaps"

    gap_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    host_id: Mapped[str] = mapped_column(ForeignKey("hosts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10), comment="samples | runs")
    dropped: Mapped[int] = mapped_column(BigInteger)
    first_at: Mapped[Optional[datetime]]
    last_at: Mapped[Optional[datetime]]
    received_at: Mapped[datetime]


class Downtime(Base):
    """A silence longer than the contract allows; `end` is null while the host is still silent."""

    __tablename__ = "downtime"
    __table_args__ = (Index("ix_downtime_host_start", "host_id", "start"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    host_id: Mapped[str] = mapped_column(ForeignKey("hosts.id"))
    start: Mapped[datetime]
    end: Mapped[Optional[datetime]]
