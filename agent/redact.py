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
import string
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Callable, Optional
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from agent.config import RedactionConfig
from checks.facts import FactSet
from checks.model import CheckResult, InspectionRun

MASK = "***"

_FOLD = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
"""ASCII-only lowercasing keeps every offset, so a match in the folded text marks the same span
in the original; re.IGNORECASE costs about 15× more on typical log lines."""

_WORD = frozenset(string.ascii_letters + string.digits + "_.-")
_ALNUM = frozenset(string.ascii_letters + string.digits)
_DIGITS = frozenset(string.digits)


def _fold(text: str) -> str:
    """str.lower() is fast but may change the length of non-ASCII text; translate never does."""
    return text.lower() if text.isascii() else text.translate(_FOLD)


def _before(text: str, i: int) -> str:
    return text[i - 1] if i > 0 else ""


def _after(text: str, i: int) -> str:
    return text[i] if i < len(text) else ""


Replace = Callable[["re.Match[str]", str], Optional[str]]
"""(match, original text) → the replacement, or None to leave the match alone."""


@dataclass(frozen=True)
class _Rule:
    pattern: re.Pattern[str]
    replace: Replace
    folded: bool = False
    """Match against the ASCII-lowercased text (patterns written in lower case)."""
    gate: Optional[Callable[[str], bool]] = None
    """A cheap test of the (folded) text without which the rule cannot match."""

    def apply(self, text: str, folded: str) -> str:
        subject = folded if self.folded else text
        if self.gate is not None and not self.gate(subject):
            return text
        parts: list[str] = []
        last = 0
        for m in self.pattern.finditer(subject):
            new = self.replace(m, text)
            if new is not None:
                parts += (text[last : m.start()], new)
                last = m.end()
        if not parts:
            return text
        parts.append(text[last:])
        return "".join(parts)


def _mask_value(m: re.Match[str], text: str) -> str:
    """Keep everything before the value (key, separator, scheme), mask the value, keep quotes."""
    value = text[m.start("value") : m.end("value")]
    quote = value[0] if value[:1] in ("'", '"') and len(value) > 1 and value[-1] == value[0] else ""
    return f"{text[m.start() : m.start('value')]}{quote}{MASK}{quote}"


def _mask(m: re.Match[str], text: str) -> str:
    return MASK


_PEM = re.compile(
    r"-----BEGIN (?P<label>[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?)-----"
    r"(?:.*?-----END (?P=label)-----|.*\Z)",
    re.DOTALL,
)
_PEM_BEGIN = re.compile(r"-----BEGIN (?P<label>[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?)-----")
_PEM_END = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")


def _pem(m: re.Match[str], text: str) -> str:
    label = m.group("label")
    end = f"-----END {label}-----" if m.group(0).endswith(f"-----END {label}-----") else ""
    return f"-----BEGIN {label}-----{MASK}{end}"


_AUTH_HEADER = re.compile(
    r"(?<![\w-])(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?"
    r"(?:(?:bearer|basic|digest|token|negotiate|ntlm|aws4-hmac-sha256)\s+)?"
    r"(?P<value>[^\s\"'][^\"'\r\n]*)"
)
_BEARER = re.compile(r"\bbearer\s+(?P<value>[a-z0-9._~+/=-]{8,})")
_URL_USERINFO = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/:@]*:(?P<value>[^\s/]+)@")


def _userinfo(m: re.Match[str], text: str) -> str:
    return f"{text[m.start() : m.start('value')]}{MASK}@"


_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")

_SECRET_WORDS = (
    r"passw(?:or)?d|passphrase|secret|token|api[_-]?key|access[_-]?key|private[_-]?key"
    r"|credentials?|session[_-]?id|jsessionid|phpsessid"
)
_SHORT_WORDS = frozenset(["pwd", "pass", "pw", "auth", "sig", "signature", "cookie"])
_KEY_VALUE = re.compile(
    rf"(?P<word>{_SECRET_WORDS}|{'|'.join(sorted(_SHORT_WORDS, key=len, reverse=True))})"
    r"(?P<rest>[\w.-]{0,40})[\"']?\s*(?:=>|[:=])\s*"
    r"(?P<value>\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*'|[\"']?[^\s&\"'<>})\]]+)"
)


def _key_value(m: re.Match[str], text: str) -> Optional[str]:
    """A short word ('pass', 'auth') counts only as a whole key: not 'author=' or 'bypass='."""
    if m.group("word") in _SHORT_WORDS and (m.group("rest") or _before(text, m.start()) in _WORD):
        return None
    return _mask_value(m, text)


_CLI_FLAG = re.compile(
    r"(?<![\w-])--?(?:password|passwd|pass|token|secret|api-key|access-key)\s+(?P<value>[^\s-]\S*)"
)
_SQL_IDENTIFIED = re.compile(
    r"\bidentified\s+(?:with\s+\S+\s+)?by\s+(?:password\s+)?(?P<value>'[^']*'|\"[^\"]*\"|\S+)"
)

# One leading character class lets the regex engine skip ahead; the callback checks each
# vendor's own length and alphabet.
_CLOUD_KEY_ID = re.compile(r"(?:A(?:KIA|SIA|GPA|IDA|ROA|NPA|NVA|IPA|BIA|CCA|KID)|LTAI)[A-Za-z0-9]+")
_AWS_REST = re.compile(r"[A-Z0-9]{16}")


