"""What an alert says, in the contract's language, and how each chat tool wants it sent.

The engine stores an `AlertMessage` (structured, language-neutral apart from pre-formatted local
times) with each notification; text and payloads are rendered when it is delivered, so a retry
signs with a fresh timestamp (DingTalk and Feishu refuse signatures older than an hour).

Signing, as the robots verify it:
- DingTalk (钉钉 加签): `sign = urlencode(base64(HMAC-SHA256(key=secret,
  msg=f"{ts_ms}\\n{secret}")))`, appended to the webhook URL as `&timestamp=<ms>&sign=<sign>`.
- Feishu/Lark (签名校验): `sign = base64(HMAC-SHA256(key=f"{ts_s}\\n{secret}", msg=b""))`, sent in
  the JSON body with `timestamp` (seconds) next to `msg_type`.
- Generic webhook: `X-Xunjian-Signature: sha256=<hex HMAC-SHA256(key=secret, msg=body)>`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any, Literal, Optional
from urllib.parse import quote_plus, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from checks.model import ParamValue
from checks.text import CHECKS_LOCALE, Texts
from collector.alerts.config import (
    DingTalkChannel,
    FeishuChannel,
    WebhookChannel,
    WeComChannel,
)

ALERTS_LOCALE = Path(__file__).with_name("locale")
MAX_ITEMS = 20
"""Lines shown in one message; the rest are counted and left to the console."""
WECOM_MAX_BYTES = 4096
EVIDENCE_CHARS = 200


class AlertEvent(str, Enum):
    raised = "raised"
    reprioritized = "reprioritized"
    escalated = "escalated"
    resolved = "resolved"
    silent = "silent"
    recovered = "recovered"
    digest = "digest"
    test = "test"


class AlertLine(BaseModel):
    """One finding or host in a message."""

    model_config = ConfigDict(extra="forbid")

    host: str
    priority: Optional[str] = None
    severity: Optional[str] = None
    check: Optional[str] = None
    item: Optional[str] = None
    finding_id: Optional[int] = None
    text_key: str = Field(..., description="catalog key of the finding's text (checks or alerts)")
    text_params: dict[str, ParamValue] = Field(default_factory=dict)
    wrap_key: Optional[str] = Field(None, description="catalog key wrapping the text as {finding}")
    evidence: str = ""
    deadline: Optional[datetime] = None
    link: Optional[str] = None


class AlertMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event: AlertEvent
    escalation: Optional[Literal["near", "past"]] = None
    contract: str
    customer: str
    timezone: str = "Asia/Shanghai"
    lang: str = "zh_CN"
    created_at: datetime
    date: Optional[str] = Field(None, description="local date of a digest")
    lines: list[AlertLine] = Field(default_factory=list)


def one_line(evidence: Sequence[str], limit: int = EVIDENCE_CHARS) -> str:
    """The first evidence line, whitespace collapsed and cut to fit a chat message."""
    for raw in evidence:
        text = " ".join(str(raw).split())
        if text:
            return text if len(text) <= limit else text[: limit - 1] + "…"
    return ""


def local_time(instant: datetime, tz: str) -> str:
    return f"{instant.astimezone(ZoneInfo(tz)):%Y-%m-%d %H:%M} ({tz})"


@dataclass(frozen=True)
class Block:
    headline: str
    fields: list[tuple[str, str]]
    link: Optional[str]


@dataclass(frozen=True)
class Rendered:
    """A message's text in one language, ready to be laid out for a channel."""

    title: str
    header: list[tuple[str, str]]
    blocks: list[Block]
    more: Optional[str]
    link_text: str
    sep: str = ": "
    color: str = field(default="blue")

    def text(self) -> str:
        out = [self.title, *(f"{k}{self.sep}{v}" for k, v in self.header)]
        for b in self.blocks:
            out += ["", b.headline, *(f"{k}{self.sep}{v}" for k, v in b.fields)]
            if b.link:
                out.append(b.link)
        if self.more:
            out += ["", self.more]
        return "\n".join(out)

    def markdown(self, para: str = "\n") -> str:
        """Markdown as WeCom, DingTalk and lark_md read it; DingTalk wants `para="\\n\\n"`."""
        out = [f"**{self.title}**", *(f"> {k}{self.sep}{v}" for k, v in self.header)]
        for b in self.blocks:
            out.append(f"**{b.headline}**")
            out += [f"{k}{self.sep}{v}" for k, v in b.fields]
            if b.link:
                out.append(f"[{self.link_text}]({b.link})")
        if self.more:
            out.append(self.more)
        return para.join(out)


