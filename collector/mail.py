"""Report mail: compose the message once at build time, send it (once) from the outbox.

Structure of a report mail:
    multipart/mixed
      multipart/alternative
        text/plain                       (the summary, for clients without HTML)
        multipart/related
          text/html                      (summary, status per host, key findings, charts)
          image/png  Content-ID: <…>     (one per `cid:` reference in the HTML)
      application/pdf                    (the full report; filename*= RFC 2231 UTF-8 name
                                          with an ASCII filename= fallback)
The composed message is stored without envelope headers; `send` adds From, To, Cc, Date and a
Message-ID that is stable for (contract, period, delivery), so a resend after a crash carries
the same id and the recipient's client shows one message.

SMTP: `none` (plain, port 25 inside a trusted network), `starttls` (587) or `tls` (implicit,
465), with AUTH when a user is set. The password comes from settings (file or environment) at
send time and is never logged. Failures map onto the outbox's retry rule: 4xx replies and
connection problems are temporary, 5xx replies (bad address, refused auth) permanent.
"""

from __future__ import annotations

import email
import hashlib
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from email import policy
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import quote

from collector.outbox import PermanentFailure, TemporaryFailure
from collector.settings import SmtpSettings

DEFAULT_DOMAIN = "xunjian.invalid"


def compose(
    *,
    subject: str,
    text: str,
    html: str,
    images: Mapping[str, bytes],
    pdf: bytes,
    filename: str,
    ascii_filename: str,
) -> EmailMessage:
    """The message body and attachment, without From/To/Message-ID (added per delivery)."""
    msg = EmailMessage(policy=policy.SMTP)
    msg["Subject"] = subject
    msg["MIME-Version"] = "1.0"
    msg.set_content(text, subtype="plain", charset="utf-8")
    msg.add_alternative(html, subtype="html", charset="utf-8")
    html_part = list(msg.iter_parts())[1]
    for cid, png in images.items():
        html_part.add_related(png, maintype="image", subtype="png", cid=f"<{cid}>")
    msg.add_attachment(pdf, maintype="application", subtype="pdf", filename=ascii_filename)
    attachment = list(msg.iter_parts())[-1]
    if filename != ascii_filename:
        del attachment["Content-Disposition"]
        attachment.set_raw("Content-Disposition", _disposition(filename, ascii_filename))
    return msg


def _disposition(filename: str, ascii_filename: str) -> str:
    """`attachment` with an ASCII filename= and the RFC 2231 UTF-8 filename*, continued over
    short lines (filename*0*, filename*1* …) so no header line needs refolding: the email
    package would re-parse a long line and keep only one of the two names."""
    encoded = "utf-8''" + quote(filename, safe="")
    chunks: list[str] = []
    while encoded:
        cut = 60
        while cut < len(encoded) and encoded[cut - 2 : cut].find("%") >= 0:
            cut -= 1  # never split a %XX escape
        chunks.append(encoded[:cut])
        encoded = encoded[cut:]
    # The UTF-8 name first: parsers that merge both (Python's among them) keep the first one.
    params = [f" filename*{i}*={chunk}" for i, chunk in enumerate(chunks)]
    params.append(f' filename="{ascii_filename}"')
    return "attachment;\r\n" + ";\r\n".join(params)


def message_id(contract: str, period: str, delivery: str, sender: str | None) -> str:
    """Stable Message-ID for one delivery of one report: same inputs, same id."""
    digest = hashlib.sha256(f"{contract}\n{period}\n{delivery}".encode()).hexdigest()[:32]
    domain = sender.rpartition("@")[2] if sender and "@" in sender else DEFAULT_DOMAIN
    return f"<report.{digest}@{domain}>"


def envelope(
    stored: bytes,
    *,
    sender: str,
    to: Sequence[str],
    cc: Sequence[str] = (),
    msg_id: str,
    date: float | None = None,
) -> EmailMessage:
    """A stored message with the headers of one delivery."""
    msg = email.message_from_bytes(stored, _class=EmailMessage, policy=policy.SMTP)
    assert isinstance(msg, EmailMessage)
    for header in ("From", "To", "Cc", "Date", "Message-ID"):
        del msg[header]
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg["Date"] = formatdate(date, localtime=False)
    msg["Message-ID"] = msg_id
    return msg


def _context(settings: SmtpSettings) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def send(settings: SmtpSettings, msg: EmailMessage, recipients: Sequence[str]) -> None:
    """Deliver `msg` to `recipients`; raises TemporaryFailure or PermanentFailure."""
    if not settings.host or not settings.sender:
        raise PermanentFailure("SMTP is not configured (smtp.host and smtp.from are required)")
    try:
        _send(settings, msg, recipients)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        detail = "; ".join(
            f"{rcpt}: {code} {_text(m)}" for rcpt, (code, m) in exc.recipients.items()
        )
        if all(500 <= c < 600 for c in codes):
            raise PermanentFailure(f"recipients refused: {detail}") from exc
        raise TemporaryFailure(f"recipients refused: {detail}") from exc
    except smtplib.SMTPNotSupportedError as exc:
        raise PermanentFailure(f"SMTP server does not support it: {exc}") from exc
    except smtplib.SMTPResponseException as exc:
        reply = f"SMTP {exc.smtp_code} {_text(exc.smtp_error)}"
        if 500 <= exc.smtp_code < 600:
            raise PermanentFailure(reply) from exc
        raise TemporaryFailure(reply) from exc
    except ssl.SSLCertVerificationError as exc:
        raise PermanentFailure(
            f"SMTP server certificate not trusted: {exc.verify_message}"
        ) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise TemporaryFailure(f"{type(exc).__name__}: {exc}") from exc


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def _send(settings: SmtpSettings, msg: EmailMessage, recipients: Sequence[str]) -> None:
    host, port, timeout = settings.host or "", settings.port, settings.timeout_seconds
    smtp: smtplib.SMTP
    if settings.security == "tls":
        smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=_context(settings))
    else:
        smtp = smtplib.SMTP(host, port, timeout=timeout)
    with smtp:
        smtp.ehlo()
        if settings.security == "starttls":
            smtp.starttls(context=_context(settings))
            smtp.ehlo()
        if settings.user:
            smtp.login(settings.user, settings.secret() or "")
        smtp.send_message(msg, from_addr=settings.sender, to_addrs=list(recipients))
