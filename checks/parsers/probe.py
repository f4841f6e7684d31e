"""The SSH probe's sectioned output (agent/sources/probe.sh) → the same FactSet the agent builds.

Sample (the word after the section name is a nonce, random per run, so a log line that travels
in a section cannot forge a marker)::

    ==== xunjian:probe 4f1c2a ====
    version=1
    uid=0
    systemd=1
    utc_offset=+0800
    now=1795240921

    ==== xunjian:loadavg 4f1c2a ====
    0.06 0.18 0.16 2/94 9716

    ==== xunjian:timesync.chronyc 4f1c2a ====

    ==== xunjian:timesync.chronyc:status 4f1c2a ====
    rc=1
    506 Cannot talk to daemon

    ==== xunjian:end 4f1c2a ====

The probe writes a newline before each marker, so a body is exactly what its command printed.
`<section>:status` carries a failing command's exit status and stderr. Each FactSet section is
built on its own: one that cannot be parsed is left out and `FactSet.errors` says why, the
others still count. Alarm-log and journal matches are returned raw (`log_matches`,
`journal_lines`): templating them is the log scanner's job, on the controller.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import csv
import gzip
import io
import re
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, Callable, Optional

from checks.facts import (
    BackupFacts,
    CertFacts,
    Coredump,
    CpuFacts,
    FactSet,
    Filesystem,
    HistoryFacts,
    HostIdentity,
    ListenPort,
    MemoryFacts,
    OsInfo,
    PackageChange,
    ProcessFacts,
    RebootEvent,
    ServiceEvent,
    ServiceFacts,
    TimeSyncFacts,
    UptimeFacts,
)
from checks.parsers import (
    ParseError,
    coredumps,
    packages,
    sadf,
    systemd,
    systemd_events,
    timesync,
    wtmp,
)
from checks.parsers.df import parse_df_blocks, parse_df_inodes, used_percent
from checks.parsers.file_nr import parse_file_nr
from checks.parsers.ip_addr import parse_addresses
from checks.parsers.loadavg import parse_cpu_count, parse_loadavg
from checks.parsers.meminfo import parse_meminfo
from checks.parsers.mounts import parse_proc_mounts
from checks.parsers.os_release import parse_os_release, parse_uname_srm
from checks.parsers.proc_net import parse_proc_net
from checks.parsers.proc_processes import parse_proc_stats
from checks.parsers.proc_stat import cpu_shares, parse_btime, parse_cpu_line
from checks.parsers.ss import parse_ss_listen
from checks.parsers.uptime import parse_uptime
from checks.parsers.x509 import parse_pem_certificates

MARKER = re.compile(r"\n==== xunjian:(?P<name>[A-Za-z0-9_.:-]+) (?P<nonce>\S+) ====\n")
STATUS_SUFFIX = ":status"
COUNT_PREFIX = "#count "
BIG_ENDIAN_ARCHES = ("s390x", "s390", "ppc64", "ppc", "sparc64", "mips64", "mips")


@dataclass
class Section:
    name: str
    body: str
    rc: int = 0
    stderr: str = ""

    def failure(self) -> Optional[str]:
        """Why the command behind this section failed, or None when it did not."""
        if self.rc == 0:
            return None
        first = next((line.strip() for line in self.stderr.splitlines() if line.strip()), "")
        if self.rc == 127:
            return f"command not found ({first})" if first else "command not found"
        return f"exit status {self.rc}" + (f": {first}" if first else "")

    def first_error(self) -> Optional[str]:
        """The failure, or else the first stderr line of a pipeline whose last command succeeded."""
        failure = self.failure()
        if failure:
            return failure
        return next((line.strip() for line in self.stderr.splitlines() if line.strip()), None)


@dataclass
class ProbeOutput:
    sections: dict[str, Section]
    complete: bool
    info: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> Optional[Section]:
        return self.sections.get(name)

    def text(self, name: str, what: str) -> str:
        """The body of a section that must be there; ParseError says why it is not usable.

        A command that failed but still printed something (df with one unreadable mount) keeps
        its output: the parser decides whether it is enough.
        """
        section = self.sections.get(name)
        if section is None:
            early = "" if self.complete else " (the probe's output ended early)"
            raise ParseError(f"{what}: not in the probe output{early}")
        failure = section.failure()
        if failure and not section.body.strip():
            raise ParseError(f"{what}: {failure}")
        return section.body

    def numbered(self, prefix: str) -> dict[int, Section]:
        """`prefix.0`, `prefix.1` … by number."""
        found: dict[int, Section] = {}
        for name, section in self.sections.items():
            head, _, number = name.rpartition(".")
            if head == prefix and number.isdigit():
                found[int(number)] = section
        return found

    @property
    def utc_offset(self) -> Optional[tzinfo]:
        """The host's offset from UTC now (`date +%z`), for logs that write local time."""
        raw = self.info.get("utc_offset", "")
        if not re.fullmatch(r"[+-]\d{4}", raw):
            return None
        minutes = int(raw[1:3]) * 60 + int(raw[3:5])
        return timezone(timedelta(minutes=minutes if raw[0] == "+" else -minutes))