def _cloud_key(m: re.Match[str], text: str) -> Optional[str]:
    key = m.group(0)
    prefix, rest = key[:4], key[4:]
    if _before(text, m.start()) in _ALNUM:
        return None
    if prefix == "LTAI":
        ok = 12 <= len(rest) <= 28
    elif prefix == "AKID":
        ok = len(rest) == 32
    else:
        ok = _AWS_REST.fullmatch(rest) is not None
    return prefix + MASK if ok else None


_BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{40,}={0,2}")


def _base64(m: re.Match[str], text: str) -> Optional[str]:
    """Key material (a PEM body line, a bare secret key) but not a path: few slashes, mixed case."""
    run = m.group(0)
    mixed = any(c.isupper() for c in run) and any(c.islower() for c in run)
    if mixed and any(c.isdigit() for c in run) and run.count("/") * 12 <= len(run):
        return MASK
    return None


_ID_CARD = re.compile(r"[1-9][0-9]{16}[0-9Xx]")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


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


def _id_card(m: re.Match[str], text: str) -> Optional[str]:
    number = m.group(0)
    if _before(text, m.start()) in _DIGITS or _after(text, m.end()) in _DIGITS:
        return None
    return "*" * 14 + number[14:] if id_card_valid(number) else None


def _has_long_token(size: int) -> Callable[[str], bool]:
    return lambda text: any(len(token) >= size for token in text.split())


_PHONE = re.compile(r"1[3-9][0-9](?P<sep>[- ]?)[0-9]{4}(?P=sep)[0-9]{4}")
_COUNTRY_CODE = re.compile(r"(?:\+|00)?86[- ]?\Z")


def _phone(m: re.Match[str], text: str) -> Optional[str]:
    """A mobile number alone, or after +86 / 0086 / 86; never inside a longer run of characters."""
    start = m.start()
    code = _COUNTRY_CODE.search(text, max(0, start - 6), start)
    if code is not None:
        start = code.start()
    if _before(text, start) in _ALNUM or _after(text, m.end()) in _ALNUM:
        return None
    digits = m.group(0).replace("-", "").replace(" ", "")
    return f"{digits[:3]}****{digits[-4:]}"


_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])(?P<local>[A-Za-z0-9._%+-]+)@"
    r"(?P<domain>[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})"
)


_KEY_WORDS = ("pass", "pw", "secret", "token", "key", "credential", "sess", "auth", "sig", "cookie")


def _email(m: re.Match[str], text: str) -> str:
    return f"{m.group('local')[0]}{MASK}@{m.group('domain')}"


# Order matters: whole blocks and headers first, so the generic key=value rule sees their masks.
_BUILTIN = (
    _Rule(_PEM, _pem, gate=lambda t: "-----BEGIN" in t),
    _Rule(_AUTH_HEADER, _mask_value, folded=True, gate=lambda t: "authorization" in t),
    _Rule(_BEARER, _mask_value, folded=True, gate=lambda t: "bearer" in t),
    _Rule(_URL_USERINFO, _userinfo, gate=lambda t: "://" in t),
    _Rule(_JWT, _mask, gate=lambda t: "eyJ" in t),
    _Rule(_KEY_VALUE, _key_value, folded=True, gate=lambda t: any(w in t for w in _KEY_WORDS)),
    _Rule(_CLI_FLAG, _mask_value, folded=True, gate=lambda t: "-" in t),
    _Rule(_SQL_IDENTIFIED, _mask_value, folded=True, gate=lambda t: "identified" in t),
    _Rule(_CLOUD_KEY_ID, _cloud_key),
    _Rule(_BASE64_RUN, _base64, gate=_has_long_token(40)),
    _Rule(_ID_CARD, _id_card, gate=_has_long_token(18)),
    _Rule(_PHONE, _phone),
    _Rule(_EMAIL, _email, gate=lambda t: "@" in t),
)


def mask_url(url: str, *, path: bool = True) -> str:
    """A configured URL as it may be shown, logged and stored: tokens hide in it.

    User info and query values become ``***``; `path=False` keeps only scheme, host and port
    (with ``/…`` when there was more), for chat robots that carry their token in the path.
    Used by the agent's HTTP probe and by the collector's alert delivery.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid URL>"
    host = f"[{host}]" if ":" in host else host
    if not path:
        tail = "/…" if parts.path not in ("", "/") or parts.query else ""
        return f"{parts.scheme}://{host or '?'}{port}{tail}"
    user = f"{MASK}@" if parts.username or parts.password else ""
    query = "&".join(f"{key}={MASK}" for key, _ in parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit((parts.scheme, user + host + port, parts.path, query, ""))


class RedactionError(ValueError):
    """A configured pattern that is not a valid regular expression."""


class Redactor:
    """Compiled once per process; `redact` is called on every evidence and sample line."""

    def __init__(self, config: Optional[RedactionConfig] = None) -> None:
        config = config or RedactionConfig()
        self.rules: list[_Rule] = list(_BUILTIN) if config.enabled else []
        words = sorted({k.translate(_FOLD) for k in config.keywords if k}, key=len, reverse=True)
        if words:
            keywords = re.compile("|".join(re.escape(w) for w in words))
            self.rules.append(_Rule(keywords, _mask, folded=True))
        for number, pattern in enumerate(config.patterns, start=1):
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise RedactionError(f"redaction.patterns[{number}] {pattern!r}: {exc}") from exc
            self.rules.append(_Rule(compiled, _mask))

    def redact(self, text: str) -> str:
        folded = _fold(text)
        for rule in self.rules:
            changed = rule.apply(text, folded)
            if changed is not text:
                text = changed
                folded = _fold(text)
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
