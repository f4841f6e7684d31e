"""Sends queued alerts: webhooks over httpx, e-mail through the collector's mail code.

Each notification is its own outbox row (kind `webhook:<wecom|dingtalk|feishu|webhook>` or
`alert_mail`), so a dead channel only ever delays itself. What counts as what:
- connection refused/reset, timeouts, HTTP 5xx and 429, and the robots' rate-limit codes are
  temporary: the outbox retries with backoff;
- any other HTTP 4xx, a redirect, and a robot's non-zero errcode/code (bad signature, missing
  keyword, unknown token) are permanent: the row is marked failed, logged and counted, never
  retried.
The channel is looked up again in the contract at delivery time, so a retry uses the current
URL and signs with a fresh timestamp.

Webhook URLs carry tokens. Nothing here logs or stores a URL or secret as is: logs and errors
show `redact_url(url)` (scheme and host only), and a filter on the `httpx` logger rewrites the
URLs of its own request log lines the same way.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import formatdate
from functools import partial
from html import escape
from typing import TYPE_CHECKING, Any, Optional
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from agent.redact import mask_url
from collector import mail
from collector.alerts.config import (
    AnyChannel,
    DingTalkChannel,
    EmailChannel,
    FeishuChannel,
    WebhookChannel,
    WeComChannel,
)
from collector.alerts.messages import (
    AlertMessage,
    Rendered,
    WebRequest,
    dingtalk_request,
    feishu_request,
    generic_request,
    render,
    wecom_request,
)
from collector.db.contract_store import get_contract
from collector.db.models_reports import OutboxRow
from collector.db.types import utcnow
from collector.outbox import STATES, OutboxItem, PermanentFailure, TemporaryFailure
from collector.settings import SmtpSettings

if TYPE_CHECKING:
    from collector.alerts.engine import Alerting

log = logging.getLogger(__name__)

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
MAIL_KIND = "alert_mail"
WEBHOOK_KINDS = ("wecom", "dingtalk", "feishu", "webhook")
RATE_LIMITED = {
    "wecom": {45009},  # api freq out of limit
    "dingtalk": {130101},  # send too fast
    "feishu": {9499, 11232},  # too many requests / frequency limited
}
SNIPPET = 200


class Envelope(BaseModel):
    """An outbox payload for an alert: which channel of the contract, and the message."""

    model_config = ConfigDict(extra="forbid")

    level: str
    channel: str
    message: dict[str, Any]


def kind_of(channel: AnyChannel) -> str:
    return MAIL_KIND if isinstance(channel, EmailChannel) else f"webhook:{channel.kind}"


def alert_kinds() -> list[str]:
    return [MAIL_KIND, *(f"webhook:{k}" for k in WEBHOOK_KINDS)]


def redact_url(url: str) -> str:
    """Scheme, host and port only: robots put their token in the path or the query."""
    return mask_url(url, path=False)


class _RedactHttpxUrls(logging.Filter):
    """httpx logs every request with its full URL at INFO; keep only what redact_url keeps."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_url(str(a)) if isinstance(a, httpx.URL) else a for a in record.args
            )
        return True


_httpx_log = logging.getLogger("httpx")
if not any(isinstance(f, _RedactHttpxUrls) for f in _httpx_log.filters):
    _httpx_log.addFilter(_RedactHttpxUrls())


def _secrets(channel: AnyChannel) -> list[str]:
    """Strings that must never appear in an error: the URL, its query values, the secret."""
    out: list[str] = []
    url = getattr(channel, "url", None)
    if url is not None:
        raw = url.get_secret_value()
        parts = urlsplit(raw)
        out += [
            raw,
            parts.path,
            *(v for _, _, v in (q.partition("=") for q in parts.query.split("&"))),
        ]
    secret = getattr(channel, "secret", None)
    if secret is not None:
        out.append(secret.get_secret_value())
    return sorted({s for s in out if len(s) >= 4}, key=len, reverse=True)


def _scrub(text: str, channel: AnyChannel) -> str:
    for secret in _secrets(channel):
        text = text.replace(secret, "***")
    return text


def build_request(
    channel: AnyChannel, message: AlertMessage, now: datetime, delivery: str
) -> WebRequest:
    if isinstance(channel, WeComChannel):
        return wecom_request(channel, message)
    if isinstance(channel, DingTalkChannel):
        return dingtalk_request(channel, message, now)
    if isinstance(channel, FeishuChannel):
        return feishu_request(channel, message, now)
    if isinstance(channel, WebhookChannel):
        return generic_request(channel, message, delivery)
    raise TypeError(f"not a webhook channel: {channel.kind}")


def post(channel: AnyChannel, request: WebRequest, client: Optional[httpx.Client] = None) -> str:
    """POST and judge the answer; returns a short description of success.

    Raises TemporaryFailure or PermanentFailure with a message free of secrets.
    """
    where = f"{channel.label} ({redact_url(request.url)})"
    try:
        if client is None:
            with httpx.Client(timeout=TIMEOUT, follow_redirects=False) as own:
                response = own.post(request.url, content=request.body, headers=request.headers)
        else:
            response = client.post(request.url, content=request.body, headers=request.headers)
    except httpx.HTTPError as exc:  # refused, reset, timed out, TLS …
        raise TemporaryFailure(_scrub(f"{where}: {type(exc).__name__}: {exc}", channel)) from None
    return _judge(channel, response, where)