def split_sections(text: str, nonce: str) -> ProbeOutput:
    """Cut the output at the markers that carry this run's nonce; anything else is body text."""
    marks = [m for m in MARKER.finditer(text) if m.group("nonce") == nonce]
    if not marks:
        raise ParseError(f"probe output has no section markers: {text.strip()[:200]!r}")
    sections: dict[str, Section] = {}
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        body = text[mark.end() : end]
        name = mark.group("name")
        if name.endswith(STATUS_SUFFIX):
            owner = sections.get(name[: -len(STATUS_SUFFIX)])
            if owner is not None:
                rc_line, _, stderr = body.partition("\n")
                rc = rc_line.partition("=")[2].strip()
                owner.rc = int(rc) if rc.isdigit() else 1
                owner.stderr = stderr.strip()
            continue
        sections[name] = Section(name, body)
    info: dict[str, str] = {}
    head = sections.get("probe")
    for line in (head.body if head else "").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            info[key.strip()] = value.strip()
    return ProbeOutput(sections, complete="end" in sections, info=info)


def counted_lines(body: str) -> tuple[list[str], int]:
    """Lines of a capped section and the count of all matches (its closing `#count N`)."""
    lines = body.splitlines()
    if lines and lines[-1].startswith(COUNT_PREFIX):
        count_text = lines.pop()[len(COUNT_PREFIX) :].strip()
        return lines, int(count_text) if count_text.isdigit() else len(lines)
    return lines, len(lines)


@dataclass
class ProbeTargets:
    """What the controller asked the probe to look at, in the order the probe numbers it."""

    certificates: list[str] = field(default_factory=list)
    backups: list[str] = field(default_factory=list)
    http_urls: list[str] = field(default_factory=list)


@dataclass
class LogMatches:
    """Alarm-pattern matches in one log file, as the probe filtered them on the host."""

    path: str
    size_bytes: Optional[int] = None
    mtime: Optional[datetime] = None
    lines: list[str] = field(default_factory=list)
    matches: int = 0
    error: Optional[str] = None

    @property
    def capped(self) -> bool:
        """More lines matched than travelled: the oldest matches stayed on the host."""
        return self.matches > len(self.lines)


def log_matches(out: ProbeOutput) -> list[LogMatches]:
    """One entry per log file the probe found; a file older than the window has no lines."""
    results: list[LogMatches] = []
    for number in sorted(_log_numbers(out)):
        key = f"log.{number}"
        entry = LogMatches(path=out.sections[key + ".file"].body.strip())
        meta = out.get(key + ".meta")
        if meta is not None:
            size, _, mtime = meta.body.strip().partition(" ")
            entry.size_bytes = int(size) if size.isdigit() else None
            entry.mtime = _epoch(mtime)
        lines = out.get(key)
        if lines is not None:
            entry.error = lines.first_error()
            entry.lines, entry.matches = counted_lines(lines.body)
        results.append(entry)
    return results


def _log_numbers(out: ProbeOutput) -> list[int]:
    found = []
    for name in out.sections:
        m = re.fullmatch(r"log\.(\d+)\.file", name)
        if m:
            found.append(int(m.group(1)))
    return found


