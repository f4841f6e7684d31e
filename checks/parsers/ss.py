"""Listening sockets from `ss -ltnup` (iproute2)."""

from __future__ import annotations

import re
from typing import Optional

from checks.facts import ListenPort
from checks.parsers import ParseError

_PROCESS = re.compile(r'users:\(\("([^"]*)"')


def split_endpoint(text: str) -> tuple[str, bool, int]:
    """'0.0.0.0:22' → ('0.0.0.0', False, 22); '[::]:22' or '*:22' → ('::', True, 22).

    A zone suffix ('127.0.0.53%lo', '[fe80::1%eth0]') is dropped: the port is what is judged.
    """
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ParseError(f"ss: not an address:port: {text!r}")
    host = host.split("%", 1)[0]
    if host.startswith("["):
        return host.strip("[]").split("%", 1)[0] or "::", True, int(port)
    if host == "*":
        return "::", True, int(port)
    return host, ":" in host, int(port)


def parse_ss_listen(text: str) -> list[ListenPort]:
    """`ss -ltnup`: TCP sockets in LISTEN and bound UDP sockets, with the owning process when
    the account may see it.

    Sample::

        Netid State  Recv-Q Send-Q Local Address:Port Peer Address:Port Process
        udp   UNCONN 0      0         127.0.0.1:323       0.0.0.0:* users:(("chronyd",pid=612,fd=5))
        tcp   LISTEN 0      128         0.0.0.0:22        0.0.0.0:* users:(("sshd",pid=700,fd=3))
        tcp   LISTEN 0      128            [::]:22           [::]:* users:(("sshd",pid=700,fd=4))

    Several sockets on one address and port (SO_REUSEPORT workers) are one listening port.
    """
    ports: list[ListenPort] = []
    seen = set()
    for line in text.splitlines():
        fields = line.split()
        if not fields or fields[0] == "Netid":
            continue
        if len(fields) < 6 or fields[0] not in ("tcp", "udp"):
            raise ParseError(f"ss: unexpected line {line[:120]!r}")
        address, v6, port = split_endpoint(fields[4])
        proto = fields[0] + ("6" if v6 else "")
        key = (proto, address, port)
        if key in seen:
            continue
        seen.add(key)
        ports.append(ListenPort(proto=proto, address=address, port=port, process=_process(line)))
    return ports


def _process(line: str) -> Optional[str]:
    m = _PROCESS.search(line)
    return m.group(1) if m else None
