"""The durable spool: every run and sample batch is on disk before any send, and leaves it only
when the collector has acknowledged it (or when the size policy drops it, counted).

Layout under `<state_dir>/spool/`: one file per record, `<seq>.<kind>.<key>.rec`, written to a
temporary name, fsync'd, renamed and the directory fsync'd, so a record either exists whole or
not at all after a crash. Each file starts with a 40-byte header (magic, kind, times, length,
CRC-32 of header fields and body); a flipped byte or a truncated file fails the check, is moved to
`dead/`, counted as `corrupt` and skipped, and later records are still delivered. One file per
record (rather than one SQLite file) keeps a damaged record from taking its neighbours with it
and makes dropping from the middle of the queue (samples before runs) a plain unlink.

Delivered records leave a zero-byte `.ack` marker (the newest `ACK_MARKERS` are kept) so that a
worker killed between spooling a run and committing its log offsets can still tell, on restart,
that the run made it (see agent.tailstate). Counters, open gap markers and the retry back-off live
in `state.json`, rewritten atomically under an flock.

Only the standard library is imported: the resident scheduler reads `stats()` and the gaps for its
heartbeat. Records arrive here already redacted: the inspection pipeline redacts the run before
`ship_run` serialises it, and samples carry only numbers and mount points.
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import random
import re
import struct
import time
import uuid
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

log = logging.getLogger("xunjian.spool")

MAGIC = b"XJS1"
HEADER = struct.Struct(
    "<4sBBHdddII"
)  # magic, version, kind, reserved, created, first, last, len, crc
KINDS = ("runs", "samples")
ACK_MARKERS = 1024
DEAD_KEPT = 200
BACKOFF_BASE = 5.0
BACKOFF_CAP = 900.0
_NAME = re.compile(r"^(\d{12})\.(runs|samples)\.([A-Za-z0-9-]{1,64})\.(rec|ack)$")


class CorruptRecord(ValueError):
    """A record file whose header or CRC does not check out."""


@dataclass(frozen=True)
class Entry:
    seq: int
    kind: str
    key: str
    path: Path
    size: int


@dataclass(frozen=True)
class Outcome:
    """What one delivery attempt came to; the HTTP layer (agent.client) classifies responses."""

    status: str  # "ok" | "retry" (5xx, timeout, 429) | "reject" (other 4xx) | "auth" (401/403)
    error: str = ""
    retry_after: Optional[float] = None


Deliver = Callable[[str, bytes], Outcome]


def _iso(ts: Optional[float]) -> Optional[str]:
    if ts is None or math.isnan(ts):
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat()


def _nan(ts: Optional[float]) -> float:
    return float("nan") if ts is None else ts


class Spool:
    def __init__(self, directory: Path, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.dir = Path(directory)
        self.max_bytes = max_bytes
        self.dead_dir = self.dir / "dead"
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.dead_dir.mkdir(exist_ok=True, mode=0o700)
        self._state_path = self.dir / "state.json"

    # -- locking and state ------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[Dict[str, Any]]:
        """Exclusive access to the directory layout and state.json across processes."""
        with open(self.dir / ".lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            state = self._read_state()
            before = json.dumps(state, sort_keys=True)
            yield state
            if json.dumps(state, sort_keys=True) != before:
                self._write_state(state)

    def _read_state(self) -> Dict[str, Any]:
        try:
            data = json.loads(self._state_path.read_text("utf-8"))
            if isinstance(data, dict):
                return data
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:
            log.error(
                "spool state %s unreadable (%s); counters restart at zero", self._state_path, exc
            )
        return {}

    def _write_state(self, state: Dict[str, Any]) -> None:
        tmp = self._state_path.with_name(".state.json.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(state, fh, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self._state_path)
        self._fsync_dir()

    def _fsync_dir(self) -> None:
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    @staticmethod
    def _count(state: Dict[str, Any], name: str, n: int = 1) -> None:
        counters = state.setdefault("counters", {})
        counters[name] = int(counters.get(name, 0)) + n

    # -- listing ------------------------------------------------------------------------------

    def _scan(self, suffix: str) -> List[Entry]:
        out = []
        with os.scandir(self.dir) as it:
            for de in it:
                m = _NAME.match(de.name)
                if m is None or m.group(4) != suffix:
                    continue
                try:
                    size = de.stat().st_size
                except FileNotFoundError:
                    continue
                out.append(Entry(int(m.group(1)), m.group(2), m.group(3), Path(de.path), size))
        out.sort(key=lambda e: e.seq)
        return out

    def pending(self) -> List[Entry]:
        """Undelivered records, oldest first."""
        return self._scan("rec")

    def contains(self, key: str) -> bool:
        """Whether `key` is spooled or was delivered recently (within the last ACK_MARKERS)."""
        return any(e.key == key for e in self._scan("rec") + self._scan("ack"))

    # -- writing ------------------------------------------------------------------------------

    def enqueue(
        self,
        kind: str,
        key: str,
        body: bytes,
        first_at: Optional[float] = None,
        last_at: Optional[float] = None,
    ) -> bool:
        """Store a record durably; False when the size policy dropped it at once (counted).

        Idempotent by `key`: a record already spooled or recently delivered is not stored twice.
        When the spool would exceed its limit, samples go before runs, oldest first, each drop is
        counted and folded into an open gap marker that the next heartbeat reports.
        """
        if kind not in KINDS:
            raise ValueError(f"unknown spool record kind {kind!r}")
        if not re.match(r"^[A-Za-z0-9-]{1,64}$", key):
            raise ValueError(f"spool key must be a UUID-like token, got {key!r}")
        created = time.time()
        header_fields = (
            MAGIC,
            1,
            KINDS.index(kind),
            0,
            created,
            _nan(first_at),
            _nan(last_at),
            len(body),
        )
        crc = zlib.crc32(HEADER.pack(*header_fields, 0)[4:-4] + body)
        blob = HEADER.pack(*header_fields, crc) + body
        with self._locked() as state:
            self._remove_torn_writes()
            recs = self.pending()
            acks = self._scan("ack")
            if any(e.key == key for e in recs + acks):
                return True
            seq = max((e.seq for e in recs + acks), default=0) + 1
            name = f"{seq:012d}.{kind}.{key}.rec"
            incoming = Entry(seq, kind, key, self.dir / name, len(blob))
            dropped_self = self._make_room(state, recs, incoming, first_at, last_at)
            if dropped_self:
                return False
            tmp = self.dir / f".{name}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, blob)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, incoming.path)
            self._fsync_dir()
            self._count(state, "enqueued_" + kind)
        return True

    def _remove_torn_writes(self) -> None:
        """Temporary files of a writer killed mid-write; safe under the lock (writers hold it)."""
        for tmp in self.dir.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)

    def _make_room(
        self,
        state: Dict[str, Any],
        recs: List[Entry],
        incoming: Entry,
        first_at: Optional[float],
        last_at: Optional[float],
    ) -> bool:
        """Drop by policy until `incoming` fits; True if `incoming` itself had to go."""
        total = sum(e.size for e in recs)
        if total + incoming.size <= self.max_bytes:
            return False
        order = [e for e in [*recs, incoming] if e.kind == "samples"]
        order += [e for e in [*recs, incoming] if e.kind == "runs"]
        for victim in order:
            if total + incoming.size <= self.max_bytes:
                break
            if victim is incoming:
                self._note_drop(state, incoming.kind, first_at, last_at)
                log.warning(
                    "spool full (%d bytes): dropped new %s record %s",
                    total,
                    incoming.kind,
                    incoming.key,
                )
                return True
            times = self._times(victim)
            try:
                victim.path.unlink()
            except FileNotFoundError:
                continue
            total -= victim.size
            self._note_drop(state, victim.kind, *times)
            log.warning("spool full: dropped %s record %s", victim.kind, victim.key)
        return False

    def _times(self, entry: Entry) -> Tuple[Optional[float], Optional[float]]:
        try:
            with open(entry.path, "rb") as fh:
                head = fh.read(HEADER.size)
            fields = HEADER.unpack(head)
        except (OSError, struct.error):
            return None, None
        first, last = fields[5], fields[6]
        return (None if math.isnan(first) else first), (None if math.isnan(last) else last)

    def _note_drop(
        self, state: Dict[str, Any], kind: str, first: Optional[float], last: Optional[float]
    ) -> None:
        self._count(state, "dropped_" + kind)
        gaps = state.setdefault("open_gaps", {})
        gap = gaps.setdefault(kind, {"gap_id": str(uuid.uuid4()), "kind": kind, "dropped": 0})
        gap["dropped"] += 1
        if first is not None:
            prev = gap.get("first_ts")
            gap["first_ts"] = first if prev is None else min(prev, first)
        if last is not None:
            prev = gap.get("last_ts")
            gap["last_ts"] = last if prev is None else max(prev, last)

    # -- reading and delivery -----------------------------------------------------------------

    def read(self, entry: Entry) -> bytes:
        try:
            blob = entry.path.read_bytes()
        except FileNotFoundError as exc:
            raise CorruptRecord(f"{entry.path.name}: vanished") from exc
        if len(blob) < HEADER.size:
            raise CorruptRecord(f"{entry.path.name}: truncated header ({len(blob)} bytes)")
        magic, version, kind_i, _r, _c, _f, _l, length, crc = HEADER.unpack(blob[: HEADER.size])
        if magic != MAGIC or version != 1:
            raise CorruptRecord(f"{entry.path.name}: bad magic or version")
        body = blob[HEADER.size :]
        if len(body) != length:
            raise CorruptRecord(
                f"{entry.path.name}: truncated body ({len(body)} of {length} bytes)"
            )
        if zlib.crc32(blob[4 : HEADER.size - 4] + body) != crc or KINDS[kind_i] != entry.kind:
            raise CorruptRecord(f"{entry.path.name}: CRC mismatch")
        return body

    def _retire(self, entry: Entry, counter: str, reason: str) -> None:
        with self._locked() as state:
            try:
                os.replace(entry.path, self.dead_dir / entry.path.name)
            except FileNotFoundError:
                return
            self._count(state, counter)
            state["last_error"] = reason
        for old in sorted(self.dead_dir.iterdir())[:-DEAD_KEPT]:
            old.unlink(missing_ok=True)

    def ack(self, entry: Entry) -> None:
        marker = entry.path.with_suffix(".ack")
        try:
            os.replace(entry.path, marker)
        except FileNotFoundError:
            return
        os.truncate(marker, 0)
        acks = self._scan("ack")
        for old in acks[:-ACK_MARKERS]:
            old.path.unlink(missing_ok=True)

    def due(self, now: Optional[float] = None) -> bool:
        """Whether a flush may try now (the back-off after failures has run out)."""
        state = self._read_state()
        return float(state.get("next_attempt_at", 0.0)) <= (time.time() if now is None else now)

    def flush(
        self, deliver: Deliver, force: bool = False, budget_seconds: float = 600.0
    ) -> Dict[str, int]:
        """Deliver pending records oldest first until empty, a retryable failure, or the budget.

        Only one flush runs at a time (an flock); a second caller returns at once. A retryable
        failure stops the pass (the collector is unreachable or busy) and sets the back-off; a
        rejected record goes to `dead/` and the pass goes on with the next one.
        """
        done = {"delivered": 0, "dead": 0, "corrupt": 0}
        if not force and not self.due():
            return done
        with open(self.dir / ".flush.lock", "a+") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return done
            deadline = time.monotonic() + budget_seconds
            failed = False
            for entry in self.pending():
                if time.monotonic() > deadline:
                    break
                try:
                    body = self.read(entry)
                except CorruptRecord as exc:
                    log.error("spool: skipping corrupt record: %s", exc)
                    self._retire(entry, "corrupt", str(exc))
                    done["corrupt"] += 1
                    continue
                outcome = deliver(entry.kind, body)
                if outcome.status == "ok":
                    self.ack(entry)
                    done["delivered"] += 1
                elif outcome.status == "reject":
                    log.error(
                        "collector rejected %s %s: %s (dead-lettered)",
                        entry.kind,
                        entry.key,
                        outcome.error,
                    )
                    self._retire(
                        entry, "dead_letters", f"rejected {entry.kind} {entry.key}: {outcome.error}"
                    )
                    done["dead"] += 1
                else:
                    self._failed(outcome)
                    failed = True
                    break
            if done["delivered"] and not failed:
                with self._locked() as state:
                    state["failures"] = 0
                    state["next_attempt_at"] = 0.0
                    state["last_delivery_at"] = time.time()
        return done

    def _failed(self, outcome: Outcome) -> None:
        with self._locked() as state:
            failures = int(state.get("failures", 0)) + 1
            state["failures"] = failures
            if outcome.retry_after is not None:
                delay = outcome.retry_after
            else:
                delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (failures - 1)) * random.uniform(
                    0.5, 1.0
                )
            state["next_attempt_at"] = time.time() + delay
            state["last_error"] = outcome.error
        log.warning("delivery failed (%s); next attempt in %.0f s", outcome.error, delay)

    def note_error(self, error: Optional[str]) -> None:
        """Record the latest problem for `xunjian-agent status` (None clears nothing)."""
        if error:
            with self._locked() as state:
                state["last_error"] = error

    # -- gaps and status ----------------------------------------------------------------------

    def seal_gaps(self) -> List[Dict[str, Any]]:
        """Gap markers to send now, as checks.wire.Gap dicts; resent until `ack_gaps`.

        Open gaps are sealed (given their final count) so drops after this moment start a new
        gap with a new id, and a resend of a sealed gap is idempotent at the collector.
        """
        with self._locked() as state:
            sealed = state.setdefault("sealed_gaps", [])
            for gap in state.pop("open_gaps", {}).values():
                sealed.append(gap)
            return [
                {
                    "gap_id": g["gap_id"],
                    "kind": g["kind"],
                    "dropped": g["dropped"],
                    "first_at": _iso(g.get("first_ts")),
                    "last_at": _iso(g.get("last_ts")),
                }
                for g in sealed
            ]

    def ack_gaps(self, gap_ids: List[str]) -> None:
        with self._locked() as state:
            state["sealed_gaps"] = [
                g for g in state.get("sealed_gaps", []) if g["gap_id"] not in gap_ids
            ]

    def stats(self) -> Dict[str, Any]:
        recs = self.pending()
        state = self._read_state()
        oldest = None
        if recs:
            try:
                with open(recs[0].path, "rb") as fh:
                    oldest = _iso(HEADER.unpack(fh.read(HEADER.size))[4])
            except (OSError, struct.error):
                oldest = None
        counters = state.get("counters", {})
        return {
            "depth": len(recs),
            "bytes": sum(e.size for e in recs),
            "max_bytes": self.max_bytes,
            "oldest_unsent": oldest,
            "dropped": {k: int(counters.get("dropped_" + k, 0)) for k in KINDS},
            "dead_letters": int(counters.get("dead_letters", 0)),
            "corrupt": int(counters.get("corrupt", 0)),
            "last_error": state.get("last_error"),
            "last_delivery_at": _iso(state.get("last_delivery_at")),
            "next_attempt_at": _iso(state.get("next_attempt_at") or None),
        }
