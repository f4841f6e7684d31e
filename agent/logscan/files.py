"""Scan one log file for alarm lines inside the window, fast and with little memory.

How, and why:
- The window is found by bisecting the file on line timestamps (logs are written in time
  order), so a 24-hour window in a week of logs reads only its day, and `lines_in_window` is the
  number of lines between the two boundaries. Out-of-order lines near a boundary may land on the
  wrong side; each matching line is also checked against the window on its own time.
- The matching pass is `grep -a -b -E` with all rule patterns combined (C locale, fixed argv),
  reading the file itself from the window's first byte: grep runs at about 1 GB/s where a Python
  line loop manages about 150 MB/s. Python then decides every line grep passes. Where grep is
  missing (or fails) the same pass runs in Python over 1 MiB chunks. A thread counts the lines
  of the window meanwhile with `os.pread` (grep shares the file position, so no `read`).
- Files are read in 1 MiB chunks, never mmap'd: mapped pages count as the scan's RSS.
- A partial last line (no newline yet) is not consumed: the scan ends at the last complete line
  and reports that offset, so incremental tailing resumes there when the line is finished.
- A matching line without a timestamp (a stack trace line) belongs to the record begun by the
  nearest timestamped line before it (looked up to 64 KiB back): it takes that line's time, the
  record counts once per rule, and its sample shows both lines. Matching lines whose time cannot
  be found (no timestamp within 64 KiB or 200 lines before, or none in the whole file) are not
  counted; they are reported as `lines_without_time`.
- Lines are capped at `line_cap` bytes for matching and samples; invalid UTF-8 is decoded with
  replacement characters; binary garbage is just lines that do not match.
- `scan_bytes` runs the same scan over log text already in memory (the SSH mode's lines, filtered
  by grep on the target), with the Python matching pass.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import threading
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from functools import partial
from typing import IO, Callable, Iterator, List, Optional, Set, Tuple

from agent.logscan.header import Header, split_header
from agent.logscan.matcher import Matcher
from agent.logscan.timestamps import parse_timestamp
from checks.alarms import AlarmRule
from checks.facts import LogSourceFacts
from checks.model import Window

CHUNK = 1 << 20
PROBE = 64 * 1024
PROBE_LIMIT = 1 << 20
"""How far a bisection probe reads forward for a timestamped line before giving up."""
LOOKBACK = 64 * 1024
LOOKBACK_LINES = 200
LINE_CAP = 64 * 1024


@dataclass(frozen=True)
class Hit:
    """One rule's match on one record, handed to the collectors (templates, log-in counts)."""

    source: str
    rule: AlarmRule
    time: datetime
    header: Header
    sample: str
    record: int
    """Offset (or sequence number) of the record's first line: the identity of the record."""


Handler = Callable[[Hit], None]
Read = Callable[[int, int], bytes]
"""(size, offset) → bytes, like `os.pread` on an open file."""


