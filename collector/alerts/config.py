"""Where alerts go and when: channels, escalation list, priority overrides, digest.

Defaults live in the collector's `[alerts]` table (collector.toml); a contract's `[alerts]` table
overrides them field by field (a field left out inherits the collector's value), so a vendor
sets its service desk's robot once and a contract only names what differs.

Webhook URLs carry the robot's token in their path or query, so URLs and signing secrets are
`SecretStr`: masked in repr, logs, `contract show` and the API, revealed only for the contract
store (a JSON dump with the REVEAL_SECRETS context) and when a request is actually built.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from datetime import time
from typing import Annotated, Literal, Optional, Union
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    SerializationInfo,
    field_validator,
    model_validator,
)

ChannelKind = Literal["email", "wecom", "dingtalk", "feishu", "webhook"]
PriorityName = Literal["P1", "P2"]


REVEAL_SECRETS = {"secrets": "reveal"}
"""Serialisation context under which secrets are written out (only the contract store uses it)."""


def _dump_secret(value: SecretStr, info: SerializationInfo) -> str:
    reveal = isinstance(info.context, dict) and info.context.get("secrets") == "reveal"
    return value.get_secret_value() if reveal else str(value)


def _http_url(value: SecretStr) -> SecretStr:
    parts = urlsplit(value.get_secret_value())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # The value may hold a token: the error names the problem, never the value.
        raise ValueError("must be an http:// or https:// URL")
    return value


Secret = Annotated[SecretStr, PlainSerializer(_dump_secret, return_type=str, when_used="json")]
"""Masked in repr, in dumps and in API answers; revealed only in a JSON dump with REVEAL_SECRETS
as context, which is how the contract store keeps a contract's channels."""
SecretUrl = Annotated[Secret, AfterValidator(_http_url)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


class _Channel(_Model):
    name: Optional[str] = Field(
        None,
        description="stable name of this channel in notifications and metrics; default: the kind",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,47}", v):
            raise ValueError("letters, digits and _ . - only, at most 48")
        return v

    @property
    def label(self) -> str:
        return self.name or str(getattr(self, "kind", "channel"))


class EmailChannel(_Channel):
    kind: Literal["email"] = "email"
    recipients: list[str] = Field(..., min_length=1)

    @field_validator("recipients")
    @classmethod
    def _emails(cls, v: list[str]) -> list[str]:
        bad = [a for a in v if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", a)]
        if bad:
            raise ValueError(f"not e-mail addresses: {', '.join(bad)}")
        return v


class WeComChannel(_Channel):
    """企业微信群机器人: https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…"""

    kind: Literal["wecom"] = "wecom"
    url: SecretUrl


class DingTalkChannel(_Channel):
    """钉钉自定义机器人: https://oapi.dingtalk.com/robot/send?access_token=…, optional 加签."""

    kind: Literal["dingtalk"] = "dingtalk"
    url: SecretUrl
    secret: Optional[Secret] = Field(None, description="the robot's signing secret (SEC…)")


class FeishuChannel(_Channel):
    """飞书 / Lark custom bot: https://open.feishu.cn/open-apis/bot/v2/hook/…, optional secret."""

    kind: Literal["feishu"] = "feishu"
    url: SecretUrl
    secret: Optional[Secret] = Field(None, description="the bot's signature-verification secret")
    card: bool = Field(True, description="send an interactive card; false sends plain text")


class WebhookChannel(_Channel):
    """Any HTTP endpoint taking JSON; signed with HMAC-SHA256 of the body when a secret is set."""

    kind: Literal["webhook"] = "webhook"
    url: SecretUrl
    secret: Optional[Secret] = None
    signature_header: str = "X-Xunjian-Signature"


AnyChannel = Union[EmailChannel, WeComChannel, DingTalkChannel, FeishuChannel, WebhookChannel]
Channel = Annotated[AnyChannel, Field(discriminator="kind")]


def _unique_names(channels: Optional[Sequence[_Channel]]) -> None:
    labels = [c.label for c in channels or ()]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise ValueError(
            f"channel names must be unique in a list; give `name` to: {', '.join(dupes)}"
        )


class PriorityRule(_Model):
    """Maps findings of matching checks at a severity to a priority; first match wins."""

    check: str = Field(..., description="check id or glob, e.g. service.required or errors.*")
    severity: Literal["warning", "critical"] = "critical"
    priority: Union[PriorityName, Literal["none"]] = Field(
        ..., description="P1, P2, or none to never alert on it"
    )

    def matches(self, check: str, severity: str) -> bool:
        return severity == self.severity and fnmatch.fnmatchcase(check, self.check)


class DigestSettings(_Model):
    enabled: bool = False
    at: time = Field(time(8, 30), description="local time in the contract's timezone")


class AlertDefaults(_Model):
    """The collector's `[alerts]` table: what every contract gets unless it says otherwise."""

    console_url: Optional[str] = Field(
        None,
        description="base URL of the web console for links in messages; default: public_url",
    )
    channels: list[Channel] = Field(default_factory=list)
    escalation: list[Channel] = Field(default_factory=list)
    near_minutes: int = Field(
        30, ge=0, description="escalate this long before the response deadline"
    )
    digest: DigestSettings = Field(default_factory=DigestSettings)
    language: Optional[Literal["zh_CN", "en"]] = Field(
        None, description="language of alert text; default: the contract's report language"
    )

    @field_validator("console_url")
    @classmethod
    def _console(cls, v: Optional[str]) -> Optional[str]:
        if v is None:
            return v
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL")
        return v.rstrip("/")

    @model_validator(mode="after")
    def _names(self) -> AlertDefaults:
        _unique_names(self.channels)
        _unique_names(self.escalation)
        return self


class AlertSettings(_Model):
    """A contract's `[alerts]` table; every field left out inherits the collector's default."""

    enabled: bool = True
    channels: Optional[list[Channel]] = None
    escalation: Optional[list[Channel]] = None
    near_minutes: Optional[int] = Field(None, ge=0)
    priorities: list[PriorityRule] = Field(
        default_factory=list,
        description="checked in order before the built-in mapping (collector/priority.py)",
    )
    digest: Optional[DigestSettings] = None
    language: Optional[Literal["zh_CN", "en"]] = None

    @model_validator(mode="after")
    def _names(self) -> AlertSettings:
        _unique_names(self.channels)
        _unique_names(self.escalation)
        return self


class EffectiveAlerts(_Model):
    """A contract's alert settings with the collector's defaults filled in."""

    enabled: bool
    console_url: str
    channels: list[Channel]
    escalation: list[Channel]
    near_minutes: int
    digest: DigestSettings
    language: Literal["zh_CN", "en"]

    def channel(self, level: str, name: str) -> Optional[AnyChannel]:
        """The channel a notification was queued for, looked up again at delivery time."""
        pool = self.escalation if level == "escalation" else self.channels
        return next((c for c in pool if c.label == name), None)


def effective(
    defaults: AlertDefaults, settings: AlertSettings, contract_language: str, base_url: str
) -> EffectiveAlerts:
    """`settings` is the contract's table; `base_url` is the collector's own public URL."""
    lang = settings.language or defaults.language or contract_language
    near = settings.near_minutes
    return EffectiveAlerts(
        enabled=settings.enabled,
        console_url=(defaults.console_url or base_url).rstrip("/"),
        channels=settings.channels if settings.channels is not None else defaults.channels,
        escalation=settings.escalation if settings.escalation is not None else defaults.escalation,
        near_minutes=near if near is not None else defaults.near_minutes,
        digest=settings.digest or defaults.digest,
        language="en" if lang == "en" else "zh_CN",
    )
