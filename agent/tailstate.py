"""Where the last inspection stopped reading each log, so the next one reads only new lines.

A file is identified by device + inode + a fingerprint (SHA-256) of its first bytes (up to
`FP_BYTES`). The inode alone is not enough (inodes are reused after a delete); the fingerprint
alone is not either (two logs may start with the same banner, and a rotated-away file keeps the
head the new one may repeat). From one inspection to the next:

- same inode, head unchanged, size >= offset → read on from the offset;
- same inode but shorter than the offset or a different head → truncated in place (copytruncate,
  or truncated while the agent was stopped): read from 0, and first finish the old tail from the
  rotated copy if a sibling (`app.log.1`, `app.log-20250101` …) has the old head and is long enough;
- the inode left its path → rename rotation: find it among the siblings, finish its tail, then
  read the new file at the path from 0;
- a file that is gone (deleted, compressed) is forgotten.

Offsets are end offsets of the last complete line (the scanner stops before a partial line, so
it is read again once its newline arrives). They move in two phases: `stage(run_id, …)` records
the new offsets beside the run id, the run is spooled, then `commit(run_id)`. A worker killed in
between leaves the stage behind; the next `plan` commits it if the spool has (or delivered) that
run, and drops it otherwise, so lines are neither lost nor counted twice.

Paths are only read under the configured `allowed_roots` (after resolving symlinks), whatever the
configuration or a collector names.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

TAIL_FILE = "tail.json"
FP_BYTES = 1024
COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".lz4", ".zip")


@dataclass
class FileState:
    dev: int
    ino: int
    fp_len: int
    fp: str
    offset: int
    path: str  # where it was last read
    base: str  # the configured path it was found under

    @property
    def key(self) -> str:
        return f"{self.dev}:{self.ino}"


@dataclass
class Read:
    """One file to scan from `start`; `identity` is what the stage records for it."""

    path: str
    start: int
    identity: FileState


@dataclass
class TailPlan:
    reads: List[Read] = field(default_factory=list)
    refused: Dict[str, str] = field(default_factory=dict)  # path → why it was not read
    journald_cursor: Optional[str] = None

    def starts(self) -> Dict[str, int]:
        return {r.path: r.start for r in self.reads}


def under_roots(path: str, roots: Sequence[str]) -> bool:
    """Whether `path` resolves (symlinks followed) inside one of `roots`."""
    real = os.path.realpath(path)
    for root in roots:
        r = os.path.realpath(root)
        if real == r or real.startswith(r.rstrip("/") + "/"):
            return True
    return False


def _head(path: str, n: int) -> Tuple[int, str]:
    with open(path, "rb") as fh:
        data = fh.read(n)
    return len(data), hashlib.sha256(data).hexdigest()


def _identity(path: str, base: str, offset: int) -> Optional[FileState]:
    try:
        st = os.stat(path)
        fp_len, fp = _head(path, FP_BYTES)
    except OSError:
        return None
    return FileState(st.st_dev, st.st_ino, fp_len, fp, offset, path, base)


def _same_head(path: str, state: FileState) -> bool:
    try:
        n, fp = _head(path, state.fp_len)
    except OSError:
        return False
    return n == state.fp_len and fp == state.fp


def _siblings(base: str) -> List[str]:
    """Rotated names of `base` in its directory, uncompressed: app.log.1, app.log-20250101 …"""
    directory, name = os.path.split(base)
    try:
        names = os.listdir(directory or ".")
    except OSError:
        return []
    return sorted(
        os.path.join(directory, n)
        for n in names
        if n != name and n.startswith(name) and n[len(name)] in ".-_" and not n.endswith(COMPRESSED)
    )


def candidates(
    files: Sequence[str], globs: Sequence[str], roots: Sequence[str]
) -> Tuple[List[str], Dict[str, str]]:
    """Existing regular files named by the config (globs expanded), and those refused with why."""
    out: List[str] = []
    refused: Dict[str, str] = {}
    seen = set()
    for path in list(files) + sorted(p for g in globs for p in glob.glob(g)):
        if path in seen:
            continue
        seen.add(path)
        if not under_roots(path, roots):
            refused[path] = f"outside allowed_roots {list(roots)}"
        elif os.path.isfile(path):
            out.append(path)
    return out, refused


class TailState:
    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / TAIL_FILE
        data = self._load()
        self.files: Dict[str, FileState] = {
            k: FileState(**v) for k, v in data.get("files", {}).items()
        }
        self.journald_cursor: Optional[str] = data.get("journald_cursor")
        self.pending: Dict[str, dict] = data.get("pending", {})

    def _load(self) -> dict:
        try:
            data = json.loads(self.path.read_text("utf-8"))
            return data if isinstance(data, dict) else {}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}  # unreadable offsets: read everything once more rather than nothing

    def _save(self) -> None:
        data = {
            "files": {k: asdict(v) for k, v in self.files.items()},
            "journald_cursor": self.journald_cursor,
            "pending": self.pending,
        }
        tmp = self.path.with_name("." + TAIL_FILE + ".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def resolve_pending(self, spooled: Callable[[str], bool]) -> None:
        """Finish a hand-over a killed worker left: commit if its run reached the spool."""
        for run_id in list(self.pending):
            if spooled(run_id):
                self.commit(run_id)
            else:
                del self.pending[run_id]
                self._save()

    def plan(self, paths: Sequence[str], roots: Sequence[str]) -> TailPlan:
        """What to read now, from where; paths outside `roots` are refused, never opened."""
        plan = TailPlan(journald_cursor=self.journald_cursor)
        claimed = set()
        rotated: List[Read] = []
        for base in paths:
            if not under_roots(base, roots):
                plan.refused[base] = f"outside allowed_roots {list(roots)}"
                continue
            now = _identity(base, base, 0)
            if now is None or now.key in claimed:
                continue
            claimed.add(now.key)
            known = self.files.get(now.key)
            size = os.path.getsize(base)
            if known is not None and size >= known.offset and _same_head(base, known):
                now.offset = known.offset
            elif known is not None:
                copy = self._rotated_copy(base, known, roots, claimed)
                if copy is not None:
                    rotated.append(copy)
            plan.reads.append(Read(base, now.offset, now))
        for key, known in self.files.items():
            if key in claimed:
                continue
            found = self._locate(known, roots)
            if found is not None:
                claimed.add(key)
                rotated.append(found)
        plan.reads = rotated + plan.reads  # the older lines first
        return plan

    def _rotated_copy(
        self, base: str, known: FileState, roots: Sequence[str], claimed: set
    ) -> Optional[Read]:
        """After copytruncate, the old content lives on in a sibling with the old head."""
        for path in _siblings(base):
            ident = _identity(path, base, known.offset)
            if (
                ident is not None
                and ident.key not in self.files
                and ident.key not in claimed
                and under_roots(path, roots)
                and os.path.getsize(path) >= known.offset
                and _same_head(path, known)
            ):
                claimed.add(ident.key)
                return Read(path, known.offset, ident)
        return None

    def _locate(self, known: FileState, roots: Sequence[str]) -> Optional[Read]:
        """A renamed file: same device and inode, same head, at its last path or a sibling."""
        for path in [known.path, *_siblings(known.base)]:
            try:
                st = os.stat(path)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) != (known.dev, known.ino) or not under_roots(path, roots):
                continue
            if st.st_size < known.offset or not _same_head(path, known):
                return None
            ident = _identity(path, known.base, known.offset)
            return Read(path, known.offset, ident) if ident is not None else None
        return None

    def stage(
        self,
        run_id: str,
        plan: TailPlan,
        ends: Dict[str, int],
        journald_cursor: Optional[str] = None,
    ) -> None:
        """Phase one: the offsets this run's lines end at, kept apart until `commit(run_id)`."""
        files = {}
        for read in plan.reads:
            state = FileState(**asdict(read.identity))
            state.offset = max(read.start, int(ends.get(read.path, read.start)))
            files[state.key] = asdict(state)
        self.pending = {
            run_id: {"files": files, "journald_cursor": journald_cursor or plan.journald_cursor}
        }
        self._save()

    def commit(self, run_id: str) -> None:
        """Phase two: the run is in the spool; its offsets become the starting point."""
        staged = self.pending.pop(run_id, None)
        if staged is None:
            return
        self.files = {k: FileState(**v) for k, v in staged["files"].items()}
        self.journald_cursor = staged["journald_cursor"]
        self._save()
