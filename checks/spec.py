"""How a check is declared and what a rule gets to work with.

A rule is a pure function `(FactSet, RuleContext) -> list[CheckResult]`. The context resolves
its parameters (with provenance) and builds results whose text is a catalog key plus parameters,
so the same result renders in Chinese or English wherever it is shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, List, Optional, Type, Union

from pydantic import BaseModel, ConfigDict

from checks.facts import FactSet
from checks.levels import judge, threshold_of
from checks.model import Category, CheckResult, Message, ParamValue, Severity, Threshold
from checks.params import Resolved, Resolver


class CheckParams(BaseModel):
    """Base of every check's parameters: all checks can be switched off by configuration."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True


class LimitParams(CheckParams):
    """The common shape 'warn at W, critical at C' (either may be null to switch that level off)."""

    warning: Optional[float] = None
    critical: Optional[float] = None


Rule = Callable[[FactSet, "RuleContext"], List[CheckResult]]


@dataclass(frozen=True)
class CheckSpec:
    id: str
    category: Category
    params: Type[CheckParams]
    rule: Rule
    service_affecting: bool = False
    """A critical finding of a service-affecting check maps to P1 by default (alerts, reports)."""


UNKNOWN_KEY = "common.unknown"
UNKNOWN_ADVICE = "common.advice.unknown"


class RuleContext:
    def __init__(self, spec: CheckSpec, resolver: Resolver) -> None:
        self.spec = spec
        self.resolver = resolver

    def params(self, item: Optional[str] = None) -> Resolved:
        return self.resolver.resolve(self.spec.id, self.spec.params, item)

    def result(
        self,
        severity: Severity,
        msg: str,
        *,
        item: Optional[str] = None,
        value: Union[float, int, str, None] = None,
        unit: Optional[str] = None,
        threshold: Optional[Threshold] = None,
        evidence: Iterable[str] = (),
        advice: Optional[str] = None,
        **params: ParamValue,
    ) -> CheckResult:
        """`msg` and `advice` are short keys under the check id: 'high' → 'disk.usage.high'."""
        return CheckResult(
            check=self.spec.id,
            category=self.spec.category,
            item=item,
            severity=severity,
            value=value,
            unit=unit,
            threshold=threshold,
            message=Message(key=f"{self.spec.id}.{msg}", params=params),
            evidence=list(evidence),
            recommendation_key=f"{self.spec.id}.advice.{advice}" if advice else None,
        )

    def unknown(self, reason: str, item: Optional[str] = None) -> CheckResult:
        return CheckResult(
            check=self.spec.id,
            category=self.spec.category,
            item=item,
            severity=Severity.unknown,
            message=Message(key=UNKNOWN_KEY, params={"reason": reason}),
            recommendation_key=UNKNOWN_ADVICE,
        )

    def limit(
        self,
        value: float,
        *,
        item: Optional[str] = None,
        unit: Optional[str] = None,
        direction: str = "above",
        evidence: Iterable[str] = (),
        **params: ParamValue,
    ) -> CheckResult:
        """Judge `value` against this check's warning/critical for `item`.

        Keys used: `<check>.ok` for a pass, `<check>.bad` otherwise, advice `<check>.advice.bad`.
        """
        resolved = self.params(item)
        threshold = threshold_of(resolved, unit, direction)
        severity = judge(value, threshold)
        bad = severity in (Severity.warning, Severity.critical)
        return self.result(
            severity,
            "bad" if bad else "ok",
            item=item,
            value=round(value, 2) if isinstance(value, float) else value,
            unit=unit,
            threshold=threshold,
            evidence=evidence,
            advice="bad" if bad else None,
            value_text=_fmt(value, unit),
            **params,
        )


def _fmt(value: float, unit: Optional[str]) -> str:
    text = f"{value:.1f}" if isinstance(value, float) else str(value)
    return f"{text}{unit or ''}" if unit == "%" else (f"{text} {unit}" if unit else text)
