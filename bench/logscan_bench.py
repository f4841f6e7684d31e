"""Alarm-log scan throughput and memory against `grep -c -E` on the same file, in one run.

    .venv/bin/python bench/logscan_bench.py [--size-mib 1024] [--dir /tmp] [--python]

Generates a syslog-like file (sshd, cron, systemd, kernel, nginx, application lines; about 0.3 %
of them alarm lines of every family) with increasing RFC 3164 timestamps over about a day,
warms the page cache, then times alternately, twice each:
- `grep -c -E <all built-in rule patterns combined>` (LC_ALL=C, what the scan's prefilter runs),
- the scan (`scan_logs` with the built-in rules, window = the whole file) in a child process,
  reporting the child's peak RSS (`resource.getrusage`) and grep's as its own child.
`--python` also times the pure-Python fallback once. The file is deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Dict

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.logscan.matcher import Matcher  # noqa: E402
from checks.alarms import builtin_rules  # noqa: E402

NORMAL = [
    "sshd[{p}]: pam_unix(sshd:session): session opened for user deploy by (uid=0)",
    "CRON[{p}]: (root) CMD (run-parts /etc/cron.hourly)",
    "systemd[1]: Started Session {p} of user root.",
    "systemd[1]: logrotate.service: Succeeded.",
    "kernel: [{k}.{us}] e1000e: eth0 NIC Link is Up 1000 Mbps Full Duplex, Flow Control: Rx/Tx",
    'nginx[{p}]: 10.1.{a}.{b} - - "GET /api/v1/items/{port} HTTP/1.1" 200 512 "-" "curl/7.68.0"',
    "app[{p}]: INFO request id={port} user={a} took {b} ms",
    "postfix/smtpd[{p}]: connect from unknown[10.2.{a}.{b}]",
    "dhclient[{p}]: DHCPACK of 10.0.{a}.{b} from 10.0.0.1",
    "chronyd[{p}]: Selected source 10.0.0.{b}",
]
ALARM = [
    "sshd[{p}]: Accepted publickey for deploy from 10.0.{a}.{b} port {port} ssh2",
    "sshd[{p}]: Failed password for invalid user admin from 203.0.113.{b} port {port} ssh2",
    "kernel: [{k}.{us}] Out of memory: Killed process {p} (java) total-vm:{port}kB",
    "app[{p}]: ERROR could not connect to database: connection refused",
    "kernel: [{k}.{us}] EXT4-fs error (device sda1): ext4_find_entry:1455: inode #2: comm ls",
    "kernel: [{k}.{us}] blk_update_request: I/O error, dev sdb, sector {port}",
    "systemd[1]: nginx.service: Failed with result 'exit-code'.",
]
LINES_PER_SECOND = 120


def generate(path: Path, size: int, start: datetime) -> None:
    rnd = random.Random(42)

    def render(template: str) -> str:
        return template.format(
            p=rnd.randint(100, 99999),
            a=rnd.randint(0, 255),
            b=rnd.randint(0, 255),
            port=rnd.randint(1024, 65535),
            k=rnd.randint(1000, 99999),
            us=rnd.randint(0, 999999),
        )

    normal = [render(rnd.choice(NORMAL)) for _ in range(20000)]
    alarms = [render(rnd.choice(ALARM)) for _ in range(2000)]
    written, second = 0, 0
    with path.open("w", encoding="utf-8") as out:
        while written < size:
            now = start + timedelta(seconds=second)
            stamp = f"{now:%b} {now.day:2d} {now:%H:%M:%S}"
            prefix = f"{stamp} host01 "
            block = [
                prefix + (rnd.choice(alarms) if rnd.random() < 0.003 else rnd.choice(normal)) + "\n"
                for _ in range(LINES_PER_SECOND)
            ]
            text = "".join(block)
            out.write(text)
            written += len(text)
            second += 1


def warm(path: Path) -> None:
    with path.open("rb", buffering=0) as fh:
        while fh.read(1 << 20):
            pass


def time_grep(path: Path, pattern: str) -> float:
    t0 = time.perf_counter()
    out = subprocess.run(
        ["grep", "-c", "-E", "-e", pattern, str(path)],
        env={"LC_ALL": "C", "PATH": os.defpath},
        capture_output=True,
        check=False,
    )
    elapsed = time.perf_counter() - t0
    if out.returncode not in (0, 1):
        raise SystemExit(f"grep failed: {out.stderr.decode()}")
    return elapsed


CHILD = """
import json, resource, sys, time
from datetime import datetime, timezone
from agent.logscan.scan import scan_logs
from agent.logscan.sources import LogSource
from checks.alarms import builtin_rules
from checks.model import Window
path, use_grep = sys.argv[1], sys.argv[2] == "grep"
window = Window(start=datetime(1970, 1, 2, tzinfo=timezone.utc), end=datetime.now(timezone.utc))
t0 = time.perf_counter()
facts, _ = scan_logs([LogSource(path=path)], builtin_rules(), window, redact=lambda s: s,
                     budget_bytes=1 << 40, use_grep=use_grep)
