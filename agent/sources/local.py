"""The system-status facts of this host, read with psutil, /proc and a few read-only tools.

Each section is gathered on its own (see `agent.sources.gather`): a section that fails is None
with its reason in `FactSet.errors`, and the rules report it as unknown. Targets (certificate
files, backup globs, URLs) come only from the local configuration, never from the network.
"""

from __future__ import annotations

import glob
import os
import re
import socket
import ssl
import stat
import time
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Optional, Tuple

import httpx
import psutil

from agent.config import BackupTarget, CollectConfig, HttpTarget
from agent.redact import mask_url
from agent.sources import ToolError, describe_error, gather, read_text, run_tool
from agent.sources.host import boot_time
from checks.facts import (
    BackupFacts,
    CertFacts,
    CpuFacts,
    FactSet,
    Filesystem,
    HttpProbe,
    ListenPort,
    MemoryFacts,
    ProcessFacts,
    ProcessRef,
    ServiceFacts,
    TimeSyncFacts,
    UptimeFacts,
)
from checks.parsers import ParseError
from checks.parsers.file_nr import parse_file_nr
from checks.parsers.systemd import LIST_UNITS_ARGV, parse_list_units
from checks.parsers.timesync import (
    merge_time_sync,
    parse_chronyc_tracking,
    parse_ntpq_peers,
    parse_timedatectl_show,
    running_ntp_daemon,
)
from checks.parsers.x509 import parse_pem_certificates

CPU_SAMPLE_SECONDS = 0.5
TIME_TOOLS: Tuple[Tuple[Tuple[str, ...], Callable[[str], TimeSyncFacts]], ...] = (
    (("timedatectl", "show"), parse_timedatectl_show),
    (("chronyc", "-c", "tracking"), parse_chronyc_tracking),
    (("ntpq", "-pn"), parse_ntpq_peers),
)
SYSTEMD_RUNTIME = "/run/systemd/system"
"""Exists only when systemd is PID 1 (sd_booted); systemctl in a container without it fails."""
FILE_NR = "/proc/sys/fs/file-nr"
MAX_CERT_FILE_BYTES = 1 << 20
_GLOB_MAGIC = re.compile(r"[*?[]")


def gather_status(
    collect: CollectConfig,
    *,
    now: Optional[datetime] = None,
    cpu_seconds: float = CPU_SAMPLE_SECONDS,
) -> FactSet:
    """The status sections of this host; other sections (logs, history …) are added elsewhere."""
    collected_at = now or datetime.now(timezone.utc)
    sections: Dict[str, Callable[[], Any]] = {
        # CPU first, while this process is still idle, so its own work does not count as load.
        "cpu": lambda: cpu_facts(cpu_seconds),
        "memory": memory_facts,
        "filesystems": filesystems,
        "uptime": lambda: uptime_facts(collected_at),
        "time_sync": time_sync,
        "processes": processes,
        "services": services,
        "ports": listening_ports,
        "fds": lambda: parse_file_nr(read_text(FILE_NR)),
        "certificates": lambda: [c for path in collect.certificates for c in certificates(path)],
        "backups": lambda: [backup_facts(target) for target in collect.backups],
        "http": lambda: [http_probe(target) for target in collect.http],
    }
    values, errors = gather(sections)
    return FactSet(collected_at=collected_at, errors=errors, **values)


def cpu_facts(seconds: float = CPU_SAMPLE_SECONDS) -> CpuFacts:
    """Busy share over `seconds`; I/O wait counts as idle (the CPU could run other work)."""
    times = psutil.cpu_times_percent(interval=seconds)
    iowait: Optional[float] = getattr(times, "iowait", None)
    idle = times.idle + (iowait or 0.0)
    load1, load5, load15 = os.getloadavg()
    return CpuFacts(
        usage_percent=round(min(max(100.0 - idle, 0.0), 100.0), 2),
        iowait_percent=iowait,
        steal_percent=getattr(times, "steal", None),
        logical_cores=psutil.cpu_count() or 1,
        load1=load1,
        load5=load5,
        load15=load15,
    )


