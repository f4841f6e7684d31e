"""Host addresses from `ip -o addr show` (or `hostname -I` where iproute2 is missing)."""

from __future__ import annotations

import ipaddress

from checks.parsers import ParseError


def parse_addresses(text: str) -> list[str]:
    """Non-loopback, non-link-local IP addresses, in the order the tool lists them.

    Samples — `ip -o addr show`::

        1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever
        4: eth0    inet 192.0.2.2/24 brd 192.0.2.255 scope global eth0\\       valid_lft forever …
        4: eth0    inet6 fe80::fc:ff:fe00:1/64 scope link \\       valid_lft forever …

    and `hostname -I`::

        192.0.2.2 fd00::2
    """
    words: list[str] = []
    for line in text.splitlines():
        fields = line.split()
        if "inet" in fields or "inet6" in fields:
            at = fields.index("inet") if "inet" in fields else fields.index("inet6")
            if at + 1 < len(fields):
                words.append(fields[at + 1].split("/", 1)[0])
        elif fields and ":" not in fields[0][-1:]:
            words.extend(fields)
    out: list[str] = []
    for word in words:
        try:
            ip = ipaddress.ip_address(word.split("%", 1)[0])
        except ValueError:
            raise ParseError(f"addresses: {word[:60]!r} is not an IP address") from None
        if not (ip.is_loopback or ip.is_link_local) and str(ip) not in out:
            out.append(str(ip))
    return out
