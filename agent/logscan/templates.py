"""Group log messages into templates with drain3, one configuration for every kind of log.

The configuration is fixed in code (no per-dataset tuning): masks for the values that vary
between occurrences of one event (IP addresses, host names, hex, numbers) and Drain's tree at
depth 5 with similarity 0.65. On the Loghub samples this groups better than the published,
per-dataset-tuned Drain figures (docs/benchmarks.md, "Log template grouping accuracy").

A template id is a hash of the final template text (plus the rule for alarm templates), so it
is stable across runs and hosts: the collector follows a finding by it from one run to the next.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Dict, List, Optional, Tuple

from drain3 import TemplateMiner
from drain3.masking import MaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig

from checks.alarms import AlarmRule
from checks.facts import LogTemplate

SIMILARITY = 0.65
DEPTH = 5
MAX_SAMPLES = 3
SAMPLE_CHARS = 2000
"""A sample is evidence for a person, not a copy of the log: long lines are cut."""

_B = r"((?<=[^A-Za-z0-9])|^)"
_E = r"((?=[^A-Za-z0-9])|$)"
_DIGITS = re.compile(r"\d+")
MASKS = [
    (_B + r"(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})" + _E, "IP"),
    (_B + r"(([\w-]+\.){2,}[\w-]+)" + _E, "HOST"),
    (_B + r"(0x[0-9a-fA-F]+)" + _E, "HEX"),
    (_B + r"([\-+]?\d+)" + _E, "NUM"),
]


def new_miner() -> TemplateMiner:
    config = TemplateMinerConfig()
    config.drain_sim_th = SIMILARITY
    config.drain_depth = DEPTH
    config.drain_max_children = 100
    config.parametrize_numeric_tokens = True
    config.profiling_enabled = False
    config.masking_instructions = [MaskingInstruction(pattern, name) for pattern, name in MASKS]
    return TemplateMiner(config=config)


class Grouper:
    """drain3 with a memo: a message that differs from an earlier one only in its digits goes to
    the same cluster without asking drain again. Most alarm lines repeat one event with other
    pids, ports and addresses, so the memo saves most of drain's cost (masking, tree search)."""

    MEMO_MAX = 100_000

    def __init__(self) -> None:
        self.miner = new_miner()
        self._memo: Dict[str, int] = {}

    def add(self, message: str) -> int:
        key = _DIGITS.sub("0", message)
        cluster = self._memo.get(key)
        if cluster is None:
            cluster = int(self.miner.add_log_message(message)["cluster_id"])
            if len(self._memo) < self.MEMO_MAX:
                self._memo[key] = cluster
        return cluster

    def templates(self) -> Dict[int, str]:
        """cluster id → its final template text."""
        return {c.cluster_id: c.get_template() for c in self.miner.drain.clusters}


def template_id(template: str, rule: str = "") -> str:
    return hashlib.sha1(f"{rule}\x00{template}".encode("utf-8", "replace")).hexdigest()[:12]


@dataclass
class _Group:
    count: int = 0
    first: Optional[datetime] = None
    last: Optional[datetime] = None
    samples: List[str] = field(default_factory=list)


class TemplateCollector:
    """Matching records per (source, rule, drain cluster): count, first/last seen, samples.

    Samples are redacted as they are kept and the template text when it is emitted (a constant
    token of a template can be a secret too), so nothing unredacted leaves this object.
    """

    def __init__(self, redact: Callable[[str], str]) -> None:
        self.redact = redact
        self.grouper = Grouper()
        self.groups: Dict[Tuple[str, str, int], _Group] = {}
        self.rules: Dict[str, AlarmRule] = {}

    def add(self, source: str, rule: AlarmRule, time: datetime, message: str, sample: str) -> None:
        cluster = self.grouper.add(message[:SAMPLE_CHARS])
        self.rules[rule.id] = rule
        group = self.groups.setdefault((source, rule.id, cluster), _Group())
        group.count += 1
        group.first = time if group.first is None else min(group.first, time)
        group.last = time if group.last is None else max(group.last, time)
        if len(group.samples) < MAX_SAMPLES:
            text = self.redact(sample[:SAMPLE_CHARS])
            if text not in group.samples:
                group.samples.append(text)

    def templates(self) -> List[LogTemplate]:
        texts = self.grouper.templates()
        merged: Dict[Tuple[str, str, str], LogTemplate] = {}
        for (source, rule_id, cluster), group in self.groups.items():
            rule = self.rules[rule_id]
            text = self.redact(texts[cluster])
            key = (source, rule_id, text)
            known = merged.get(key)
            if known is None:  # two clusters can end at one template text: report them as one
                merged[key] = LogTemplate(
                    rule=rule_id,
                    family=rule.family,
                    severity=rule.severity,
                    template_id=template_id(text, rule_id),
                    template=text,
                    source=source,
                    count=group.count,
                    first_seen=group.first,
                    last_seen=group.last,
                    samples=list(group.samples),
                )
                continue
            known.count += group.count
            known.first_seen = min(t for t in (known.first_seen, group.first) if t is not None)
            known.last_seen = max(t for t in (known.last_seen, group.last) if t is not None)
            known.samples = (known.samples + [s for s in group.samples if s not in known.samples])[
                :MAX_SAMPLES
            ]
        return sorted(merged.values(), key=lambda t: (t.source, t.rule, -t.count, t.template))
