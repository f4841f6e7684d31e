"""Agent ↔ collector messages besides the InspectionRun itself (enrollment, samples, heartbeats).

Kept beside the run model so the agent (Python 3.9, no collector dependencies) and the collector
validate the very same shapes. Additive changes only; see docs/wire-format.md.
"""

from __future__ import annotations

import uuid
from typing import Dict, List, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from checks.bounds import WIRE_CONFIG, Instant, Int64
from checks.facts import HostIdentity


class _Wire(BaseModel):
    model_config = WIRE_CONFIG


class EnrollRequest(_Wire):
    token: str = Field(..., min_length=8, description="single-use enroll token")
    host: HostIdentity
    tags: List[str] = Field(default_factory=list)
    agent_version: str = ""


class EnrollResponse(_Wire):
    host_id: str
    credential: str = Field(..., description="per-host bearer credential; stored 0600 by the agent")
    contract: str


class RunReceipt(_Wire):
    """The answer to POST /runs; a replay of the same run_id gets the original receipt back."""

    run_id: uuid.UUID
    host_id: str
    received_at: Instant
    findings: Int64 = Field(0, description="results the collector's own evaluation produced")
    duplicate: bool = False


class MountSample(_Wire):
    mount: str
    used_percent: float
    used_bytes: Int64
    total_bytes: Int64


class Sample(_Wire):
    """One 60-second sample of the agent's history store."""

    at: Instant
    cpu_percent: float
    load1: float
    load5: float
    load15: float
    memory_percent: float
    swap_percent: float
    disk_read_bytes_per_s: Optional[float] = None
    disk_write_bytes_per_s: Optional[float] = None
    net_rx_bytes_per_s: Optional[float] = None
    net_tx_bytes_per_s: Optional[float] = None
    processes: Optional[Int64] = None
    mounts: List[MountSample] = Field(default_factory=list)


class SampleBatch(_Wire):
    batch_id: uuid.UUID = Field(default_factory=uuid.uuid4, description="idempotency key")
    samples: List[Sample]


class Gap(_Wire):
    """What the agent's full spool dropped, so reports can state data gaps honestly."""

    gap_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    kind: Literal["samples", "runs"]
    dropped: Int64 = Field(..., ge=1)
    first_at: Optional[Instant] = None
    last_at: Optional[Instant] = None


class Heartbeat(_Wire):
    at: Instant
    agent_version: str = ""
    spool_depth: Int64 = 0
    spool_bytes: Int64 = 0
    dropped: Dict[str, Int64] = Field(default_factory=dict, description="kind → drops since start")
    gaps: List[Gap] = Field(default_factory=list)
    last_error: Optional[str] = None


class HeartbeatReply(_Wire):
    """The only request the collector can make: run the built-in inspection now."""

    model_config = ConfigDict(extra="ignore")

    inspect_now: bool = False
