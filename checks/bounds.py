"""The value types of the wire format: only what the collector's columns can hold.

The collector keeps runs, samples and heartbeats in BIGINT, double and timestamp columns and in
standard JSON, on SQLite and PostgreSQL alike. A value beyond them (an integer past 64 bits,
NaN or an infinity, a time without an offset, a time that leaves the calendar once turned into
UTC) has to be refused where the message is parsed, with its field named, not fail later inside
a transaction. Declared in the types, the bounds are checked by pydantic-core in the same pass
that parses the JSON: a second walk over a 50 KB run cost ~1 ms, a text pre-scan to skip that
walk ~0.3 ms. And the agent meets them while it builds its facts, where a bad value costs only
the section it was in, not the whole run at the collector.

Every model of the wire format uses these types and WIRE_CONFIG (tests/checks/test_bounds.py
walks the models and fails on a bare int or datetime).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

from pydantic import AwareDatetime, ConfigDict, Field

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
"""An integer a BIGINT column holds."""

FIRST = datetime.min.replace(tzinfo=timezone.utc)
LAST = datetime.max.replace(tzinfo=timezone.utc)

Instant = Annotated[AwareDatetime, Field(ge=FIRST, le=LAST)]
"""A point in time with its UTC offset, still inside the calendar once converted to UTC."""

WIRE_CONFIG = ConfigDict(extra="forbid", allow_inf_nan=False)
"""Unknown fields are refused, and so are NaN and ±Infinity in every float."""