def journal_lines(out: ProbeOutput) -> Optional[tuple[list[str], int, Optional[str]]]:
    """`journalctl -o json` lines that matched the alarm patterns, their count and any error;
    None when the host has no journalctl."""
    section = out.get("journal")
    if section is None:
        return None
    lines, count = counted_lines(section.body)
    return lines, count, section.first_error()


def _epoch(text: str) -> Optional[datetime]:
    text = text.strip()
    return datetime.fromtimestamp(int(text), timezone.utc) if text.isdigit() else None


def identity(out: ProbeOutput, fallback_hostname: str) -> HostIdentity:
    """Never fails: a part that cannot be read stays empty (as on the agent), the run goes on."""

    def line(name: str) -> str:
        section = out.get(name)
        if section is None or section.failure() is not None:
            return ""
        return next(iter(section.body.strip().splitlines()), "").strip()

    def body(name: str) -> str:
        section = out.get(name)
        return section.body if section is not None and section.failure() is None else ""

    os_info, kernel, arch, addresses = OsInfo(), "", "", []
    with contextlib.suppress(ParseError):
        os_info = parse_os_release(body("identity.os_release"))
    with contextlib.suppress(ParseError):
        kernel, arch = parse_uname_srm(line("identity.uname"))
    with contextlib.suppress(ParseError):
        addresses = parse_addresses(body("identity.addresses"))
    stat = out.get("cpu.stat1")
    btime = parse_btime(stat.body) if stat is not None else None
    return HostIdentity(
        hostname=line("identity.hostname") or fallback_hostname,
        machine_id=line("identity.machine_id") or None,
        os=os_info,
        kernel=kernel,
        arch=arch,
        addresses=addresses,
        boot_time=datetime.fromtimestamp(btime, timezone.utc) if btime is not None else None,
    )


def _cpu(out: ProbeOutput) -> CpuFacts:
    first = parse_cpu_line(out.text("cpu.stat1", "/proc/stat"))
    second = parse_cpu_line(out.text("cpu.stat2", "/proc/stat"))
    shares = cpu_shares(first, second)
    load1, load5, load15 = parse_loadavg(out.text("loadavg", "/proc/loadavg"))
    return CpuFacts(
        usage_percent=round(shares.usage_percent, 2),
        iowait_percent=round(shares.iowait_percent, 2),
        steal_percent=round(shares.steal_percent, 2),
        logical_cores=parse_cpu_count(out.text("nproc", "CPU count")),
        load1=load1,
        load5=load5,
        load15=load15,
    )


def _memory(out: ProbeOutput) -> MemoryFacts:
    return parse_meminfo(out.text("meminfo", "/proc/meminfo"))


def block_fstypes(proc_filesystems: str) -> set[str]:
    """Filesystem types that live on a device: /proc/filesystems lines without `nodev` (and
    zfs), the rule psutil.disk_partitions(all=False) applies on the agent.

    Sample::

        nodev   sysfs
        nodev   tmpfs
                ext3
                ext4
        nodev   zfs
    """
    types = set()
    for line in proc_filesystems.splitlines():
        fields = line.split()
        if len(fields) == 1:
            types.add(fields[0])
        elif fields[-1:] == ["zfs"]:
            types.add("zfs")
    return types


def _filesystems(out: ProbeOutput) -> list[Filesystem]:
    """Block-device filesystems with their df figures, the selection the agent makes: mounts
    whose type lives on a device, not a mount point that is a file (a bind mount in a container).

    A mount point mounted over counts once, described by the mount in effect (df's figures).
    """
    mounts = parse_proc_mounts(out.text("mounts", "/proc/mounts"))
    on_device = block_fstypes(out.text("mounts.filesystems", "/proc/filesystems"))
    not_dirs = (
        set(out.text("mounts.not_dirs", "mount points").splitlines())
        if out.get("mounts.not_dirs")
        else set()
    )
    blocks = parse_df_blocks(out.text("df.blocks", "df -P -k"))
    try:
        inodes = parse_df_inodes(out.text("df.inodes", "df -P -i"))
    except ParseError:
        inodes = {}
    result: list[Filesystem] = []
    seen = set()
    for mount in mounts:
        if mount.fstype not in on_device or mount.device in ("", "none") or mount.mount in seen:
            continue
        if mount.mount in not_dirs:
            continue
        seen.add(mount.mount)
        base = Filesystem(
            mount=mount.mount,
            device=mount.device,
            fstype=mount.fstype,
            options=mount.options,
            readonly=mount.readonly,
        )
        row = blocks.get(mount.mount)
        if row is None:
            result.append(base.model_copy(update={"error": "df could not read this mount"}))
            continue
        inode = inodes.get(mount.mount)
        counted = inode is not None and inode.total > 0
        result.append(
            base.model_copy(
                update={
                    "total_bytes": row.total,
                    "used_bytes": row.used,
                    "free_bytes": row.available,
                    "used_percent": round(used_percent(row.used, row.available), 2),
                    "inodes_total": inode.total if inode is not None and counted else None,
                    "inodes_used": inode.used if inode is not None and counted else None,
                    "inodes_used_percent": round(used_percent(inode.used, inode.available), 2)
                    if inode is not None and counted
                    else None,
                }
            )
        )
    return result


