from __future__ import annotations

import pytest

from collector.reports.score import HostTally, Status, contract_health, host_health, host_score

pytestmark = pytest.mark.py311


@pytest.mark.parametrize(
    "tally, score, status",
    [
        (HostTally(), 100, Status.ok),
        (HostTally(unknown=1), 98, Status.attention),
        (HostTally(unknown=20), 90, Status.attention),  # unknowns are capped at 5
        (HostTally(warning=1), 92, Status.attention),
        (HostTally(warning=2), 84, Status.attention),
        (HostTally(warning=5), 60, Status.attention),
        (HostTally(warning=6), 52, Status.abnormal),  # many warnings add up
        (HostTally(critical=1), 75, Status.abnormal),  # any critical is abnormal
        (HostTally(critical=5), 0, Status.abnormal),  # floored at 0
        (HostTally(availability_met=False), 85, Status.attention),
        (HostTally(availability_met=True), 100, Status.ok),
    ],
)
def test_host_rule(tally: HostTally, score: int, status: Status) -> None:
    assert host_score(tally) == score
    assert host_health(tally).status is status


def test_contract_score_is_mean_with_missing_hosts_at_50() -> None:
    hosts = [HostTally(), HostTally(warning=1), HostTally(critical=1)]
    h = contract_health(hosts, missing=1)
    assert h.score == 79  # (100 + 92 + 75 + 50) / 4 = 79.25
    assert h.status is Status.abnormal


def test_missing_host_alone_needs_attention() -> None:
    h = contract_health([HostTally(), HostTally(), HostTally()], missing=1)
    assert (h.score, h.status) == (88, Status.attention)  # 87.5 rounds half up
    assert contract_health([HostTally()] * 4, missing=0).status is Status.ok


def test_nothing_inspected_is_abnormal() -> None:
    assert contract_health([], missing=0).status is Status.abnormal
    assert contract_health([], missing=3) == contract_health([], missing=3).model_copy()
    assert contract_health([], missing=3).score == 50
