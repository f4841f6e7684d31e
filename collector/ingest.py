"""Store runs exactly once and keep every finding's lifecycle across runs.

At-least-once delivery meets a unique `run_id`: a replay of the same payload gets the original
receipt back, a different payload under a used id is refused (409) and changes nothing. Each run
is judged again with the contract's thresholds (defaults → contract → host → item), and in the
same transaction its problems open, extend or resolve findings — one row per episode of a
(host, check, item) problem. Runs are ordered by `created_at` (when the source made them): a run
older than the host's newest one, delivered late from a spool, may open or widen past episodes
but never resolves a newer finding.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Optional

from pydantic import TypeAdapter
from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from checks.evaluate import evaluate
from checks.facts import HostIdentity
from checks.model import CheckResult, InspectionRun, Severity, worst
from checks.wire import RunReceipt
from collector.contracts import Contract
from collector.db.alerts import inserted_key
from collector.db.contract_store import contract_version, get_contract
from collector.db.engine import Database
from collector.db.models import ContractRow, Finding, Host, Run
from collector.db.types import utcnow

log = logging.getLogger(__name__)

BAD = frozenset({Severity.warning, Severity.critical, Severity.unknown})
_RESULTS = TypeAdapter(list[CheckResult])
OPEN, RESOLVED = "open", "resolved"


class IngestError(Exception):
    status = 400


class RunConflict(IngestError):
    """The run_id is taken by a different payload (or another host)."""

    status = 409


class UnknownContract(IngestError):
    status = 404


class CredentialGone(IngestError):
    """The host's credential was revoked or replaced after the caller's credential was cached."""

    status = 401


@dataclass(frozen=True)
class HostRef:
    """What ingest needs to know about the host a run belongs to."""

    id: str
    contract: str
    hostname: str
    tags: tuple[str, ...] = ()
    # When set, the run is refused unless this is still the host's live credential: checked on
    # the locked host row, so a credential cached by the API stops the moment it is revoked.
    credential_sha256: Optional[str] = None


@dataclass(frozen=True)
class _Stored:
    """The run row just inserted, as far as the findings lifecycle needs it."""

    id: int
    run_id: str
    created_at: datetime


@dataclass(frozen=True)
class Ingested:
    receipt: RunReceipt
    # A finding opened, changed severity or resolved: the alerts hook has something to decide.
    # When False it would only re-read what the scheduler's minute tick reads anyway.
    alerts_due: bool


def canonical(run: InspectionRun) -> bytes:
    """The model's own compact serialisation: fields in model order, no whitespace, values
    normalised by validation. A replay of the same spooled run gives the same bytes whatever
    the sender's formatting; maps keep the order they were sent in."""
    return run.model_dump_json(by_alias=True).encode()


def pack(data: bytes) -> bytes:
    return zlib.compress(data, 1)


def load_payload(row: Run) -> InspectionRun:
    """The run as it was received (canonical form)."""
    return InspectionRun.model_validate_json(zlib.decompress(row.payload))


def load_results(row: Run) -> list[CheckResult]:
    """The collector's own evaluation of the run, with the contract's thresholds."""
    return _RESULTS.validate_json(zlib.decompress(row.results))


def judge(session: Session, host: HostRef, run: InspectionRun) -> list[CheckResult]:
    return _evaluate(get_contract(session, host.contract), host, run)


def _evaluate(contract: Optional[Contract], host: HostRef, run: InspectionRun) -> list[CheckResult]:
    if contract is None:
        raise UnknownContract(f"contract {host.contract} is not imported")
    selector = contract.host_selector(host.hostname, host.id, host.tags)
    return evaluate(run.facts, contract.resolver_for(selector))


def ingest_run(
    db: Database,
    host: HostRef,
    run: InspectionRun,
    *,
    via: str = "agent",
    now: Optional[datetime] = None,
) -> RunReceipt:
    """Store `run` for `host` once; returns the receipt (duplicate=True for a replay)."""
    return ingest(db, host, run, via=via, now=now).receipt