def memory_facts() -> MemoryFacts:
    vm = psutil.virtual_memory()
    swap = psutil.swap_memory()
    return MemoryFacts(
        total_bytes=vm.total,
        available_bytes=vm.available,
        used_percent=round(100.0 * (vm.total - vm.available) / vm.total, 2),
        swap_total_bytes=swap.total,
        swap_used_bytes=swap.used,
        swap_used_percent=round(100.0 * swap.used / swap.total, 2) if swap.total else 0.0,
    )


def filesystems() -> List[Filesystem]:
    """Block-device filesystems only (psutil's all=False drops proc, tmpfs, NFS and the like)."""
    found: List[Filesystem] = []
    seen = set()
    for part in psutil.disk_partitions(all=False):
        if part.mountpoint in seen or not os.path.isdir(part.mountpoint):
            continue  # a mount point mounted over, or a bind-mounted file (containers)
        seen.add(part.mountpoint)
        options = [o for o in part.opts.split(",") if o]
        base = Filesystem(
            mount=part.mountpoint,
            device=part.device,
            fstype=part.fstype,
            options=options,
            readonly="ro" in options,
        )
        try:
            found.append(_with_usage(base, os.statvfs(part.mountpoint)))
        except OSError as exc:
            found.append(base.model_copy(update={"error": describe_error(exc)}))
    return found


def _with_usage(fs: Filesystem, st: os.statvfs_result) -> Filesystem:
    """Sizes as df computes them: 'free' is what unprivileged users may still write."""
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    free = st.f_bavail * st.f_frsize
    inodes_used = st.f_files - st.f_ffree
    return fs.model_copy(
        update={
            "total_bytes": st.f_blocks * st.f_frsize,
            "used_bytes": used,
            "free_bytes": free,
            "used_percent": round(100.0 * used / (used + free), 2) if used + free else 0.0,
            "inodes_total": st.f_files or None,
            "inodes_used": inodes_used if st.f_files else None,
            "inodes_used_percent": round(100.0 * inodes_used / st.f_files, 2)
            if st.f_files
            else None,
        }
    )


def uptime_facts(now: datetime) -> UptimeFacts:
    booted = boot_time()
    return UptimeFacts(boot_time=booted, uptime_seconds=(now - booted).total_seconds())


def time_sync() -> TimeSyncFacts:
    """timedatectl for the state, chronyc or ntpq for the offset it does not know."""
    answers: List[TimeSyncFacts] = []
    failures: List[str] = []
    for argv, parse in TIME_TOOLS:
        try:
            answers.append(parse(run_tool(argv)))
        except (ToolError, ParseError) as exc:
            failures.append(str(exc))
        if any(a.offset_seconds is not None for a in answers):
            break
    facts = merge_time_sync(answers, failures)
    if facts.ntp_service is None:
        facts = facts.model_copy(update={"ntp_service": _running_ntp_daemon()})
    return facts


def _running_ntp_daemon() -> Optional[str]:
    return running_ntp_daemon({p.info.get("name") for p in psutil.process_iter(["name"])})


def processes() -> ProcessFacts:
    """Names only: command lines may carry passwords and never leave the host."""
    total = 0
    names: Dict[str, int] = {}
    zombies: List[ProcessRef] = []
    for proc in psutil.process_iter(["pid", "ppid", "name", "status"]):
        info = proc.info
        total += 1
        name = info.get("name") or ""
        if name:
            names[name] = names.get(name, 0) + 1
        if info.get("status") == psutil.STATUS_ZOMBIE:
            zombies.append(ProcessRef(pid=info["pid"], ppid=info.get("ppid"), name=name))
    return ProcessFacts(total=total, zombies=zombies, names=names)


def services() -> ServiceFacts:
    if not os.path.isdir(SYSTEMD_RUNTIME):
        return ServiceFacts(manager="none")
    return ServiceFacts(manager="systemd", units=parse_list_units(run_tool(LIST_UNITS_ARGV)))


