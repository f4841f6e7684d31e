"""systemd services: the ones the contract covers must be active, none should sit in 'failed'."""

from __future__ import annotations

from fnmatch import fnmatch
from typing import Dict, List, Union

from pydantic import Field

from checks.facts import FactSet, ServiceFacts, UnitState
from checks.model import Category, CheckResult, Severity
from checks.spec import CheckParams, CheckSpec, RuleContext

NO_SYSTEMD = "no systemd on this host"


class RequiredServiceParams(CheckParams):
    units: List[str] = Field(
        default_factory=list, description="units that must be active; 'nginx' means nginx.service"
    )


class FailedServiceParams(CheckParams):
    ignore: List[str] = Field(
        default_factory=list, description="unit name globs whose failure is accepted"
    )


def _unit_name(name: str) -> str:
    return name if "." in name else f"{name}.service"


def _systemd(facts: FactSet) -> Union[ServiceFacts, str]:
    """The service facts, or why there are none to judge."""
    services = facts.services
    if services is None:
        return facts.missing("services") or ""
    if services.manager != "systemd":
        return NO_SYSTEMD
    return services


def required(facts: FactSet, ctx: RuleContext) -> List[CheckResult]:
    wanted = [_unit_name(u) for u in ctx.params().params.units]
    services = _systemd(facts)
    if isinstance(services, str):
        return [ctx.unknown(services, item=unit) for unit in wanted]
    by_name: Dict[str, UnitState] = {u.name: u for u in services.units}
    results: List[CheckResult] = []
    for name in wanted:
        unit = by_name.get(name)
        if unit is not None and unit.active == "active":
            results.append(
                ctx.result(
                    Severity.ok, "ok", item=name, value=unit.active, unit_name=name, sub=unit.sub
                )
            )
        elif unit is None:
            results.append(
                ctx.result(
                    Severity.critical,
                    "absent",
                    item=name,
                    value="absent",
                    advice="absent",
                    unit_name=name,
                )
            )
        else:
            results.append(
                ctx.result(
                    Severity.critical,
                    "inactive",
                    item=name,
                    value=unit.active,
                    advice="inactive",
                    unit_name=name,
                    active=unit.active,
                    sub=unit.sub,
                )
            )
    return results


def failed(facts: FactSet, ctx: RuleContext) -> List[CheckResult]:
    services = _systemd(facts)
    if isinstance(services, str):
        return [ctx.unknown(services)]
    ignore = ctx.params().params.ignore
    bad = [u for u in services.failed if not any(fnmatch(u.name, pattern) for pattern in ignore)]
    if not bad:
        return [ctx.result(Severity.ok, "ok", value=0, count=len(services.units))]
    return [
        ctx.result(
            Severity.warning,
            "bad",
            item=u.name,
            value=u.active,
            advice="bad",
            unit_name=u.name,
            sub=u.sub,
        )
        for u in bad
    ]


CHECKS = [
    CheckSpec(
        "service.required", Category.status, RequiredServiceParams, required, service_affecting=True
    ),
    CheckSpec("services.failed", Category.status, FailedServiceParams, failed),
]
