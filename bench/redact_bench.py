"""Redaction throughput on the shared Loghub samples, beside a single-regex anchor.

Every evidence and sample line of a run passes through `Redactor.redact`, so its cost per line
bounds how much evidence a run can carry. The anchor is one `re.sub` of a plain `password=\\S+`
pattern over the same lines in the same process: the floor any regex-based redaction pays.

    .venv/bin/python bench/redact_bench.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path
from typing import Callable, List

from agent.redact import Redactor

LOGHUB = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "loghub"


def best_of(rounds: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    lines: List[str] = []
    for path in sorted(LOGHUB.glob("*/*.log")):
        lines += path.read_text(errors="replace").splitlines()
    size = sum(len(line) for line in lines)
    redactor = Redactor()
    anchor = re.compile(r"password=\S+")
    ours = best_of(args.rounds, lambda: [redactor.redact(line) for line in lines])
    base = best_of(args.rounds, lambda: [anchor.sub("***", line) for line in lines])
    print(f"lines: {len(lines)} ({size / 1e6:.2f} MB) from {LOGHUB}")
    for name, seconds in (("Redactor.redact", ours), ("anchor re.sub", base)):
        per_line = seconds / len(lines) * 1e6
        print(f"{name:16} {len(lines) / seconds:12,.0f} lines/s {per_line:8.2f} µs/line")


if __name__ == "__main__":
    main()