def _uptime(out: ProbeOutput, collected_at: datetime) -> UptimeFacts:
    seconds = parse_uptime(out.text("uptime", "/proc/uptime"))
    stat = out.get("cpu.stat1")
    btime = parse_btime(stat.body) if stat is not None else None
    boot = (
        datetime.fromtimestamp(btime, timezone.utc)
        if btime is not None
        else collected_at - timedelta(seconds=seconds)
    )
    return UptimeFacts(boot_time=boot, uptime_seconds=seconds)


_TIME_TOOLS: tuple[tuple[str, str, Callable[[str], TimeSyncFacts]], ...] = (
    ("timesync.timedatectl", "timedatectl", timesync.parse_timedatectl_show),
    ("timesync.chronyc", "chronyc", timesync.parse_chronyc_tracking),
    ("timesync.ntpq", "ntpq", timesync.parse_ntpq_peers),
)


def _time_sync(out: ProbeOutput) -> TimeSyncFacts:
    answers: list[TimeSyncFacts] = []
    failures: list[str] = []
    for name, tool, parse in _TIME_TOOLS:
        section = out.get(name)
        if section is None:
            continue
        failure = section.failure()
        if failure:
            failures.append(f"{tool}: {failure}")
            continue
        try:
            answers.append(parse(section.body))
        except ParseError as exc:
            failures.append(str(exc))
    return timesync.merge_time_sync(answers, failures)


def _processes(out: ProbeOutput) -> ProcessFacts:
    return parse_proc_stats(out.text("processes", "/proc/*/stat"))


def _services(out: ProbeOutput) -> ServiceFacts:
    if out.info.get("systemd") != "1":
        return ServiceFacts(manager="none")
    text = out.text("services", "systemctl list-units")
    return ServiceFacts(manager="systemd", units=systemd.parse_list_units(text))


def _ports(out: ProbeOutput, arch: str) -> list[ListenPort]:
    if out.get("ports.ss") is not None:
        return parse_ss_listen(out.text("ports.ss", "ss -ltnup"))
    tables = [t for t in ("tcp", "tcp6", "udp", "udp6") if out.get(f"ports.{t}") is not None]
    if not tables:
        raise ParseError("listening ports: neither ss nor /proc/net/tcp could be read")
    little = arch not in BIG_ENDIAN_ARCHES
    ports: list[ListenPort] = []
    for table in tables:
        ports += parse_proc_net(out.text(f"ports.{table}", f"/proc/net/{table}"), table, little)
    return ports


def _certificates(out: ProbeOutput, paths: list[str]) -> list[CertFacts]:
    sections = out.numbered("cert")
    found: list[CertFacts] = []
    for i, path in enumerate(paths):
        section = sections.get(i)
        if section is None:
            found.append(CertFacts(path=path, error="not in the probe output"))
        elif section.failure():
            found.append(CertFacts(path=path, error=section.failure()))
        else:
            found += parse_pem_certificates(section.body, path)
    return found


