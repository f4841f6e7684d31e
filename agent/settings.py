"""The daemon's settings: the `[agent]` table of agent.toml, overridden by flat environment names.

agent.toml is one file for two readers: the inspection sections (`thresholds`, `logs`, `collect`,
`redaction`) belong to `agent.config.InspectionConfig`; the `[agent]` table belongs to
`AgentSettings`. Every daemon setting can also come from `XUNJIAN_AGENT_<FIELD>` (ops and tests
script the agent that way), and the environment wins over the file.

Only short-lived processes import this module (the CLI and the workers): pydantic costs the
resident process ~6 MB, so `xunjian-agent run` validates here and hands the resident a plain
`daemon_plan()` dict (see agent.daemon).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Type

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from agent.config import (
    ConfigError,
    InspectionConfig,
    describe_validation,
    find_config,
    load_inspection_config,
    read_toml,
)

ENV_PREFIX = "XUNJIAN_AGENT_"
AGENT_TABLE = "agent"
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class AgentSettings(BaseSettings):
    """Daemon settings; env `XUNJIAN_AGENT_<NAME>` overrides `[agent] <name>` in the file."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", case_sensitive=False)

    config: Optional[Path] = Field(
        None, description="the agent.toml this came from (XUNJIAN_AGENT_CONFIG)"
    )
    state_dir: Path = Field(
        Path("/var/lib/xunjian"), description="history, spool, credential, log offsets"
    )
    collector_url: Optional[str] = Field(
        None, description="https://collector:8443; default: the URL enrolled with"
    )
    ca_file: Optional[Path] = Field(
        None, description="PEM CA bundle to pin instead of the system store"
    )
    allow_insecure: bool = Field(False, description="permit http:// (tests, lab networks only)")
    sample_interval: float = Field(60.0, gt=0, description="seconds between metric samples")
    heartbeat_interval: float = Field(60.0, gt=0, description="seconds between heartbeats")
    flush_interval: float = Field(
        300.0, gt=0, description="seconds between deliveries of samples and retries"
    )
    inspection_times: List[str] = Field(
        default_factory=lambda: ["08:00"], description="local HH:MM, daily"
    )
    inspection_splay: float = Field(900.0, ge=0, description="random delay up to this many seconds")
    retention_days: float = Field(8.0, gt=0, description="history kept locally")
    spool_max_bytes: int = Field(64 * 1024 * 1024, ge=64 * 1024, description="spool size limit")
    connect_timeout: float = Field(10.0, gt=0)
    read_timeout: float = Field(30.0, gt=0)
    worker_timeout: float = Field(1800.0, gt=0, description="a worker running longer is killed")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: Type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> Tuple[PydanticBaseSettingsSource, ...]:
        """`load()` passes the file's table as init values; putting env first makes env win."""
        return env_settings, init_settings

    @field_validator("inspection_times")
    @classmethod
    def _times(cls, v: List[str]) -> List[str]:
        bad = [t for t in v if not _HHMM.match(t)]
        if bad:
            raise ValueError(f"expected local times as HH:MM, got {bad}")
        return v

    @field_validator("collector_url")
    @classmethod
    def _url(cls, v: Optional[str]) -> Optional[str]:
        if v in (None, ""):
            return None
        if not re.match(r"^https?://[^/\s]+", v):
            raise ValueError(f"not an http(s) URL: {v!r}")
        return v.rstrip("/")

    @model_validator(mode="after")
    def _transport(self) -> "AgentSettings":
        check_transport(self.collector_url, self.allow_insecure)
        if self.ca_file is not None and not self.ca_file.is_file():
            raise ValueError(f"ca_file {self.ca_file} does not exist")
        return self

    @classmethod
    def load(cls, config: Optional[Path] = None) -> "AgentSettings":
        """From `config`, else $XUNJIAN_AGENT_CONFIG, else /etc/xunjian/agent.toml if present."""
        path = find_config(config)
        table: Dict[str, Any] = {}
        if path is not None:
            data = read_toml(path)
            unknown = sorted(set(data) - set(InspectionConfig.model_fields) - {AGENT_TABLE})
            if unknown:
                raise ConfigError(
                    f"{path}: unknown table(s) {unknown}; expected [agent] or inspection sections"
                )
            raw = data.get(AGENT_TABLE, {})
            if not isinstance(raw, dict):
                raise ConfigError(f"{path}: [agent] must be a table")
            table = dict(raw)
            table["config"] = path
        try:
            settings = cls(**table)
        except ValidationError as exc:
            raise ConfigError(describe_validation(path or Path("(environment)"), exc)) from exc
        if settings.config is not None:
            load_inspection_config(settings.config)  # fail at start-up, not in the 08:00 worker
        return settings

    def inspection(self) -> InspectionConfig:
        return load_inspection_config(self.config)

    def env(self) -> Dict[str, str]:
        """Environment for worker processes, so they resolve exactly these settings."""
        env = dict(os.environ)
        env[ENV_PREFIX + "STATE_DIR"] = str(self.state_dir)
        if self.config is not None:
            env[ENV_PREFIX + "CONFIG"] = str(self.config)
        return env

    def daemon_plan(self) -> Dict[str, Any]:
        """The plain values the resident scheduler needs; JSON-safe so it crosses exec()."""
        return {
            "state_dir": str(self.state_dir),
            "sample_interval": self.sample_interval,
            "heartbeat_interval": self.heartbeat_interval,
            "flush_interval": self.flush_interval,
            "inspection_times": list(self.inspection_times),
            "inspection_splay": self.inspection_splay,
            "retention_days": self.retention_days,
            "collector_url": self.collector_url,
            "ca_file": str(self.ca_file) if self.ca_file else None,
            "allow_insecure": self.allow_insecure,
            "connect_timeout": self.connect_timeout,
            "read_timeout": self.read_timeout,
            "worker_timeout": self.worker_timeout,
        }


class InsecureTransport(ValueError):
    """http:// without allow_insecure: credentials and customer data would travel in clear."""


def check_transport(url: Optional[str], allow_insecure: bool) -> None:
    if url and url.startswith("http://") and not allow_insecure:
        raise InsecureTransport(
            f"refusing plain http:// collector URL {url}: credentials and inspection data would "
            "travel unencrypted; use https:// or set allow_insecure = true "
            "(XUNJIAN_AGENT_ALLOW_INSECURE=1)"
        )