def _judge(channel: AnyChannel, response: httpx.Response, where: str) -> str:
    status = response.status_code
    snippet = _scrub(response.text[:SNIPPET], channel).replace("\n", " ")
    if status == 429 or status >= 500:
        raise TemporaryFailure(f"{where}: HTTP {status} {snippet}")
    if status >= 300:
        raise PermanentFailure(f"{where}: HTTP {status} {snippet}")
    if channel.kind == "webhook":
        return f"HTTP {status}"
    try:
        answer = response.json()
    except ValueError:
        raise TemporaryFailure(f"{where}: HTTP {status}, not a JSON answer: {snippet}") from None
    if not isinstance(answer, dict):
        raise TemporaryFailure(f"{where}: HTTP {status}, unexpected answer: {snippet}")
    if channel.kind == "feishu":
        code = answer.get("code", answer.get("StatusCode", 0))
        text = answer.get("msg", answer.get("StatusMessage", ""))
    else:
        code, text = answer.get("errcode", 0), answer.get("errmsg", "")
    if code in (0, None):
        return f"HTTP {status}, code 0"
    detail = _scrub(f"{where}: code {code}: {text}", channel)
    if code in RATE_LIMITED.get(channel.kind, set()):
        raise TemporaryFailure(detail)
    raise PermanentFailure(detail)


# -- outbox handlers --------------------------------------------------------------------------


def _resolve(alerting: Alerting, item: OutboxItem) -> tuple[AnyChannel, AlertMessage, str]:
    envelope = Envelope.model_validate(item.payload)
    with alerting.db.read() as session:
        contract = get_contract(session, item.contract or "")
    if contract is None:
        raise PermanentFailure(f"contract {item.contract} is no longer imported")
    channel = alerting.settings_for(contract).channel(envelope.level, envelope.channel)
    if channel is None:
        raise PermanentFailure(
            f"channel {envelope.channel} ({envelope.level}) is no longer in contract "
            f"{contract.number}"
        )
    return channel, AlertMessage.model_validate(envelope.message), envelope.level


def _webhook(alerting: Alerting, item: OutboxItem, clock: Callable[[], datetime] = utcnow) -> None:
    channel, message, _ = _resolve(alerting, item)
    try:
        post(channel, build_request(channel, message, clock(), item.key))
    except PermanentFailure as exc:
        log.warning("alert %s to %s failed permanently: %s", item.key, channel.label, exc)
        raise


def compose_mail(message: AlertMessage, sender: str, to: list[str], delivery: str) -> EmailMessage:
    """A plain-text alert mail with an HTML alternative; the Message-ID is stable per delivery
    key, so a resend after a crash shows as the same message."""
    r = render(message)
    msg = EmailMessage(policy=policy.SMTP)
    msg["Subject"] = r.title
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Date"] = formatdate(localtime=False)
    digest = hashlib.sha256(delivery.encode()).hexdigest()[:32]
    domain = sender.rpartition("@")[2] or "xunjian.invalid"
    msg["Message-ID"] = f"<alert.{digest}@{domain}>"
    msg.set_content(r.text(), subtype="plain", charset="utf-8")
    msg.add_alternative(_html(r), subtype="html", charset="utf-8")
    return msg


def _html(r: Rendered) -> str:
    parts = [f"<h3>{escape(r.title)}</h3>", "<p>"]
    parts += [f"{escape(k)}{escape(r.sep)}{escape(v)}<br>" for k, v in r.header]
    parts.append("</p>")
    for b in r.blocks:
        parts.append(f"<p><b>{escape(b.headline)}</b><br>")
        parts += [f"{escape(k)}{escape(r.sep)}{escape(v)}<br>" for k, v in b.fields]
        if b.link:
            parts.append(f'<a href="{escape(b.link)}">{escape(r.link_text)}</a>')
        parts.append("</p>")
    if r.more:
        parts.append(f"<p>{escape(r.more)}</p>")
    return "<html><body>" + "".join(parts) + "</body></html>"


def send_mail(
    smtp: SmtpSettings, channel: EmailChannel, message: AlertMessage, delivery: str
) -> str:
    msg = compose_mail(message, smtp.sender or "", channel.recipients, delivery)
    mail.send(smtp, msg, channel.recipients)
    return f"sent to {len(channel.recipients)} recipient(s)"


def _mail(alerting: Alerting, item: OutboxItem) -> None:
    channel, message, _ = _resolve(alerting, item)
    if not isinstance(channel, EmailChannel):
        raise PermanentFailure(f"channel {channel.label} is not an e-mail channel")
    try:
        send_mail(alerting.smtp, channel, message, item.key)
    except PermanentFailure as exc:
        log.warning("alert %s to %s failed permanently: %s", item.key, channel.label, exc)
        raise


def handlers(alerting: Alerting) -> dict[str, Callable[[OutboxItem], None]]:
    """The outbox handlers for alert kinds, to merge into the scheduler's `drain` call."""
    out: dict[str, Callable[[OutboxItem], None]] = {
        f"webhook:{k}": partial(_webhook, alerting) for k in WEBHOOK_KINDS
    }
    out[MAIL_KIND] = partial(_mail, alerting)
    return out


def metrics_text(session: Session) -> str:
    """Prometheus lines: alert notifications by channel kind and delivery state (zeros too, so
    an alerting rule on `state="failed"` has a series from the start)."""
    found = {
        (kind, state): n
        for kind, state, n in session.execute(
            select(OutboxRow.kind, OutboxRow.state, func.count())
            .where(OutboxRow.kind.in_(alert_kinds()))
            .group_by(OutboxRow.kind, OutboxRow.state)
        )
    }
    name = "xunjian_alert_notifications"
    lines = [
        f"# HELP {name} Alert notifications in the outbox, by channel kind and delivery state.",
        f"# TYPE {name} gauge",
    ]
    for kind in alert_kinds():
        channel = kind.removeprefix("webhook:").replace(MAIL_KIND, "email")
        for state in STATES:
            n = found.get((kind, state), 0)
            lines.append(f'{name}{{channel="{channel}",state="{state}"}} {n}')
    return "\n".join(lines) + "\n"
