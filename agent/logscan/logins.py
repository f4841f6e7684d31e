"""Failed and successful log-ins from the `login.*` rule matches, for history.logins.

sshd and PAM describe one failed attempt on several lines ("Invalid user …", "pam_unix(sshd:auth):
authentication failure …", "Failed password …"), so failures are counted once per connection
(program pid), remote address and minute; a line without a pid counts on its own. That keeps a
burst of attacks visible without counting one attempt three times. Minutes are UTC, as
`LogFacts.failed_login_minutes` documents.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import timezone
from typing import Dict, Hashable, Optional, Set

from agent.logscan.files import Hit

_ADDRESS = re.compile(r"\bfrom (?P<a>[^\s\]\[()]+)|\brhost=(?P<b>[^\s\]\[()]+)")
KEEP_MINUTES = 3
"""Dedupe keys of older minutes are dropped: logs are in time order, memory stays small."""


def remote_address(message: str) -> Optional[str]:
    m = _ADDRESS.search(message)
    if m is None:
        return None
    return (m["a"] or m["b"]).rstrip(".,;:")


class LoginCounter:
    def __init__(self) -> None:
        self.minutes: Counter[str] = Counter()
        self.sources: Counter[str] = Counter()
        self.successful = 0
        self._seen: Dict[str, Set[Hashable]] = {}

    def add(self, hit: Hit) -> None:
        family = hit.rule.family
        if family == "login.ok":
            self.successful += 1
            return
        if family != "login.failed":
            return
        minute = hit.time.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%MZ")
        address = remote_address(hit.header.message)
        key: Hashable = (
            (hit.source, hit.header.program, hit.header.pid, address)
            if hit.header.pid
            else (hit.source, hit.record)
        )
        seen = self._seen.setdefault(minute, set())
        if key in seen:
            return
        seen.add(key)
        if len(self._seen) > KEEP_MINUTES:
            for old in sorted(self._seen)[:-KEEP_MINUTES]:
                del self._seen[old]
        self.minutes[minute] += 1
        if address:
            self.sources[address] += 1