def listening_ports() -> List[ListenPort]:
    """TCP sockets in LISTEN and bound, unconnected UDP sockets."""
    found: List[ListenPort] = []
    seen = set()
    names: Dict[int, Optional[str]] = {}
    for conn in psutil.net_connections(kind="inet"):
        if not conn.laddr:
            continue
        if conn.type == socket.SOCK_STREAM:
            if conn.status != psutil.CONN_LISTEN:
                continue
            proto = "tcp"
        else:
            if conn.raddr:
                continue
            proto = "udp"
        if conn.family == socket.AF_INET6:
            proto += "6"
        key = (proto, conn.laddr.ip, conn.laddr.port)
        if key in seen:
            continue
        seen.add(key)
        process = None
        if conn.pid is not None:
            if conn.pid not in names:
                names[conn.pid] = _process_name(conn.pid)
            process = names[conn.pid]
        found.append(
            ListenPort(proto=proto, address=conn.laddr.ip, port=conn.laddr.port, process=process)
        )
    return found


def _process_name(pid: int) -> Optional[str]:
    try:
        return psutil.Process(pid).name()
    except psutil.Error:
        return None


def certificates(path: str) -> List[CertFacts]:
    """Every certificate in a PEM file, parsed like the SSH mode parses it (checks.parsers.x509).

    Only the certificate blocks are looked at; a private key sharing the file is never kept.
    """
    try:
        text = read_text(path, limit=MAX_CERT_FILE_BYTES)
    except (OSError, ValueError) as exc:
        return [CertFacts(path=path, error=describe_error(exc))]
    return parse_pem_certificates(text, path)


def backup_facts(target: BackupTarget) -> BackupFacts:
    """The newest regular file matching the glob (`**` spans directories)."""
    pattern = target.pattern
    matches = 0
    newest: Optional[Tuple[str, os.stat_result]] = None
    for path in glob.iglob(pattern, recursive=True):
        try:
            st = os.stat(path)
        except OSError:
            continue  # removed between glob and stat (a rotation running right now)
        if not stat.S_ISREG(st.st_mode):
            continue
        matches += 1
        if newest is None or st.st_mtime > newest[1].st_mtime:
            newest = (path, st)
    if newest is None:
        return BackupFacts(pattern=pattern, error=_unsearchable(pattern))
    path, st = newest
    return BackupFacts(
        pattern=pattern,
        matches=matches,
        newest_path=path,
        newest_mtime=datetime.fromtimestamp(st.st_mtime, timezone.utc),
        newest_size_bytes=st.st_size,
    )


def _unsearchable(pattern: str) -> Optional[str]:
    """Why a glob found nothing when the cause is permissions (glob hides it), not missing files."""
    fixed: List[str] = []
    for part in pattern.split(os.sep):
        if _GLOB_MAGIC.search(part):
            break
        fixed.append(part)
    base = os.sep.join(fixed) or os.curdir
    if os.path.isdir(base) and not os.access(base, os.R_OK | os.X_OK):
        return f"Permission denied: {base}"
    return None


def http_probe(target: HttpTarget) -> HttpProbe:
    """Time to the response headers of a GET, TLS verified against the system's CA store.

    Redirects are not followed (a 3xx is an answer) and proxy variables are ignored: the probe
    measures the service from this host, the same from a shell as from the daemon.
    """
    shown = mask_url(target.url)
    try:
        with httpx.Client(
            timeout=target.timeout_seconds,
            verify=ssl.create_default_context(),
            follow_redirects=False,
            trust_env=False,
        ) as client:
            started = time.perf_counter()
            with client.stream("GET", target.url) as response:
                elapsed_ms = (time.perf_counter() - started) * 1000
                status = response.status_code
    except Exception as exc:  # any failure of one URL is that URL's finding
        message = describe_error(exc).replace(target.url, shown)
        return HttpProbe(url=shown, error=message or type(exc).__name__)
    return HttpProbe(url=shown, status=status, elapsed_ms=round(elapsed_ms, 1))
