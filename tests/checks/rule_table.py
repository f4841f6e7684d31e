"""The shape of the table-driven rule tests: one Case per row, expectations per result."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Tuple

from checks.model import Severity

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)
GiB = 1024**3
ok, info, warning, critical, unknown = (
    Severity.ok,
    Severity.info,
    Severity.warning,
    Severity.critical,
    Severity.unknown,
)
CFG = "config:test.toml"

# (item, severity, value, message key after the check id, threshold provenance or None)
Expect = Tuple[Optional[str], Severity, Any, str, Optional[str]]


@dataclass
class Case:
    name: str
    check: str
    facts: Dict[str, Any]
    expect: List[Expect]
    overrides: Dict[str, Any] = field(default_factory=dict)
