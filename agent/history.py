"""The agent's own metric history: a psutil sample every minute into SQLite, kept 8 days.

The resident scheduler owns the sampler, so this module imports only psutil and sqlite3 at the
top; the pydantic models (HistoryFacts, wire Samples) are imported inside the functions that
workers call. SQLite in WAL mode lets a worker read (an inspection's 24 h summary, a delivery of
samples) while the resident writes; `synchronous=NORMAL` is enough here because a lost last
sample after a power cut costs one minute of history, not an acknowledged record.

Entry points:
- `Sampler.sample()` + `HistoryStore.add()` — the resident, every `sample_interval` seconds;
- `history_facts(state_dir, window)` — the inspection pipeline: the history section of a run
  (`history_from_rows` for rows read elsewhere, as the SSH mode does);
- `HistoryStore.next_batch()` / `commit_batch()` — the flush worker: samples since the last
  delivery, with the batch id fixed before spooling so a crash cannot ship a range twice under
  two ids.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Tuple

import psutil

if TYPE_CHECKING:  # pragma: no cover
    from checks.facts import HistoryFacts
    from checks.model import Window

HISTORY_FILE = "history.sqlite"
PRUNE_BATCH = 500
BATCH_MAX = 240
SKIP_FSTYPES = {
    "squashfs", "tmpfs", "devtmpfs", "overlay", "nsfs", "iso9660", "udf",
    # network filesystems can hang statvfs; the inspection worker looks at them instead
    "nfs", "nfs4", "cifs", "smbfs", "fuse.sshfs", "glusterfs", "ceph", "9p",
}  # fmt: skip
MAX_MOUNTS = 64

_COLUMNS = (
    "cpu_percent", "load1", "load5", "load15", "memory_percent", "swap_percent",
    "disk_read_bytes_per_s", "disk_write_bytes_per_s", "net_rx_bytes_per_s", "net_tx_bytes_per_s",
    "processes",
)  # fmt: skip
_SELECT = f"at, {', '.join(_COLUMNS)}, mounts"
_SUMMARIES = (
    ("cpu", "cpu_percent", "%"),
    ("memory", "memory_percent", "%"),
    ("swap", "swap_percent", "%"),
    ("load1", "load1", ""),
    ("load5", "load5", ""),
    ("load15", "load15", ""),
    ("disk_read", "disk_read_bytes_per_s", "B/s"),
    ("disk_write", "disk_write_bytes_per_s", "B/s"),
    ("net_rx", "net_rx_bytes_per_s", "B/s"),
    ("net_tx", "net_tx_bytes_per_s", "B/s"),
    ("processes", "processes", ""),
)


class Sampler:
    """Turns psutil's cumulative counters into per-second rates between consecutive samples."""

    def __init__(self) -> None:
        psutil.cpu_percent(None)  # primes the counter: the first sample then covers one interval
        self._prev: Optional[Tuple[float, Optional[Tuple[int, int]], Tuple[int, int]]] = None

    @staticmethod
    def _net() -> Tuple[int, int]:
        rx = tx = 0
        for nic, c in psutil.net_io_counters(pernic=True).items():
            if nic != "lo":
                rx += c.bytes_recv
                tx += c.bytes_sent
        return rx, tx

    @staticmethod
    def _disk() -> Optional[Tuple[int, int]]:
        c = psutil.disk_io_counters(perdisk=False)
        return (c.read_bytes, c.write_bytes) if c is not None else None

    @staticmethod
    def mounts() -> List[Dict[str, Any]]:
        out: List[Dict[str, Any]] = []
        seen = set()
        for part in psutil.disk_partitions(all=False):
            if (
                part.fstype in SKIP_FSTYPES
                or part.mountpoint.startswith("/snap/")
                or part.device in seen
            ):
                continue
            seen.add(part.device)
            try:
                du = psutil.disk_usage(part.mountpoint)
            except OSError:
                continue
            out.append(
                {
                    "mount": part.mountpoint,
                    "used_percent": round(du.percent, 2),
                    "used_bytes": du.used,
                    "total_bytes": du.total,
                    "free_bytes": du.free,
                }
            )
            if len(out) >= MAX_MOUNTS:
                break
        return out

    def sample(self) -> Dict[str, Any]:
        now = time.time()
        disk, net = self._disk(), self._net()
        rates: Dict[str, Optional[float]] = dict.fromkeys(_COLUMNS[6:10])
        if self._prev is not None:
            then, pdisk, pnet = self._prev
            dt = max(now - then, 1e-3)
            if disk is not None and pdisk is not None:
                rates["disk_read_bytes_per_s"] = max(0.0, (disk[0] - pdisk[0]) / dt)
                rates["disk_write_bytes_per_s"] = max(0.0, (disk[1] - pdisk[1]) / dt)
            rates["net_rx_bytes_per_s"] = max(0.0, (net[0] - pnet[0]) / dt)
            rates["net_tx_bytes_per_s"] = max(0.0, (net[1] - pnet[1]) / dt)
        self._prev = (now, disk, net)
        load1, load5, load15 = psutil.getloadavg()
        return {
            "at": now,
            "cpu_percent": psutil.cpu_percent(None),
            "load1": load1,
            "load5": load5,
            "load15": load15,
            "memory_percent": psutil.virtual_memory().percent,
            "swap_percent": psutil.swap_memory().percent,
            **rates,
            "processes": len(psutil.pids()),
            "mounts": self.mounts(),
        }


