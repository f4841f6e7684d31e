"""Response shapes of the collector API (requests are the wire models in checks/wire.py)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

from checks.model import CheckResult, InspectionRun, Severity, Threshold
from collector.contracts import Contract
from collector.db.models import Finding, Host, Run


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Problem(_Out):
    """Every error: `detail` says what was wrong; 422 also lists each field path."""

    detail: Union[str, list[dict[str, Any]]]
    error: Optional[str] = Field(None, description="422: 'path.to.field: message; …'")


ERRORS: dict[Union[int, str], dict[str, Any]] = {
    code: {"model": Problem, "description": text}
    for code, text in (
        (400, "body is not valid gzip"),
        (401, "unknown, missing or revoked credential"),
        (403, "not allowed for this credential"),
        (413, "body over the size limit (after decompression)"),
        (422, "malformed JSON or schema error; names the field path"),
    )
}
NOT_FOUND: dict[Union[int, str], dict[str, Any]] = {
    404: {"model": Problem, "description": "no such resource in your scope"}
}


class HostOut(_Out):
    id: str
    contract: str
    hostname: str
    machine_id: Optional[str]
    tags: list[str]
    identity: dict[str, Any]
    agent_version: str
    enrolled: bool = Field(..., description="has an agent credential (false: seen via SSH/import)")
    enrolled_at: datetime
    revoked_at: Optional[datetime]
    last_seen_at: Optional[datetime]
    last_run_at: Optional[datetime]
    inspect_requested_at: Optional[datetime]

    @classmethod
    def of(cls, h: Host) -> HostOut:
        return cls(
            id=h.id,
            contract=h.contract,
            hostname=h.hostname,
            machine_id=h.machine_id,
            tags=list(h.tags),
            identity=h.identity,
            agent_version=h.agent_version,
            enrolled=h.credential_sha256 is not None,
            enrolled_at=h.enrolled_at,
            revoked_at=h.revoked_at,
            last_seen_at=h.last_seen_at,
            last_run_at=h.last_run_at,
            inspect_requested_at=h.inspect_requested_at,
        )


class RunOut(_Out):
    run_id: uuid.UUID
    host_id: str
    contract: str
    source: str = Field(..., description="agent | ssh | bundle, as the run recorded it")
    via: str = Field(..., description="agent | api | import: how it reached the collector")
    ad_hoc: bool
    created_at: datetime
    received_at: datetime
    window_start: datetime
    window_end: datetime
    worst: Severity
    findings: int

    @classmethod
    def of(cls, r: Run) -> RunOut:
        return cls(
            run_id=uuid.UUID(r.run_id),
            host_id=r.host_id,
            contract=r.contract,
            source=r.source,
            via=r.via,
            ad_hoc=r.ad_hoc,
            created_at=r.created_at,
            received_at=r.received_at,
            window_start=r.window_start,
            window_end=r.window_end,
            worst=Severity(r.worst),
            findings=r.findings,
        )


class RunDetail(RunOut):
    run: InspectionRun = Field(..., description="the run as received")
    results: list[CheckResult] = Field(..., description="the collector's evaluation")


class FindingOut(_Out):
    id: int
    host_id: str
    contract: str
    check: str
    item: Optional[str]
    category: str
    state: str = Field(..., description="open | resolved")
    severity: Severity
    max_severity: Severity
    value: Union[float, int, str, None]
    unit: Optional[str]
    message_key: str
    message_params: dict[str, Any]
    threshold: Optional[Threshold]
    evidence: list[str]
    recommendation_key: Optional[str]
    opened_run: uuid.UUID
    last_run: uuid.UUID
    resolved_run: Optional[uuid.UUID]
    first_seen: datetime
    last_seen: datetime
    resolved_at: Optional[datetime]
    ack_at: Optional[datetime]
    ack_by: Optional[str]
    ack_note: Optional[str]

    @classmethod
    def of(cls, f: Finding) -> FindingOut:
        return cls(
            id=f.id,
            host_id=f.host_id,
            contract=f.contract,
            check=f.check,
            item=f.item or None,
            category=f.category,
            state=f.state,
            severity=Severity(f.severity),
            max_severity=Severity(f.max_severity),
            value=f.value,
            unit=f.unit,
            message_key=f.message_key,
            message_params=f.message_params,
            threshold=Threshold.model_validate(f.threshold) if f.threshold else None,
            evidence=list(f.evidence),
            recommendation_key=f.recommendation_key,
            opened_run=uuid.UUID(f.opened_run),
            last_run=uuid.UUID(f.last_run),
            resolved_run=uuid.UUID(f.resolved_run) if f.resolved_run else None,
            first_seen=f.first_seen,
            last_seen=f.last_seen,
            resolved_at=f.resolved_at,
            ack_at=f.ack_at,
            ack_by=f.ack_by,
            ack_note=f.ack_note,
        )


class AckRequest(_Out):
    note: str = Field("", max_length=2000)


class InspectRequested(_Out):
    host_id: str
    inspect_requested_at: datetime


class SampleReceipt(_Out):
    batch_id: uuid.UUID
    samples: int
    stored: int = Field(..., description="new samples (a (host, time) already stored is skipped)")
    duplicate: bool = False


class ContractSummary(_Out):
    number: str
    title: str
    customer: str
    level: str
    start: date
    end: date
    hosts_enrolled: int
    imported_at: datetime


class ContractOut(_Out):
    number: str
    source_name: str
    imported_at: datetime
    contract: Contract
