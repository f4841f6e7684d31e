"""Business-time arithmetic: the response clock of a contract runs only in its support hours.

A P1 raised on Friday 17:50 under 5×8 (Mon–Fri 09:30–18:00) with a 2-hour response time is due
on Monday 11:20: ten minutes on Friday, one hour fifty on Monday. Reports (time to acknowledgement),
alerts (escalation deadlines) and the console (time left) all measure with these functions.

The API is three functions over UTC instants (naive datetimes are refused):
- `deadline(start, hours, support, tz)` — when `hours` of support time have run from `start`;
- `elapsed_business_hours(a, b, support, tz)` — support hours between two instants;
- `is_open(instant, support, tz)` — whether the clock runs at that instant.
`tz` is the contract's timezone (`contract.timezone`); it defaults to the contracts' default,
Asia/Shanghai. Under 7×24 all three are plain clock arithmetic. Under 5×8 a day is a support
day when its ISO weekday is in `days` and it is not a holiday, or when it is a listed workday
(调休: a weekend day worked in exchange for a holiday); the clock runs from `start` to `end`
local time on support days. Times are local wall-clock times, so a DST change moves them with
the clock, as people expect.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from typing import Union
from zoneinfo import ZoneInfo

from collector.contracts import SupportHours

DEFAULT_TZ = "Asia/Shanghai"
_MAX_DAYS = 3 * 366
"""How far `deadline` searches for support time before deciding the calendar has none."""

TzLike = Union[str, ZoneInfo]


def _zone(tz: TzLike) -> ZoneInfo:
    return tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)


def _utc(instant: datetime, name: str) -> datetime:
    if instant.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got a naive datetime")
    return instant.astimezone(timezone.utc)


def is_support_day(day: date, support: SupportHours) -> bool:
    if day in support.workdays:
        return True
    return day.isoweekday() in support.days and day not in support.holidays


def _windows(
    from_day: date, support: SupportHours, zone: ZoneInfo
) -> Iterator[tuple[datetime, datetime]]:
    """Support windows as UTC pairs, day by day from `from_day` (local date), for _MAX_DAYS days."""
    for offset in range(_MAX_DAYS):
        day = from_day + timedelta(days=offset)
        if is_support_day(day, support):
            opens = datetime.combine(day, support.start, tzinfo=zone).astimezone(timezone.utc)
            closes = datetime.combine(day, support.end, tzinfo=zone).astimezone(timezone.utc)
            yield opens, closes


def deadline(
    start: datetime, hours: float, support: SupportHours, tz: TzLike = DEFAULT_TZ
) -> datetime:
    """The UTC instant at which `hours` of support time have passed since `start`.

    Raised outside support hours, the clock starts at the next opening. Raises ValueError when
    the support calendar has no open time within three years (e.g. no days configured).
    """
    begin = _utc(start, "start")
    if hours < 0:
        raise ValueError("hours must not be negative")
    if support.kind == "7x24":
        return begin + timedelta(hours=hours)
    zone = _zone(tz)
    remaining = timedelta(hours=hours)
    for opens, closes in _windows(begin.astimezone(zone).date(), support, zone):
        if closes <= begin:
            continue
        seg_start = max(opens, begin)
        available = closes - seg_start
        if remaining <= available:
            return seg_start + remaining
        remaining -= available
    raise ValueError("support hours have no open time within three years; check days/holidays")


def elapsed_business_hours(
    a: datetime, b: datetime, support: SupportHours, tz: TzLike = DEFAULT_TZ
) -> float:
    """Support hours between `a` and `b` (0 when `b` is not after `a`)."""
    lo, hi = _utc(a, "a"), _utc(b, "b")
    if hi <= lo:
        return 0.0
    if support.kind == "7x24":
        return (hi - lo).total_seconds() / 3600
    zone = _zone(tz)
    total = timedelta(0)
    last_day = hi.astimezone(zone).date()
    first_day = lo.astimezone(zone).date()
    for offset in range((last_day - first_day).days + 1):
        day = first_day + timedelta(days=offset)
        if not is_support_day(day, support):
            continue
        opens = datetime.combine(day, support.start, tzinfo=zone).astimezone(timezone.utc)
        closes = datetime.combine(day, support.end, tzinfo=zone).astimezone(timezone.utc)
        overlap = min(closes, hi) - max(opens, lo)
        if overlap > timedelta(0):
            total += overlap
    return total.total_seconds() / 3600


def is_open(instant: datetime, support: SupportHours, tz: TzLike = DEFAULT_TZ) -> bool:
    """Whether the response clock runs at `instant`."""
    at = _utc(instant, "instant")
    if support.kind == "7x24":
        return True
    local = at.astimezone(_zone(tz))
    return is_support_day(local.date(), support) and support.start <= local.time() < support.end
