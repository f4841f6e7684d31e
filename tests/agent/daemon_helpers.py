"""Shared set-up for the daemon tests: an enrolled state dir and the agent's environment."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path
from typing import Dict

from agent.client import Enrollment, save_enrollment
from tests.agent.stub_collector import StubCollector

AGENT = str(Path(sys.executable).parent / "xunjian-agent")


def enrolled(state: Path, stub: StubCollector) -> str:
    credential = "cred-" + uuid.uuid4().hex
    stub.credentials[credential] = "h-test"
    save_enrollment(state, Enrollment(stub.url, "h-test", credential, "WB-TEST"))
    return credential


def agent_env(state: Path, stub: StubCollector, logs: Path, **extra: str) -> Dict[str, str]:
    """Environment for a real `xunjian-agent run`: short intervals, a small config of its own."""
    config = state / "agent.toml"
    config.write_text(
        f'[agent]\ninspection_times = ["03:00"]\n\n[logs]\nfiles = ["{logs}"]\n'
        f'allowed_roots = ["{logs.parent}"]\njournald = false\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("XUNJIAN_AGENT_")}
    env.update(
        XUNJIAN_AGENT_CONFIG=str(config),
        XUNJIAN_AGENT_STATE_DIR=str(state),
        XUNJIAN_AGENT_COLLECTOR_URL=stub.url,
        XUNJIAN_AGENT_ALLOW_INSECURE="1",
        **extra,
    )
    return env