def describe_error(path: str, exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return f"permission denied: {path}"
    if isinstance(exc, FileNotFoundError):
        return f"not found: {path}"
    if isinstance(exc, IsADirectoryError):
        return f"not a regular file: {path}"
    return f"cannot read {path}: {exc.strerror or exc}"


class FileScanner:
    def __init__(
        self,
        matcher: Matcher,
        window: Window,
        handle: Handler,
        *,
        tz: Optional[tzinfo] = None,
        line_cap: int = LINE_CAP,
        use_grep: Optional[bool] = None,
    ) -> None:
        self.matcher = matcher
        self.window = window
        self.handle = handle
        self.tz = tz
        self.line_cap = line_cap
        self.grep = shutil.which("grep") if use_grep is not False else None
        if use_grep and self.grep is None:
            raise RuntimeError("grep prefilter requested but grep is not installed")

    def scan(
        self, path: str, start: int = 0, budget: Optional[int] = None
    ) -> Tuple[LogSourceFacts, int]:
        """Scan `path` from byte `start`; returns the facts and the offset to resume from."""
        facts = LogSourceFacts(source=path)
        try:
            info = os.stat(path)
            if not stat.S_ISREG(info.st_mode):  # a FIFO would block, a device never ends
                facts.error = f"not a regular file: {path}"
                return facts, start
            with open(path, "rb", buffering=0) as fh:
                size = os.fstat(fh.fileno()).st_size
                ref = datetime.fromtimestamp(info.st_mtime, timezone.utc)
                read = partial(os.pread, fh.fileno())
                return self._scan_view(path, read, fh, size, ref, start, budget, facts)
        except OSError as exc:
            facts.error = describe_error(path, exc)
            return facts, start

    def scan_bytes(self, source: str, data: bytes, modified: datetime) -> LogSourceFacts:
        """Scan log text held in memory as `scan` scans a file with this content, last written at
        `modified` (the reference for years that lines leave out); `source` names it in hits."""
        facts = LogSourceFacts(source=source)

        def read(size: int, offset: int) -> bytes:
            return data[offset : offset + size]

        return self._scan_view(source, read, None, len(data), modified, 0, None, facts)[0]

    # -- window ---------------------------------------------------------------------------

    def _scan_view(
        self,
        path: str,
        read: Read,
        fh: Optional[IO[bytes]],
        size: int,
        ref: datetime,
        start: int,
        budget: Optional[int],
        facts: LogSourceFacts,
    ) -> Tuple[LogSourceFacts, int]:
        """The scan over `read`; `fh`, the open file behind it, lets grep do the matching pass."""
        if start > size:  # truncated since the last scan: start over
            start = 0
        ctx = _Ctx(read, ref, self.tz)
        end = _complete_end(read, start, size)
        if (
            ctx.first_stamp(start, end) is None
            and ctx.first_stamp(max(start, end - PROBE_LIMIT), end) is None
        ):
            lo, hi, timeless = start, end, True
        else:
            lo = ctx.bisect(start, end, lambda t: t >= self.window.start)
            hi = ctx.bisect(lo, end, lambda t: t > self.window.end)
            timeless = False
        if budget is not None and hi - lo > budget:
            hi = _complete_end(read, lo, lo + budget)  # the last line boundary within budget
            facts.truncated = True
        tally = _Tally()
        seen: Set[Tuple[int, str]] = set()
        for offset, raw in self._match(fh, read, lo, hi, tally):  # decided while grep reads on
            rules = self.matcher.match(raw)
            if not rules:
                continue
            if timeless:
                facts.lines_without_time += 1
                continue
            self._record(path, ctx, offset, raw, rules, seen, facts)
        facts.bytes_read = hi - lo
        facts.lines_read = tally.lines
        facts.lines_in_window = 0 if timeless else tally.lines
        return facts, hi

    def _record(
        self,
        path: str,
        ctx: _Ctx,
        offset: int,
        raw: bytes,
        rules: List[AlarmRule],
        seen: Set[Tuple[int, str]],
        facts: LogSourceFacts,
    ) -> None:
        text = raw.decode("utf-8", "replace").rstrip("\r")
        header = split_header(text, ctx.ref, self.tz)
        record, sample = offset, text
        if header.stamp is None:
            head = ctx.record_head(offset)
            if head is None:
                facts.lines_without_time += 1
                return
            record, head_text = head
            parent = split_header(head_text, ctx.ref, self.tz)
            header = Header(parent.stamp, header.message, parent.program, parent.pid, parent.level)
            sample = f"{head_text}\n{text}"
        assert header.stamp is not None
        when = header.stamp.time
        if not (self.window.start <= when <= self.window.end):
            return
        for rule in rules:
            if (record, rule.id) in seen:
                continue
            seen.add((record, rule.id))
            self.handle(Hit(path, rule, when.astimezone(timezone.utc), header, sample, record))

    # -- matching ---------------------------------------------------------------------------

    def _match(
        self, fh: Optional[IO[bytes]], read: Read, lo: int, hi: int, tally: _Tally
    ) -> Iterator[Tuple[int, bytes]]:
        """(offset, line) of every line in [lo, hi) that some rule may match; counts the lines."""
        if hi <= lo:
            return
        if self.grep is not None and fh is not None:
            produced = False
            try:
                for hit in self._grep(fh, lo, hi, tally):
                    produced = True
                    yield hit
                return
            except _GrepFailed as exc:
                if produced:  # some lines were judged already: do not count them twice
                    raise OSError(str(exc)) from exc
        yield from self._python(read, lo, hi, tally)

    def _python(self, read: Read, lo: int, hi: int, tally: _Tally) -> Iterator[Tuple[int, bytes]]:
        """Candidate lines by searching each chunk for the rules' needles (see matcher)."""
        cap = self.line_cap
        head = b""  # the start of a line that began in an earlier chunk (at most `cap` bytes)
        head_at = pos = lo
        while pos < hi:
            chunk = read(min(CHUNK, hi - pos), pos)
            if not chunk:
                break
            cut = chunk.rfind(b"\n") + 1
            if cut == 0:  # still inside one long line: keep its head only
                head += chunk[: max(0, cap - len(head))]
                pos += len(chunk)
                continue
            body = head + chunk[:cut]
            tally.lines += chunk.count(b"\n", 0, cut)
            for start in self._candidates(body):
                end = body.find(b"\n", start)
                at = head_at if start == 0 else pos + start - len(head)
                yield at, body[start:end][:cap]
            head, head_at = chunk[cut:][:cap], pos + cut
            pos += len(chunk)

    def _candidates(self, body: bytes) -> List[int]:
        """Start offsets of the lines of `body` that contain a needle or match an unguarded rule."""
        starts: Set[int] = set()
        for text, needles in (
            (body, self.matcher.cover),
            (body.lower(), self.matcher.folded_cover),
        ):
            for needle in needles:
                i = text.find(needle)
                while i >= 0:
                    starts.add(text.rfind(b"\n", 0, i) + 1)
                    i = text.find(needle, text.find(b"\n", i))
            if not self.matcher.folded_cover:
                break
        unguarded = self.matcher.unguarded
        if unguarded is not None:
            offset = 0
            for line in body[:-1].split(b"\n"):
                if unguarded.search(line, 0, self.line_cap):
                    starts.add(offset)
                offset += len(line) + 1
        return sorted(starts)

    def _grep(self, fh: IO[bytes], lo: int, hi: int, tally: _Tally) -> Iterator[Tuple[int, bytes]]:
        assert self.grep is not None
        os.lseek(fh.fileno(), lo, os.SEEK_SET)
        counter = threading.Thread(
            target=_count_lines, args=(fh.fileno(), lo, hi, tally), daemon=True
        )
        counter.start()
        proc = subprocess.Popen(
            self.matcher.grep_argv(self.grep),
            stdin=fh,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={"LC_ALL": "C", "PATH": os.defpath},
        )
        assert proc.stdout is not None
        limit = hi - lo
        stopped = False
        try:
            for offset, line in _grep_lines(proc.stdout, self.line_cap):
                if offset >= limit:  # past the window's end or the budget: grep may stop
                    stopped = True
                    break
                yield lo + offset, line
        finally:
            if stopped:
                proc.kill()
            proc.stdout.close()
            code = proc.wait()
            counter.join()
        if code not in (0, 1) and not stopped:
            raise _GrepFailed(f"grep failed (exit {code})")


class _GrepFailed(Exception):
    pass


class _Tally:
    lines = 0


def _count_lines(fd: int, lo: int, hi: int, tally: _Tally) -> None:
    """Counted beside grep (which counts only matches), with pread: grep owns the file offset."""
    pos = lo
    while pos < hi:
        chunk = os.pread(fd, min(CHUNK, hi - pos), pos)
        if not chunk:
            break
        tally.lines += chunk.count(b"\n")
        pos += len(chunk)


def capped_lines(stream: IO[bytes], cap: int) -> Iterator[bytes]:
    """Lines of a pipe without their newline, each cut at `cap` bytes without reading it whole."""
    while True:
        raw = stream.readline(cap)
        if not raw:
            return
        whole = raw.endswith(b"\n")
        while not whole:  # drop the rest of an over-long line
            more = stream.readline(cap)
            whole = not more or more.endswith(b"\n")
        yield raw.rstrip(b"\n")


def _grep_lines(stream: IO[bytes], cap: int) -> Iterator[Tuple[int, bytes]]:
    """`OFFSET:line` records of `grep -b`."""
    for raw in capped_lines(stream, cap + 24):
        head, _, body = raw.partition(b":")
        try:
            offset = int(head)
        except ValueError:
            continue
        yield offset, body[:cap]


def _complete_end(read: Read, start: int, size: int) -> int:
    """Offset just after the last newline in [start, size): the end of the last complete line
    (`start` if there is none)."""
    pos = size
    while pos > start:
        lo = max(start, pos - PROBE)
        block = read(pos - lo, lo)
        i = block.rfind(b"\n")
        if i >= 0:
            return lo + i + 1
        pos = lo
    return start


class _Ctx:
    """Timestamp probes on one file (or buffer), for bisection and for multiline records."""

    def __init__(self, read: Read, ref: datetime, tz: Optional[tzinfo]) -> None:
        self.read = read
        self.ref = ref
        self.tz = tz

    def _stamp(self, line: bytes) -> Optional[datetime]:
        stamp = parse_timestamp(line[:80].decode("utf-8", "replace"), self.ref, self.tz)
        return stamp.time if stamp else None

    def first_stamp(self, pos: int, end: int) -> Optional[Tuple[int, datetime]]:
        """The first timestamped line starting at or after `pos` (and before `end`)."""
        nxt = self._line_start(pos, end)
        if nxt is None:
            return None
        pos = nxt
        scanned = 0
        while pos < end and scanned < PROBE_LIMIT:
            block = self.read(min(PROBE, end - pos), pos)
            if not block:
                return None
            cut = block.rfind(b"\n") + 1
            if cut == 0:  # one line longer than the block: look at its head, then skip it
                when = self._stamp(block)
                if when is not None:
                    return pos, when
                nxt = self._next_line(pos + len(block), end)
                if nxt is None:
                    return None
                scanned += nxt - pos
                pos = nxt
                continue
            offset = pos
            for line in block[: cut - 1].split(b"\n"):
                when = self._stamp(line)
                if when is not None:
                    return offset, when
                offset += len(line) + 1
            scanned += cut
            pos += cut
        return None

    def _line_start(self, pos: int, end: int) -> Optional[int]:
        """`pos` if a line starts there, else the start of the next line."""
        if pos == 0 or self.read(1, pos - 1) == b"\n":
            return pos
        return self._next_line(pos, end)

    def _next_line(self, pos: int, end: int) -> Optional[int]:
        while pos < end:
            block = self.read(min(PROBE, end - pos), pos)
            i = block.find(b"\n")
            if i >= 0:
                return pos + i + 1
            if not block:
                return None
            pos += len(block)
        return None

    def bisect(self, lo: int, hi: int, after: Callable[[datetime], bool]) -> int:
        """The first record start in [lo, hi) whose time satisfies `after` (monotonic), else hi."""
        a, b = lo, hi
        while b - a > PROBE:
            mid = (a + b) // 2
            found = self.first_stamp(mid, b)
            if found is None or after(found[1]):
                b = mid
            else:
                a = found[0] + 1
        pos = a
        while pos < hi:
            found = self.first_stamp(pos, hi)
            if found is None:
                return hi
            if after(found[1]):
                return found[0]
            pos = found[0] + 1
        return hi

    def record_head(self, offset: int) -> Optional[Tuple[int, str]]:
        """The timestamped line that begins the record holding the line at `offset`."""
        lo = max(0, offset - LOOKBACK)
        block = self.read(offset - lo, lo)
        lines = block.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        starts: List[int] = []
        pos = lo
        for line in lines:
            starts.append(pos)
            pos += len(line) + 1
        first = 0 if lo == 0 else 1  # the first piece of a block may be a line's tail
        for i in range(len(lines) - 1, max(first, len(lines) - LOOKBACK_LINES) - 1, -1):
            if self._stamp(lines[i]) is not None:
                return starts[i], lines[i][:LINE_CAP].decode("utf-8", "replace").rstrip("\r")
        return None
