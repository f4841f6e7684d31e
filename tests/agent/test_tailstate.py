"""Incremental tailing across rotations, with the real log scanner reading the files."""

from __future__ import annotations

import os
import re
import shutil
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import List, Sequence

import pytest

from agent.logscan.files import FileScanner
from agent.logscan.matcher import Matcher
from agent.spool import Spool
from agent.tailstate import TailState, candidates
from checks.alarms import AlarmRule
from checks.model import Window

WINDOW = Window(
    start=datetime(2026, 11, 19, tzinfo=timezone.utc),
    end=datetime(2026, 11, 21, tzinfo=timezone.utc),
)
BANNER = "".join(
    f"2026-11-20T07:00:{i % 60:02d}+00:00 web app[1]: starting, config line {i:04d}\n"
    for i in range(40)
)


def line(tag: str) -> str:
    return f"2026-11-20T08:00:00+00:00 web app[7]: ERROR request failed id={tag}\n"


class Inspector:
    """What the inspect worker does with TailState, minus facts and shipping."""

    def __init__(self, state_dir: Path, roots: Sequence[str]) -> None:
        self.state_dir = state_dir
        self.roots = list(roots)
        self.runs = 0

    def scan(self, paths: Sequence[Path], commit: bool = True) -> List[str]:
        tail = TailState(self.state_dir)
        plan = tail.plan([str(p) for p in paths], self.roots)
        seen: List[str] = []
        scanner = FileScanner(
            Matcher([AlarmRule(id="t.error", pattern="ERROR")]),
            WINDOW,
            lambda hit: seen.append(re.search(r"id=(\S+)", hit.sample).group(1)),  # type: ignore[union-attr]
            use_grep=False,
        )
        ends = {}
        for read in plan.reads:
            _facts, ends[read.path] = scanner.scan(read.path, read.start)
        self.runs += 1
        run_id = f"00000000-0000-4000-8000-{self.runs:012d}"
        tail.stage(run_id, plan, ends)
        if commit:
            tail.commit(run_id)
        return seen


def write(path: Path, text: str, mode: str = "a") -> None:
    with open(path, mode, encoding="utf-8") as fh:
        fh.write(text)


def tags(prefix: str, n: int) -> List[str]:
    return [f"{prefix}{i}" for i in range(n)]


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    d = tmp_path / "log"
    d.mkdir()
    return d


def test_rename_rotation_finishes_the_old_file_then_reads_the_new(
    tmp_path: Path, logs: Path
) -> None:
    app = logs / "app.log"
    insp = Inspector(tmp_path, [str(logs)])
    write(app, "".join(line(t) for t in tags("a", 10)))
    assert insp.scan([app]) == tags("a", 10)
    write(app, "".join(line(t) for t in tags("b", 5)) + line("partial")[:30])
    os.rename(app, logs / "app.log.1")  # logrotate's default `create` rotation
    write(
        logs / "app.log.1", line("partial")[30:] + line("late")
    )  # the app writes on until it reopens
    write(app, "".join(line(t) for t in tags("c", 7)))
    assert insp.scan([app]) == [*tags("b", 5), "partial", "late", *tags("c", 7)]
    assert insp.scan([app]) == []
    os.rename(logs / "app.log.1", logs / "app.log.2")
    os.rename(app, logs / "app.log.1")
    write(app, line("d0"))
    assert insp.scan([app]) == ["d0"]


def test_copytruncate_reads_the_tail_from_the_copy(tmp_path: Path, logs: Path) -> None:
    app = logs / "app.log"
    insp = Inspector(tmp_path, [str(logs)])
    write(app, "".join(line(t) for t in tags("a", 10)))
    assert insp.scan([app]) == tags("a", 10)
    write(app, "".join(line(t) for t in tags("b", 4)))
    shutil.copyfile(app, logs / "app.log.1")
    os.truncate(app, 0)
    write(app, "".join(line(t) for t in tags("c", 3)))
    assert insp.scan([app]) == [*tags("b", 4), *tags("c", 3)]
    # the truncated file grows past the old offset before the next look: the head tells
    write(app, "".join(line(t) for t in tags("d", 2)))
    shutil.copyfile(app, logs / "app.log.2")
    os.truncate(app, 0)
    write(app, "".join(line(t) for t in tags("e", 40)))
    assert Counter(insp.scan([app])) == Counter([*tags("d", 2), *tags("e", 40)])