_COLOR = {
    AlertEvent.raised: "red",
    AlertEvent.reprioritized: "orange",
    AlertEvent.escalated: "red",
    AlertEvent.resolved: "green",
    AlertEvent.silent: "red",
    AlertEvent.recovered: "green",
    AlertEvent.digest: "blue",
    AlertEvent.test: "blue",
}


def texts_for(message: AlertMessage) -> Texts:
    """Catalogs in the message's language, instants in its contract's timezone."""
    return Texts(message.lang, (CHECKS_LOCALE, ALERTS_LOCALE), tz=ZoneInfo(message.timezone))


def line_text(line: AlertLine, t: Texts) -> str:
    text = t(line.text_key, line.text_params)
    return t(line.wrap_key, {"finding": text}) if line.wrap_key else text


def render(message: AlertMessage) -> Rendered:
    t = texts_for(message)
    title_key = f"alerts.title.{message.event.value}"
    if message.event is AlertEvent.escalated:
        title_key += f".{message.escalation or 'near'}"
    count = len(message.lines)
    title = t(
        title_key,
        {
            "contract": message.contract,
            "customer": message.customer,
            "count": count,
            "date": message.date or "",
        },
    )
    blocks = [_block(line, message, t) for line in message.lines[:MAX_ITEMS]]
    if message.event is AlertEvent.digest and not message.lines:
        blocks = [Block(t("alerts.digest.empty"), [], None)]
    more = t("alerts.more", {"count": count - MAX_ITEMS}) if count > MAX_ITEMS else None
    return Rendered(
        title=title,
        header=[
            (t("alerts.label.contract"), message.contract),
            (t("alerts.label.customer"), message.customer),
        ],
        blocks=blocks,
        more=more,
        link_text=t("alerts.link.text"),
        sep=t("alerts.label.sep"),
        color=_COLOR[message.event],
    )


def _block(line: AlertLine, message: AlertMessage, t: Texts) -> Block:
    head = " · ".join(x for x in (line.priority, line.host, line_text(line, t)) if x)
    fields: list[tuple[str, str]] = []
    if line.finding_id is not None:
        fields.append((t("alerts.label.evidence"), line.evidence or t("alerts.evidence.none")))
        if message.event not in (AlertEvent.resolved,):
            fields.append((t("alerts.label.deadline"), _deadline(line, message, t)))
    return Block(head, fields, line.link)


def _deadline(line: AlertLine, message: AlertMessage, t: Texts) -> str:
    if line.deadline is None:
        return t("alerts.deadline.none")
    text = local_time(line.deadline, message.timezone)
    if line.deadline <= message.created_at:
        return t("alerts.deadline.past", {"deadline": text})
    return text


# -- per-channel requests ---------------------------------------------------------------------


