"""Listening ports: a service whose port is closed is down for its users, whatever else runs."""

from __future__ import annotations

import re
from typing import List, Tuple

from pydantic import Field, field_validator

from checks.facts import FactSet
from checks.model import Category, CheckResult, Severity
from checks.spec import CheckParams, CheckSpec, RuleContext

_SPEC = re.compile(r"^(?:(tcp|udp)/)?(\d{1,5})$")


class PortParams(CheckParams):
    ports: List[str] = Field(
        default_factory=list,
        description="ports that must be open: 443, 'tcp/443' or 'udp/53' (plain numbers are TCP)",
    )

    @field_validator("ports", mode="before")
    @classmethod
    def _normalise(cls, value: object) -> object:
        if not isinstance(value, list):
            return value
        return [_normalise_port(v) for v in value]


def _normalise_port(value: object) -> str:
    plain = isinstance(value, (int, str)) and not isinstance(value, bool)
    match = _SPEC.match(str(value).strip().lower()) if plain else None
    if match is None or not 0 < int(match.group(2)) < 65536:
        raise ValueError(f"{value!r} is not a port (expected 443, 'tcp/443' or 'udp/53')")
    return f"{match.group(1) or 'tcp'}/{int(match.group(2))}"


def _split(spec: str) -> Tuple[str, int]:
    proto, _, port = spec.partition("/")
    return proto, int(port)


def listening(facts: FactSet, ctx: RuleContext) -> List[CheckResult]:
    wanted = ctx.params().params.ports
    ports = facts.ports
    if ports is None:
        reason = facts.missing("ports") or ""
        return [ctx.unknown(reason, item=spec) for spec in wanted]
    results: List[CheckResult] = []
    for spec in wanted:
        proto, number = _split(spec)
        bound = [p for p in ports if p.port == number and p.proto.startswith(proto)]
        if bound:
            evidence = [f"{p.proto} {p.address}:{p.port} {p.process or ''}".rstrip() for p in bound]
            results.append(
                ctx.result(Severity.ok, "ok", item=spec, value=number, evidence=evidence, port=spec)
            )
        else:
            results.append(
                ctx.result(
                    Severity.critical, "closed", item=spec, value=number, advice="closed", port=spec
                )
            )
    return results


CHECKS = [
    CheckSpec("port.listening", Category.status, PortParams, listening, service_affecting=True)
]
