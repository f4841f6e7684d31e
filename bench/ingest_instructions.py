"""Instructions the collector executes a run: the steadiest of the ingest measures.

    .venv/bin/python bench/ingest_instructions.py [--db postgresql|sqlite] [--hosts 6]
                                                   [--rounds 4 12] [--tries 1]

On this shared machine a run's CPU time swings by ±10–20 % between consecutive runs of the
same code (`ingest_cpu.py`, and `ingest_bench.py` over HTTP), so a change worth a few per cent
cannot be told from the noise there. The instructions executed vary less: this runs `ingest_cpu.py`
under valgrind's cachegrind (counting instructions, no cache simulation) once with few and once
with more rounds, and divides the difference by the runs between them. Start-up (imports,
migrations, enrolment, the warm-up rounds) is in both counts and cancels out. As in
`ingest_cpu.py`, every fourth round also posts a batch of samples from each host: the figure is
per run of that mix. Three tries of the fifteenth round (R = 4 and 12, 6 hosts) agreed to ±4 %;
two of the seventeenth, same code, gave 16.2 and 13.8 million: run `--tries 2` or more and
trust only differences well beyond that spread.

What it cannot see: cache misses and waiting. A change that only moves work to where the caches
are warm, or that saves round trips, shows nothing here; measure those with the other two.
Only the collector's own process is counted, not PostgreSQL's. Under valgrind the process runs
some 40 times slower (~30 s for 12 rounds of 6 hosts): the round trips to the database weigh
nothing beside it, and the group commit's batches are those of a busy collector.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ingest_bench import SAMPLES_EVERY  # ingest_cpu.py's cadence of sample batches

HERE = Path(__file__).resolve().parent


def instructions(valgrind: str, db: str, hosts: int, rounds: int) -> int:
    """Instructions `ingest_cpu.py` executes in all (start-up included) for `rounds` rounds."""
    with tempfile.TemporaryDirectory(prefix="xj-instructions-") as tmp:
        out = Path(tmp) / "cachegrind.out"
        command = [
            valgrind,
            "--tool=cachegrind",
            "--cache-sim=no",
            f"--cachegrind-out-file={out}",
            sys.executable,
            str(HERE / "ingest_cpu.py"),
            f"--db={db}",
            f"--hosts={hosts}",
            f"--rounds={rounds}",
        ]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0 or not out.exists():
            raise SystemExit(
                f"ingest_cpu.py under valgrind failed (exit {done.returncode}):\n"
                + done.stderr[-3000:]
            )
        return summary(out.read_text(encoding="utf-8"))


def summary(cachegrind_out: str) -> int:
    """The total of a cachegrind output file (its `summary:` line; `I refs` on stderr)."""
    for line in cachegrind_out.splitlines():
        if line.startswith("summary:"):
            return int(line.split()[1])
    raise SystemExit("cachegrind wrote no summary line")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="postgresql")
    parser.add_argument("--hosts", type=int, default=6)
    parser.add_argument(
        "--rounds",
        type=int,
        nargs=2,
        default=(4, 12),
        metavar=("FEW", "MORE"),
        help="rounds of the two counts; their difference is what is divided",
    )
    parser.add_argument("--tries", type=int, default=1, help="pairs of counts, each reported")
    args = parser.parse_args()
    few, more = args.rounds
    if not 0 < few < more:
        parser.error("--rounds FEW MORE needs 0 < FEW < MORE")
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    runs = args.hosts * (more - few)
    per_run = []
    for _ in range(args.tries):
        low = instructions(valgrind, args.db, args.hosts, few)
        high = instructions(valgrind, args.db, args.hosts, more)
        per_run.append(round((high - low) / runs / 1e6, 3))
    result = {
        "db": args.db,
        "hosts": args.hosts,
        "rounds": [few, more],
        "runs_counted": runs,
        "sample_batches_counted": args.hosts * (more // SAMPLES_EVERY - few // SAMPLES_EVERY),
        "million_instructions_per_run": per_run,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
