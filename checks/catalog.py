"""The explicit checklist: every check xunjian runs, in report order. Add new families here."""

from __future__ import annotations

from typing import Dict, List, Type

from checks.rules import (
    apperrors,
    backup,
    certs,
    coredumps,
    cpu,
    disk,
    fds,
    forecast,
    history,
    http,
    kernel,
    logins,
    logs,
    memory,
    ports,
    processes,
    service_events,
    services,
    timesync,
    uptime,
)
from checks.spec import CheckParams, CheckSpec

CATALOG: List[CheckSpec] = [
    *cpu.CHECKS,
    *memory.CHECKS,
    *disk.CHECKS,
    *uptime.CHECKS,
    *timesync.CHECKS,
    *processes.CHECKS,
    *services.CHECKS,
    *ports.CHECKS,
    *fds.CHECKS,
    *certs.CHECKS,
    *backup.CHECKS,
    *http.CHECKS,
    *logs.CHECKS,
    *kernel.CHECKS,
    *coredumps.CHECKS,
    *service_events.CHECKS,
    *apperrors.CHECKS,
    *history.CHECKS,
    *logins.CHECKS,
    *forecast.CHECKS,
]

BY_ID: Dict[str, CheckSpec] = {spec.id: spec for spec in CATALOG}


def param_models() -> Dict[str, Type[CheckParams]]:
    return {spec.id: spec.params for spec in CATALOG}
