"""known_hosts checking for the SSH mode, strict by default, with the file and line in every error.

OpenSSH's rules, kept here: a host is looked up as `host` on port 22 and as `[host]:port`
otherwise; names may be hashed (`|1|salt|hmac`), patterns (`*.example.com`) and negated
(`!bastion.example.com`). A key that matches a line is trusted. A host with lines but none that
match the offered key is *changed* — refused always, whatever the options, before any
credential is sent. A host without lines is *unknown*: refused unless the caller accepts new
keys, in which case the key is pinned (appended) so the next run checks it.

A host known with a key of another type than the one offered counts as changed, not unknown: a
man in the middle could otherwise pick a type the user has never seen. Connections ask for the
known types first (`preferred_algorithms`), so an unchanged server offers the pinned key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

# Host key algorithms that negotiate each key type (an RSA key signs with SHA-2 since OpenSSH 7.2).
_ALGORITHMS = {
    "ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"),
}
_PIN_LOCK = threading.Lock()


def fingerprint(blob: bytes) -> str:
    """OpenSSH's `SHA256:` fingerprint of a public key blob."""
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")
    return f"SHA256:{digest}"


def host_entry_name(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


class HostKeyError(Exception):
    """The server's key is unknown (and not accepted) or differs from the pinned one."""

    def __init__(self, message: str, *, changed: bool) -> None:
        super().__init__(message)
        self.changed = changed


@dataclass(frozen=True)
class KnownKey:
    path: Path
    line: int
    key_type: str
    blob: bytes

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def _name_matches(pattern: str, name: str) -> bool:
    if pattern.startswith("|1|"):
        try:
            _, _, salt, digest = pattern.split("|", 3)
            mac = hmac.new(base64.b64decode(salt), name.encode(), hashlib.sha1).digest()
            return hmac.compare_digest(base64.b64encode(mac).decode(), digest)
        except (ValueError, binascii.Error):
            return False
    # OpenSSH patterns know only * and ?; brackets are literal ([host]:port), not a class.
    wild = {"*": ".*", "?": "."}
    regex = "".join(wild.get(c, re.escape(c)) for c in pattern.lower())
    return re.fullmatch(regex, name.lower()) is not None


def _line_matches(names: str, name: str) -> bool:
    patterns = names.split(",")
    if any(p.startswith("!") and _name_matches(p[1:], name) for p in patterns):
        return False
    return any(not p.startswith("!") and _name_matches(p, name) for p in patterns)


class KnownHosts:
    """The user's known_hosts plus any `--known-hosts` files; pins go to `pin_file`."""

    def __init__(self, files: Sequence[Path], pin_file: Path, accept_new: bool = False) -> None:
        self.files = list(files)
        self.pin_file = pin_file
        self.accept_new = accept_new

    def keys_for(self, host: str, port: int) -> List[KnownKey]:
        name = host_entry_name(host, port)
        found: List[KnownKey] = []
        for path in self.files:
            try:
                lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise HostKeyError(f"cannot read {path}: {exc.strerror}", changed=False) from None
            for number, raw in enumerate(lines, start=1):
                fields = raw.split()
                # @cert-authority and @revoked lines are not supported; they never vouch for a key.
                if len(fields) < 3 or fields[0].startswith("#") or fields[0].startswith("@"):
                    continue
                if not _line_matches(fields[0], name):
                    continue
                try:
                    blob = base64.b64decode(fields[2], validate=True)
                except binascii.Error:
                    continue
                found.append(KnownKey(path, number, fields[1], blob))
        return found

    def preferred_algorithms(self, host: str, port: int, available: Sequence[str]) -> List[str]:
        """Host key algorithms with the pinned types first, as OpenSSH orders them."""
        known = [k.key_type for k in self.keys_for(host, port)]
        first: List[str] = []
        for key_type in known:
            for algorithm in _ALGORITHMS.get(key_type, (key_type,)):
                if algorithm in available and algorithm not in first:
                    first.append(algorithm)
        return first + [a for a in available if a not in first]

    def verify(self, host: str, port: int, key_type: str, blob: bytes) -> Optional[KnownKey]:
        """Return the matching line, pin a new key when allowed, or raise HostKeyError.

        Returns None when the key was unknown and has just been pinned.
        """
        known = self.keys_for(host, port)
        offered = fingerprint(blob)
        for entry in known:
            if hmac.compare_digest(entry.blob, blob):
                return entry
        where = f"{host}:{port}"
        if known:
            expected = "; ".join(f"{k.key_type} {fingerprint(k.blob)} ({k.where})" for k in known)
            raise HostKeyError(
                f"host key for {where} has CHANGED — refusing to connect (possible man-in-the-"
                f"middle). expected {expected}; offered {key_type} {offered}. If the change is "
                f"legitimate, remove the old line from the known_hosts file named here.",
                changed=True,
            )
        if not self.accept_new:
            raise HostKeyError(
                f"host key for {where} is unknown ({key_type} {offered}); not in "
                f"{', '.join(str(f) for f in self.files)}. Verify the fingerprint with the host's "
                f"administrator, then run again with --accept-new to pin it.",
                changed=False,
            )
        self.pin(host, port, key_type, blob)
        return None

    def pin(self, host: str, port: int, key_type: str, blob: bytes) -> None:
        """Append the key; the file and its directory are private to the user, as ssh keeps them."""
        line = (
            f"{host_entry_name(host, port)} {key_type} {base64.b64encode(blob).decode('ascii')}\n"
        )
        with _PIN_LOCK:
            self.pin_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.pin_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as fh:
                if fh.tell() > 0 and not _ends_with_newline(self.pin_file):
                    fh.write("\n")
                fh.write(line)


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"
