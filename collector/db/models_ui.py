"""The web console's tables: people who log in, their sessions, and failed log-ins.

Sessions live in the database rather than in signed cookies so that a log-out or a disabled user
takes effect at once on every collector sharing the database; the cookie holds a random token and
the row only its SHA-256. Failed log-ins are rows too, so the rate limit holds across collectors.
"""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from collector.db.models import Base
from collector.db.types import BigIntPK


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True, comment="log-in name, lower case")
    password_hash: Mapped[str] = mapped_column(String(255), comment="argon2id, PHC string")
    role: Mapped[str] = mapped_column(String(20), comment="admin | engineer | viewer")
    contracts: Mapped[list[str]] = mapped_column(
        comment="contract numbers the user may see; empty: every contract (not for viewers)"
    )
    lang: Mapped[Optional[str]] = mapped_column(String(10), comment="zh_CN | en; null: browser")
    created_at: Mapped[datetime]
    disabled_at: Mapped[Optional[datetime]]
    last_login_at: Mapped[Optional[datetime]]


class ConsoleSession(Base):
    __tablename__ = "ui_sessions"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("users.id"), index=True)
    csrf: Mapped[str] = mapped_column(String(64), comment="the form token of this session")
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    client: Mapped[str] = mapped_column(String(100), default="", comment="address at log-in")


class LoginFailure(Base):
    """One failed log-in, counted against both the name tried and the client address."""

    __tablename__ = "ui_login_failures"
    __table_args__ = (
        Index("ix_ui_login_failures_name_at", "name", "at"),
        Index("ix_ui_login_failures_client_at", "client", "at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), comment="the name tried, lower case")
    client: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime]
