"""The console's settings (`[ui]` in collector.toml, `XUNJIAN_UI_<FIELD>` in the environment)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field


class UiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cookie_secure: bool = Field(
        True,
        description="mark cookies Secure (HTTPS only); false is accepted only for a plain-http "
        "collector listening on loopback (development, tests)",
    )
    session_hours: float = Field(8.0, gt=0, le=24 * 30, description="a log-in lasts this long")
    secret_key_file: Optional[Path] = Field(
        None,
        description="key that signs the log-in form's CSRF token; default <home>/console.key, "
        "made on first start; collectors sharing a database must share it",
    )
    login_window_minutes: int = Field(15, ge=1, description="failed log-ins count this long")
    max_failures_per_user: int = Field(5, ge=1, description="failures of one name in the window")
    max_failures_per_client: int = Field(20, ge=1, description="failures from one address")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
