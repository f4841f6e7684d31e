"""What an inspection reads from the local config file (`--config`, or the agent's agent.toml).

Targets to gather (log files, certificates, backups, URLs) are local decisions: the collector may
re-judge facts with its own thresholds, but it never names a path or URL for the host to read.
Thresholds layer on top of the defaults with provenance `config:<file>`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.9
    import tomli as tomllib

DEFAULT_LOG_FILES = [
    "/var/log/messages",
    "/var/log/syslog",
    "/var/log/kern.log",
    "/var/log/auth.log",
    "/var/log/secure",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AlarmRuleConfig(_Section):
    id: str
    pattern: str = Field(..., description="extended regular expression (grep -E compatible)")
    severity: str = "warning"
    family: str = "alarm"
    ignore_case: bool = False


class LogsConfig(_Section):
    files: List[str] = Field(default_factory=lambda: list(DEFAULT_LOG_FILES))
    globs: List[str] = Field(
        default_factory=list, description="application log globs, e.g. /opt/app/logs/*.log"
    )
    journald: bool = True
    allowed_roots: List[str] = Field(default_factory=lambda: ["/var/log"])
    max_bytes_per_run: int = Field(
        2 * 1024**3, description="scan budget; over it the scan stops and says so"
    )
    rules_file: Optional[str] = Field(None, description="replace the built-in alarm rules")
    rules: List[AlarmRuleConfig] = Field(
        default_factory=list, description="added to the built-in rules"
    )


class BackupTarget(_Section):
    pattern: str = Field(..., description="glob of backup files, e.g. /backup/db/*.dump")


class HttpTarget(_Section):
    url: str
    timeout_seconds: float = 10.0


class CollectConfig(_Section):
    certificates: List[str] = Field(default_factory=list, description="PEM certificate files")
    backups: List[BackupTarget] = Field(default_factory=list)
    http: List[HttpTarget] = Field(default_factory=list)


class RedactionConfig(_Section):
    enabled: bool = True
    keywords: List[str] = Field(
        default_factory=list, description="extra words to mask wherever they appear"
    )
    patterns: List[str] = Field(
        default_factory=list, description="extra regexes whose matches are masked"
    )


class InspectionConfig(_Section):
    lang: Optional[str] = None
    thresholds: Dict[str, Dict[str, Any]] = Field(default_factory=dict)
    logs: LogsConfig = Field(default_factory=LogsConfig)
    collect: CollectConfig = Field(default_factory=CollectConfig)
    redaction: RedactionConfig = Field(default_factory=RedactionConfig)


DEFAULT_CONFIG = Path("/etc/xunjian/agent.toml")
CONFIG_ENV = "XUNJIAN_AGENT_CONFIG"


def find_config(given: Optional[Path] = None) -> Optional[Path]:
    """`given`, else $XUNJIAN_AGENT_CONFIG, else the installed DEFAULT_CONFIG if present, else None
    (built-in defaults): the daemon and `inspect` on an installed host read the same file."""
    if given is not None:
        return given
    raw = os.environ.get(CONFIG_ENV)
    if raw:
        return Path(raw)
    return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file and the field path."""


def read_toml(path: Path) -> Dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}): save it as UTF-8") from exc


def describe_validation(
    path: Path, exc: ValidationError, what: str = "invalid configuration"
) -> str:
    lines = [f"{path}: {what}"]
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "(top level)"
        lines.append(f"  {loc}: {err['msg']}")
    return "\n".join(lines)


def load_inspection_config(path: Optional[Path]) -> InspectionConfig:
    """The inspection part of a config file; other top-level tables belong to the daemon."""
    if path is None:
        return InspectionConfig()
    data = read_toml(path)
    known = {k: v for k, v in data.items() if k in InspectionConfig.model_fields}
    try:
        return InspectionConfig.model_validate(known)
    except ValidationError as exc:
        raise ConfigError(describe_validation(path, exc)) from exc
