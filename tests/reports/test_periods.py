from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from collector import periods
from collector.periods import PeriodError, add_months, parse, schedule

from .helpers import example_contract

pytestmark = pytest.mark.py311


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=timezone.utc)


def test_quarters_from_calendar_start_are_calendar_quarters_in_shanghai() -> None:
    c = example_contract(start=date(2026, 1, 1), end=date(2026, 12, 31))
    ps = schedule(c)
    assert [p.key for p in ps] == ["2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4"]
    q3 = ps[2]
    # local midnight in Asia/Shanghai (UTC+8) is 16:00 UTC the day before
    assert q3.start == utc(2026, 6, 30, 16)
    assert q3.end == utc(2026, 9, 30, 16)
    assert q3.scheduled and q3.index == 2


def test_quarter_from_mid_month_start() -> None:
    c = example_contract(start=date(2026, 3, 15), end=date(2027, 3, 14))
    ps = schedule(c)
    assert [(p.first_day, p.last_day) for p in ps] == [
        (date(2026, 3, 15), date(2026, 6, 14)),
        (date(2026, 6, 15), date(2026, 9, 14)),
        (date(2026, 9, 15), date(2026, 12, 14)),
        (date(2026, 12, 15), date(2027, 3, 14)),
    ]
    assert ps[0].key == "2026-03-15..2026-06-14"
    # the spec of a scheduled span finds the scheduled period
    assert parse("2026-06-15..2026-09-14", c) == ps[1]
    # a calendar quarter of such a contract is an ad hoc span
    q3 = parse("2026-Q3", c)
    assert not q3.scheduled and q3.key == "2026-Q3"


def test_month_end_start_clamps_without_drift_and_leap_years() -> None:
    c = example_contract(
        start=date(2028, 1, 31), end=date(2028, 6, 30), report={"schedule": "monthly"}
    )
    firsts = [p.first_day for p in schedule(c)]
    # the last one is a one-day stub: 30 June is the contract's final day
    assert firsts == [
        date(2028, 1, 31),
        date(2028, 2, 29),
        date(2028, 3, 31),
        date(2028, 4, 30),
        date(2028, 5, 31),
        date(2028, 6, 30),
    ]
    assert schedule(c)[0].last_day == date(2028, 2, 28)
    assert add_months(date(2027, 1, 31), 1) == date(2027, 2, 28)
    assert add_months(date(2028, 2, 29), 12) == date(2029, 2, 28)


def test_schedule_derived_from_inspections_per_year_and_explicit_override() -> None:
    base = {"start": date(2026, 1, 1), "end": date(2026, 12, 31)}
    for n, count in ((12, 12), (6, 6), (4, 4), (2, 2), (1, 1)):
        c = example_contract(**base, entitlements={"remote_inspections_per_year": n})
        assert len(schedule(c)) == count, n
    c = example_contract(**base, report={"schedule": "monthly"})
    assert len(schedule(c)) == 12
    assert schedule(c)[8].key == "2026-09"
    assert parse("2026-09", c).scheduled


def test_last_period_cut_at_contract_end() -> None:
    c = example_contract(start=date(2026, 1, 1), end=date(2026, 8, 20))
    last = schedule(c)[-1]
    assert (last.first_day, last.last_day) == (date(2026, 7, 1), date(2026, 8, 20))


def test_timezone_edges() -> None:
    c = example_contract(start=date(2026, 1, 1), end=date(2026, 12, 31))
    q3 = parse("2026-Q3", c)
    # 2026-09-30 23:59 local (15:59 UTC) is inside Q3, local midnight 1 Oct is not
    assert q3.contains(utc(2026, 9, 30, 15, 59))
    assert not q3.contains(utc(2026, 9, 30, 16, 0))
    assert periods.containing(c, utc(2026, 9, 30, 16, 0)).key == "2026-Q4"  # type: ignore[union-attr]
    # a DST zone: US Eastern switches 8 March 2026; each boundary is still local midnight
    ny = example_contract(
        start=date(2026, 1, 1),
        end=date(2026, 12, 31),
        timezone="America/New_York",
        report={"schedule": "monthly"},
    )
    march = parse("2026-03", ny)
    assert march.start == utc(2026, 3, 1, 5)  # EST, UTC-5
    assert march.end == utc(2026, 4, 1, 4)  # EDT, UTC-4


def test_due_and_contract_year() -> None:
    c = example_contract(start=date(2026, 3, 15), end=date(2028, 3, 14))
    now = utc(2026, 12, 20)
    assert [p.index for p in periods.due(c, now)] == [0, 1, 2]
    year2 = periods.contract_year(c, utc(2027, 6, 1))
    assert (year2.first_day, year2.last_day) == (date(2027, 3, 15), date(2028, 3, 14))


@pytest.mark.parametrize(
    "spec, problem",
    [
        ("2026-Q5", "expected"),
        ("2026-13", "month"),
        ("2026-09-30..2026-07-01", "before"),
        ("2026-02-30..2026-03-01", "day is out of range"),
        ("2031-Q1", "outside contract"),
        ("last quarter", "expected"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec: str, problem: str) -> None:
    c = example_contract(start=date(2026, 1, 1), end=date(2026, 12, 31))
    with pytest.raises(PeriodError, match=problem):
        parse(spec, c)


def test_spec_cut_to_contract_term() -> None:
    c = example_contract(start=date(2026, 2, 10), end=date(2026, 12, 31))
    p = parse("2026-Q1", c)
    assert (p.first_day, p.last_day) == (date(2026, 2, 10), date(2026, 3, 31))
