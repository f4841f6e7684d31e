"""The time at the head of a log line, in the formats found on customer hosts.

Only lines inside the inspection window count, so every format a host writes has to be read:
syslog (RFC 3164 without a year, RFC 5424), ISO 8601 (rsyslog's high-precision format,
log4j/logback and Python logging, which put a comma before the milliseconds), nginx and
Apache error logs. A time without a zone is the host's local time (`tz=None`) or `tz`.

RFC 3164 leaves out the year. It is inferred from a reference time — the file's mtime, which
is when its newest line was written: a line dated after the reference (with a day's slack for
clock skew) was written the year before, so a December line read in January is last December.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Callable, List, Optional, Tuple

MONTHS = {
    m: i
    for i, m in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1
    )
}


@dataclass(frozen=True)
class Stamp:
    time: datetime
    """Timezone-aware."""
    end: int
    """Length of the timestamp part of the line (including a leading `<PRI>` or bracket)."""


def _frac(text: Optional[str]) -> int:
    return int((text or "0")[:6].ljust(6, "0"))


def localize(naive: datetime, tz: Optional[tzinfo]) -> datetime:
    """A zone-less time on this host (or in `tz`) as an aware datetime; DST handled by the OS."""
    if tz is not None:
        return naive.replace(tzinfo=tz)
    try:
        return naive.astimezone()
    except (OverflowError, OSError, ValueError):
        return naive.replace(tzinfo=timezone.utc)


def _zone(text: Optional[str]) -> Optional[tzinfo]:
    if not text:
        return None
    if text in ("Z", "z"):
        return timezone.utc
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0)))


def infer_year(month: int, day: int, ref: datetime) -> int:
    """The year of a year-less date: the latest one not more than a day after `ref`."""
    year = ref.year
    if (month, day) > (ref.month, ref.day + 1):
        year -= 1
    if month == 2 and day == 29:
        while not (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)):
            year -= 1
    return year


_RFC3164 = re.compile(
    r"(?:<\d{1,3}>)?(?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"(?P<day>[ \d]?\d) (?P<H>\d\d):(?P<M>\d\d):(?P<S>\d\d)(?:\.(?P<f>\d{1,9}))?(?= |$)"
)
_ISO = re.compile(
    r"(?:<\d{1,3}>\d{1,2} )?\[?(?P<Y>\d{4})-(?P<m>\d\d)-(?P<d>\d\d)"
    r"[T ](?P<H>\d\d):(?P<M>\d\d):(?P<S>\d\d)"
    r"(?:[.,](?P<f>\d{1,9}))?(?P<z>Z|[+-]\d\d(?::?\d\d)?)?\]?(?= |$|\t)"
)
_NGINX = re.compile(
    r"(?P<Y>\d{4})/(?P<m>\d\d)/(?P<d>\d\d) (?P<H>\d\d):(?P<M>\d\d):(?P<S>\d\d)(?= |$)"
)
_APACHE = re.compile(
    r"\[(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"(?P<day>[ \d]?\d) (?P<H>\d\d):(?P<M>\d\d):(?P<S>\d\d)(?:\.(?P<f>\d{1,9}))? (?P<Y>\d{4})\]"
)

Parser = Callable[["re.Match[str]", datetime, Optional[tzinfo]], datetime]


def _from_3164(m: "re.Match[str]", ref: datetime, tz: Optional[tzinfo]) -> datetime:
    month, day = MONTHS[m["mon"]], int(m["day"])
    naive = datetime(
        infer_year(month, day, ref),
        month,
        day,
        int(m["H"]),
        int(m["M"]),
        int(m["S"]),
        _frac(m["f"]),
    )
    return localize(naive, tz)


def _from_numeric(m: "re.Match[str]", ref: datetime, tz: Optional[tzinfo]) -> datetime:
    groups = m.groupdict()
    naive = datetime(
        int(m["Y"]),
        int(m["m"]),
        int(m["d"]),
        int(m["H"]),
        int(m["M"]),
        int(m["S"]),
        _frac(groups.get("f")),
    )
    zone = _zone(groups.get("z"))
    return naive.replace(tzinfo=zone) if zone else localize(naive, tz)


def _from_apache(m: "re.Match[str]", ref: datetime, tz: Optional[tzinfo]) -> datetime:
    naive = datetime(
        int(m["Y"]),
        MONTHS[m["mon"]],
        int(m["day"]),
        int(m["H"]),
        int(m["M"]),
        int(m["S"]),
        _frac(m["f"]),
    )
    return localize(naive, tz)


FORMATS: List[Tuple["re.Pattern[str]", Parser]] = [
    (_RFC3164, _from_3164),
    (_ISO, _from_numeric),
    (_APACHE, _from_apache),
    (_NGINX, _from_numeric),
]


def parse_timestamp(line: str, ref: datetime, tz: Optional[tzinfo] = None) -> Optional[Stamp]:
    """The time a line starts with, or None (a continuation line, or a format we do not know).

    `ref` (aware) anchors the year of RFC 3164 lines; `tz` is the zone of zone-less times
    (None: this host's local zone).
    """
    head = line[:64]
    for pattern, build in FORMATS:
        m = pattern.match(head)
        if m is None:
            continue
        try:
            return Stamp(build(m, ref, tz), m.end())
        except ValueError:  # Feb 30, hour 25 …: not a timestamp after all
            return None
    return None
