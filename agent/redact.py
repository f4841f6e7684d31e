"""Masking of secrets and personal data before anything leaves the host.

Log lines quoted as evidence are the one place where customer data rides along with a run, and
the contracts forbid it leaving the agreed scope. So every free-text field of a run passes
through `Redactor` before it is spooled, printed or written out. The masks keep the structure
readable, so an engineer still sees what kind of value stood there:

==========================================  =============================================
what                                        becomes
==========================================  =============================================
``password=s3cret``, ``token: abc``,        ``password=***``, ``token: ***``,
``"passwd": "x"``, ``?access_token=abc``    ``"passwd": "***"``, ``?access_token=***``
``https://user:pw@host/``                   ``https://user:***@host/``
``--password pw``, ``IDENTIFIED BY 'pw'``   ``--password ***``, ``IDENTIFIED BY '***'``
``Authorization: Bearer eyJ…``              ``Authorization: Bearer ***``
PEM private key block (across lines too)    ``-----BEGIN RSA PRIVATE KEY-----***-----END …``
JWT, long base64 runs (key material)        ``***``
AWS / Alibaba / Tencent access key ids      ``AKIA***``, ``LTAI***``, ``AKID***``
mainland ID card (18 digits, valid check)   ``**************123X`` (the last four stay)
mainland mobile (+86 optional)              ``138****5678``
e-mail address                              ``z***@example.com`` (the domain stays)
configured keywords and patterns            ``***``
==========================================  =============================================

An ID-card number is masked only if its ISO 7064 MOD 11-2 check digit and its birth date are
valid, so order and transaction numbers of the same length stay readable. The legacy 15-digit
ID form has no check digit and was retired in 2013, so it is not masked (too many false hits).
Phone numbers need a non-alphanumeric neighbour on both sides: inside a longer digit run or a
hex string they are not phone numbers. `enabled = false` switches the built-in rules off;
configured keywords and patterns still apply, since someone asked for them explicitly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from typing import Callable, Optional

from agent.config import RedactionConfig
from checks.facts import FactSet
from checks.model import CheckResult, InspectionRun

MASK = "***"

_PEM = re.compile(
    r"-----BEGIN (?P<label>[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?)-----"
    r"(?:.*?-----END (?P=label)-----|.*\Z)",
    re.DOTALL,
)
_PEM_BEGIN = re.compile(r"-----BEGIN (?P<label>[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?)-----")
_PEM_END = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")

_AUTH_HEADER = re.compile(
    r"(?P<pre>(?<![\w-])(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?"
    r"(?:(?:bearer|basic|digest|token|negotiate|ntlm|aws4-hmac-sha256)\s+)?)"
    r"(?P<value>[^\s\"'][^\"'\r\n]*)",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?P<pre>\bbearer\s+)(?P<value>[A-Za-z0-9._~+/=-]{8,})", re.IGNORECASE)
_URL_USERINFO = re.compile(r"(?P<pre>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/:@]*:)(?P<value>[^\s/]+)@")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")

_SECRET_WORD = (
    r"passw(?:or)?d|passphrase|secret|token|api[_-]?key|access[_-]?key|private[_-]?key"
    r"|credentials?|session[_-]?id|jsessionid|phpsessid"
)
_SHORT_WORD = r"pwd|pass|pw|auth|sig|signature|cookie"
_KEY_VALUE = re.compile(
    r"(?P<pre>(?P<q>[\"']?)"
    rf"(?:(?<![\w.-])[\w.-]{{0,40}}?(?:{_SECRET_WORD})[\w.-]{{0,40}}|(?<![\w.-])(?:{_SHORT_WORD}))"
    r"(?P=q)\s*(?:=>|[:=])\s*)"
    r"(?P<value>\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*'|[\"']?[^\s&\"'<>})\]]+)",
    re.IGNORECASE,
)
_CLI_FLAG = re.compile(
    r"(?P<pre>(?<![\w-])--?(?:password|passwd|pass|token|secret|api-key|access-key)\s+)"
    r"(?P<value>[^\s-]\S*)",
    re.IGNORECASE,
)
_SQL_IDENTIFIED = re.compile(
    r"(?P<pre>\bidentified\s+(?:with\s+\S+\s+)?by\s+(?:password\s+)?)(?P<value>'[^']*'|\"[^\"]*\"|\S+)",
    re.IGNORECASE,
)
_KEY_HINT = re.compile(rf"{_SECRET_WORD}|{_SHORT_WORD}", re.IGNORECASE)

_CLOUD_KEY_ID = re.compile(
    r"(?<![A-Za-z0-9])(?P<prefix>(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA|ABIA|ACCA)(?=[A-Z0-9]{16}"
    r"(?![A-Za-z0-9]))|LTAI(?=[A-Za-z0-9]{12,28}(?![A-Za-z0-9]))|AKID(?=[A-Za-z0-9]{32}(?![A-Za-z0-9])))"
    r"[A-Za-z0-9]+"
)
_BASE64_RUN = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{40,}={0,2}(?![A-Za-z0-9+/=])")

_ID_CARD = re.compile(r"(?<![0-9])[1-9][0-9]{16}[0-9Xx](?![0-9])")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"

_PHONE = re.compile(
    r"(?<![0-9A-Za-z])(?P<cc>(?:\+|00)?86[- ]?)?"
    r"(?P<head>1[3-9][0-9])[- ]?(?P<mid>[0-9]{4})[- ]?(?P<tail>[0-9]{4})(?![0-9A-Za-z])"
)
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])(?P<local>[A-Za-z0-9._%+-]+)@"
    r"(?P<domain>[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})"
)


def id_card_valid(number: str) -> bool:
    """ISO 7064 MOD 11-2 check digit (GB 11643) and a real birth date at digits 7–14."""
    if len(number) != 18 or not number[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS))
    if _ID_CHECK[total % 11] != number[17].upper():
        return False
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    return 1900 <= born.year <= date.today().year


def _keep_pre(m: re.Match[str]) -> str:
    value = m.group("value")
    quote = value[0] if value[:1] in ("'", '"') and len(value) > 1 and value[-1] == value[0] else ""
    return f"{m.group('pre')}{quote}{MASK}{quote}"


def _pem(m: re.Match[str]) -> str:
    label = m.group("label")
    end = f"-----END {label}-----" if m.group(0).endswith(f"-----END {label}-----") else ""
    return f"-----BEGIN {label}-----{MASK}{end}"


def _id_card(m: re.Match[str]) -> str:
    number = m.group(0)
    return "*" * 14 + number[14:] if id_card_valid(number) else number


def _phone(m: re.Match[str]) -> str:
    return f"{m.group('cc') or ''}{m.group('head')}****{m.group('tail')}"


def _email(m: re.Match[str]) -> str:
    return f"{m.group('local')[0]}{MASK}@{m.group('domain')}"


def _base64(m: re.Match[str]) -> str:
    """Key material (a PEM body line, a bare secret key) but not a path: few slashes, mixed case."""
    run = m.group(0)
    mixed = (
        any(c.isupper() for c in run)
        and any(c.islower() for c in run)
        and any(c.isdigit() for c in run)
    )
    return MASK if mixed and run.count("/") * 12 <= len(run) else run


Rule = tuple["re.Pattern[str]", Callable[["re.Match[str]"], str], Optional[Callable[[str], bool]]]

# Order matters: whole blocks and headers first, so the generic key=value rule sees their masks.
_BUILTIN: list[Rule] = [
    (_PEM, _pem, lambda t: "-----BEGIN" in t),
    (_AUTH_HEADER, _keep_pre, lambda t: "uthorization" in t or "UTHORIZATION" in t),
    (_BEARER, _keep_pre, None),
    (_URL_USERINFO, lambda m: f"{m.group('pre')}{MASK}@", lambda t: "://" in t),
    (_JWT, lambda m: MASK, lambda t: "eyJ" in t),
    (_KEY_VALUE, _keep_pre, lambda t: _KEY_HINT.search(t) is not None),
    (_CLI_FLAG, _keep_pre, lambda t: "-" in t),
    (_SQL_IDENTIFIED, _keep_pre, lambda t: "dentified" in t or "DENTIFIED" in t),
    (_CLOUD_KEY_ID, lambda m: f"{m.group('prefix')}{MASK}", None),
    (_BASE64_RUN, _base64, None),
    (_ID_CARD, _id_card, None),
    (_PHONE, _phone, None),
    (_EMAIL, _email, lambda t: "@" in t),
]


class RedactionError(ValueError):
    """A configured pattern that is not a valid regular expression."""


class Redactor:
    """Compiled once per process; `redact` is called on every evidence and sample line."""

    def __init__(self, config: Optional[RedactionConfig] = None) -> None:
        config = config or RedactionConfig()
        self.rules: list[Rule] = list(_BUILTIN) if config.enabled else []
        words = sorted({k for k in config.keywords if k}, key=len, reverse=True)
        if words:
            keywords = re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)
            self.rules.append((keywords, lambda m: MASK, None))
        for number, pattern in enumerate(config.patterns, start=1):
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise RedactionError(f"redaction.patterns[{number}] {pattern!r}: {exc}") from exc
            self.rules.append((compiled, lambda m: MASK, None))

    def redact(self, text: str) -> str:
        for pattern, replace, worth_trying in self.rules:
            if worth_trying is None or worth_trying(text):
                text = pattern.sub(replace, text)
        return text

    def redact_lines(self, lines: Iterable[str]) -> list[str]:
        """Like `redact` per line, but a private key opened on one line masks the following
        lines until its END line, as when a config file or a key was dumped into a log."""
        out: list[str] = []
        inside_key = False
        for line in lines:
            if inside_key:
                end = _PEM_END.search(line)
                if end is None:
                    out.append(MASK)
                    continue
                inside_key = False
                line = MASK + line[end.start() :]
            elif _PEM_BEGIN.search(line) and not _PEM_END.search(line):
                inside_key = True
            out.append(self.redact(line))
        return out

    def redact_facts(self, facts: FactSet) -> FactSet:
        """Every free-text field a source copies from the host: log samples and templates,
        service-event samples, probe URLs and error texts."""
        update: dict[str, object] = {"errors": {k: self.redact(v) for k, v in facts.errors.items()}}
        if facts.logs is not None:
            templates = [
                t.model_copy(
                    update={
                        "template": self.redact(t.template),
                        "samples": self.redact_lines(t.samples),
                    }
                )
                for t in facts.logs.templates
            ]
            update["logs"] = facts.logs.model_copy(update={"templates": templates})
        if facts.service_events is not None:
            update["service_events"] = [
                e.model_copy(update={"sample": self._optional(e.sample)})
                for e in facts.service_events
            ]
        if facts.http is not None:
            update["http"] = [
                h.model_copy(update={"url": self.redact(h.url), "error": self._optional(h.error)})
                for h in facts.http
            ]
        return facts.model_copy(update=update)

    def redact_results(self, results: Iterable[CheckResult]) -> list[CheckResult]:
        out: list[CheckResult] = []
        for r in results:
            params = {
                k: self.redact(v) if isinstance(v, str) else v for k, v in r.message.params.items()
            }
            out.append(
                r.model_copy(
                    update={
                        "evidence": self.redact_lines(r.evidence),
                        "summary": self.redact(r.summary),
                        "recommendation": self._optional(r.recommendation),
                        "value": self.redact(r.value) if isinstance(r.value, str) else r.value,
                        "message": r.message.model_copy(update={"params": params}),
                    }
                )
            )
        return out

    def redact_run(self, run: InspectionRun) -> InspectionRun:
        """The run as it may leave the host; call it before spooling, printing or writing."""
        return run.model_copy(
            update={
                "facts": self.redact_facts(run.facts),
                "results": self.redact_results(run.results),
            }
        )

    def _optional(self, text: Optional[str]) -> Optional[str]:
        return None if text is None else self.redact(text)
