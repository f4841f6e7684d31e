"""Report periods of a contract: which spans get a report, and what `2026-Q3` means for it.

A contract promises N remote inspections a year, and each becomes one report period. Periods are
counted from the contract's start date (a contract starting 15 March has quarters 15 Mar–14 Jun,
15 Jun–14 Sep …), not from calendar quarters, and the last one is cut at the contract's end.
Boundaries are computed as `start + k × step months` from the anchor rather than by repeated
addition, so a start on the 31st gives 31 Jan, 28/29 Feb, 31 Mar … without drifting.

Everything is decided in the contract's timezone (a period ends at local midnight) and stored as
UTC instants; `end` is exclusive. Periods are plain values: the database row that records a
report for (contract, period) keys on `Period.key`.

Period specs a person types (`xunjian report build --period`):
- `2026-Q3` — the calendar quarter Jul 1 – Sep 30, `2026-09` — a calendar month,
- `2026-07-01..2026-09-30` — explicit dates, both inclusive;
each cut to the contract's term. A spec that coincides with a scheduled period *is* that period
(so a report built by hand counts as the scheduled inspection); any other span is ad hoc.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Optional
from zoneinfo import ZoneInfo

from collector.contracts import Contract

SCHEDULE_MONTHS = {"monthly": 1, "bimonthly": 2, "quarterly": 3, "semiannual": 6, "annual": 12}


class PeriodError(ValueError):
    """A period spec that cannot be read, or that lies outside the contract's term."""


@dataclass(frozen=True)
class Period:
    """A half-open span [start, end) of UTC instants, with its local dates for people."""

    start: datetime
    end: datetime
    first_day: date
    last_day: date
    scheduled: bool
    index: Optional[int] = None
    """Position in the contract's schedule (0-based) when `scheduled`."""

    @property
    def key(self) -> str:
        """Canonical label: `2026-Q3`, `2026-09`, or `2026-03-15..2026-06-14` (inclusive dates)."""
        return label(self.first_day, self.last_day)

    def contains(self, instant: datetime) -> bool:
        return self.start <= instant < self.end


def add_months(day: date, months: int) -> date:
    """`day` moved by whole months, clamped to the month's last day (31 Jan + 1 → 28/29 Feb)."""
    total = day.year * 12 + (day.month - 1) + months
    year, month = divmod(total, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant at which `day` begins in `tz`."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(timezone.utc)


def local_date(instant: datetime, tz: ZoneInfo) -> date:
    return instant.astimezone(tz).date()


def label(first_day: date, last_day: date) -> str:
    nxt = last_day + timedelta(days=1)
    if first_day.day == 1 and nxt.day == 1:
        months = (nxt.year - first_day.year) * 12 + nxt.month - first_day.month
        if months == 1:
            return f"{first_day.year:04d}-{first_day.month:02d}"
        if months == 3 and first_day.month % 3 == 1:
            return f"{first_day.year:04d}-Q{(first_day.month - 1) // 3 + 1}"
    return f"{first_day.isoformat()}..{last_day.isoformat()}"


def _make(contract: Contract, first: date, last: date, index: Optional[int]) -> Period:
    tz = contract.tz
    return Period(
        start=local_midnight(first, tz),
        end=local_midnight(last + timedelta(days=1), tz),
        first_day=first,
        last_day=last,
        scheduled=index is not None,
        index=index,
    )


def schedule(contract: Contract) -> list[Period]:
    """Every scheduled report period over the contract's whole term, in order."""
    return list(_iter_schedule(contract))


def _iter_schedule(contract: Contract) -> Iterator[Period]:
    step = SCHEDULE_MONTHS[contract.report_schedule]
    k = 0
    while True:
        first = add_months(contract.start, k * step)
        if first > contract.end:
            return
        last = min(add_months(contract.start, (k + 1) * step) - timedelta(days=1), contract.end)
        yield _make(contract, first, last, k)
        k += 1


def due(contract: Contract, now: datetime) -> list[Period]:
    """Scheduled periods that have ended by `now`: the ones whose report should exist."""
    return [p for p in _iter_schedule(contract) if p.end <= now]


def containing(contract: Contract, instant: datetime) -> Optional[Period]:
    """The scheduled period `instant` falls in, or None outside the contract's term."""
    for p in _iter_schedule(contract):
        if p.contains(instant):
            return p
    return None


def contract_year(contract: Contract, instant: datetime) -> Period:
    """The contract year (start + k years, cut at its end) holding `instant`."""
    tz = contract.tz
    day = min(max(local_date(instant, tz), contract.start), contract.end)
    k = 0
    while add_months(contract.start, (k + 1) * 12) <= day:
        k += 1
    first = add_months(contract.start, k * 12)
    last = min(add_months(contract.start, (k + 1) * 12) - timedelta(days=1), contract.end)
    return _make(contract, first, last, None)


_QUARTER = re.compile(r"^(\d{4})-[Qq]([1-4])$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_RANGE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})$")


def parse(spec: str, contract: Contract) -> Period:
    """Read `2026-Q3`, `2026-09` or `START..END` (inclusive dates) against `contract`.

    The span is cut to the contract's term; a span entirely outside it is an error. When the result
    equals a scheduled period, that period is returned (scheduled=True, with its index).
    """
    text = spec.strip()
    if m := _QUARTER.match(text):
        year, quarter = int(m.group(1)), int(m.group(2))
        first = date(year, 3 * quarter - 2, 1)
        last = add_months(first, 3) - timedelta(days=1)
    elif m := _MONTH.match(text):
        year, month = int(m.group(1)), int(m.group(2))
        if not 1 <= month <= 12:
            raise PeriodError(f"period {spec!r}: month must be 01–12")
        first = date(year, month, 1)
        last = add_months(first, 1) - timedelta(days=1)
    elif m := _RANGE.match(text):
        try:
            first, last = date.fromisoformat(m.group(1)), date.fromisoformat(m.group(2))
        except ValueError as exc:
            raise PeriodError(f"period {spec!r}: {exc}") from exc
        if last < first:
            raise PeriodError(f"period {spec!r}: end date is before start date")
    else:
        raise PeriodError(
            f"period {spec!r}: expected YYYY-Qn (2026-Q3), YYYY-MM (2026-09) "
            "or START..END with ISO dates (2026-07-01..2026-09-30)"
        )
    if last < contract.start or first > contract.end:
        raise PeriodError(
            f"period {spec!r} lies outside contract {contract.number} "
            f"({contract.start.isoformat()} – {contract.end.isoformat()})"
        )
    first, last = max(first, contract.start), min(last, contract.end)
    for p in _iter_schedule(contract):
        if p.first_day == first and p.last_day == last:
            return p
    return _make(contract, first, last, None)
