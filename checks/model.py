"""The wire format every part of xunjian speaks: agent, SSH mode, offline bundle and collector.

`InspectionRun` is what travels. It carries the raw facts (so the collector can re-judge them
with a contract's thresholds) and the source's own results (advisory, for local display and for
runs that are imported offline). The versioning rule lives in docs/wire-format.md: a field may be
added in a minor change, but renaming, removing or changing the meaning of one bumps `schema`.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from enum import Enum
from typing import Dict, List, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator

from checks.bounds import WIRE_CONFIG, Instant, Int64
from checks.facts import FactSet, HostIdentity

SCHEMA_VERSION = 1


class Severity(str, Enum):
    ok = "ok"
    info = "info"
    warning = "warning"
    critical = "critical"
    unknown = "unknown"

    @property
    def rank(self) -> int:
        """Order for 'worst of': a check that could not run outranks a pass but not a problem."""
        return _RANK[self]

    @property
    def exit_code(self) -> int:
        return _EXIT[self]


_RANK = {
    Severity.ok: 0,
    Severity.info: 1,
    Severity.unknown: 2,
    Severity.warning: 3,
    Severity.critical: 4,
}
_EXIT = {
    Severity.ok: 0,
    Severity.info: 0,
    Severity.unknown: 3,
    Severity.warning: 1,
    Severity.critical: 2,
}


def worst(severities: "List[Severity]") -> Severity:
    """The worst severity of a list; an empty list is ok (nothing was wrong)."""
    return max(severities, key=lambda s: s.rank, default=Severity.ok)


class Category(str, Enum):
    """The four parts of a remote inspection (远程巡检); every report has a section for each."""

    status = "status"
    alarm_logs = "alarm_logs"
    errors = "errors"
    history = "history"


class Source(str, Enum):
    agent = "agent"
    ssh = "ssh"
    bundle = "bundle"


ParamValue = Union[str, Int64, float, bool, None]


class Threshold(BaseModel):
    """The limit a value was judged against, and which layer of configuration set it."""

    model_config = WIRE_CONFIG

    warning: Optional[float] = None
    critical: Optional[float] = None
    direction: str = Field("above", description="'above': higher is worse; 'below': lower is worse")
    unit: Optional[str] = None
    provenance: str = Field(
        "default",
        description="default | profile:NAME | config:FILE | contract:NO | host:NAME | item",
    )


class Message(BaseModel):
    """A catalog key and its parameters: text is rendered per language, never kept in code."""

    model_config = WIRE_CONFIG

    key: str
    params: Dict[str, ParamValue] = Field(default_factory=dict)


class CheckResult(BaseModel):
    """One check's verdict on one item (a mount, a service, a log template …)."""

    model_config = WIRE_CONFIG

    check: str = Field(..., description="check id, e.g. disk.usage")
    category: Category
    item: Optional[str] = None
    severity: Severity
    value: Union[float, Int64, str, None] = None
    unit: Optional[str] = None
    threshold: Optional[Threshold] = None
    message: Message
    summary: str = Field("", description="message rendered in the run's language")
    evidence: List[str] = Field(default_factory=list, description="redacted lines that support it")
    recommendation_key: Optional[str] = None
    recommendation: Optional[str] = Field(
        None, description="recommendation (建议) rendered in the run's language"
    )


class Window(BaseModel):
    model_config = WIRE_CONFIG

    start: Instant
    end: Instant

    @field_validator("end")
    @classmethod
    def _ordered(cls, v: datetime, info: object) -> datetime:
        start = getattr(info, "data", {}).get("start")
        if start is not None and v < start:
            raise ValueError("window end is before its start")
        return v


class InspectionRun(BaseModel):
    """One inspection of one host: the unit the agent spools, the collector stores by `run_id`."""

    model_config = ConfigDict(**WIRE_CONFIG, populate_by_name=True)

    schema_: Int64 = Field(SCHEMA_VERSION, alias="schema", description="wire-format version")
    run_id: uuid.UUID = Field(
        default_factory=uuid.uuid4, description="made at the source; the idempotency key"
    )
    source: Source
    agent_version: str = ""
    lang: str = Field("zh_CN", description="language of summary/recommendation texts")
    created_at: Instant = Field(default_factory=lambda: datetime.now(timezone.utc))
    host: HostIdentity
    window: Window
    facts: FactSet
    results: List[CheckResult] = Field(default_factory=list)

    def worst(self) -> Severity:
        return worst([r.severity for r in self.results])

    def to_json(self, indent: Optional[int] = None) -> str:
        return self.model_dump_json(by_alias=True, indent=indent)
