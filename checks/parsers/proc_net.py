"""Listening sockets from /proc/net/{tcp,tcp6,udp,udp6}, where `ss` is not installed."""

from __future__ import annotations

import ipaddress

from checks.facts import ListenPort
from checks.parsers import ParseError

TCP_LISTEN = "0A"


def _address(hex_address: str, little_endian: bool) -> str:
    """The kernel prints each 32-bit word of the address in host byte order."""
    raw = bytes.fromhex(hex_address)
    if little_endian:
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw))
    if len(raw) == 16:
        return str(ipaddress.IPv6Address(raw))
    raise ValueError(f"address of {len(raw)} bytes")


def parse_proc_net(text: str, proto: str, little_endian: bool = True) -> list[ListenPort]:
    """One /proc/net table; `proto` is its file name (tcp, tcp6, udp, udp6).

    Sample (/proc/net/tcp; local and remote address as hex address:port, st 0A = LISTEN)::

          sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid …
           0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0 …
           1: 0100007F:0277 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0 …

    TCP counts in state LISTEN; UDP counts when bound and not connected (remote port 0).
    No process names: mapping socket inodes to processes would mean reading every /proc/*/fd.
    """
    if proto not in ("tcp", "tcp6", "udp", "udp6"):
        raise ParseError(f"/proc/net: unknown table {proto!r}")
    ports: list[ListenPort] = []
    seen = set()
    for line in text.splitlines()[1:]:
        fields = line.split()
        if not fields:
            continue
        try:
            local_hex, local_port = fields[1].split(":")
            remote_port = int(fields[2].split(":")[1], 16)
            state = fields[3]
            address = _address(local_hex, little_endian)
            port = int(local_port, 16)
        except (IndexError, ValueError) as exc:
            raise ParseError(f"/proc/net/{proto}: unexpected line {line[:120]!r} ({exc})") from None
        listening = state == TCP_LISTEN if proto.startswith("tcp") else remote_port == 0
        if listening and (address, port) not in seen:
            seen.add((address, port))
            ports.append(ListenPort(proto=proto, address=address, port=port))
    return ports
