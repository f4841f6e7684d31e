"""Who is calling: an enrolled host (writes only its own data) or an API key (people, scripts).

Secrets are random strings with a readable prefix (xje_ enroll token, xjh_ host credential,
xjk_ API key) and are stored only as their SHA-256: they carry 256 bits of entropy, so a slow
password hash would add nothing. Lookups go by the hash; `hmac.compare_digest` confirms it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from typing import Annotated, Optional

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import State

from collector.db.engine import Database
from collector.db.models import ApiKey, Host
from collector.ingest import CredentialGone

ENROLL_PREFIX = "xje_"
HOST_PREFIX = "xjh_"
KEY_PREFIX = "xjk_"


class Role(str, Enum):
    admin = "admin"
    engineer = "engineer"
    viewer = "viewer"


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Principal:
    """The authenticated caller. Hosts carry their identity; keys their role and scope."""

    kind: str  # "host" | "key"
    label: str
    role: Optional[Role] = None
    contract: Optional[str] = None  # a host's contract, or a key's scope (None: all contracts)
    host_id: Optional[str] = None
    hostname: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)
    credential_sha256: Optional[str] = None  # hosts: what they authenticated with

    def sees(self, contract: str) -> bool:
        return self.kind == "key" and (self.contract is None or self.contract == contract)


_bearer = HTTPBearer(auto_error=False, description="host credential (xjh_…) or API key (xjk_…)")


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(401, reason, headers={"WWW-Authenticate": "Bearer"})


def authenticate(db: Database, secret: str) -> Principal:
    hashed = digest(secret)
    with db.read() as session:
        if secret.startswith(HOST_PREFIX):
            host = session.scalars(select(Host).where(Host.credential_sha256 == hashed)).first()
            if (
                host is None
                or host.credential_sha256 is None
                or not hmac.compare_digest(host.credential_sha256, hashed)
            ):
                raise _unauthorized("unknown host credential")
            if host.revoked_at is not None:
                raise _unauthorized("host credential revoked")
            return Principal(
                kind="host",
                label=f"host:{host.hostname}",
                contract=host.contract,
                host_id=host.id,
                hostname=host.hostname,
                tags=tuple(host.tags),
                credential_sha256=hashed,
            )
        if secret.startswith(KEY_PREFIX):
            key = session.scalars(select(ApiKey).where(ApiKey.key_sha256 == hashed)).first()
            if key is None or not hmac.compare_digest(key.key_sha256, hashed):
                raise _unauthorized("unknown API key")
            if key.revoked_at is not None:
                raise _unauthorized("API key revoked")
            return Principal(
                kind="key",
                label=f"key:{key.id}" + (f" ({key.name})" if key.name else ""),
                role=Role(key.role),
                contract=key.contract,
            )
    raise _unauthorized("unknown credential")


async def database(request: Request) -> Database:
    """Async so that FastAPI resolves it on the event loop, not with a thread-pool hop."""
    db: Database = request.app.state.db
    return db


def principal(
    request: Request,
    creds: Annotated[Optional[HTTPAuthorizationCredentials], Depends(_bearer)],
) -> Principal:
    if creds is None or not creds.credentials:
        raise _unauthorized("missing Authorization: Bearer credential")
    return authenticate(request.app.state.db, creds.credentials)


def agent(p: Annotated[Principal, Depends(principal)]) -> Principal:
    """Enrolled hosts only: what they post is about themselves."""
    if p.kind != "host":
        raise HTTPException(403, "this endpoint is for enrolled hosts")
    return p


def reader(p: Annotated[Principal, Depends(principal)]) -> Principal:
    if p.kind != "key":
        raise HTTPException(403, "host credentials cannot read collector data")
    return p


def engineer(p: Annotated[Principal, Depends(reader)]) -> Principal:
    if p.role == Role.viewer:
        raise HTTPException(403, "viewers may only read")
    return p


Agent = Annotated[Principal, Depends(agent)]
Reader = Annotated[Principal, Depends(reader)]
Engineer = Annotated[Principal, Depends(engineer)]
Db = Annotated[Database, Depends(database)]


class HostCredentials:
    """Host credentials verified recently, by their SHA-256, for the run ingest path only.

    A lookup costs a pooled connection and two round trips per request, and an agent sends the
    same credential with every post. What a cached entry lets through is re-checked on the
    locked host row before anything is stored (`HostRef.credential_sha256`), so a revoked or
    replaced credential stops at once; the TTL only bounds how long a dead entry lingers.
    """

    def __init__(self, ttl_seconds: float = 60.0, max_entries: int = 100_000) -> None:
        self.ttl, self.max_entries = ttl_seconds, max_entries
        self._lock = threading.Lock()
        self._known: dict[str, tuple[float, Principal]] = {}

    def cached(self, secret: str) -> Optional[Principal]:
        with self._lock:
            hit = self._known.get(digest(secret))
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def principal(self, db: Database, secret: str) -> Principal:
        hit = self.cached(secret)
        if hit is not None:  # a hit never extends the entry's life
            return hit
        found = authenticate(db, secret)
        hashed, now = digest(secret), time.monotonic()
        with self._lock:
            if len(self._known) >= self.max_entries:
                self._known = {k: v for k, v in self._known.items() if v[0] > now}
            if len(self._known) < self.max_entries:
                self._known[hashed] = (now + self.ttl, found)
        return found

    def forget(self, hashed: str) -> None:
        with self._lock:
            self._known.pop(hashed, None)

    @contextmanager
    def rechecked(self, who: Principal) -> Iterator[None]:
        """Around a write that re-checks `who`'s cached credential on the locked host row: a
        refusal (CredentialGone) also drops the cache entry."""
        try:
            yield
        except CredentialGone:
            self.forget(who.credential_sha256 or "")
            raise


async def host_principal(state: State, secret: str) -> Principal:
    """A host credential's principal for the agents' endpoints, through the app's
    `HostCredentials` (`state`: the app's state): a cached credential costs no thread-pool hop;
    a lookup still runs in the pool. The endpoint must re-check it on its locked host row
    (`collector.ingest.check_credential`)."""
    known: HostCredentials = state.host_credentials
    hit = known.cached(secret)
    return hit if hit is not None else await run_in_threadpool(known.principal, state.db, secret)


async def cached_agent(
    request: Request,
    creds: Annotated[Optional[HTTPAuthorizationCredentials], Depends(_bearer)],
) -> Principal:
    """`agent`, with host credentials from `host_principal` (API keys, rare here, are looked up
    every time, to tell an unknown one, 401, from one that may not post, 403). One dependency,
    not `agent` over `principal`: each level FastAPI solves costs ~15 µs a request on the agents'
    busiest FastAPI endpoint (POST /samples)."""
    if creds is None or not creds.credentials:
        raise _unauthorized("missing Authorization: Bearer credential")
    if creds.credentials.startswith(HOST_PREFIX):
        return await host_principal(request.app.state, creds.credentials)
    return agent(await run_in_threadpool(authenticate, request.app.state.db, creds.credentials))


CachedAgent = Annotated[Principal, Depends(cached_agent)]