class HistoryStore:
    def __init__(self, state_dir: Path, readonly: bool = False) -> None:
        self.path = Path(state_dir) / HISTORY_FILE
        if readonly:
            self.db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.db = sqlite3.connect(str(self.path), timeout=10)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        cols = ", ".join(f"{c} REAL" for c in _COLUMNS)
        with self.db:
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS samples "
                f"(id INTEGER PRIMARY KEY, at REAL NOT NULL, {cols}, mounts TEXT)"
            )
            self.db.execute("CREATE INDEX IF NOT EXISTS samples_at ON samples(at)")
            self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")

    def close(self) -> None:
        self.db.close()

    def add(self, sample: Dict[str, Any]) -> int:
        values = [
            sample["at"],
            *(sample.get(c) for c in _COLUMNS),
            json.dumps(sample.get("mounts", [])),
        ]
        with self.db:
            cur = self.db.execute(
                f"INSERT INTO samples (at, {', '.join(_COLUMNS)}, mounts) "
                f"VALUES ({', '.join('?' * len(values))})",
                values,
            )
        return int(cur.lastrowid or 0)

    def prune(self, retention_days: float, now: Optional[float] = None) -> int:
        """Delete at most PRUNE_BATCH expired rows: called every sample, so it never stalls one."""
        cutoff = (time.time() if now is None else now) - retention_days * 86400
        with self.db:
            cur = self.db.execute(
                "DELETE FROM samples WHERE id IN "
                "(SELECT id FROM samples WHERE at < ? ORDER BY id LIMIT ?)",
                (cutoff, PRUNE_BATCH),
            )
        return cur.rowcount

    def rows(self, start: float, end: float) -> List[Dict[str, Any]]:
        cur = self.db.execute(
            f"SELECT {_SELECT} FROM samples WHERE at >= ? AND at <= ? ORDER BY at",
            (start, end),
        )
        return [self._row(r) for r in cur]

    @staticmethod
    def _row(r: Tuple[Any, ...]) -> Dict[str, Any]:
        out: Dict[str, Any] = {"at": r[0]}
        out.update(zip(_COLUMNS, r[1:-1]))
        out["mounts"] = json.loads(r[-1] or "[]")
        return out

    def last_at(self) -> Optional[float]:
        row = self.db.execute("SELECT max(at) FROM samples").fetchone()
        return row[0] if row else None

    def count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM samples").fetchone()[0])

    def _meta(self, key: str) -> Optional[str]:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: Optional[str]) -> None:
        if value is None:
            self.db.execute("DELETE FROM meta WHERE key = ?", (key,))
        else:
            self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def next_batch(self) -> Optional[Tuple[str, List[Dict[str, Any]]]]:
        """The next unsent samples and their batch id; the same range and id until committed.

        Phase one of the shipping hand-over: the range is recorded before the batch is spooled,
        so a worker killed after spooling re-offers exactly that range under the same id (the
        spool and the collector de-duplicate by it) instead of a wider one under a new id.
        """
        pending = self._meta("pending_batch")
        if pending is not None:
            first, last, batch_id = json.loads(pending)
        else:
            sent = int(self._meta("shipped_upto") or 0)
            row = self.db.execute(
                "SELECT min(id), max(id) FROM "
                "(SELECT id FROM samples WHERE id > ? ORDER BY id LIMIT ?)",
                (sent, BATCH_MAX),
            ).fetchone()
            if row is None or row[0] is None:
                return None
            first, last = int(row[0]), int(row[1])
            batch_id = str(uuid.uuid4())
            with self.db:
                self._set_meta("pending_batch", json.dumps([first, last, batch_id]))
        cur = self.db.execute(
            f"SELECT {_SELECT} FROM samples WHERE id >= ? AND id <= ? ORDER BY id",
            (first, last),
        )
        return batch_id, [self._row(r) for r in cur]

    def commit_batch(self, batch_id: str) -> None:
        """Phase two: the batch is in the spool; move the watermark past it."""
        pending = self._meta("pending_batch")
        if pending is None:
            return
        _first, last, pending_id = json.loads(pending)
        if pending_id != batch_id:
            raise ValueError(f"commit of batch {batch_id} while {pending_id} is pending")
        with self.db:
            self._set_meta("shipped_upto", str(last))
            self._set_meta("pending_batch", None)


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


