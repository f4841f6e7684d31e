"""Contracts for report tests, built from the example file so they stay valid as it evolves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from collector.contracts import Contract, load_contract

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "contracts" / "example.toml"


def example_contract(**changes: Any) -> Contract:
    """The example contract with top-level fields replaced (validated again)."""
    data = load_contract(EXAMPLE).model_dump()
    data.update(changes)
    return Contract.model_validate(data)
