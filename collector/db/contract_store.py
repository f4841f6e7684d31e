"""Contracts in the database: all-or-nothing import, and a cached validated model per contract.

The stored JSON keeps only the fields the file set (`exclude_unset`), so a default the file left
alone (e.g. silence_minutes) can still come from the collector's settings.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from agent.config import ConfigError
from collector.alerts.config import REVEAL_SECRETS
from collector.contracts import Contract, load_contract
from collector.db.engine import Database
from collector.db.models import ContractRow
from collector.db.types import utcnow

_cache: dict[str, tuple[str, Contract]] = {}
_lock = threading.Lock()


def import_contracts(
    db: Database, paths: Sequence[Path], now: Optional[datetime] = None
) -> list[str]:
    """Validate every file first, then store all in one transaction; ConfigError names the file."""
    loaded: list[tuple[Path, Contract, str]] = []
    seen: dict[str, Path] = {}
    for path in paths:
        try:
            contract = load_contract(path)
        except UnicodeDecodeError as exc:  # read_toml does not catch this one
            raise ConfigError(f"{path}: not UTF-8 text: {exc}") from exc
        if contract.number in seen:
            raise ConfigError(
                f"{path}: number: {contract.number} is also defined in {seen[contract.number]}"
            )
        seen[contract.number] = path
        loaded.append((path, contract, hashlib.sha256(path.read_bytes()).hexdigest()))
    when = now or utcnow()
    with db.write() as session:
        for path, contract, sha in loaded:
            row = session.get(ContractRow, contract.number)
            data = contract.model_dump(mode="json", exclude_unset=True, context=REVEAL_SECRETS)
            if row is None:
                session.add(
                    ContractRow(
                        number=contract.number,
                        data=data,
                        source_name=path.name,
                        source_sha256=sha,
                        imported_at=when,
                    )
                )
            else:
                row.data, row.source_name, row.source_sha256, row.imported_at = (
                    data,
                    path.name,
                    sha,
                    when,
                )
    return [c.number for _, c, _ in loaded]


def get_contract(session: Session, number: str) -> Optional[Contract]:
    """The validated contract, re-validated only when a new version was imported."""
    sha = session.scalar(select(ContractRow.source_sha256).where(ContractRow.number == number))
    if sha is None:
        return None
    return contract_version(session, number, sha)


def last_known(number: str) -> Optional[tuple[str, Contract]]:
    """The version (`source_sha256`) and model this process validated last, without a query:
    ingest judges a run with it before its transaction and again inside only when the locked
    host row shows the contract has moved on."""
    return _cache.get(number)


def contract_version(session: Session, number: str, sha: str) -> Optional[Contract]:
    """`get_contract` for a caller that read the version (`source_sha256`) in its own query."""
    cached = _cache.get(number)
    if cached is not None and cached[0] == sha:
        return cached[1]
    row = session.get(ContractRow, number)
    if row is None:
        return None
    contract = Contract.model_validate(row.data)
    with _lock:
        _cache[number] = (row.source_sha256, contract)
    return contract


def silence_minutes(contract: Contract, default: int) -> int:
    """The contract's own silence limit when its file sets one, else the collector's default."""
    return contract.silence_minutes if "silence_minutes" in contract.model_fields_set else default
