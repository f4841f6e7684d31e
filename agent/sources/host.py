"""Who this host is: every transport and every run carries the same identity."""

from __future__ import annotations

import ipaddress
import platform
import socket
from datetime import datetime, timezone
from typing import List, Optional, Sequence

import psutil

from agent.sources import read_text
from checks.facts import HostIdentity, OsInfo
from checks.parsers.os_release import parse_os_release

MACHINE_ID_FILES = ("/etc/machine-id", "/var/lib/dbus/machine-id")
OS_RELEASE_FILES = ("/etc/os-release", "/usr/lib/os-release")


def host_identity() -> HostIdentity:
    """Never fails: a part that cannot be read stays empty, the inspection goes on."""
    hostname = socket.gethostname()
    return HostIdentity(
        hostname=hostname,
        fqdn=_fqdn(hostname),
        machine_id=_first_line(MACHINE_ID_FILES),
        os=_os_info(),
        kernel=platform.release(),
        arch=platform.machine(),
        addresses=addresses(),
        boot_time=boot_time(),
    )


def boot_time() -> datetime:
    return datetime.fromtimestamp(psutil.boot_time(), timezone.utc)


def addresses() -> List[str]:
    """Addresses others may know the host by: no loopback, no IPv6 link-local."""
    found: List[str] = []
    for addrs in psutil.net_if_addrs().values():
        for addr in addrs:
            if addr.family not in (socket.AF_INET, socket.AF_INET6):
                continue
            try:
                ip = ipaddress.ip_address(addr.address.split("%", 1)[0])
            except ValueError:
                continue
            if ip.is_loopback or ip.is_link_local or str(ip) in found:
                continue
            found.append(str(ip))
    return found


def _fqdn(hostname: str) -> Optional[str]:
    """The canonical name from the resolver (/etc/hosts first); None when it knows none."""
    try:
        infos = socket.getaddrinfo(hostname, None, flags=socket.AI_CANONNAME)
    except OSError:
        return None
    canonical = next((info[3] for info in infos if info[3]), "")
    return canonical or None


def _first_line(paths: Sequence[str]) -> Optional[str]:
    for path in paths:
        try:
            value = read_text(path, limit=4096).strip()
        except (OSError, ValueError):
            continue
        if value:
            return value.splitlines()[0]
    return None


def _os_info() -> OsInfo:
    for path in OS_RELEASE_FILES:
        try:
            return parse_os_release(read_text(path))
        except (OSError, ValueError):  # ParseError is a ValueError
            continue
    return OsInfo()
