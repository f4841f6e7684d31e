"""Certificate expiry: an expired certificate takes a service down as surely as a crash."""

from __future__ import annotations

from typing import Dict, List, Optional

from pydantic import Field

from checks.facts import CertFacts, FactSet
from checks.levels import threshold_of
from checks.model import Category, CheckResult, Severity
from checks.spec import CheckSpec, LimitParams, RuleContext

UNIT = "d"


class CertParams(LimitParams):
    warning: Optional[float] = Field(30.0, description="days left")
    critical: Optional[float] = Field(7.0, description="days left")


def _one(cert: CertFacts, item: str, facts: FactSet, ctx: RuleContext) -> CheckResult:
    if cert.error is not None or cert.not_after is None:
        return ctx.unknown(cert.error or "no expiry date in the certificate", item=item)
    days = (cert.not_after - facts.collected_at).total_seconds() / 86400
    subject = cert.subject or "—"
    not_after = cert.not_after.isoformat(timespec="seconds")
    if days < 0:
        return ctx.result(
            Severity.critical,
            "expired",
            item=item,
            value=round(days, 1),
            unit=UNIT,
            threshold=threshold_of(ctx.params(item), UNIT, "below"),
            advice="bad",
            subject=subject,
            not_after=not_after,
        )
    return ctx.limit(
        round(days, 1),
        item=item,
        unit=UNIT,
        direction="below",
        subject=subject,
        not_after=not_after,
        days=int(days),
    )


def cert_expiry(facts: FactSet, ctx: RuleContext) -> List[CheckResult]:
    if facts.certificates is None:
        return [ctx.unknown(facts.missing("certificates") or "")]
    results: List[CheckResult] = []
    seen: Dict[str, int] = {}
    for cert in facts.certificates:
        seen[cert.path] = seen.get(cert.path, 0) + 1
        results.append(_one(cert, _item(cert.path, seen[cert.path]), facts, ctx))
    return results


def _item(path: str, n: int) -> str:
    """A chain file holds several certificates: the first is the file, the others 'file#2' …"""
    return path if n == 1 else f"{path}#{n}"


CHECKS = [CheckSpec("cert.expiry", Category.status, CertParams, cert_expiry)]
