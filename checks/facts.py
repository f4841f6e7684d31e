"""Typed facts about one host: what a source observed, with no judgement in it.

Every transport (local psutil, the SSH probe's parsers, an offline bundle) fills the same
sections, so one set of rules judges them all. A section is `None` when it was not gathered and
then `FactSet.errors[section]` says why; rules turn that into `unknown`, never into `ok`.
Units are in field names or descriptions: bytes, percent (0–100), seconds, UTC datetimes.
"""

from __future__ import annotations

from typing import Dict, List, Optional

from pydantic import BaseModel, Field

from checks.bounds import WIRE_CONFIG, Instant, Int64


class _Facts(BaseModel):
    model_config = WIRE_CONFIG


class OsInfo(_Facts):
    name: str = Field("", description="e.g. Debian GNU/Linux, Red Hat Enterprise Linux, openEuler")
    version: str = ""
    id: str = Field("", description="os-release ID, e.g. debian, rhel, openeuler")


class HostIdentity(_Facts):
    hostname: str
    fqdn: Optional[str] = None
    machine_id: Optional[str] = Field(None, description="/etc/machine-id")
    os: OsInfo = Field(default_factory=OsInfo)
    kernel: str = ""
    arch: str = ""
    addresses: List[str] = Field(default_factory=list, description="non-loopback IP addresses")
    boot_time: Optional[Instant] = None


class CpuFacts(_Facts):
    usage_percent: float = Field(..., description="busy % of all cores over the sample interval")
    iowait_percent: Optional[float] = None
    steal_percent: Optional[float] = None
    logical_cores: Int64 = Field(..., ge=1)
    load1: float
    load5: float
    load15: float


class MemoryFacts(_Facts):
    total_bytes: Int64
    available_bytes: Int64
    used_percent: float = Field(..., description="(total - available) / total × 100")
    swap_total_bytes: Int64 = 0
    swap_used_bytes: Int64 = 0
    swap_used_percent: float = 0.0


class Filesystem(_Facts):
    mount: str
    device: str = ""
    fstype: str = ""
    options: List[str] = Field(default_factory=list)
    readonly: bool = False
    total_bytes: Int64 = 0
    used_bytes: Int64 = 0
    free_bytes: Int64 = Field(0, description="available to unprivileged users")
    used_percent: float = Field(0.0, description="used / (used + free) × 100, as df shows it")
    inodes_total: Optional[Int64] = None
    inodes_used: Optional[Int64] = None
    inodes_used_percent: Optional[float] = None
    error: Optional[str] = Field(
        None, description="why its usage could not be read (stale mount …)"
    )


class UptimeFacts(_Facts):
    boot_time: Instant
    uptime_seconds: float


class TimeSyncFacts(_Facts):
    tool: str = Field(..., description="timedatectl | chronyc | ntpq | none")
    synchronized: Optional[bool] = None
    offset_seconds: Optional[float] = Field(
        None, description="reference − local clock; positive: local clock slow"
    )
    ntp_service: Optional[str] = Field(None, description="chronyd, ntpd, systemd-timesyncd …")
    error: Optional[str] = Field(None, description="with tool 'none': why no tool answered")


class ProcessRef(_Facts):
    pid: Int64
    ppid: Optional[Int64] = None
    name: str = ""


class ProcessFacts(_Facts):
    total: Int64
    zombies: List[ProcessRef] = Field(default_factory=list)
    names: Dict[str, Int64] = Field(
        default_factory=dict,
        description="process name → count (names only: command lines may hold secrets)",
    )


class UnitState(_Facts):
    name: str
    active: str = Field(..., description="systemd ActiveState: active, failed, inactive …")
    sub: str = ""


class ServiceFacts(_Facts):
    manager: str = Field(..., description="systemd | none")
    units: List[UnitState] = Field(default_factory=list, description="service units")

    @property
    def failed(self) -> List[UnitState]:
        return [u for u in self.units if u.active == "failed"]


class ListenPort(_Facts):
    proto: str = Field(..., description="tcp | tcp6 | udp | udp6")
    address: str
    port: Int64
    process: Optional[str] = None


class FdFacts(_Facts):
    allocated: Int64
    maximum: Int64
    used_percent: float


class CertFacts(_Facts):
    path: str
    subject: Optional[str] = None
    not_after: Optional[Instant] = None
    error: Optional[str] = None


class BackupFacts(_Facts):
    pattern: str
    matches: Int64 = 0
    newest_path: Optional[str] = None
    newest_mtime: Optional[Instant] = None
    newest_size_bytes: Optional[Int64] = None
    error: Optional[str] = None


