"""The health score (健康评分) and overall status (总体结论) of a report.

The rule, also in docs/reports.md, is meant to be recomputed by hand from the report's tables:

Per host under contract (open findings at the end of the period, i.e. the latest run's results):
    host score = 100 − 25 × critical − 8 × warning − 2 × min(unknown, 5)
                 − 15 when its availability is below the contract's target,
floored at 0. A host under contract that sent nothing in the period scores 50: nothing is known
about it, which is neither healthy nor proven broken. The contract's score is the mean over
all hosts (inspected and missing), rounded half up; with no hosts at all it is 0.

Overall status, by the worst thing seen and the score:
- 异常 abnormal: any critical finding, or score < 60;
- 关注 attention: any warning, unknown check, missing host or missed availability target,
  or score < 90;
- 正常 ok: otherwise.
Per-host status uses the same thresholds on the host's own tally and score.
Why these weights: one critical must pull a host clearly below "attention" (75 < 90) and two
into "abnormal"; several warnings add up to one critical; unknowns count a little (an inspection
that could not look is not a clean bill of health) but cannot sink a host by themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from enum import Enum
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field

CRITICAL_WEIGHT = 25
WARNING_WEIGHT = 8
UNKNOWN_WEIGHT = 2
UNKNOWN_CAP = 5
AVAILABILITY_PENALTY = 15
MISSING_HOST_SCORE = 50
ABNORMAL_BELOW = 60
ATTENTION_BELOW = 90


class Status(str, Enum):
    ok = "ok"  # 正常
    attention = "attention"  # 关注
    abnormal = "abnormal"  # 异常


class HostTally(BaseModel):
    """What the score needs to know about one inspected host."""

    model_config = ConfigDict(extra="forbid")

    critical: int = Field(0, ge=0)
    warning: int = Field(0, ge=0)
    unknown: int = Field(0, ge=0)
    availability_met: Optional[bool] = Field(None, description="None: not measured")


class Health(BaseModel):
    model_config = ConfigDict(extra="forbid")

    score: int = Field(..., ge=0, le=100)
    status: Status


def host_score(t: HostTally) -> int:
    deduction = (
        CRITICAL_WEIGHT * t.critical
        + WARNING_WEIGHT * t.warning
        + UNKNOWN_WEIGHT * min(t.unknown, UNKNOWN_CAP)
        + (AVAILABILITY_PENALTY if t.availability_met is False else 0)
    )
    return max(0, 100 - deduction)


def _status(score: int, critical: bool, concern: bool) -> Status:
    if critical or score < ABNORMAL_BELOW:
        return Status.abnormal
    if concern or score < ATTENTION_BELOW:
        return Status.attention
    return Status.ok


def host_health(t: HostTally) -> Health:
    score = host_score(t)
    concern = t.warning > 0 or t.unknown > 0 or t.availability_met is False
    return Health(score=score, status=_status(score, t.critical > 0, concern))


def contract_health(hosts: Sequence[HostTally], missing: int) -> Health:
    """Score and status of the whole contract: inspected hosts plus `missing` silent ones."""
    scores = [host_score(t) for t in hosts] + [MISSING_HOST_SCORE] * missing
    if not scores:
        return Health(score=0, status=Status.abnormal)
    mean = Decimal(sum(scores)) / Decimal(len(scores))
    score = int(mean.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    critical = any(t.critical for t in hosts)
    concern = missing > 0 or any(
        t.warning or t.unknown or t.availability_met is False for t in hosts
    )
    return Health(score=score, status=_status(score, critical, concern))
