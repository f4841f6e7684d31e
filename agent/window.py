"""The inspection window: `--since 24h` or `--window START..END` (ISO 8601), always tz-aware."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Optional

from checks.model import Window

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def parse_duration(text: str) -> timedelta:
    """'24h', '90m', '7d' → timedelta; anything else is a ValueError that quotes the input."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30m, 24h, 7d)")
    seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if seconds <= 0:
        raise ValueError(f"duration must be positive: {text!r}")
    return timedelta(seconds=seconds)


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"not an ISO 8601 time: {text!r}") from exc
    if value.tzinfo is None:  # a bare local time means the host's own timezone
        value = value.astimezone()
    return value


def make_window(
    since: Optional[str] = "24h", window: Optional[str] = None, now: Optional[datetime] = None
) -> Window:
    end = now or datetime.now(timezone.utc)
    if window:
        start_text, sep, end_text = window.partition("..")
        if not sep or not start_text or not end_text:
            raise ValueError(f"window must be START..END in ISO 8601, got {window!r}")
        start, end = _instant(start_text), _instant(end_text)
        if end <= start:
            raise ValueError(f"window end {end_text!r} is not after its start {start_text!r}")
        return Window(start=start, end=end)
    return Window(start=end - parse_duration(since or "24h"), end=end)