def wire_sample(row: Dict[str, Any]) -> Dict[str, Any]:
    """A stored row as a checks.wire.Sample dict (local-only fields such as free_bytes dropped)."""
    out = {c: row[c] for c in _COLUMNS}
    out["processes"] = None if row["processes"] is None else int(row["processes"])
    out["at"] = _dt(row["at"]).isoformat()
    out["mounts"] = [
        {k: m[k] for k in ("mount", "used_percent", "used_bytes", "total_bytes")}
        for m in row["mounts"]
    ]
    return out


def history_facts(state_dir: Path, window: "Window") -> "Optional[HistoryFacts]":
    """The history section of an inspection from the agent's store, or None without a store."""
    if not (Path(state_dir) / HISTORY_FILE).is_file():
        return None
    store = HistoryStore(state_dir, readonly=True)
    try:
        rows = store.rows(window.start.timestamp(), window.end.timestamp())
    finally:
        store.close()
    return history_from_rows(rows, window)


def history_from_rows(samples: Iterable[Dict[str, Any]], window: "Window") -> "HistoryFacts":
    """The history section from samples shaped like `HistoryStore.rows` (`at`, metric columns,
    `mounts`; a missing column counts as not sampled), those outside `window` left out.

    Kept free of the store so the SSH mode summarises the rows it read from a target's store with
    this same code. Metric names follow the sysstat parser (cpu, memory, swap, load1/5/15,
    disk:<mount>) so rules and reports treat both alike; summaries and disk growth come from
    checks.history_summary.
    """
    from checks.facts import HistoryFacts
    from checks.history_summary import disk_trend, summarize

    start, end = window.start.timestamp(), window.end.timestamp()
    rows = sorted((r for r in samples if start <= r["at"] <= end), key=lambda r: r["at"])
    metrics = []
    for name, column, unit in _SUMMARIES:
        points = [(_dt(r["at"]), float(r[column])) for r in rows if r.get(column) is not None]
        summary = summarize(name, unit, points)
        if summary is not None:
            metrics.append(summary)
    by_mount: Dict[str, List[Tuple[datetime, Dict[str, Any]]]] = {}
    for r in rows:
        for m in r.get("mounts") or []:
            by_mount.setdefault(m["mount"], []).append((_dt(r["at"]), m))
    trends = []
    for mount in sorted(by_mount):
        seen = by_mount[mount]
        summary = summarize(f"disk:{mount}", "%", [(t, float(m["used_percent"])) for t, m in seen])
        if summary is not None:
            metrics.append(summary)
        used = [(t, float(m["used_bytes"])) for t, m in seen]
        trend = disk_trend(mount, used, int(seen[-1][1]["free_bytes"]))
        if trend is not None:
            trends.append(trend)
    return HistoryFacts(
        source="agent",
        start=_dt(rows[0]["at"]) if rows else None,
        end=_dt(rows[-1]["at"]) if rows else None,
        metrics=metrics,
        disk_trends=trends,
    )
