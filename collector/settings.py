"""Collector settings: a TOML file (`--config` / XUNJIAN_CONFIG) overlaid by the environment.

Precedence, highest first: explicit arguments (the CLI's --host/--port) → environment → file →
defaults. Every setting has a flat environment name `XUNJIAN_<FIELD>`; the SMTP sub-table uses
`XUNJIAN_SMTP_<FIELD>` so ops can script a collector without writing a file.
config/collector.example.toml documents each one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from agent.config import ConfigError, describe_validation, read_toml
from collector.alerts.config import AlertDefaults
from collector.ui.config import UiSettings

DEFAULT_LISTEN = "127.0.0.1:8080"
MiB = 1024 * 1024


class SmtpSettings(BaseModel):
    """Outgoing mail for reports and alerts (filled in by the reports/alerts side)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    host: Optional[str] = Field(None, description="SMTP server; unset means mail is not sent")
    port: int = Field(587, ge=1, le=65535)
    security: Literal["none", "starttls", "tls"] = "starttls"
    user: Optional[str] = None
    password_file: Optional[Path] = Field(None, description="file holding the SMTP password")
    password: Optional[SecretStr] = Field(
        None, description="the password itself (XUNJIAN_SMTP_PASSWORD); prefer password_file"
    )
    sender: Optional[str] = Field(None, alias="from", description="From: address")
    ca_file: Optional[Path] = Field(None, description="CA bundle for the server's certificate")
    timeout_seconds: float = Field(30.0, gt=0, description="per SMTP connection and command")

    def secret(self) -> Optional[str]:
        """The password (file first), read when needed and never logged or echoed."""
        if self.password_file is not None:
            try:
                return self.password_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                problem = f"smtp.password_file {self.password_file}: {exc.strerror}"
                raise ConfigError(problem) from exc
        return self.password.get_secret_value() if self.password is not None else None


class CollectorSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="XUNJIAN_",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        extra="forbid",
        populate_by_name=True,
    )

    config: Optional[Path] = Field(None, description="the TOML file these settings were read from")
    home: Path = Field(Path("var"), description="data directory: SQLite database, reports, state")
    database_url: Optional[str] = Field(
        None,
        description="SQLAlchemy URL; default sqlite in home; PostgreSQL: postgresql+psycopg://…",
    )
    listen: str = Field(DEFAULT_LISTEN, description="host:port the API listens on")
    workers: int = Field(1, ge=1, le=64, description="uvicorn worker processes")
    tls_cert: Optional[Path] = None
    tls_key: Optional[Path] = None
    public_url: Optional[str] = Field(None, description="base URL for links in alerts and mail")
    max_body_bytes: int = Field(
        8 * MiB, ge=1024, description="request body limit after decompression"
    )
    silence_minutes: int = Field(
        30,
        ge=1,
        description="a host silent longer than this is down, unless its contract says otherwise",
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    alerts: AlertDefaults = Field(default_factory=AlertDefaults)
    ui: UiSettings = Field(default_factory=UiSettings)

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        split_listen(v)
        return v

    @field_validator("database_url")
    @classmethod
    def _url(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not (v.startswith("sqlite") or v.startswith("postgresql")):
            raise ValueError("only sqlite:/// and postgresql+psycopg:// URLs are supported")
        if v is not None and v.startswith("postgresql") and not v.startswith("postgresql+psycopg"):
            raise ValueError("use the psycopg 3 driver: postgresql+psycopg://user@host/db")
        return v

    @model_validator(mode="after")
    def _tls(self) -> CollectorSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together: set both or neither")
        return self

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'xunjian.db').resolve()}"

    @property
    def host(self) -> str:
        return split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return split_listen(self.listen)[1]

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        scheme = "https" if self.tls_cert else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        init_kwargs: dict[str, Any] = getattr(init_settings, "init_kwargs", {})
        path = init_kwargs.get("config") or os.environ.get("XUNJIAN_CONFIG")
        sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
        if path:
            sources += (_TomlSource(settings_cls, Path(path)),)
        return sources


class _TomlSource(PydanticBaseSettingsSource):
    """The settings file, read with the same error style as every other xunjian file."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        super().__init__(settings_cls)
        self.path = path
        try:
            self.data = read_toml(path)
        except UnicodeDecodeError as exc:  # read_toml does not catch this one
            raise ConfigError(f"{path}: not UTF-8 text: {exc}") from exc

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {**self.data, "config": self.path}


def split_listen(value: str) -> tuple[str, int]:
    """'host:port' or '[v6]:port' → (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected host:port (e.g. {DEFAULT_LISTEN}), got {value!r}")
    return host.strip("[]"), int(port)


def load_settings(config: Optional[Path] = None, **overrides: Any) -> CollectorSettings:
    """Settings for a command; ConfigError names the file (or the environment) and the field."""
    kwargs = {k: v for k, v in overrides.items() if v is not None}
    if config is not None:
        kwargs["config"] = config
    try:
        return CollectorSettings(**kwargs)
    except ValidationError as exc:
        where = config or os.environ.get("XUNJIAN_CONFIG") or "environment (XUNJIAN_*)"
        raise ConfigError(
            describe_validation(Path(str(where)), exc, "invalid collector settings")
        ) from exc
