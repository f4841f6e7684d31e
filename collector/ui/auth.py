"""Console users, their sessions, CSRF tokens and the failed log-in limit.

- Passwords are hashed with argon2id at OWASP's recommended minimum (19 MiB, 2 passes, 1 lane):
  RFC 9106's 64 MiB × 4 lanes took over a second per log-in on a busy 2-core collector. The
  parameters live in each stored hash, so a stronger setting later rehashes at the next log-in.
  An unknown name is checked against a dummy hash, so the answer takes as long as for a real one.
- A session is a random 256-bit token in an HttpOnly cookie; the database keeps its SHA-256, the
  user and a CSRF token for the session's forms. Log-out deletes the row.
- The log-in form has no session yet: its CSRF token is the HMAC, under the console's secret
  key, of a random nonce kept in a cookie (signed double submit), so a page on another site can
  neither read nor forge it.
- Failed log-ins are rows counted per name and per client address over a window. Each attempt
  is recorded *before* the password is checked and forgiven on success, so a burst of parallel
  guesses counts every guess, on every collector sharing the database.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Optional, Union

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from collector.auth import Principal, Role
from collector.db.contract_store import get_contract
from collector.db.engine import Database
from collector.db.models_ui import ConsoleSession, LoginFailure, User
from collector.ui.config import UiSettings

NAME_RE = re.compile(r"[a-z0-9][a-z0-9._@-]{0,99}")
MIN_PASSWORD = 10
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class UserError(ValueError):
    """A user that cannot be created as asked (bad name, role, scope or password)."""


@dataclass(frozen=True)
class ConsoleUser:
    id: int
    name: str
    role: Role
    contracts: tuple[str, ...]
    lang: Optional[str] = None

    def sees(self, contract: str) -> bool:
        return not self.contracts or contract in self.contracts

    @property
    def can_act(self) -> bool:
        """Engineers and admins may acknowledge, inspect and send; viewers only read."""
        return self.role is not Role.viewer

    def principal(self) -> Principal:
        """The API's view of this user, for calling the API's own actions (ack, inspect).
        Scope is checked by the console first; `label` is what the API records as who."""
        return Principal(kind="key", label=f"user:{self.name}", role=self.role)

    @classmethod
    def of(cls, row: User) -> ConsoleUser:
        return cls(row.id, row.name, Role(row.role), tuple(row.contracts), row.lang)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(stored: Optional[str], password: str) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def normalize_name(name: str) -> str:
    return name.strip().lower()


def check_new_user(
    session: Session, name: str, role: Union[Role, str], contracts: tuple[str, ...]
) -> tuple[str, Role]:
    """(log-in name, role) when such a user may be created; UserError says why not."""
    login = normalize_name(name)
    if not NAME_RE.fullmatch(login):
        raise UserError(
            f"user name {name!r}: 1–100 characters, letters, digits and . _ @ - "
            "(starting with a letter or digit)"
        )
    try:
        chosen = Role(role)
    except ValueError as exc:
        raise UserError(f"role {role!r}: expected admin, engineer or viewer") from exc
    if chosen is Role.viewer and not contracts:
        raise UserError("a viewer needs at least one --contract (viewers see only their contracts)")
    missing = [c for c in contracts if get_contract(session, c) is None]
    if missing:
        raise UserError(f"no contract {', '.join(missing)}; import it first")
    if session.scalar(select(User.id).where(User.name == login)) is not None:
        raise UserError(f"user {login} exists already")
    return login, chosen


def create_user(
    session: Session,
    name: str,
    password: str,
    role: Union[Role, str],
    contracts: tuple[str, ...],
    now: datetime,
) -> User:
    login, chosen = check_new_user(session, name, role, contracts)
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password needs at least {MIN_PASSWORD} characters")
    user = User(
        name=login,
        password_hash=hash_password(password),
        role=chosen.value,
        contracts=sorted(set(contracts)),
        created_at=now,
    )
    session.add(user)
    session.flush()
    return user


# --------------------------------------------------------------------------- log-in and limit


@dataclass(frozen=True)
class LoginResult:
    user: Optional[ConsoleUser] = None
    locked_until: Optional[datetime] = None
    """Set when the attempt was refused unchecked: too many recent failures."""


def _failures(
    session: Session, column: str, value: str, since: datetime
) -> tuple[int, Optional[datetime]]:
    col = getattr(LoginFailure, column)
    count, oldest = session.execute(
        select(func.count(), func.min(LoginFailure.at)).where(col == value, LoginFailure.at > since)
    ).one()
    return int(count), oldest


def log_in(
    db: Database, name: str, password: str, client: str, ui: UiSettings, now: datetime
) -> LoginResult:
    """Check a log-in against the rate limit and the password (see the module docstring)."""
    login = normalize_name(name)[:100]
    client = client[:100]
    window = timedelta(minutes=ui.login_window_minutes)
    with db.write() as session:
        attempt = LoginFailure(name=login, client=client, at=now)
        session.add(attempt)
        session.execute(delete(LoginFailure).where(LoginFailure.at < now - 4 * window))
        session.flush()
        attempt_id = attempt.id
    with db.read() as session:
        by_name, name_oldest = _failures(session, "name", login, now - window)
        by_client, client_oldest = _failures(session, "client", client, now - window)
        row = session.scalars(
            select(User).where(User.name == login, User.disabled_at.is_(None))
        ).first()
    if by_name > ui.max_failures_per_user or by_client > ui.max_failures_per_client:
        with db.write() as session:
            session.execute(delete(LoginFailure).where(LoginFailure.id == attempt_id))
        oldest = [
            t
            for t, over in (
                (name_oldest, by_name > ui.max_failures_per_user),
                (client_oldest, by_client > ui.max_failures_per_client),
            )
            if over and t is not None
        ]
        return LoginResult(locked_until=max(oldest, default=now) + window)
    if not password_matches(row.password_hash if row else None, password) or row is None:
        return LoginResult()
    with db.write() as session:
        session.execute(delete(LoginFailure).where(LoginFailure.name == login))
        session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at < now))
        stored = session.get(User, row.id)
        if stored is not None:
            stored.last_login_at = now
            if _hasher.check_needs_rehash(stored.password_hash):
                stored.password_hash = hash_password(password)
    return LoginResult(user=ConsoleUser.of(row))


# --------------------------------------------------------------------------- sessions


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def open_session(
    db: Database, user: ConsoleUser, client: str, ui: UiSettings, now: datetime
) -> str:
    """A new session for `user`; returns the cookie token (stored only as its hash)."""
    token = secrets.token_urlsafe(32)
    with db.write() as session:
        session.add(
            ConsoleSession(
                token_sha256=_sha(token),
                user_id=user.id,
                csrf=secrets.token_urlsafe(32),
                created_at=now,
                expires_at=now + timedelta(hours=ui.session_hours),
                client=client[:100],
            )
        )
    return token


@dataclass(frozen=True)
class ActiveSession:
    user: ConsoleUser
    csrf: str
    token_sha256: str


def find_session(db: Database, token: Optional[str], now: datetime) -> Optional[ActiveSession]:
    if not token or len(token) > 200:
        return None
    with db.read() as session:
        found = session.execute(
            select(ConsoleSession, User)
            .join(User, User.id == ConsoleSession.user_id)
            .where(
                ConsoleSession.token_sha256 == _sha(token),
                ConsoleSession.expires_at > now,
                User.disabled_at.is_(None),
            )
        ).first()
    if found is None:
        return None
    row, user = found
    return ActiveSession(ConsoleUser.of(user), row.csrf, row.token_sha256)


def close_session(db: Database, token_sha256: str) -> None:
    with db.write() as session:
        session.execute(delete(ConsoleSession).where(ConsoleSession.token_sha256 == token_sha256))


def set_language(db: Database, user_id: int, lang: str) -> None:
    with db.write() as session:
        row = session.get(User, user_id)
        if row is not None:
            row.lang = lang


# --------------------------------------------------------------------------- CSRF


def load_secret(path: Path) -> bytes:
    """The console's key, made (0600, 32 random bytes as hex) when the file does not exist."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text(encoding="ascii").strip()
        if len(key) < 32:
            raise ValueError(
                f"{path}: the console key is too short (need ≥ 32 characters)"
            ) from None
        return key.encode("ascii")
    key = secrets.token_hex(32)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key + "\n")
    return key.encode("ascii")


def login_csrf(secret: bytes, nonce: str) -> str:
    return hmac.new(secret, b"login-csrf:" + nonce.encode(), hashlib.sha256).hexdigest()


def tokens_equal(expected: Optional[str], given: Optional[str]) -> bool:
    return (
        bool(expected)
        and bool(given)
        and hmac.compare_digest(str(expected).encode(), str(given).encode())
    )
