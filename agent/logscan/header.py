"""Split a log line into its header (time, host, program[pid], level) and the message.

Templates are mined on the message alone: a header's host name, pid and timestamp change on
every line and would split one event into many templates. The header is recognised by shape,
so no per-file settings are needed: after the timestamp comes either a syslog
`host program[pid]:` part, an RFC 5424 header, or an application level (`ERROR`, `[error]`,
`- name - ERROR -`), with the nginx `pid#tid: *conn` and Apache 2.4 `[pid …]` tails.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Optional

from agent.logscan.timestamps import Stamp, parse_timestamp

_LEVELS = "TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|CRIT|CRITICAL|FATAL|SEVERE|ALERT|EMERG"
_LEVEL = re.compile(
    rf"\s*(?:-\s+)?(?:[\w.$]+\s+-\s+)?\[?(?P<level>{_LEVELS})\]?(?:\s+-\s+|:?\s+|:?$)"
    r"|\s*\[(?:[\w-]+:)?(?P<blevel>emerg|alert|crit|error|warn|notice|info|debug|trace\d?)\]\s*"
)
_RFC5424 = re.compile(
    r" (?P<host>\S+) (?P<prog>\S+) (?P<pid>\S+) \S+ (?:-|(?:\[(?:[^\]\\]|\\.)*\])+)(?: |$)"
)
_PROGRAM = r"(?P<prog>[^\s:\[(]+(?:\([^)\s]*\))?(?: v?\d+(?:\.\d+)+)?)(?:\[(?P<pid>\d+)\])?:(?: |$)"
_SYSLOG = re.compile(rf" +(?P<host>[^\s:]+) {_PROGRAM}")
_SYSLOG_NOHOST = re.compile(rf" +{_PROGRAM}")
_KERNEL_CLOCK = re.compile(r"\[\s*\d+\.\d+\] ")
_NGINX_TAIL = re.compile(r"\d+#\d+: (?:\*\d+ )?")
_APACHE_TAIL = re.compile(r"\[pid \d+(?::tid \d+)?\] ")


@dataclass(frozen=True)
class Header:
    stamp: Optional[Stamp]
    message: str
    program: Optional[str] = None
    pid: Optional[str] = None
    level: Optional[str] = None


def split_header(line: str, ref: datetime, tz: Optional[tzinfo] = None) -> Header:
    """The header parts of `line` and its message; a line without a timestamp is all message."""
    line = line.rstrip("\r\n")
    stamp = parse_timestamp(line, ref, tz)
    if stamp is None:
        return Header(None, line.strip())
    pos = stamp.end
    program = pid = level = None
    rest = line[pos:]
    if line.startswith("<") and ">1 " in line[:6]:
        m = _RFC5424.match(rest)
        if m:
            program, pid = m["prog"], (None if m["pid"] == "-" else m["pid"])
            pos += m.end()
    else:
        lm = _LEVEL.match(rest)
        if lm:
            level = lm["level"] or lm["blevel"]
            pos += lm.end()
            tail = _NGINX_TAIL.match(line, pos) or _APACHE_TAIL.match(line, pos)
            if tail:
                pos = tail.end()
        else:
            m = _SYSLOG.match(rest) or _SYSLOG_NOHOST.match(rest)
            if m:
                program, pid = m["prog"], m["pid"]
                pos += m.end()
                clock = _KERNEL_CLOCK.match(line, pos)
                if clock:
                    pos = clock.end()
    return Header(stamp, line[pos:].strip(), program, pid, level)
