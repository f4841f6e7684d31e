"""Certificate expiry: an expired certificate takes a service down as surely as a crash."""

from __future__ import annotations

from typing import List, Optional

from pydantic import Field

from checks.facts import CertFacts, FactSet
from checks.levels import threshold_of
from checks.model import Category, CheckResult, Severity
from checks.spec import CheckSpec, LimitParams, RuleContext

UNIT = "d"


class CertParams(LimitParams):
    warning: Optional[float] = Field(30.0, description="days left")
    critical: Optional[float] = Field(7.0, description="days left")


def _one(cert: CertFacts, facts: FactSet, ctx: RuleContext) -> CheckResult:
    if cert.error is not None or cert.not_after is None:
        return ctx.unknown(cert.error or "no expiry date in the certificate", item=cert.path)
    days = (cert.not_after - facts.collected_at).total_seconds() / 86400
    subject = cert.subject or "—"
    not_after = cert.not_after.isoformat(timespec="seconds")
    if days < 0:
        return ctx.result(
            Severity.critical,
            "expired",
            item=cert.path,
            value=round(days, 1),
            unit=UNIT,
            threshold=threshold_of(ctx.params(cert.path), UNIT, "below"),
            advice="bad",
            subject=subject,
            not_after=not_after,
        )
    return ctx.limit(
        round(days, 1),
        item=cert.path,
        unit=UNIT,
        direction="below",
        subject=subject,
        not_after=not_after,
        days=int(days),
    )


def cert_expiry(facts: FactSet, ctx: RuleContext) -> List[CheckResult]:
    if facts.certificates is None:
        return [ctx.unknown(facts.missing("certificates") or "")]
    return [_one(cert, facts, ctx) for cert in facts.certificates]


CHECKS = [CheckSpec("cert.expiry", Category.status, CertParams, cert_expiry)]
