"""Package changes from the package managers' own logs: what was installed, removed, upgraded.

A change in the window is the first suspect when something broke, so the history section lists
them. The logs write local time without a zone (except dnf), so each parser takes the host's
timezone (`tz=None`: this process's local time, which is right for the agent on the host).

dpkg (/var/log/dpkg.log; authoritative on Debian, it also sees `dpkg -i`)::

    2026-11-21 06:03:41 install dbus:amd64 <none> 1.14.10-1~deb12u1
    2026-11-21 06:03:42 upgrade libc6:amd64 2.36-9+deb12u9 2.36-9+deb12u10
    2026-11-21 06:03:43 remove nano:amd64 7.2-1 <none>

apt (/var/log/apt/history.log; used when dpkg.log is missing)::

    Start-Date: 2026-11-21  06:03:40
    Commandline: apt-get install -y dbus
    Install: dbus:amd64 (1.14.10-1~deb12u1), libdbus-1-3:amd64 (1.14.10-1~deb12u1, automatic)
    Upgrade: libc6:amd64 (2.36-9+deb12u9, 2.36-9+deb12u10)
    End-Date: 2026-11-21  06:03:45

yum (/var/log/yum.log, RHEL/CentOS 7; no year, inferred from `now`)::

    Nov 21 06:03:41 Installed: httpd-2.4.6-97.el7.centos.x86_64
    Nov 21 06:03:42 Updated: 1:openssl-1.0.2k-25.el7_9.x86_64
    Nov 21 06:03:43 Erased: nano

dnf (/var/log/dnf.rpm.log, RHEL 8+/openEuler; "Upgraded" names the old version it replaced)::

    2026-11-21T06:03:41+0800 SUBDEBUG Installed: vim-enhanced-2:8.2.2637-20.el9_1.x86_64
    2026-11-21T06:03:42+0800 SUBDEBUG Upgrade: bash-5.1.8-6.el9_1.x86_64
    2026-11-21T06:03:42+0800 SUBDEBUG Upgraded: bash-5.1.8-5.el9.x86_64
    2026-11-21T06:03:43+0800 SUBDEBUG Erase: nano-5.6.1-5.el9.x86_64

Actions are install | remove | upgrade | downgrade (a reinstall counts as install).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Optional

from checks.facts import PackageChange
from checks.parsers import ParseError

INSTALL = "install"
REMOVE = "remove"
UPGRADE = "upgrade"
DOWNGRADE = "downgrade"


def _utc(naive: datetime, tz: Optional[tzinfo]) -> datetime:
    local = naive.astimezone() if tz is None else naive.replace(tzinfo=tz)
    return local.astimezone(timezone.utc)


def _strip_arch(name: str) -> str:
    """'dbus:amd64' → 'dbus': the architecture only clutters a report."""
    return name.split(":", 1)[0]


_DPKG = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (?P<action>install|upgrade|remove|purge) "
    r"(?P<pkg>\S+) (?P<old>\S+) (?P<new>\S+)$"
)
_DPKG_OTHER = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+")


def from_dpkg_log(text: str, tz: Optional[tzinfo] = None) -> list[PackageChange]:
    changes: list[PackageChange] = []
    for number, line in enumerate(text.splitlines(), start=1):
        m = _DPKG.match(line)
        if m is None:
            if line.strip() and not _DPKG_OTHER.match(line):
                raise ParseError(f"dpkg.log: line {number} is not a dpkg log line: {line[:120]!r}")
            continue  # status / configure / trigproc / startup lines
        action = m.group("action")
        removing = action in ("remove", "purge")
        changes.append(
            PackageChange(
                time=_utc(datetime.strptime(m.group("ts"), "%Y-%m-%d %H:%M:%S"), tz),
                action=REMOVE if removing else action,
                name=_strip_arch(m.group("pkg")),
                version=m.group("old") if removing else m.group("new"),
            )
        )
    return changes


_APT_ACTIONS = {
    "Install": INSTALL,
    "Reinstall": INSTALL,
    "Upgrade": UPGRADE,
    "Downgrade": DOWNGRADE,
    "Remove": REMOVE,
    "Purge": REMOVE,
}
_APT_PKG = re.compile(r"(?P<pkg>[^\s,()]+) \((?P<versions>[^)]*)\)")


def from_apt_history(text: str, tz: Optional[tzinfo] = None) -> list[PackageChange]:
    changes: list[PackageChange] = []
    when: Optional[datetime] = None
    for number, line in enumerate(text.splitlines(), start=1):
        key, sep, value = line.partition(": ")
        if not sep:
            continue
        if key == "Start-Date":
            try:
                when = _utc(datetime.strptime(" ".join(value.split()), "%Y-%m-%d %H:%M:%S"), tz)
            except ValueError as exc:
                raise ParseError(
                    f"apt history.log: line {number}: bad Start-Date {value!r}"
                ) from exc
            continue
        action = _APT_ACTIONS.get(key)
        if action is None:
            continue
        if when is None:
            raise ParseError(f"apt history.log: line {number}: {key} before any Start-Date")
        for m in _APT_PKG.finditer(value):
            versions = [
                v.strip() for v in m.group("versions").split(",") if v.strip() != "automatic"
            ]
            version = versions[-1] if versions else ""
            changes.append(
                PackageChange(
                    time=when, action=action, name=_strip_arch(m.group("pkg")), version=version
                )
            )
    return changes


_ARCHES = {
    "x86_64",
    "noarch",
    "i686",
    "i386",
    "aarch64",
    "ppc64le",
    "s390x",
    "armv7hl",
    "loongarch64",
    "riscv64",
    "src",
}


def split_nevra(text: str) -> tuple[str, str]:
    """'1:openssl-1.0.2k-25.el7_9.x86_64' → ('openssl', '1:1.0.2k-25.el7_9'); a bare name stays."""
    base, dot, arch = text.rpartition(".")
    if dot and arch in _ARCHES:
        text = base
    epoch = ""
    if re.match(r"^\d+:", text):
        epoch, text = text.split(":", 1)
    parts = text.rsplit("-", 2)
    if len(parts) < 3:
        return text, ""
    name, version, release = parts
    return name, f"{epoch + ':' if epoch else ''}{version}-{release}"


_YUM = re.compile(
    r"^(?P<ts>\w{3} [ \d]\d \d\d:\d\d:\d\d) "
    r"(?P<action>Installed|Updated|Erased|Downgraded): (?P<pkg>\S+)"
)
_YUM_ACTIONS = {"Installed": INSTALL, "Updated": UPGRADE, "Erased": REMOVE, "Downgraded": DOWNGRADE}


def from_yum_log(text: str, now: datetime, tz: Optional[tzinfo] = None) -> list[PackageChange]:
    """The year is the latest one that does not put a line more than a day after `now`."""
    changes: list[PackageChange] = []
    limit = now + timedelta(days=1)
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        m = _YUM.match(line)
        if m is None:
            raise ParseError(f"yum.log: line {number} is not a yum log line: {line[:120]!r}")
        stamp = " ".join(m.group("ts").split())
        when = None
        for year in (now.year, now.year - 1):
            try:
                candidate = _utc(datetime.strptime(f"{year} {stamp}", "%Y %b %d %H:%M:%S"), tz)
            except ValueError:  # Feb 29 in a year without it
                continue
            if candidate <= limit:
                when = candidate
                break
        if when is None:
            raise ParseError(
                f"yum.log: line {number}: no year puts {stamp!r} before {now.isoformat()}"
            )
        name, version = split_nevra(m.group("pkg"))
        changes.append(
            PackageChange(
                time=when, action=_YUM_ACTIONS[m.group("action")], name=name, version=version
            )
        )
    return changes


_DNF = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?P<tz>Z|[+-]\d\d:?\d\d) "
    r"\w+ (?P<action>[A-Z][a-z]+): (?P<pkg>\S+)\s*$"
)
_DNF_ACTIONS = {
    "Install": INSTALL,
    "Installed": INSTALL,
    "Reinstall": INSTALL,
    "Reinstalled": INSTALL,
    "Upgrade": UPGRADE,
    "Upgraded": UPGRADE,
    "Downgrade": DOWNGRADE,
    "Downgraded": DOWNGRADE,
    "Erase": REMOVE,
    "Erased": REMOVE,
    "Obsoleted": REMOVE,
}


def from_dnf_rpm_log(text: str) -> list[PackageChange]:
    """'Upgrade:' names the new version, 'Upgraded:' the old one it replaced.

    Where a name has an 'Upgrade:' line its 'Upgraded:' lines are dropped; some dnf versions log
    only 'Upgraded:' for both sides, and then both are kept rather than guessing which is new.
    Lines other than package actions (INFO, DEBUG, '--- logging initialized ---') are skipped.
    """
    rows: list[tuple[str, PackageChange]] = []
    for line in text.splitlines():
        m = _DNF.match(line)
        if m is None or m.group("action") not in _DNF_ACTIONS:
            continue
        tz = m.group("tz")
        offset = "+00:00" if tz == "Z" else f"{tz[:3]}:{tz[-2:]}"
        when = datetime.fromisoformat(m.group("ts") + offset).astimezone(timezone.utc)
        name, version = split_nevra(m.group("pkg"))
        change = PackageChange(
            time=when, action=_DNF_ACTIONS[m.group("action")], name=name, version=version
        )
        rows.append((m.group("action"), change))
    upgraded_forward = {c.name for action, c in rows if action in ("Upgrade", "Downgrade")}
    return [
        c
        for action, c in rows
        if not (action in ("Upgraded", "Downgraded") and c.name in upgraded_forward)
    ]


def in_window(changes: list[PackageChange], start: datetime, end: datetime) -> list[PackageChange]:
    return sorted((c for c in changes if start <= c.time <= end), key=lambda c: (c.time, c.name))
