"""Run the catalog over a FactSet: the one entry point the agent, SSH mode and collector share."""

from __future__ import annotations

from typing import Iterable, List, Optional

from checks.catalog import CATALOG
from checks.facts import FactSet
from checks.model import CheckResult
from checks.params import ParamsError, Resolver
from checks.spec import CheckSpec, RuleContext


def evaluate(
    facts: FactSet,
    resolver: Optional[Resolver] = None,
    checks: Iterable[CheckSpec] = CATALOG,
) -> List[CheckResult]:
    """Judge `facts`; a rule that fails on odd facts yields `unknown` instead of losing the run.

    A bad threshold override is a configuration error and raises ParamsError naming the field.
    """
    resolver = resolver or Resolver()
    results: List[CheckResult] = []
    for spec in checks:
        ctx = RuleContext(spec, resolver)
        if not ctx.params().params.enabled:
            continue
        try:
            results.extend(spec.rule(facts, ctx))
        except ParamsError:
            raise
        except Exception as exc:  # a rule bug must not cost the customer the whole inspection
            results.append(ctx.unknown(f"rule error: {type(exc).__name__}: {exc}"))
    return results