def ingest(
    db: Database,
    host: HostRef,
    run: InspectionRun,
    *,
    via: str = "agent",
    now: Optional[datetime] = None,
) -> Ingested:
    """`ingest_run`, also saying whether the alerts hook has work.

    On PostgreSQL everything happens in one transaction on one connection: each statement is a
    round trip, and under load the round trips, not the SQL, were the cost. SQLite's write lock
    is database-wide, so there the run is judged before the lock is taken.
    """
    body = canonical(run)
    sha = hashlib.sha256(body).hexdigest()
    run_id = str(run.run_id)
    results: Optional[list[CheckResult]] = None
    if db.is_sqlite:
        with db.read() as session:
            known = _existing(session, run_id, sha, host.id)
            if known is not None:
                return Ingested(known, False)
            results = judge(session, host, run)
    with db.write() as session:
        # Serialise runs of one host across collectors (SQLite's BEGIN IMMEDIATE already has);
        # the contract's version comes along, so its cached model needs no query of its own.
        row, version = session.execute(
            select(Host, ContractRow.source_sha256)
            .join(ContractRow, ContractRow.number == Host.contract)
            .where(Host.id == host.id)
            .with_for_update(of=Host)
        ).one()
        check_credential(row, host.credential_sha256)
        if results is None:
            results = _evaluate(contract_version(session, host.contract, version), host, run)
        return _store(session, row, run, results, body, sha, via, now or utcnow())


def check_credential(row: Host, expected: Optional[str]) -> None:
    """Refuse a credential the API took from its cache (`expected`, see `HostRef`) unless it is
    still the live credential of `row`, which the caller has locked."""
    if expected is not None and (
        row.revoked_at is not None
        or row.credential_sha256 is None
        or not hmac.compare_digest(row.credential_sha256, expected)
    ):
        raise CredentialGone("host credential revoked or replaced")


def _existing(session: Session, run_id: str, sha: str, host_id: str) -> Optional[RunReceipt]:
    row = session.execute(
        select(Run.payload_sha256, Run.host_id, Run.received_at, Run.findings).where(
            Run.run_id == run_id
        )
    ).first()
    if row is None:
        return None
    if row.payload_sha256 != sha or row.host_id != host_id:
        raise RunConflict(f"run_id {run_id} was already stored with a different payload")
    return RunReceipt(
        run_id=uuid.UUID(run_id),
        host_id=host_id,
        received_at=row.received_at,
        findings=row.findings,
        duplicate=True,
    )


def _store(
    session: Session,
    host: Host,
    run: InspectionRun,
    results: list[CheckResult],
    body: bytes,
    sha: str,
    via: str,
    now: datetime,
) -> Ingested:
    bad = [r for r in results if r.severity in BAD]
    run_id = str(run.run_id)
    # A run_id already taken (a replay, or another collector's concurrent insert of it, which
    # this waits for) inserts nothing and changes nothing: the stored row decides 200 or 409.
    key = inserted_key(
        session,
        Run,
        {
            "run_id": run_id,
            "host_id": host.id,
            "contract": host.contract,
            "source": run.source.value,
            "via": via,
            "ad_hoc": via != "agent",
            "created_at": run.created_at,
            "received_at": now,
            "window_start": run.window.start,
            "window_end": run.window.end,
            "worst": worst([r.severity for r in results]).value,
            "findings": len(bad),
            "payload_sha256": sha,
            "payload": pack(body),
            "results": pack(_RESULTS.dump_json(results)),
        },
    )
    if key is None:
        known = _existing(session, run_id, sha, host.id)
        assert known is not None  # the conflict was on run_id, the only other key being ours
        return Ingested(known, False)
    row = _Stored(key, run_id, run.created_at)
    newest = host.last_run_at is None or run.created_at >= host.last_run_at
    if newest:
        changed = _advance(session, host, row, _by_key(bad))
        host.last_run_at = run.created_at
        _refresh_identity(host, run.host, run.agent_version)
    else:
        changed = _backfill(session, host, row, _by_key(bad))
    receipt = RunReceipt(run_id=run.run_id, host_id=host.id, received_at=now, findings=len(bad))
    return Ingested(receipt, changed)