def test_truncated_while_stopped_starts_over(tmp_path: Path, logs: Path) -> None:
    app = logs / "app.log"
    insp = Inspector(tmp_path, [str(logs)])
    write(app, "".join(line(t) for t in tags("a", 10)))
    assert insp.scan([app]) == tags("a", 10)
    write(app, line("x0") + line("x1"), mode="w")  # shorter than the offset
    assert insp.scan([app]) == ["x0", "x1"]
    write(app, "".join(line(t) for t in tags("y", 30)), mode="w")  # longer, different head
    assert insp.scan([app]) == tags("y", 30)


def test_partial_last_line_waits_for_its_newline(tmp_path: Path, logs: Path) -> None:
    app = logs / "app.log"
    insp = Inspector(tmp_path, [str(logs)])
    write(app, line("one") + line("two") + line("three")[:-10])
    assert insp.scan([app]) == ["one", "two"]
    assert insp.scan([app]) == []
    write(app, line("three")[-10:])
    assert insp.scan([app]) == ["three"]


def test_two_files_sharing_their_first_kib_are_two_files(tmp_path: Path, logs: Path) -> None:
    a, b = logs / "a.log", logs / "b.log"
    assert len(BANNER) > 2048
    insp = Inspector(tmp_path, [str(logs)])
    write(a, BANNER + "".join(line(t) for t in tags("a", 3)))
    write(b, BANNER + "".join(line(t) for t in tags("b", 5)))
    assert Counter(insp.scan([a, b])) == Counter([*tags("a", 3), *tags("b", 5)])
    write(a, line("a-more"))
    write(b, line("b-more"))
    assert Counter(insp.scan([a, b])) == Counter(["a-more", "b-more"])
    # a new a.log with the very same head as the rotated one is still a new file
    os.rename(a, logs / "a.log.1")
    write(logs / "a.log.1", line("a-tail"))
    write(a, BANNER + line("a-new"))
    assert Counter(insp.scan([a, b])) == Counter(["a-tail", "a-new"])


def test_offsets_move_only_when_the_run_reached_the_spool(tmp_path: Path, logs: Path) -> None:
    app = logs / "app.log"
    insp = Inspector(tmp_path, [str(logs)])
    spool = Spool(tmp_path / "spool")
    write(app, "".join(line(t) for t in tags("a", 3)))
    assert insp.scan([app], commit=False) == tags("a", 3)  # killed before spooling
    TailState(tmp_path).resolve_pending(spool.contains)
    assert insp.scan([app], commit=False) == tags("a", 3)  # read again, nothing lost
    staged = next(iter(TailState(tmp_path).pending))
    spool.enqueue("runs", staged, b"{}")  # this time the run made it; killed before commit
    TailState(tmp_path).resolve_pending(spool.contains)
    write(app, line("b0"))
    assert insp.scan([app]) == ["b0"]  # not counted twice


def test_paths_outside_allowed_roots_are_never_read(tmp_path: Path, logs: Path) -> None:
    outside = tmp_path / "secret.log"
    write(outside, line("secret"))
    link = logs / "innocent.log"
    link.symlink_to(outside)
    insp = Inspector(tmp_path, [str(logs)])
    assert insp.scan([outside, link]) == []
    plan = TailState(tmp_path).plan([str(outside), str(link)], [str(logs)])
    assert set(plan.refused) == {str(outside), str(link)} and plan.reads == []
    found, refused = candidates([str(link)], [str(logs / "*.log")], [str(logs)])
    assert found == [] and set(refused) == {str(link)}
