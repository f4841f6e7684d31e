"""System-status rules: exact findings, default and overridden thresholds, unknown without facts."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, Dict, List, Optional, Tuple

import pytest

from checks.catalog import BY_ID
from checks.evaluate import evaluate
from checks.facts import (
    BackupFacts,
    CertFacts,
    FactSet,
    FdFacts,
    Filesystem,
    HttpProbe,
    ListenPort,
    MemoryFacts,
    ProcessFacts,
    ProcessRef,
    ServiceFacts,
    TimeSyncFacts,
    UnitState,
    UptimeFacts,
)
from checks.model import CheckResult
from checks.params import Layer, ParamsError, Resolver
from checks.text import LANGS, render
from tests.checks.rule_table import (
    CFG,
    NOW,
    Case,
    GiB,
    critical,
    info,
    ok,
    unknown,
    warning,
)


def mem(used: float, swap_total: int = 0, swap_used: int = 0) -> MemoryFacts:
    total = 16 * GiB
    return MemoryFacts(
        total_bytes=total,
        available_bytes=int(total * (100 - used) / 100),
        used_percent=used,
        swap_total_bytes=swap_total,
        swap_used_bytes=swap_used,
        swap_used_percent=100.0 * swap_used / swap_total if swap_total else 0.0,
    )


def fs(
    mount: str,
    used: float,
    fstype: str = "ext4",
    ro: bool = False,
    inodes: Optional[float] = 10.0,
    error: Optional[str] = None,
) -> Filesystem:
    total = 0 if error else 100 * GiB
    return Filesystem(
        mount=mount,
        device=f"/dev/{mount.strip('/').replace('/', '_') or 'root'}",
        fstype=fstype,
        options=["ro" if ro else "rw", "relatime"],
        readonly=ro,
        total_bytes=total,
        used_bytes=int(total * used / 100),
        free_bytes=total - int(total * used / 100),
        used_percent=used,
        inodes_total=1000 if inodes is not None else 0,
        inodes_used=int(10 * inodes) if inodes is not None else None,
        inodes_used_percent=inodes,
        error=error,
    )


def ts(
    tool: str = "chronyc", synced: Optional[bool] = True, offset: Optional[float] = None
) -> TimeSyncFacts:
    return TimeSyncFacts(
        tool=tool, synchronized=synced, offset_seconds=offset, ntp_service="chronyd"
    )


def procs(names: Dict[str, int], zombies: int = 0) -> ProcessFacts:
    return ProcessFacts(
        total=200,
        zombies=[ProcessRef(pid=1000 + i, ppid=999, name="worker") for i in range(zombies)],
        names=names,
    )


def units(*spec: Tuple[str, str, str]) -> ServiceFacts:
    return ServiceFacts(
        manager="systemd", units=[UnitState(name=n, active=a, sub=s) for n, a, s in spec]
    )


def cert(path: str, days: Optional[float], error: Optional[str] = None) -> CertFacts:
    not_after = NOW + timedelta(days=days) if days is not None else None
    return CertFacts(path=path, subject="CN=shop.example.cn", not_after=not_after, error=error)


def backup(pattern: str, hours: Optional[float], matches: int = 3) -> BackupFacts:
    if hours is None:
        return BackupFacts(pattern=pattern)
    return BackupFacts(
        pattern=pattern,
        matches=matches,
        newest_path="/backup/db/2026-11-20.dump",
        newest_mtime=NOW - timedelta(hours=hours),
        newest_size_bytes=5 * GiB,
    )


DISKS = [
    fs("/", 85.0),
    fs("/data", 92.0, fstype="xfs", inodes=95.0),
    fs("/var", 50.0, inodes=80.0),
    fs("/snap/core/1234", 100.0, fstype="squashfs", ro=True),
    fs("/run", 100.0, fstype="tmpfs"),
    fs("/mnt/iso", 100.0, ro=True),
    fs("/srv/btrfs", 10.0, fstype="btrfs", inodes=None),
    fs("/stale", 0.0, error="Permission denied: /stale"),
]

CASES = [
    Case(
        "memory default ok",
        "memory.usage",
        {"memory": mem(87.5)},
        [(None, ok, 87.5, "ok", "default")],
    ),
    Case(
        "memory warning",
        "memory.usage",
        {"memory": mem(90.0)},
        [(None, warning, 90.0, "bad", "default")],
    ),
    Case(
        "memory critical",
        "memory.usage",
        {"memory": mem(97.2)},
        [(None, critical, 97.2, "bad", "default")],
    ),
    Case(
        "memory custom warning",
        "memory.usage",
        {"memory": mem(87.5)},
        [(None, warning, 87.5, "bad", CFG)],
        {"memory.usage": {"warning": 85}},
    ),
    Case(
        "memory critical switched off",
        "memory.usage",
        {"memory": mem(97.2)},
        [(None, warning, 97.2, "bad", CFG)],
        {"memory.usage": {"critical": None}},
    ),
    Case("no swap", "swap.usage", {"memory": mem(50.0)}, [(None, ok, None, "none", None)]),
    Case(
        "swap warning",
        "swap.usage",
        {"memory": mem(50.0, swap_total=4 * GiB, swap_used=GiB * 12 // 5)},
        [(None, warning, 60.0, "bad", "default")],
    ),
    Case(
        "disk defaults",
        "disk.usage",
        {"filesystems": DISKS},
        [
            ("/", warning, 85.0, "bad", "default"),
            ("/data", critical, 92.0, "bad", "default"),
            ("/var", ok, 50.0, "ok", "default"),
            ("/srv/btrfs", ok, 10.0, "ok", "default"),
            ("/stale", unknown, None, "unknown", None),
        ],
    ),
    Case(
        "disk item override for /data",
        "disk.usage",
        {"filesystems": DISKS[:3]},
        [
            ("/", ok, 85.0, "ok", CFG),
            ("/data", ok, 92.0, "ok", f"{CFG}[/data]"),
            ("/var", ok, 50.0, "ok", CFG),
        ],
        {
            "disk.usage": {
                "warning": 90,
                "critical": 95,
                "items": {"/data": {"warning": 95, "critical": 98}},
            }
        },
    ),
    Case(
        "disk skip by mount glob",
        "disk.usage",
        {"filesystems": DISKS[:3]},
        [("/", warning, 85.0, "bad", "default"), ("/var", ok, 50.0, "ok", "default")],
        {"disk.usage": {"skip_mounts": ["/da*"]}},
    ),
    Case(
        "disk only pseudo and images",
        "disk.usage",
        {"filesystems": [DISKS[3], DISKS[4]]},
        [(None, unknown, None, "unknown", None)],
    ),
    Case(
        "inodes",
        "disk.inodes",
        {"filesystems": DISKS},
        [
            ("/", ok, 10.0, "ok", "default"),
            ("/data", critical, 95.0, "bad", "default"),
            ("/var", warning, 80.0, "bad", "default"),
            ("/stale", unknown, None, "unknown", None),
        ],
    ),
    Case(
        "read-only data disk",
        "fs.readonly",
        {"filesystems": DISKS},
        [("/mnt/iso", critical, "ro", "bad", None)],
    ),
    Case(
        "read-only mount expected by config",
        "fs.readonly",
        {"filesystems": DISKS},
        [(None, ok, 5, "ok", None)],
        {"fs.readonly": {"expected_readonly_mounts": ["/mnt/*"]}},
    ),
    Case(
        "recent reboot",
        "uptime",
        {"uptime": UptimeFacts(boot_time=NOW - timedelta(hours=3), uptime_seconds=3 * 3600)},
        [(None, warning, 3.0, "bad", "default")],
    ),
    Case(
        "long uptime",
        "uptime",
        {"uptime": UptimeFacts(boot_time=NOW - timedelta(days=40), uptime_seconds=40 * 86400)},
        [(None, ok, 960.0, "ok", "default")],
    ),
    Case(
        "reboot window widened",
        "uptime",
        {"uptime": UptimeFacts(boot_time=NOW - timedelta(hours=30), uptime_seconds=30 * 3600)},
        [(None, warning, 30.0, "bad", CFG)],
        {"uptime": {"warning": 48}},
    ),
    Case(
        "recent reboot is routine here",
        "uptime",
        {"uptime": UptimeFacts(boot_time=NOW - timedelta(hours=3), uptime_seconds=3 * 3600)},
        [(None, info, 3.0, "bad", "default")],
        {"uptime": {"reported_as": "info"}},
    ),
    Case(
        "time offset ok",
        "time.sync",
        {"time_sync": ts(offset=0.0002)},
        [(None, ok, 0.0, "ok", "default")],
    ),
    Case(
        "time offset warning",
        "time.sync",
        {"time_sync": ts(offset=-2.5)},
        [(None, warning, 2.5, "bad", "default")],
    ),
    Case(
        "time offset critical",
        "time.sync",
        {"time_sync": ts(offset=12.0)},
        [(None, critical, 12.0, "bad", "default")],
    ),
    Case(
        "time synced, no offset",
        "time.sync",
        {"time_sync": ts("timedatectl")},
        [(None, ok, "yes", "synced", None)],
    ),
    Case(
        "time unsynced",
        "time.sync",
        {"time_sync": ts(synced=False)},
        [(None, warning, "no", "unsynced", None)],
    ),
    Case(
        "time unsynced is critical by config",
        "time.sync",
        {"time_sync": ts(synced=False)},
        [(None, critical, "no", "unsynced", None)],
        {"time.sync": {"unsynchronized": "critical"}},
    ),
    Case(
        "no time tool",
        "time.sync",
        {"time_sync": TimeSyncFacts(tool="none", error="chronyc: not installed")},
        [(None, unknown, None, "unknown", None)],
    ),
    Case(
        "no zombies",
        "processes.zombie",
        {"processes": procs({"sshd": 1})},
        [(None, ok, 0, "ok", "default")],
    ),
    Case(
        "zombies",
        "processes.zombie",
        {"processes": procs({}, zombies=6)},
        [(None, warning, 6, "bad", "default")],
    ),
    Case(
        "required processes",
        "process.required",
        {"processes": procs({"nginx": 4, "java_app_server": 1})},
        [
            ("nginx", ok, 4, "ok", None),
            ("mysqld", critical, 0, "missing", None),
            ("java_app_server_main", ok, 1, "ok", None),
        ],
        {"process.required": {"names": ["nginx", "mysqld", "java_app_server_main"]}},
    ),
    Case("no required processes configured", "process.required", {"processes": procs({})}, []),
    Case(
        "required services",
        "service.required",
        {
            "services": units(
                ("nginx.service", "active", "running"), ("db.service", "failed", "failed")
            )
        },
        [
            ("nginx.service", ok, "active", "ok", None),
            ("db.service", critical, "failed", "inactive", None),
            ("redis.service", critical, "absent", "absent", None),
        ],
        {"service.required": {"units": ["nginx", "db.service", "redis"]}},
    ),
    Case(
        "required service without systemd",
        "service.required",
        {"services": ServiceFacts(manager="none")},
        [("nginx.service", unknown, None, "unknown", None)],
        {"service.required": {"units": ["nginx"]}},
    ),
    Case(
        "failed services",
        "services.failed",
        {"services": units(("a.service", "failed", "failed"), ("b.service", "active", "running"))},
        [("a.service", warning, "failed", "bad", None)],
    ),
    Case(
        "failed service ignored",
        "services.failed",
        {"services": units(("a.service", "failed", "failed"), ("b.service", "active", "running"))},
        [(None, ok, 0, "ok", None)],
        {"services.failed": {"ignore": ["a.*"]}},
    ),
    Case(
        "services without systemd",
        "services.failed",
        {"services": ServiceFacts(manager="none")},
        [(None, unknown, None, "unknown", None)],
    ),
    Case(
        "ports",
        "port.listening",
        {
            "ports": [
                ListenPort(proto="tcp6", address="::", port=22, process="sshd"),
                ListenPort(proto="udp", address="0.0.0.0", port=53),
                ListenPort(proto="udp", address="0.0.0.0", port=8080),
            ]
        },
        [
            ("tcp/22", ok, 22, "ok", None),
            ("udp/53", ok, 53, "ok", None),
            ("tcp/8080", critical, 8080, "closed", None),
        ],
        {"port.listening": {"ports": [22, "udp/53", "TCP/8080"]}},
    ),
    Case(
        "fds ok",
        "fd.usage",
        {"fds": FdFacts(allocated=100, maximum=1000, used_percent=10.0)},
        [(None, ok, 10.0, "ok", "default")],
    ),
    Case(
        "fds warning",
        "fd.usage",
        {"fds": FdFacts(allocated=850, maximum=1000, used_percent=85.0)},
        [(None, warning, 85.0, "bad", "default")],
    ),
    Case(
        "certificates",
        "cert.expiry",
        {
            "certificates": [
                cert("/etc/ssl/a.pem", 100.0),
                cert("/etc/ssl/b.pem", 20.0),
                cert("/etc/ssl/b.pem", 5.0),
                cert("/etc/ssl/c.pem", -2.0),
                cert("/etc/ssl/d.pem", None, error="no PEM certificate in the file"),
            ]
        },
        [
            ("/etc/ssl/a.pem", ok, 100.0, "ok", "default"),
            ("/etc/ssl/b.pem", warning, 20.0, "bad", "default"),
            ("/etc/ssl/b.pem#2", critical, 5.0, "bad", "default"),
            ("/etc/ssl/c.pem", critical, -2.0, "expired", "default"),
            ("/etc/ssl/d.pem", unknown, None, "unknown", None),
        ],
    ),
    Case(
        "certificate warning earlier by config",
        "cert.expiry",
        {"certificates": [cert("/etc/ssl/a.pem", 50.0)]},
        [("/etc/ssl/a.pem", warning, 50.0, "bad", CFG)],
        {"cert.expiry": {"warning": 60}},
    ),
    Case(
        "backups",
        "backup.freshness",
        {
            "backups": [
                backup("/backup/db/*.dump", 2.0),
                backup("/backup/files/*.tar", 30.0),
                backup("/backup/old/*.tar", 72.0),
                backup("/backup/none/*.tar", None),
                BackupFacts(pattern="/root/*.bak", error="Permission denied: /root"),
            ]
        },
        [
            ("/backup/db/*.dump", ok, 2.0, "ok", "default"),
            ("/backup/files/*.tar", warning, 30.0, "bad", "default"),
            ("/backup/old/*.tar", critical, 72.0, "bad", "default"),
            ("/backup/none/*.tar", critical, None, "none", "default"),
            ("/root/*.bak", unknown, None, "unknown", None),
        ],
    ),
    Case(
        "weekly backup",
        "backup.freshness",
        {"backups": [backup("/backup/db/*.dump", 72.0)]},
        [("/backup/db/*.dump", ok, 72.0, "ok", f"{CFG}[/backup/db/*.dump]")],
        {"backup.freshness": {"items": {"/backup/db/*.dump": {"warning": 170, "critical": 340}}}},
    ),
    Case(
        "http",
        "http.endpoint",
        {
            "http": [
                HttpProbe(url="https://a.example/", status=200, elapsed_ms=120.0),
                HttpProbe(url="https://b.example/", status=301, elapsed_ms=1500.0),
                HttpProbe(url="https://c.example/", status=200, elapsed_ms=3000.0),
                HttpProbe(url="https://d.example/", status=503, elapsed_ms=5.0),
                HttpProbe(
                    url="https://e.example/", error="ConnectError: [Errno 111] Connection refused"
                ),
            ]
        },
        [
            ("https://a.example/", ok, 120.0, "ok", "default"),
            ("https://b.example/", warning, 1500.0, "bad", "default"),
            ("https://c.example/", critical, 3000.0, "bad", "default"),
            ("https://d.example/", critical, 503, "status", None),
            ("https://e.example/", critical, None, "unreachable", None),
        ],
    ),
    Case(
        "http contract target",
        "http.endpoint",
        {"http": [HttpProbe(url="https://a.example/", status=200, elapsed_ms=600.0)]},
        [("https://a.example/", warning, 600.0, "bad", CFG)],
        {"http.endpoint": {"warning": 500}},
    ),
]


def run(
    check: str, facts: FactSet, overrides: Optional[Dict[str, Any]] = None
) -> List[CheckResult]:
    resolver = Resolver([Layer(name=CFG, checks=overrides or {})])
    return evaluate(facts, resolver, checks=[BY_ID[check]])


def key_of(result: CheckResult) -> str:
    prefix = f"{result.check}."
    key = result.message.key
    return key[len(prefix) :] if key.startswith(prefix) else key.split(".")[-1]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_findings(case: Case) -> None:
    results = run(case.check, FactSet(collected_at=NOW, **case.facts), case.overrides)
    got = [
        (
            r.item,
            r.severity,
            r.value,
            key_of(r),
            r.threshold.provenance if r.threshold else None,
        )
        for r in results
    ]
    assert got == case.expect
    for r in results:
        assert r.check == case.check
        assert r.category.value == "status"
        bad = r.severity in (info, warning, critical)
        assert (r.recommendation_key is not None) == (bad or r.severity is unknown), r


def test_threshold_carries_limits_and_direction() -> None:
    [days] = run("cert.expiry", FactSet(collected_at=NOW, certificates=[cert("/c.pem", 10.0)]))
    assert days.threshold is not None
    assert (days.threshold.warning, days.threshold.critical, days.threshold.direction) == (
        30.0,
        7.0,
        "below",
    )
    assert days.unit == "d"
    [disk] = run(
        "disk.usage",
        FactSet(collected_at=NOW, filesystems=[fs("/data", 92.0)]),
        {"disk.usage": {"items": {"/data": {"critical": 99}}}},
    )
    assert disk.threshold is not None
    assert (disk.threshold.warning, disk.threshold.critical) == (80.0, 99.0)
    assert disk.threshold.provenance == f"{CFG}[/data]"
    assert disk.severity is warning


def test_evidence() -> None:
    [zombie] = run("processes.zombie", FactSet(collected_at=NOW, processes=procs({}, zombies=12)))
    assert len(zombie.evidence) == 10
    assert zombie.evidence[0] == "pid 1000 ppid 999 worker"
    [ro] = run("fs.readonly", FactSet(collected_at=NOW, filesystems=[fs("/data", 10.0, ro=True)]))
    assert ro.evidence == ["/dev/data on /data type ext4 (ro,relatime)"]
    ports = [ListenPort(proto="tcp", address="127.0.0.1", port=5432, process="postgres")]
    [port] = run(
        "port.listening",
        FactSet(collected_at=NOW, ports=ports),
        {"port.listening": {"ports": [5432]}},
    )
    assert port.evidence == ["tcp 127.0.0.1:5432 postgres"]


SECTION_OF = {
    "memory.usage": "memory",
    "swap.usage": "memory",
    "disk.usage": "filesystems",
    "disk.inodes": "filesystems",
    "fs.readonly": "filesystems",
    "uptime": "uptime",
    "time.sync": "time_sync",
    "processes.zombie": "processes",
    "process.required": "processes",
    "service.required": "services",
    "services.failed": "services",
    "port.listening": "ports",
    "fd.usage": "fds",
    "cert.expiry": "certificates",
    "backup.freshness": "backups",
    "http.endpoint": "http",
}
LISTS = {
    "process.required": {"names": ["nginx"]},
    "service.required": {"units": ["nginx"]},
    "port.listening": {"ports": [443]},
}


@pytest.mark.parametrize("check", sorted(SECTION_OF))
def test_missing_section_is_unknown_with_reason(check: str) -> None:
    reason = f"{SECTION_OF[check]}: Permission denied: /proc/x"
    failed = FactSet(collected_at=NOW, errors={SECTION_OF[check]: reason})
    overrides = {check: LISTS[check]} if check in LISTS else None
    for facts, why in ((failed, reason), (FactSet(collected_at=NOW), "not collected")):
        results = run(check, facts, overrides)
        assert results, check
        for r in results:
            assert r.severity is unknown
            assert r.message.params == {"reason": why}


def test_lists_configured_but_nothing_to_check() -> None:
    empty = FactSet(collected_at=NOW, certificates=[], backups=[], http=[])
    for check in ("cert.expiry", "backup.freshness", "http.endpoint"):
        assert run(check, empty) == []


def test_bad_port_is_a_config_error_naming_the_field() -> None:
    with pytest.raises(
        ParamsError, match=r"thresholds\.port\.listening\.ports.*'http' is not a port"
    ):
        run(
            "port.listening",
            FactSet(collected_at=NOW, ports=[]),
            {"port.listening": {"ports": ["http"]}},
        )
    with pytest.raises(ParamsError, match="is not a port"):
        run(
            "port.listening",
            FactSet(collected_at=NOW, ports=[]),
            {"port.listening": {"ports": [70000]}},
        )


def test_service_affecting_checks() -> None:
    affecting = {
        spec.id for spec in BY_ID.values() if spec.service_affecting and spec.id in SECTION_OF
    }
    assert affecting == {
        "disk.usage",
        "fs.readonly",
        "process.required",
        "service.required",
        "port.listening",
        "http.endpoint",
    }


def test_disabled_check_yields_nothing() -> None:
    assert (
        run(
            "memory.usage",
            FactSet(collected_at=NOW, memory=mem(99.0)),
            {"memory.usage": {"enabled": False}},
        )
        == []
    )


PLACEHOLDER = re.compile(r"\{[a-z_]+\}")


@pytest.mark.parametrize("lang", LANGS)
def test_every_finding_renders_in_both_languages(lang: str) -> None:
    results: List[CheckResult] = []
    for case in CASES:
        results += run(case.check, FactSet(collected_at=NOW, **case.facts), case.overrides)
    assert len(results) > 60
    for r in render(results, lang):
        assert r.summary and r.summary != r.message.key, r.message.key
        assert not PLACEHOLDER.search(r.summary), (r.message.key, r.summary)
        if r.recommendation_key:
            assert r.recommendation and r.recommendation != r.recommendation_key, (
                r.recommendation_key
            )
            assert not PLACEHOLDER.search(r.recommendation), (
                r.recommendation_key,
                r.recommendation,
            )
        else:
            assert r.recommendation is None
    if lang == "zh_CN":
        [disk] = render(
            run("disk.usage", FactSet(collected_at=NOW, filesystems=[fs("/data", 92.0)])), lang
        )
        assert (
            disk.summary
            == "/data 空间使用率 92.0%，超过阈值（已用 92.0 GiB，共 100.0 GiB，仅剩 8.0 GiB）"
        )
    else:
        [disk] = render(
            run("disk.usage", FactSet(collected_at=NOW, filesystems=[fs("/data", 92.0)])), lang
        )
        assert disk.summary == "/data is 92.0% full (92.0 GiB of 100.0 GiB, only 8.0 GiB free)"