def _by_key(results: Iterable[CheckResult]) -> dict[tuple[str, str], CheckResult]:
    """One result per (check, item); should a rule repeat one, the worst counts."""
    out: dict[tuple[str, str], CheckResult] = {}
    for r in results:
        key = (r.check, r.item or "")
        if key not in out or r.severity.rank > out[key].severity.rank:
            out[key] = r
    return out


def _advance(
    session: Session, host: Host, run: _Stored, bad: dict[tuple[str, str], CheckResult]
) -> bool:
    """The newest run: open what is new, carry what persists, resolve what went away.
    True when a finding opened, changed severity or resolved.

    Only the columns the decision needs are read: most runs repeat the host's open problems
    unchanged, and loading every open finding whole (JSON value, evidence, parameters) cost
    more than the rest of the run's storage. Whole rows are loaded for the few that change.
    """
    open_rows = session.execute(
        select(Finding.id, Finding.check, Finding.item, Finding.severity).where(
            Finding.host_id == host.id, Finding.state == OPEN
        )
    ).all()
    current = {(f.check, f.item): f for f in open_rows}
    unchanged: list[int] = []
    changed: dict[int, CheckResult] = {}
    for key, result in bad.items():
        found = current.pop(key, None)
        if found is None:
            session.add(_new_finding(host, run, result))
        elif found.severity == result.severity.value:
            unchanged.append(found.id)
        else:
            changed[found.id] = result
    if unchanged:
        # One statement moves them all on. Their value and evidence stay as of the last change
        # of severity; the run's stored results hold each run's exact figures.
        session.execute(
            update(Finding)
            .where(Finding.id.in_(unchanged))
            .values(last_run=run.run_id, last_seen=run.created_at)
            .execution_options(synchronize_session=False)
        )
    if changed:
        for finding in session.scalars(select(Finding).where(Finding.id.in_(changed))):
            _update(finding, run, changed[finding.id])
    if current:
        session.execute(
            update(Finding)
            .where(Finding.id.in_([f.id for f in current.values()]))
            .values(state=RESOLVED, resolved_run=run.run_id, resolved_at=run.created_at)
            .execution_options(synchronize_session=False)
        )
    return bool(changed) or len(unchanged) < len(bad) or bool(current)


def _backfill(
    session: Session, host: Host, run: _Stored, bad: dict[tuple[str, str], CheckResult]
) -> bool:
    """A run older than the newest: record what it saw without resolving anything newer.
    What it records is past or widens an episode already known, so alerts have nothing new
    (False) unless it turns out to be the newest after all."""
    if not bad:
        return False
    t = run.created_at
    later = session.execute(
        select(Run.run_id, Run.created_at)
        .where(Run.host_id == host.id, Run.created_at > t, Run.id != run.id)
        .order_by(Run.created_at, Run.id)
        .limit(1)
    ).first()
    if later is None:  # cannot happen while last_run_at > t; be safe rather than lose it
        return _advance(session, host, run, bad)
    episodes = session.scalars(
        select(Finding).where(
            Finding.host_id == host.id,
            or_(*(and_(Finding.check == c, Finding.item == i) for c, i in bad)),
        )
    ).all()
    for key, result in bad.items():
        mine = [f for f in episodes if (f.check, f.item) == key]
        covering = next(
            (f for f in mine if f.first_seen <= t and (f.resolved_at is None or f.resolved_at > t)),
            None,
        )
        if covering is not None:
            _raise_max(covering, result.severity)
            continue
        following = next((f for f in mine if f.opened_run == later.run_id), None)
        if following is not None:  # the episode began earlier than we knew
            following.first_seen = t
            following.opened_run = run.run_id
            _raise_max(following, result.severity)
            continue
        finding = _new_finding(host, run, result)
        finding.state = RESOLVED
        finding.resolved_run = later.run_id
        finding.resolved_at = later.created_at
        session.add(finding)
    return False


