"""Process names, states and parents from /proc/<pid>/stat (names only: no command lines)."""

from __future__ import annotations

from collections import Counter

from checks.facts import ProcessFacts, ProcessRef
from checks.parsers import ParseError


def parse_proc_stats(text: str) -> ProcessFacts:
    """The concatenated /proc/[0-9]*/stat files: `pid (comm) state ppid …`, one per line.

    Sample::

        1 (systemd) S 0 1 1 0 -1 4194560 44133 …
        812 (nginx: worker) S 809 809 809 0 -1 …
        9703 (defunct app) Z 9700 9703 6942 0 -1 …

    comm may hold spaces and parentheses, so it ends at the last ')'. A line that does not
    have this shape (a name with a newline in it) is skipped rather than failing the section.
    """
    names: Counter[str] = Counter()
    zombies: list[ProcessRef] = []
    total = 0
    for line in text.splitlines():
        head, lparen, rest = line.partition(" (")
        comm, rparen, tail = rest.rpartition(") ")
        fields = tail.split()
        if not (lparen and rparen and head.isdigit() and len(fields) >= 2 and fields[1].isdigit()):
            continue
        total += 1
        names[comm] += 1
        if fields[0] == "Z":
            zombies.append(ProcessRef(pid=int(head), ppid=int(fields[1]), name=comm))
    if total == 0:
        raise ParseError(f"/proc/*/stat: no process lines in {text.strip()[:120]!r}")
    return ProcessFacts(total=total, zombies=zombies, names=dict(names))
