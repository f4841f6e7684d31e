"""Filesystems: space, inodes and read-only mounts — a full or read-only disk stops the service.

Pseudo filesystems (tmpfs, overlay …) and images (squashfs snaps, ISO 9660) are always 'full' or
read-only by nature; judging them would bury the real findings, so they are skipped. A read-only
mount cannot fill up, so usage and inodes skip it too: whether it should be writable at all is
fs.readonly's question.
"""

from __future__ import annotations

from fnmatch import fnmatch
from typing import Callable, List, Optional

from pydantic import Field

from checks.facts import FactSet, Filesystem
from checks.model import Category, CheckResult, Severity
from checks.spec import CheckParams, CheckSpec, LimitParams, RuleContext
from checks.units import human_bytes

PSEUDO_AND_IMAGE_FSTYPES = (
    "tmpfs",
    "devtmpfs",
    "ramfs",
    "overlay",
    "aufs",
    "squashfs",
    "iso9660",
    "udf",
    "erofs",
    "cramfs",
    "proc",
    "sysfs",
    "devpts",
    "cgroup",
    "cgroup2",
    "nsfs",
    "autofs",
    "efivarfs",
    "fuse.lxcfs",
    "fuse.snapfuse",
)


class _MountParams(LimitParams):
    skip_fstypes: List[str] = Field(
        default_factory=lambda: list(PSEUDO_AND_IMAGE_FSTYPES),
        description="filesystem types not judged",
    )
    skip_mounts: List[str] = Field(
        default_factory=list, description="mount point globs not judged, e.g. /mnt/cdrom*"
    )


class DiskUsageParams(_MountParams):
    warning: Optional[float] = 80.0
    critical: Optional[float] = 90.0


class InodeParams(_MountParams):
    warning: Optional[float] = 80.0
    critical: Optional[float] = 90.0


class ReadonlyParams(CheckParams):
    expected_readonly_fstypes: List[str] = Field(
        default_factory=lambda: list(PSEUDO_AND_IMAGE_FSTYPES),
        description="types that are read-only by design",
    )
    expected_readonly_mounts: List[str] = Field(
        default_factory=lambda: ["/snap/*", "/media/*", "/run/media/*"],
        description="mount point globs that are meant to be read-only",
    )


def _judged(fs: Filesystem, params: _MountParams) -> bool:
    return not (
        fs.readonly
        or fs.fstype in params.skip_fstypes
        or any(fnmatch(fs.mount, pattern) for pattern in params.skip_mounts)
    )


def _per_mount(
    facts: FactSet, ctx: RuleContext, judge: Callable[[Filesystem], Optional[CheckResult]]
) -> List[CheckResult]:
    """`judge` for each filesystem this check covers (each with its item-level parameters);
    a mount whose usage could not be read is unknown, never silently left out."""
    if facts.filesystems is None:
        return [ctx.unknown(facts.missing("filesystems") or "")]
    results: List[CheckResult] = []
    for fs in facts.filesystems:
        if not _judged(fs, ctx.params(fs.mount).params):
            continue
        result = ctx.unknown(fs.error, item=fs.mount) if fs.error else judge(fs)
        if result is not None:
            results.append(result)
    return results


def disk_usage(facts: FactSet, ctx: RuleContext) -> List[CheckResult]:
    def judge(fs: Filesystem) -> Optional[CheckResult]:
        if fs.total_bytes <= 0:
            return None
        return ctx.limit(
            fs.used_percent,
            item=fs.mount,
            unit="%",
            mount=fs.mount,
            used=human_bytes(fs.used_bytes),
            total=human_bytes(fs.total_bytes),
            free=human_bytes(fs.free_bytes),
            device=fs.device,
            fstype=fs.fstype,
        )

    return _per_mount(facts, ctx, judge) or [ctx.unknown("no writable disk filesystem found")]


def disk_inodes(facts: FactSet, ctx: RuleContext) -> List[CheckResult]:
    """Filesystems without a fixed inode table (btrfs, vfat) report 0 inodes and are left out."""

    def judge(fs: Filesystem) -> Optional[CheckResult]:
        if not fs.inodes_total or fs.inodes_used_percent is None:
            return None
        return ctx.limit(
            fs.inodes_used_percent,
            item=fs.mount,
            unit="%",
            mount=fs.mount,
            used=fs.inodes_used,
            total=fs.inodes_total,
        )

    return _per_mount(facts, ctx, judge) or [ctx.unknown("no filesystem reports inode counts")]


def fs_readonly(facts: FactSet, ctx: RuleContext) -> List[CheckResult]:
    """The kernel remounts a filesystem read-only after I/O errors; every write then fails."""
    if facts.filesystems is None:
        return [ctx.unknown(facts.missing("filesystems") or "")]
    results: List[CheckResult] = []
    writable = 0
    for fs in facts.filesystems:
        params = ctx.params(fs.mount).params
        expected = fs.fstype in params.expected_readonly_fstypes or any(
            fnmatch(fs.mount, pattern) for pattern in params.expected_readonly_mounts
        )
        if expected:
            continue
        if not fs.readonly:
            writable += 1
            continue
        results.append(
            ctx.result(
                Severity.critical,
                "bad",
                item=fs.mount,
                value="ro",
                evidence=[f"{fs.device} on {fs.mount} type {fs.fstype} ({','.join(fs.options)})"],
                advice="bad",
                mount=fs.mount,
                device=fs.device,
                fstype=fs.fstype,
            )
        )
    return results or [ctx.result(Severity.ok, "ok", value=writable, count=writable)]


CHECKS = [
    CheckSpec("disk.usage", Category.status, DiskUsageParams, disk_usage, service_affecting=True),
    CheckSpec("disk.inodes", Category.status, InodeParams, disk_inodes),
    CheckSpec("fs.readonly", Category.status, ReadonlyParams, fs_readonly, service_affecting=True),
]
