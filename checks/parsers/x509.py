"""Subject and expiry of PEM certificates, read with a minimal DER walk (no crypto library).

The SSH probe sends only the certificate blocks of a configured file; expiry is all that
cert.expiry judges, so a full X.509 implementation (and a dependency on the target or in
`checks/`) is not needed. Signatures are not verified: this reads, it does not trust.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime, timezone
from typing import Optional

from checks.facts import CertFacts
from checks.parsers import ParseError

_PEM = re.compile(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.S)
_SEQUENCE, _SET, _OID, _UTCTIME, _GENTIME = 0x30, 0x31, 0x06, 0x17, 0x18
_NAMES = {
    "2.5.4.3": "CN",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
}


def _tlv(der: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of value, end of value) of the element at `pos`."""
    if pos + 2 > len(der):
        raise ParseError("certificate: truncated DER")
    tag, length = der[pos], der[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or pos + count > len(der):
            raise ParseError("certificate: bad DER length")
        length = int.from_bytes(der[pos : pos + count], "big")
        pos += count
    if pos + length > len(der):
        raise ParseError("certificate: truncated DER")
    return tag, pos, pos + length


def _children(der: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    out = []
    while start < end:
        tag, vstart, vend = _tlv(der, start)
        out.append((tag, vstart, vend))
        start = vend
    return out


def _oid(raw: bytes) -> str:
    if not raw:
        return ""
    parts = [raw[0] // 40, raw[0] % 40]
    value = 0
    for byte in raw[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    return ".".join(str(p) for p in parts)


def _time(tag: int, raw: bytes) -> datetime:
    text = raw.decode("ascii", "replace").rstrip("Z")
    try:
        if tag == _UTCTIME:
            value = datetime.strptime(text[:12], "%y%m%d%H%M%S")
            if value.year >= 2050:  # RFC 5280: UTCTime years 50–99 are 1950–1999
                value = value.replace(year=value.year - 100)
        elif tag == _GENTIME:
            value = datetime.strptime(text[:14], "%Y%m%d%H%M%S")
        else:
            raise ParseError(f"certificate: validity time has ASN.1 tag {tag:#x}")
    except ValueError:
        raise ParseError(f"certificate: bad validity time {text!r}") from None
    return value.replace(tzinfo=timezone.utc)


def _name(der: bytes, start: int, end: int) -> str:
    parts = []
    for tag, rs, re_ in _children(der, start, end):
        if tag != _SET:
            continue
        for _, as_, ae in _children(der, rs, re_):
            pair = _children(der, as_, ae)
            if len(pair) == 2 and pair[0][0] == _OID:
                oid = _oid(der[pair[0][1] : pair[0][2]])
                value = der[pair[1][1] : pair[1][2]].decode("utf-8", "replace")
                parts.append(f"{_NAMES.get(oid, oid)}={value}")
    return ", ".join(parts)


def parse_der_certificate(der: bytes) -> tuple[str, datetime]:
    """(subject, notAfter) of one DER certificate."""
    tag, start, end = _tlv(der, 0)
    if tag != _SEQUENCE:
        raise ParseError("certificate: not a DER SEQUENCE")
    tbs = _children(der, start, end)[0]
    fields = _children(der, tbs[1], tbs[2])
    if fields and fields[0][0] == 0xA0:  # explicit version
        fields = fields[1:]
    if len(fields) < 5:
        raise ParseError("certificate: too few fields in tbsCertificate")
    validity = _children(der, fields[3][1], fields[3][2])
    if len(validity) != 2:
        raise ParseError("certificate: validity is not two times")
    not_after = _time(validity[1][0], der[validity[1][1] : validity[1][2]])
    return _name(der, fields[4][1], fields[4][2]), not_after


def parse_pem_certificates(text: str, path: str) -> list[CertFacts]:
    """Every certificate block of a PEM file, in file order.

    Sample::

        -----BEGIN CERTIFICATE-----
        MIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQswCQYDVQQGEwJJ
        …
        -----END CERTIFICATE-----

    A file without any certificate, or a block that does not decode, is one CertFacts with an
    error, so cert.expiry reports it instead of passing silently.
    """
    blocks = _PEM.findall(text)
    if not blocks:
        return [CertFacts(path=path, error="no PEM certificate in the file")]
    out: list[CertFacts] = []
    for block in blocks:
        subject: Optional[str] = None
        try:
            der = base64.b64decode("".join(block.split()), validate=True)
            subject, not_after = parse_der_certificate(der)
        except (binascii.Error, ValueError, IndexError) as exc:
            out.append(
                CertFacts(path=path, subject=subject, error=f"unreadable certificate: {exc}")
            )
            continue
        out.append(CertFacts(path=path, subject=subject, not_after=not_after))
    return out
