"""Shared test plumbing: real-service skips become failures under XUNJIAN_REQUIRE_SERVICES=1."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LOGHUB = ROOT.parent / "shared" / "data" / "loghub"
ARTIFACTS = ROOT / "test-artifacts"


def require_service(ok: bool, reason: str) -> None:
    """Skip when a real service (postgres, sshd, chromium …) is missing — unless CI demands it."""
    if ok:
        return
    if os.environ.get("XUNJIAN_REQUIRE_SERVICES") == "1":
        pytest.fail(f"required service missing: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def loghub() -> Path:
    require_service(LOGHUB.is_dir(), f"loghub samples not found at {LOGHUB}")
    return LOGHUB


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