class HttpProbe(_Facts):
    url: str
    status: Optional[Int64] = None
    elapsed_ms: Optional[float] = None
    error: Optional[str] = None


class LogSourceFacts(_Facts):
    """What was read from one log source, so a report can say what was (not) looked at."""

    source: str = Field(..., description="file path or 'journald'")
    bytes_read: Int64 = 0
    lines_read: Int64 = 0
    lines_in_window: Int64 = 0
    lines_without_time: Int64 = 0
    truncated: bool = Field(False, description="the scan stopped at its byte budget")
    error: Optional[str] = None


class LogTemplate(_Facts):
    """Matching log lines grouped into one drain3 template."""

    rule: str = Field(..., description="alarm rule id that matched, e.g. kernel.oom")
    family: str = Field(..., description="alarm | kernel | app | login.failed | login.ok | …")
    severity: str = Field(..., description="severity the rule assigns")
    template_id: str
    template: str
    source: str
    count: Int64
    first_seen: Optional[Instant] = None
    last_seen: Optional[Instant] = None
    samples: List[str] = Field(default_factory=list, description="up to 3 redacted lines")


class LogFacts(_Facts):
    sources: List[LogSourceFacts] = Field(default_factory=list)
    templates: List[LogTemplate] = Field(default_factory=list)
    failed_login_minutes: Dict[str, Int64] = Field(
        default_factory=dict,
        description="failed log-ins per minute: ISO minute (UTC) → count; for burst detection",
    )
    failed_login_sources: Dict[str, Int64] = Field(
        default_factory=dict, description="remote address → failures"
    )
    successful_logins: Int64 = 0


class Coredump(_Facts):
    time: Instant
    exe: str = ""
    pid: Optional[Int64] = None
    signal: Optional[str] = None
    path: Optional[str] = None


class ServiceEvent(_Facts):
    unit: str
    kind: str = Field(..., description="failed | restarted")
    count: Int64 = 1
    last_seen: Optional[Instant] = None
    sample: Optional[str] = None


class MetricSummary(_Facts):
    metric: str = Field(..., description="cpu | memory | swap | load1 | disk:/mount")
    unit: str = Field("%", description="% or a plain number for load")
    samples: Int64
    min: float
    avg: float
    p95: float
    max: float
    max_at: Optional[Instant] = None


class DiskTrend(_Facts):
    mount: str
    growth_bytes_per_day: float = Field(..., description="least-squares slope of used bytes")
    free_bytes: Int64
    span_hours: float = Field(..., description="how much history the slope rests on")


class RebootEvent(_Facts):
    time: Instant
    kind: str = Field(
        "reboot", description="reboot | shutdown | crash (no clean shutdown before boot)"
    )


class PackageChange(_Facts):
    time: Instant
    action: str = Field(..., description="install | remove | upgrade")
    name: str
    version: str = ""


class HistoryFacts(_Facts):
    source: str = Field(..., description="agent | sysstat")
    start: Optional[Instant] = None
    end: Optional[Instant] = None
    metrics: List[MetricSummary] = Field(default_factory=list)
    disk_trends: List[DiskTrend] = Field(default_factory=list)


class FactSet(_Facts):
    """Everything one inspection observed; `errors` names each section that was not gathered."""

    collected_at: Instant
    cpu: Optional[CpuFacts] = None
    memory: Optional[MemoryFacts] = None
    filesystems: Optional[List[Filesystem]] = None
    uptime: Optional[UptimeFacts] = None
    time_sync: Optional[TimeSyncFacts] = None
    processes: Optional[ProcessFacts] = None
    services: Optional[ServiceFacts] = None
    ports: Optional[List[ListenPort]] = None
    fds: Optional[FdFacts] = None
    certificates: Optional[List[CertFacts]] = None
    backups: Optional[List[BackupFacts]] = None
    http: Optional[List[HttpProbe]] = None
    logs: Optional[LogFacts] = None
    coredumps: Optional[List[Coredump]] = None
    service_events: Optional[List[ServiceEvent]] = None
    history: Optional[HistoryFacts] = None
    reboots: Optional[List[RebootEvent]] = None
    packages: Optional[List[PackageChange]] = None
    errors: Dict[str, str] = Field(
        default_factory=dict, description="section name → why it could not be gathered"
    )

    def missing(self, section: str) -> Optional[str]:
        """Why `section` is absent (the recorded error, or a generic reason), or None if present."""
        if getattr(self, section) is not None:
            return None
        return self.errors.get(section, "not collected")