def _new_finding(host: Host, run: _Stored, result: CheckResult) -> Finding:
    finding = Finding(
        host_id=host.id,
        contract=host.contract,
        check=result.check,
        item=result.item or "",
        category=result.category.value,
        state=OPEN,
        max_severity=result.severity.value,
        opened_run=run.run_id,
        first_seen=run.created_at,
    )
    _update(finding, run, result)
    return finding


def _update(finding: Finding, run: _Stored, result: CheckResult) -> None:
    finding.severity = result.severity.value
    _raise_max(finding, result.severity)
    finding.value = result.value
    finding.unit = result.unit
    finding.message_key = result.message.key
    finding.message_params = dict(result.message.params)
    finding.threshold = result.threshold.model_dump(mode="json") if result.threshold else None
    finding.evidence = list(result.evidence)
    finding.recommendation_key = result.recommendation_key
    finding.last_run = run.run_id
    finding.last_seen = run.created_at


def _raise_max(finding: Finding, severity: Severity) -> None:
    if finding.max_severity is None or severity.rank > Severity(finding.max_severity).rank:
        finding.max_severity = severity.value


def _refresh_identity(host: Host, identity: HostIdentity, agent_version: str) -> None:
    host.identity = identity.model_dump(mode="json")
    if identity.machine_id:
        host.machine_id = identity.machine_id
    if agent_version:
        host.agent_version = agent_version


def host_for_submission(
    db: Database, contract: str, identity: HostIdentity, now: Optional[datetime] = None
) -> HostRef:
    """The live host of that hostname under the contract, created if new (SSH runs, imports)."""
    for _ in range(2):
        with db.read() as session:
            row = _live_host(session, contract, identity.hostname)
            if row is not None:
                return HostRef(row.id, row.contract, row.hostname, tuple(row.tags))
            if get_contract(session, contract) is None:
                raise UnknownContract(f"contract {contract} is not imported")
        try:
            with db.write() as session:
                new = new_host(contract, identity, tags=(), now=now or utcnow())
                session.add(new)
            return HostRef(new.id, new.contract, new.hostname, ())
        except IntegrityError:
            continue  # created concurrently by another request: read it back
    raise IngestError(f"could not create host {identity.hostname} under {contract}")


def _live_host(session: Session, contract: str, hostname: str) -> Optional[Host]:
    return session.scalars(
        select(Host).where(
            Host.contract == contract, Host.hostname == hostname, Host.revoked_at.is_(None)
        )
    ).first()


def new_host(
    contract: str,
    identity: HostIdentity,
    *,
    tags: Sequence[str],
    now: datetime,
    credential_sha256: Optional[str] = None,
    agent_version: str = "",
) -> Host:
    return Host(
        id=str(uuid.uuid4()),
        contract=contract,
        hostname=identity.hostname,
        machine_id=identity.machine_id,
        tags=list(tags),
        identity=identity.model_dump(mode="json"),
        credential_sha256=credential_sha256,
        agent_version=agent_version,
        enrolled_at=now,
    )


def finding_item(finding: Finding) -> Optional[str]:
    return finding.item or None


def run_summary(row: Run) -> dict[str, Any]:
    """The columns of a run a listing shows (no payload)."""
    return {
        "run_id": row.run_id,
        "host_id": row.host_id,
        "contract": row.contract,
        "source": row.source,
        "via": row.via,
        "ad_hoc": row.ad_hoc,
        "created_at": row.created_at,
        "received_at": row.received_at,
        "window_start": row.window_start,
        "window_end": row.window_end,
        "worst": row.worst,
        "findings": row.findings,
    }