def parse_backup_listing(text: str, pattern: str) -> BackupFacts:
    """The probe's `backup_files`: `mtime size path` of the newest regular files matching the
    glob, then the count of all of them.

    Sample::

        1795150000 52428800 /backup/db/db-2026-11-19.dump
        1795236400 52531200 /backup/db/db-2026-11-20.dump
        #count 14
    """
    lines, count = counted_lines(text)
    facts = BackupFacts(pattern=pattern, matches=count)
    newest: Optional[tuple[int, int, str]] = None
    for line in lines:
        mtime, size, path = ([*line.split(" ", 2), "", ""])[:3]
        if not (mtime.isdigit() and size.isdigit() and path):
            raise ParseError(f"backup listing for {pattern}: unexpected line {line[:120]!r}")
        if newest is None or int(mtime) >= newest[0]:
            newest = (int(mtime), int(size), path)
    if newest is not None:
        facts.newest_mtime = datetime.fromtimestamp(newest[0], timezone.utc)
        facts.newest_size_bytes = newest[1]
        facts.newest_path = newest[2]
    return facts


def _backups(out: ProbeOutput, patterns: list[str]) -> list[BackupFacts]:
    sections = out.numbered("backup")
    found: list[BackupFacts] = []
    for i, pattern in enumerate(patterns):
        section = sections.get(i)
        failure = section.failure() if section is not None else "not in the probe output"
        if section is None or failure:
            found.append(BackupFacts(pattern=pattern, error=failure))
            continue
        try:
            found.append(parse_backup_listing(section.body, pattern))
        except ParseError as exc:
            found.append(BackupFacts(pattern=pattern, error=str(exc)))
    return found


def _coredumps(out: ProbeOutput, start: datetime, end: datetime) -> list[Coredump]:
    """systemd-coredump's journal entries plus what the crash directories hold."""
    journal = out.get("coredumps.journal")
    files = out.get("coredumps.files")
    if journal is None and files is None:
        raise ParseError("core dumps: no journal and no crash directory on the host")
    failure = journal.first_error() if journal is not None else None
    if failure and files is None:
        raise ParseError(f"journalctl: {failure}")
    cores = coredumps.from_journal_json(journal.body) if journal is not None and not failure else []
    for line in files.body.splitlines() if files is not None else []:
        mtime, _, path = line.partition(" ")
        when = _epoch(mtime)
        if when is not None and path:
            cores.append(coredumps.from_filename(path.rsplit("/", 1)[-1], path, when))
    return sorted((c for c in cores if start <= c.time <= end), key=lambda c: c.time)


def _service_events(out: ProbeOutput, start: datetime, end: datetime) -> list[ServiceEvent]:
    section = out.get("service_events")
    if section is None:
        raise ParseError("service events: the host has no journalctl")
    failure = section.first_error()
    if failure:
        raise ParseError(f"journalctl: {failure}")
    lines, _ = counted_lines(section.body)
    entries = systemd_events.entries_from_short_iso("\n".join(lines))
    return systemd_events.service_events((t, m) for t, m in entries if start <= t <= end)


def _reboots(out: ProbeOutput, start: datetime, end: datetime) -> list[RebootEvent]:
    for name, packed in (("boots.wtmp.gz", True), ("boots.wtmp", False)):
        section = out.get(name)
        if section is None:
            continue
        failure = section.first_error()
        if failure:
            raise ParseError(f"/var/log/wtmp: {failure}")
        try:
            data = base64.b64decode("".join(section.body.split()), validate=True)
            if packed:
                data = gzip.decompress(data)
        except (binascii.Error, OSError, EOFError, zlib.error) as exc:
            raise ParseError(f"/var/log/wtmp: the transfer is damaged ({exc})") from None
        return wtmp.reboots(data, start, end)
    boots = out.get("boots.journal")
    if boots is not None:
        return systemd_events.boots_from_list_boots(
            out.text("boots.journal", "journalctl --list-boots"), start, end
        )
    raise ParseError("reboots: neither /var/log/wtmp nor a journal could be read")


def agent_history_rows(out: ProbeOutput) -> Optional[list[dict[str, str]]]:
    """Rows of the xunjian agent's sample store on the host (`sqlite3 -csv -header`), or None.

    Sample::

        id,at,cpu_percent,load1,load5,load15,memory_percent,swap_percent,…,mounts
        1,1795240921.5,3.2,0.12,0.1,0.05,41.7,0.0,…,"[{""mount"": ""/"", …}]"
    """
    section = out.get("history.agent")
    if section is None or section.failure() is not None:
        return None
    return list(csv.DictReader(io.StringIO(section.body)))