@dataclass(frozen=True)
class WebRequest:
    """An HTTP POST ready to send. `url` may hold the robot's token: never log it as is."""

    url: str
    body: bytes
    headers: dict[str, str]


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """Base64 of HMAC-SHA256 keyed with the secret over "timestamp\\nsecret" (not URL-encoded)."""
    digest = hmac.new(
        secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode()


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Base64 of HMAC-SHA256 keyed with "timestamp\\nsecret" over an empty message."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def body_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _with_query(url: str, extra: str) -> str:
    parts = urlsplit(url)
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit(parts._replace(query=query))


def _json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


_JSON = {"Content-Type": "application/json; charset=utf-8"}


def _cut_bytes(text: str, limit: int) -> str:
    raw = text.encode()
    if len(raw) <= limit:
        return text
    return raw[: limit - 3].decode(errors="ignore") + "…"


def wecom_request(channel: WeComChannel, message: AlertMessage) -> WebRequest:
    content = _cut_bytes(render(message).markdown(), WECOM_MAX_BYTES)
    body = _json({"msgtype": "markdown", "markdown": {"content": content}})
    return WebRequest(channel.url.get_secret_value(), body, dict(_JSON))


def dingtalk_request(channel: DingTalkChannel, message: AlertMessage, now: datetime) -> WebRequest:
    r = render(message)
    body = _json(
        {"msgtype": "markdown", "markdown": {"title": r.title, "text": r.markdown("\n\n")}}
    )
    url = channel.url.get_secret_value()
    if channel.secret is not None:
        ts = int(now.timestamp() * 1000)
        sign = quote_plus(dingtalk_sign(channel.secret.get_secret_value(), ts))
        url = _with_query(url, f"timestamp={ts}&sign={sign}")
    return WebRequest(url, body, dict(_JSON))


def feishu_request(channel: FeishuChannel, message: AlertMessage, now: datetime) -> WebRequest:
    r = render(message)
    payload: dict[str, Any]
    if channel.card:
        payload = {
            "msg_type": "interactive",
            "card": {
                "config": {"wide_screen_mode": True},
                "header": {"title": {"tag": "plain_text", "content": r.title}, "template": r.color},
                "elements": [
                    {"tag": "div", "text": {"tag": "lark_md", "content": part}}
                    for part in _card_parts(r)
                ],
            },
        }
    else:
        payload = {"msg_type": "text", "content": {"text": r.text()}}
    if channel.secret is not None:
        ts = int(now.timestamp())
        payload = {
            "timestamp": str(ts),
            "sign": feishu_sign(channel.secret.get_secret_value(), ts),
            **payload,
        }
    return WebRequest(channel.url.get_secret_value(), _json(payload), dict(_JSON))


def _card_parts(r: Rendered) -> list[str]:
    parts = ["\n".join(f"**{k}**{r.sep}{v}" for k, v in r.header)]
    for b in r.blocks:
        lines = [f"**{b.headline}**", *(f"{k}{r.sep}{v}" for k, v in b.fields)]
        if b.link:
            lines.append(f"[{r.link_text}]({b.link})")
        parts.append("\n".join(lines))
    if r.more:
        parts.append(r.more)
    return parts


def generic_payload(message: AlertMessage, delivery: str) -> dict[str, Any]:
    """The generic webhook's JSON: structured fields for machines, title and text for people."""
    r = render(message)
    t = texts_for(message)
    return {
        "event": message.event.value,
        "escalation": message.escalation,
        "contract": message.contract,
        "customer": message.customer,
        "title": r.title,
        "text": r.text(),
        "created_at": message.created_at.astimezone(timezone.utc).isoformat(),
        "delivery": delivery,
        "items": [
            {
                "host": line.host,
                "priority": line.priority,
                "severity": line.severity,
                "check": line.check,
                "item": line.item,
                "finding_id": line.finding_id,
                "finding": line_text(line, t),
                "evidence": line.evidence,
                "deadline": line.deadline.isoformat() if line.deadline else None,
                "deadline_local": local_time(line.deadline, message.timezone)
                if line.deadline
                else None,
                "link": line.link,
            }
            for line in message.lines
        ],
    }


def generic_request(channel: WebhookChannel, message: AlertMessage, delivery: str) -> WebRequest:
    body = _json(generic_payload(message, delivery))
    headers = {**_JSON, "X-Xunjian-Delivery": delivery, "X-Xunjian-Event": message.event.value}
    if channel.secret is not None:
        headers[channel.signature_header] = body_signature(channel.secret.get_secret_value(), body)
    return WebRequest(channel.url.get_secret_value(), body, headers)


def finding_link(console_url: str, finding_id: int) -> str:
    return f"{console_url.rstrip('/')}/findings/{finding_id}"


def host_link(console_url: str, host_id: str) -> str:
    return f"{console_url.rstrip('/')}/hosts/{host_id}"
