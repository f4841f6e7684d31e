"""CPU time shares from two readings of /proc/stat, and the boot time it records."""

from __future__ import annotations

from typing import NamedTuple, Optional

from checks.parsers import ParseError


class CpuTimes(NamedTuple):
    """Jiffies of the aggregate `cpu` line, in the kernel's column order."""

    user: int
    nice: int
    system: int
    idle: int
    iowait: int
    irq: int
    softirq: int
    steal: int

    @property
    def total(self) -> int:
        return sum(self)

    @property
    def idle_all(self) -> int:
        return self.idle + self.iowait


class CpuShares(NamedTuple):
    usage_percent: float
    iowait_percent: float
    steal_percent: float


def parse_cpu_line(text: str) -> CpuTimes:
    """The aggregate `cpu` line of /proc/stat (guest time is already inside user and nice).

    Sample::

        cpu  12712 0 4461 101175 558 0 123 30 0 0
        btime 1795240915
    """
    for line in text.splitlines():
        fields = line.split()
        if fields[:1] == ["cpu"]:
            values = fields[1:9]
            if len(values) < 4 or not all(v.isdigit() for v in values):
                raise ParseError(f"/proc/stat: bad cpu line {line[:120]!r}")
            numbers = [int(v) for v in values] + [0] * (8 - len(values))
            return CpuTimes(*numbers)
    raise ParseError(f"/proc/stat: no aggregate cpu line in {text.strip()[:120]!r}")


def parse_btime(text: str) -> Optional[int]:
    """Boot time in epoch seconds from the `btime` line, as psutil.boot_time() reads it."""
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0] == "btime" and fields[1].isdigit():
            return int(fields[1])
    return None


def cpu_shares(first: CpuTimes, second: CpuTimes) -> CpuShares:
    """Busy, iowait and steal as percent of all CPU time that passed between the readings.

    Busy counts everything but idle and iowait, the way psutil.cpu_percent() does.
    """
    deltas: list[int] = [max(b - a, 0) for a, b in zip(first, second)]
    total = sum(deltas)
    if total <= 0:
        raise ParseError("/proc/stat: no CPU time passed between the two readings")
    now = CpuTimes(*deltas)
    return CpuShares(
        usage_percent=100.0 * (total - now.idle_all) / total,
        iowait_percent=100.0 * now.iowait / total,
        steal_percent=100.0 * now.steal / total,
    )
