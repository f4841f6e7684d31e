"""Plain unit formatting for message parameters: the same in every language, so no catalog entry."""

from __future__ import annotations

_IEC = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def human_bytes(n: float) -> str:
    """1536 → '1.5 KiB': binary units, as df -h and free -h show them to the engineer."""
    exponent = min((int(abs(n)).bit_length() - 1) // 10, len(_IEC) - 1) if abs(n) >= 1024 else 0
    if exponent == 0:
        return f"{int(n)} B"
    return f"{n / 1024**exponent:.1f} {_IEC[exponent]}"
