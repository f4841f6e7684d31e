"""Grouping accuracy of `logs templates` on the Loghub 2k samples, one configuration for all.

Grouping accuracy (Loghub's measure, see ../shared/data/loghub/SOURCE.md): a line is right when
the set of lines in its group equals the set of lines labelled with its EventId. The figures to
reach are Drain's published ones, which were tuned per dataset; ours are in docs/benchmarks.md.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Set

import pytest

from tests.conftest import ROOT

PUBLISHED = {"Linux": 0.690, "OpenSSH": 0.7875, "Apache": 1.0}


def grouping_accuracy(predicted: List[str], truth: List[str]) -> float:
    groups: Dict[str, Set[int]] = defaultdict(set)
    labelled: Dict[str, Set[int]] = defaultdict(set)
    for i, (p, t) in enumerate(zip(predicted, truth)):
        groups[p].add(i)
        labelled[t].add(i)
    right = sum(len(lines) for lines in labelled.values() if groups[predicted[min(lines)]] == lines)
    return right / len(truth)


def test_the_measure() -> None:
    assert grouping_accuracy(["a", "a", "b"], ["x", "x", "y"]) == 1.0
    assert grouping_accuracy(["a", "a", "a"], ["x", "x", "y"]) == 0.0
    assert grouping_accuracy(["a", "b", "c"], ["x", "x", "y"]) == pytest.approx(1 / 3)


@pytest.mark.parametrize("dataset", sorted(PUBLISHED))
def test_grouping_accuracy_at_least_drain(loghub: Path, dataset: str) -> None:
    log = loghub / dataset / f"{dataset}_2k.log"
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from agent.cli import main; main()",
            "logs",
            "templates",
            "--json",
            str(log),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    predicted = [json.loads(line)["template_id"] for line in out.stdout.splitlines()]
    with (loghub / dataset / f"{dataset}_2k.log_structured.csv").open(encoding="utf-8") as fh:
        truth = [row["EventId"] for row in csv.DictReader(fh)]
    assert len(predicted) == len(truth) == 2000
    accuracy = grouping_accuracy(predicted, truth)
    print(f"{dataset}: grouping accuracy {accuracy:.4f} (Drain published {PUBLISHED[dataset]})")
    assert accuracy >= PUBLISHED[dataset]
