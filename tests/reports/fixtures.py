"""A realistic run and its samples with known figures, for report, mail and benchmark fixtures.

The figures are chosen so that a reader of the PDF can find them: disk /data at 91.5 % (critical
under the default 90 %), memory at 87.3 % (warning under the example contract's 85 %), CPU 12.5 %.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Optional

from checks.facts import (
    CpuFacts,
    FactSet,
    FdFacts,
    Filesystem,
    HistoryFacts,
    HostIdentity,
    ListenPort,
    LogFacts,
    LogSourceFacts,
    LogTemplate,
    MemoryFacts,
    OsInfo,
    PackageChange,
    ProcessFacts,
    ServiceFacts,
    TimeSyncFacts,
    UnitState,
    UptimeFacts,
)
from checks.history_summary import summarize
from checks.model import InspectionRun, Source, Window
from checks.wire import MountSample, Sample

GiB = 1024**3


def make_run(
    hostname: str = "app01",
    at: Optional[datetime] = None,
    *,
    data_used_percent: float = 91.5,
    memory_percent: float = 87.3,
    source: Source = Source.agent,
) -> InspectionRun:
    at = at or datetime(2026, 9, 28, 0, 0, tzinfo=timezone.utc)
    total = 500 * GiB
    used = int(total * data_used_percent / 100)
    facts = FactSet(
        collected_at=at,
        cpu=CpuFacts(usage_percent=12.5, logical_cores=8, load1=0.8, load5=0.6, load15=0.5),
        memory=MemoryFacts(
            total_bytes=32 * GiB,
            available_bytes=int(32 * GiB * (100 - memory_percent) / 100),
            used_percent=memory_percent,
            swap_total_bytes=4 * GiB,
            swap_used_bytes=0,
            swap_used_percent=0.0,
        ),
        filesystems=[
            Filesystem(
                mount="/",
                device="/dev/sda1",
                fstype="ext4",
                total_bytes=50 * GiB,
                used_bytes=20 * GiB,
                free_bytes=30 * GiB,
                used_percent=40.0,
                inodes_total=3_000_000,
                inodes_used=300_000,
                inodes_used_percent=10.0,
            ),
            Filesystem(
                mount="/data",
                device="/dev/sdb1",
                fstype="xfs",
                total_bytes=total,
                used_bytes=used,
                free_bytes=total - used,
                used_percent=data_used_percent,
                inodes_total=10_000_000,
                inodes_used=1_000_000,
                inodes_used_percent=10.0,
            ),
        ],
        uptime=UptimeFacts(boot_time=at - timedelta(days=40), uptime_seconds=40 * 86400),
        logs=LogFacts(
            sources=[
                LogSourceFacts(source="/var/log/messages", lines_read=120_000, lines_in_window=9000)
            ],
            templates=[
                LogTemplate(
                    rule="kernel.io_error",
                    family="kernel",
                    severity="critical",
                    template_id="t1",
                    template="blk_update_request: I/O error, dev <*>, sector <*>",
                    source="/var/log/messages",
                    count=17,
                    first_seen=at - timedelta(hours=20),
                    last_seen=at - timedelta(hours=2),
                    samples=["kernel: blk_update_request: I/O error, dev sdb, sector 123456"],
                ),
                LogTemplate(
                    rule="auth.failed",
                    family="login.failed",
                    severity="warning",
                    template_id="t2",
                    template="Failed password for <*> from <*> port <*> ssh2",
                    source="/var/log/secure",
                    count=42,
                    first_seen=at - timedelta(hours=23),
                    last_seen=at - timedelta(hours=1),
                    samples=[
                        "sshd[2211]: Failed password for root from 203.0.113.9 port 52311 ssh2"
                    ],
                ),
            ],
        ),
        time_sync=TimeSyncFacts(
            tool="chronyc", synchronized=True, offset_seconds=0.002, ntp_service="chronyd"
        ),
        processes=ProcessFacts(total=231, names={"sshd": 2, "java": 1, "chronyd": 1}),
        services=ServiceFacts(
            manager="systemd",
            units=[
                UnitState(name="sshd.service", active="active", sub="running"),
                UnitState(name="kdump.service", active="failed", sub="failed"),
            ],
        ),
        ports=[ListenPort(proto="tcp", address="0.0.0.0", port=22, process="sshd")],
        fds=FdFacts(allocated=3520, maximum=262144, used_percent=1.34),
        history=_history(at),
        coredumps=[],
        service_events=[],
        reboots=[],
        packages=[
            PackageChange(
                time=at - timedelta(hours=5), action="upgrade", name="openssl", version="3.0.7-27"
            )
        ],
        errors={
            "certificates": "no certificate files configured",
            "backups": "no backup globs configured",
            "http": "no URLs configured",
        },
    )
    return InspectionRun(
        run_id=uuid.uuid5(uuid.NAMESPACE_URL, f"xunjian-test/{hostname}/{at.isoformat()}"),
        source=source,
        created_at=at,
        host=HostIdentity(
            hostname=hostname,
            machine_id=uuid.uuid5(uuid.NAMESPACE_DNS, hostname).hex,
            os=OsInfo(name="Red Hat Enterprise Linux", version="9.4", id="rhel"),
            kernel="5.14.0-427.el9.x86_64",
            arch="x86_64",
            addresses=["10.0.0.11"],
        ),
        window=Window(start=at - timedelta(hours=24), end=at),
        facts=facts,
    )


def _history(at: datetime) -> HistoryFacts:
    """What the agent's own store would summarise for the run's window (from the same samples)."""
    day = make_samples(at, step_minutes=5)
    metrics = [
        summarize("cpu", "%", [(x.at, x.cpu_percent) for x in day]),
        summarize("memory", "%", [(x.at, x.memory_percent) for x in day]),
        summarize("load1", "", [(x.at, x.load1) for x in day]),
        summarize("disk:/data", "%", [(x.at, x.mounts[1].used_percent) for x in day]),
    ]
    return HistoryFacts(source="agent", start=day[0].at, end=at, metrics=[m for m in metrics if m])


def make_samples(
    end: datetime, *, minutes: int = 1440, step_minutes: int = 1, seed: int = 0
) -> list[Sample]:
    """A day of samples with a daily rhythm and one CPU spike of 97.5 % two hours before `end`."""
    out: list[Sample] = []
    for i in range(0, minutes, step_minutes):
        at = end - timedelta(minutes=minutes - i)
        phase = ((i + seed * 37) % 1440) / 1440
        wave = 0.5 - 0.5 * abs(2 * phase - 1)
        cpu = 97.5 if i == minutes - 120 else 10 + 40 * wave + (i * 7 + seed) % 5
        out.append(
            Sample(
                at=at,
                cpu_percent=cpu,
                load1=0.4 + 3 * wave,
                load5=0.4 + 2.5 * wave,
                load15=0.4 + 2 * wave,
                memory_percent=70 + 15 * wave,
                swap_percent=0.0,
                mounts=[
                    MountSample(
                        mount="/", used_percent=40.0, used_bytes=20 * GiB, total_bytes=50 * GiB
                    ),
                    MountSample(
                        mount="/data",
                        used_percent=89 + 2.5 * i / minutes,
                        used_bytes=int(500 * GiB * (0.89 + 0.025 * i / minutes)),
                        total_bytes=500 * GiB,
                    ),
                ],
            )
        )
    return out