elapsed = time.perf_counter() - t0
print(json.dumps({"seconds": elapsed, "rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "grep_rss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
                  "lines": facts.sources[0].lines_in_window, "templates": len(facts.templates),
                  "matches": sum(t.count for t in facts.templates)}))
"""


def time_scan(path: Path, use_grep: bool) -> Dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), "grep" if use_grep else "python"],
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        check=True,
    )
    result: Dict[str, float] = json.loads(out.stdout)
    return result


def time_inspect(path: Path) -> "tuple[float, int]":
    """The whole inspection as an operator runs it, in its own process; wait4 gives that
    process's peak RSS (and its waited-for children's: grep), not this driver's."""
    agent = Path(sys.executable).with_name("xunjian-agent")
    argv = [str(agent), "inspect", "--json", "--since", "27h", "--log", str(path)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1, 2, 3):
        raise SystemExit(f"inspect failed with exit status {proc.returncode}")
    return time.perf_counter() - t0, usage.ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--dir", default=tempfile.gettempdir())
    parser.add_argument("--python", action="store_true", help="also time the pure-Python fallback")
    parser.add_argument(
        "--inspect",
        action="store_true",
        help="also run a whole `xunjian-agent inspect --log FILE` and report its peak RSS",
    )
    args = parser.parse_args()
    size = args.size_mib << 20
    pattern = Matcher(builtin_rules()).grep_argv("grep")[-1]
    fd, name = tempfile.mkstemp(prefix="xunjian-logscan-", suffix=".log", dir=args.dir)
    os.close(fd)
    path = Path(name)
    try:
        start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=26)
        t0 = time.perf_counter()
        generate(path, size, start.astimezone())
        print(
            f"generated {path.stat().st_size / 1e9:.2f} GB in {time.perf_counter() - t0:.0f} s",
            flush=True,
        )
        warm(path)
        grep_times, scans = [], []
        for _ in range(2):
            grep_times.append(time_grep(path, pattern))
            scans.append(time_scan(path, True))
        gb = path.stat().st_size / 1e9
        best_grep = min(grep_times)
        best = min(scans, key=lambda s: s["seconds"])
        print(
            f"file: {gb:.2f} GB, {best['lines']} lines, {best['matches']} alarm records, {best['templates']} templates"
        )
        print(
            f"grep -c -E: {best_grep:.2f} s = {gb / best_grep:.2f} GB/s  (runs: {', '.join(f'{t:.2f}' for t in grep_times)})"
        )
        runs = ", ".join(f"{s['seconds']:.2f}" for s in scans)
        print(
            f"scan (grep prefilter): {best['seconds']:.2f} s = {gb / best['seconds']:.2f} GB/s = "
            f"{best_grep / best['seconds']:.2f}x grep  (runs: {runs})"
        )
        print(
            f"scan peak RSS: {max(s['rss_kib'] for s in scans) / 1024:.1f} MiB (python), grep child {max(s['grep_rss_kib'] for s in scans) / 1024:.1f} MiB"
        )
        if args.python:
            fallback = time_scan(path, False)
            print(
                f"scan (pure-Python fallback): {fallback['seconds']:.2f} s = {gb / fallback['seconds']:.2f} GB/s = "
                f"{best_grep / fallback['seconds']:.2f}x grep, peak RSS {fallback['rss_kib'] / 1024:.1f} MiB"
            )
        if args.inspect:
            seconds, rss_kib = time_inspect(path)
            print(
                f"xunjian-agent inspect --log FILE (whole file in the window): {seconds:.1f} s, "
                f"peak RSS {rss_kib / 1024:.1f} MiB (largest process of the command's tree)"
            )
        print(
            f"peak RSS of this driver: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB"
        )
    finally:
        path.unlink()


if __name__ == "__main__":
    main()
