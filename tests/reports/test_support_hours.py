from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import pytest

from collector.contracts import SupportHours
from collector.support_hours import deadline, elapsed_business_hours, is_open

pytestmark = pytest.mark.py311

SH = "Asia/Shanghai"
FIVE_EIGHT = SupportHours(kind="5x8", start=time(9, 30), end=time(18, 0))
SEVEN_24 = SupportHours(kind="7x24")


def local(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    """A Shanghai wall-clock time as an aware UTC instant."""
    from zoneinfo import ZoneInfo

    return datetime(y, mo, d, h, mi, tzinfo=ZoneInfo(SH)).astimezone(timezone.utc)


def test_p1_friday_evening_is_due_monday_1120_under_5x8() -> None:
    raised = local(2026, 11, 20, 17, 50)  # a Friday
    assert deadline(raised, 2, FIVE_EIGHT, SH) == local(2026, 11, 23, 11, 20)


def test_p1_friday_evening_is_due_friday_1950_under_7x24() -> None:
    raised = local(2026, 11, 20, 17, 50)
    assert deadline(raised, 2, SEVEN_24, SH) == local(2026, 11, 20, 19, 50)


def test_raised_outside_hours_starts_at_next_opening() -> None:
    assert deadline(local(2026, 11, 21, 3, 0), 4, FIVE_EIGHT, SH) == local(2026, 11, 23, 13, 30)
    assert deadline(local(2026, 11, 23, 7, 0), 0.5, FIVE_EIGHT, SH) == local(2026, 11, 23, 10, 0)


def test_holidays_and_swapped_workdays() -> None:
    support = FIVE_EIGHT.model_copy(
        update={
            "holidays": [date(2026, 10, 1), date(2026, 10, 2)],
            "workdays": [date(2026, 10, 10)],
        }
    )
    # Wednesday 30 Sep 17:00, 4 h: 1 h that day, Thu/Fri holidays, weekend off → Mon 5 Oct 12:30
    assert deadline(local(2026, 9, 30, 17, 0), 4, support, SH) == local(2026, 10, 5, 12, 30)
    # Friday 9 Oct 17:00, 2 h: 1 h Friday, Saturday 10 Oct is a workday → 10:30 Saturday
    assert deadline(local(2026, 10, 9, 17, 0), 2, support, SH) == local(2026, 10, 10, 10, 30)
    assert is_open(local(2026, 10, 10, 10, 0), support, SH)
    assert not is_open(local(2026, 10, 1, 10, 0), support, SH)


def test_elapsed_business_hours() -> None:
    raised = local(2026, 11, 20, 17, 50)
    acked = local(2026, 11, 23, 10, 30)
    assert elapsed_business_hours(raised, acked, FIVE_EIGHT, SH) == pytest.approx(1 + 10 / 60)
    assert elapsed_business_hours(raised, acked, SEVEN_24, SH) == pytest.approx(64 + 40 / 60)
    assert elapsed_business_hours(acked, raised, FIVE_EIGHT, SH) == 0.0
    # a whole week of 5×8 is 5 × 8.5 hours
    assert elapsed_business_hours(
        local(2026, 11, 16), local(2026, 11, 23), FIVE_EIGHT, SH
    ) == pytest.approx(42.5)


def test_deadline_and_elapsed_agree() -> None:
    start = local(2026, 11, 18, 16, 45)
    for hours in (0.25, 1, 2, 4, 8.5, 20, 100):
        due = deadline(start, hours, FIVE_EIGHT, SH)
        assert elapsed_business_hours(start, due, FIVE_EIGHT, SH) == pytest.approx(hours)


def test_contract_timezone_matters() -> None:
    raised = datetime(
        2026, 11, 20, 9, 0, tzinfo=timezone.utc
    )  # 17:00 Friday in Shanghai, 10:00 in Berlin
    assert deadline(raised, 2, FIVE_EIGHT, SH) == local(2026, 11, 23, 10, 30)
    assert deadline(raised, 2, FIVE_EIGHT, "Europe/Berlin") == raised + timedelta(hours=2)


def test_refuses_naive_and_empty_calendars() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        deadline(datetime(2026, 11, 20, 9), 2, FIVE_EIGHT, SH)
    never = SupportHours(kind="5x8", days=[])
    with pytest.raises(ValueError, match="no open time"):
        deadline(local(2026, 11, 20, 9), 2, never, SH)