HistoryFromRows = Callable[[list[dict[str, str]]], HistoryFacts]


def _history(
    out: ProbeOutput, start: datetime, end: datetime, from_rows: Optional[HistoryFromRows]
) -> HistoryFacts:
    rows = agent_history_rows(out)
    if rows is not None and from_rows is not None:
        return from_rows(rows)
    numbered = out.numbered("history.sadf")
    if not numbered:
        raise ParseError(
            "24 h history: no xunjian agent history store and no sysstat files (sadf) on the host"
        )
    data = sadf.SadfData()
    problems = []
    for i, section in sorted(numbered.items()):
        failure = section.failure()
        if failure:
            problems.append(f"sadf: {failure}")
            continue
        data.merge(sadf.parse_sadf(section.body))
        fs = out.numbered("history.sadf_fs").get(i)
        if fs is not None and fs.failure() is None:
            data.merge(sadf.parse_sadf(fs.body))
    if not data.series:
        raise ParseError("; ".join(problems) or "sysstat files hold no samples")
    return sadf.history_from_sadf(data, start, end)


def _packages(out: ProbeOutput, start: datetime, end: datetime) -> list[PackageChange]:
    tz = out.utc_offset
    now = _epoch(out.info.get("now", "")) or end
    readers: tuple[tuple[str, Callable[[str], list[PackageChange]]], ...] = (
        ("packages.dpkg.log", lambda text: packages.from_dpkg_log(text, tz)),
        ("packages.history.log", lambda text: packages.from_apt_history(text, tz)),
        ("packages.dnf.rpm.log", packages.from_dnf_rpm_log),
        ("packages.yum.log", lambda text: packages.from_yum_log(text, now, tz)),
    )
    present = [(name, read) for name, read in readers if out.get(name) is not None]
    if not present:
        raise ParseError("package changes: no dpkg, apt, yum or dnf log on the host")
    # dpkg.log is authoritative where it exists; apt's history only stands in for it.
    if present[0][0] == "packages.dpkg.log":
        present = [p for p in present if p[0] != "packages.history.log"]
    changes: list[PackageChange] = []
    for name, read in present:
        changes += read(out.text(name, name.partition(".")[2]))
    return packages.in_window(changes, start, end)


def assemble(
    out: ProbeOutput,
    *,
    collected_at: datetime,
    start: datetime,
    end: datetime,
    targets: ProbeTargets,
    fallback_hostname: str,
    history_from_rows: Optional[HistoryFromRows] = None,
) -> tuple[HostIdentity, FactSet]:
    """Identity and facts of one host; sections that cannot be parsed land in `errors`.

    `history_from_rows` summarises the agent's own sample store when the host has one (the
    summary code lives with the store, in the agent package).
    """
    host = identity(out, fallback_hostname)
    builders: dict[str, Callable[[], Any]] = {
        "cpu": lambda: _cpu(out),
        "memory": lambda: _memory(out),
        "filesystems": lambda: _filesystems(out),
        "uptime": lambda: _uptime(out, collected_at),
        "time_sync": lambda: _time_sync(out),
        "processes": lambda: _processes(out),
        "services": lambda: _services(out),
        "ports": lambda: _ports(out, host.arch),
        "fds": lambda: parse_file_nr(out.text("file_nr", "/proc/sys/fs/file-nr")),
        "certificates": lambda: _certificates(out, targets.certificates),
        "backups": lambda: _backups(out, targets.backups),
        "coredumps": lambda: _coredumps(out, start, end),
        "service_events": lambda: _service_events(out, start, end),
        "history": lambda: _history(out, start, end, history_from_rows),
        "reboots": lambda: _reboots(out, start, end),
        "packages": lambda: _packages(out, start, end),
    }
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, build in builders.items():
        try:
            values[name] = build()
        except (ParseError, ValueError) as exc:
            errors[name] = str(exc)
    if targets.http_urls:
        errors["http"] = "HTTP endpoints are checked by the agent on the host, not over SSH"
    else:
        values["http"] = []
    return host, FactSet(collected_at=collected_at, errors=errors, **values)
