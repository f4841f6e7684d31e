"""Maintenance contracts (维保合同) as the collector reads them from TOML files.

The contract is the source of every promise xunjian keeps: how many inspections, how fast P1/P2
must be answered and in which support hours, the availability target, who receives the report,
and the thresholds that override the defaults for its hosts. A bad file is refused whole with
one error naming the file, the field path and what was expected.
"""

from __future__ import annotations

import re
from datetime import date, time
from enum import Enum
from pathlib import Path
from typing import Any, Dict, List, Literal, Optional, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from agent.config import (
    AlarmRuleConfig,
    ConfigError,
    RedactionConfig,
    describe_validation,
    read_toml,
)
from checks.catalog import param_models
from checks.params import Layer, Resolver
from collector.alerts.config import AlertSettings


class ServiceLevel(str, Enum):
    basic = "basic"  # 基本级
    regular = "regular"  # 常规级
    enhanced = "enhanced"  # 增强级


class Priority(str, Enum):
    P1 = "P1"
    P2 = "P2"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Contact(_Model):
    name: str
    role: str = ""
    email: Optional[str] = None
    phone: Optional[str] = None

    @field_validator("email")
    @classmethod
    def _email(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", v):
            raise ValueError("not an e-mail address")
        return v


class Party(_Model):
    name: str
    address: str = ""
    contacts: List[Contact] = Field(default_factory=list)


class SupportHours(_Model):
    """When the response clock runs: 5×8 (working days, office hours) or 7×24."""

    kind: Literal["5x8", "7x24"] = "5x8"
    days: List[int] = Field(
        default_factory=lambda: [1, 2, 3, 4, 5], description="ISO weekdays, Mon=1"
    )
    start: time = time(9, 30)
    end: time = time(18, 0)
    holidays: List[date] = Field(default_factory=list, description="days the clock does not run")
    workdays: List[date] = Field(default_factory=list, description="weekend days worked (调休)")

    @model_validator(mode="after")
    def _span(self) -> "SupportHours":
        if self.kind == "5x8" and self.end <= self.start:
            raise ValueError("support hours: end must be after start")
        if any(d < 1 or d > 7 for d in self.days):
            raise ValueError("support hours: days are ISO weekdays 1 (Mon) … 7 (Sun)")
        return self


class ResponseTimes(_Model):
    """Hours within support hours for a first answer to a fault (contract's 响应时间)."""

    P1: float = Field(2.0, gt=0)
    P2: float = Field(4.0, gt=0)


class Entitlements(_Model):
    remote_inspections_per_year: int = Field(4, ge=0, le=366)
    onsite_inspections_per_year: int = Field(0, ge=0, le=366)


class ReportSettings(_Model):
    schedule: Optional[Literal["monthly", "bimonthly", "quarterly", "semiannual", "annual"]] = (
        Field(None, description="derived from remote inspections per year unless set")
    )
    language: Literal["zh_CN", "en"] = "zh_CN"
    recipients: List[str] = Field(default_factory=list)
    cc: List[str] = Field(default_factory=list)

    @field_validator("recipients", "cc")
    @classmethod
    def _emails(cls, v: List[str]) -> List[str]:
        bad = [a for a in v if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", a)]
        if bad:
            raise ValueError(f"not e-mail addresses: {', '.join(bad)}")
        return v


class HostSelector(_Model):
    """A host under contract, named by hostname, by the collector's host id, or by a tag."""

    hostname: Optional[str] = None
    host_id: Optional[str] = None
    tag: Optional[str] = None
    address: Optional[str] = Field(None, description="for SSH inspection: host[:port]")
    user: Optional[str] = None
    jump: Optional[str] = Field(None, description="jump host chain for SSH, e.g. ops@bastion:2222")
    sudo: bool = False
    thresholds: Dict[str, Dict[str, Any]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _named(self) -> "HostSelector":
        if not (self.hostname or self.host_id or self.tag):
            raise ValueError("a host needs hostname, host_id or tag")
        return self

    @property
    def label(self) -> str:
        return self.hostname or self.host_id or f"tag:{self.tag}"


class Contract(_Model):
    _resolvers: dict[Optional[int], Resolver] = PrivateAttr(default_factory=dict)

    number: str = Field(..., min_length=1, description="合同编号")
    title: str = ""
    customer: Party
    vendor: Party
    level: ServiceLevel
    start: date
    end: date
    timezone: str = "Asia/Shanghai"
    entitlements: Entitlements = Field(default_factory=Entitlements)
    response_hours: ResponseTimes = Field(default_factory=ResponseTimes)
    support: SupportHours = Field(default_factory=SupportHours)
    availability_target: float = Field(99.9, gt=0, le=100, description="percent")
    silence_minutes: int = Field(30, ge=1, description="a host silent longer than this is down")
    report: ReportSettings = Field(default_factory=ReportSettings)
    hosts: List[HostSelector] = Field(default_factory=list)
    thresholds: Dict[str, Dict[str, Any]] = Field(default_factory=dict)
    alarm_rules: List[AlarmRuleConfig] = Field(default_factory=list)
    redaction: RedactionConfig = Field(default_factory=RedactionConfig)
    alerts: AlertSettings = Field(default_factory=AlertSettings)

    @field_validator("number")
    @classmethod
    def _number(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._\-/]*", v):
            raise ValueError("letters, digits and . _ - / only")
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {v!r}") from exc
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "Contract":
        if self.end < self.start:
            raise ValueError("end is before start")
        problems = self.resolver_for(None).validate(param_models())
        for host in self.hosts:
            problems += Resolver(
                [Layer(name=f"host:{host.label}", checks=host.thresholds)]
            ).validate(param_models())
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def report_schedule(self) -> str:
        """Explicit schedule, else derived: 12/yr → monthly, 6 → bimonthly, 4 → quarterly …"""
        if self.report.schedule:
            return self.report.schedule
        n = self.entitlements.remote_inspections_per_year
        for per_year, name in (
            (12, "monthly"),
            (6, "bimonthly"),
            (4, "quarterly"),
            (2, "semiannual"),
        ):
            if n >= per_year:
                return name
        return "annual"

    def host_selector(
        self, hostname: str, host_id: Optional[str] = None, tags: Sequence[str] = ()
    ) -> Optional[HostSelector]:
        for sel in self.hosts:
            if (sel.hostname and sel.hostname == hostname) or (
                sel.host_id and sel.host_id == host_id
            ):
                return sel
            if sel.tag and sel.tag in tags:
                return sel
        return None

    def resolver_for(self, host: Optional[HostSelector]) -> Resolver:
        """Defaults → contract → host; item-level overrides live inside each layer. One resolver
        per selector for the life of this (cached, immutable) contract, so that each run of a
        host reuses the parameters resolved for the last."""
        key = None if host is None else id(host)  # selectors live and die with the contract
        resolver = self._resolvers.get(key)
        if resolver is None:
            layers = [Layer(name=f"contract:{self.number}", checks=self.thresholds)]
            if host is not None and host.thresholds:
                layers.append(Layer(name=f"host:{host.label}", checks=host.thresholds))
            resolver = self._resolvers[key] = Resolver(layers)
        return resolver


def load_contract(path: Path) -> Contract:
    """Parse and validate one contract file; ConfigError names the file and the field path."""
    data = read_toml(path)
    try:
        return Contract.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation(path, exc, "invalid contract")) from exc
