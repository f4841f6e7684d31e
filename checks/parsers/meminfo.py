"""Memory and swap from /proc/meminfo."""

from __future__ import annotations

from checks.facts import MemoryFacts
from checks.parsers import ParseError


def parse_meminfo(text: str) -> MemoryFacts:
    """/proc/meminfo: `Key: value kB` lines; sizes become bytes.

    Sample::

        MemTotal:       24682416 kB
        MemFree:        23902276 kB
        MemAvailable:   24268668 kB
        Buffers:           39220 kB
        Cached:           533960 kB
        SwapTotal:       2097148 kB
        SwapFree:        2097148 kB

    Kernels before 3.14 have no MemAvailable; it is then estimated as free + buffers + cached,
    the fallback psutil uses too.
    """
    kb: dict[str, int] = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        fields = rest.split()
        if sep and fields and fields[0].isdigit():
            factor = 1024 if fields[1:] == ["kB"] else 1
            kb[key.strip()] = int(fields[0]) * factor
    if "MemTotal" not in kb or kb["MemTotal"] <= 0:
        raise ParseError(f"/proc/meminfo: no MemTotal in {text.strip()[:120]!r}")
    total = kb["MemTotal"]
    available = kb.get("MemAvailable")
    if available is None:
        available = kb.get("MemFree", 0) + kb.get("Buffers", 0) + kb.get("Cached", 0)
    available = min(available, total)
    swap_total = kb.get("SwapTotal", 0)
    swap_used = max(swap_total - kb.get("SwapFree", 0), 0)
    return MemoryFacts(
        total_bytes=total,
        available_bytes=available,
        used_percent=100.0 * (total - available) / total,
        swap_total_bytes=swap_total,
        swap_used_bytes=swap_used,
        swap_used_percent=100.0 * swap_used / swap_total if swap_total else 0.0,
    )
