"""Which findings are faults with a contractual response time (P1/P2), and which are not.

The contracts define P1 as a crash, software down or a key function unusable, P2 as an ordinary
function degraded or disturbed. Translated to checks: a critical result of a check declared
`service_affecting` in the catalog (a required service, port or endpoint is down …) is P1, any
other critical result is P2, and warnings and below carry no response time. Reports (time to
acknowledgement), alerts and the console all ask `priority_of`, so they never disagree; a
per-contract mapping (alerts issue) replaces this default behind the same function.
"""

from __future__ import annotations

from typing import Optional, Protocol, Union

from checks.catalog import BY_ID
from checks.model import Severity
from checks.spec import CheckSpec
from collector.contracts import Contract, Priority


class _Judged(Protocol):
    @property
    def severity(self) -> Union[Severity, str]: ...


def priority_of(
    result: _Judged, spec: Optional[CheckSpec], contract: Optional[Contract] = None
) -> Optional[Priority]:
    """P1, P2 or None for a check result or stored finding (anything with a `severity`).

    `spec` is the check's catalog entry (None for a check this collector does not know: then it
    cannot be service-affecting). A `contract`'s `[alerts] priorities` rules are tried first, in
    order; the default mapping is the same for every contract.
    """
    if contract is not None:
        check = getattr(result, "check", None) or (spec.id if spec is not None else "")
        for rule in contract.alerts.priorities:  # the contract's own mapping comes first
            if rule.matches(check, Severity(result.severity).value):
                return None if rule.priority == "none" else Priority(rule.priority)
    if Severity(result.severity) is not Severity.critical:
        return None
    return Priority.P1 if spec is not None and spec.service_affecting else Priority.P2


def priority_of_check(
    check_id: str, severity: Union[Severity, str], contract: Optional[Contract] = None
) -> Optional[Priority]:
    """`priority_of` for callers holding only a check id and a severity (rows from the database)."""
    return priority_of(_Severity(check_id, severity), BY_ID.get(check_id), contract)


class _Severity:
    def __init__(self, check: str, severity: Union[Severity, str]) -> None:
        self.check = check
        self.severity = severity
