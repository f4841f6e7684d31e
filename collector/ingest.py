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
from functools import lru_cache
from typing import Any, Optional, Protocol, TypeVar, Union, cast

from pydantic import TypeAdapter
from sqlalchemy import Select, String, Table, and_, bindparam, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from checks.evaluate import evaluate
from checks.facts import HostIdentity
from checks.model import CheckResult, InspectionRun, Severity, worst
from checks.wire import RunReceipt
from collector.contracts import Contract
from collector.db.contract_store import contract_version, get_contract, last_known
from collector.db.engine import Database
from collector.db.models import ContractRow, Finding, Host, Run
from collector.db.types import UtcDateTime, utcnow

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
    normalised by validation; maps keep the order they were sent in. Two payloads of one run_id
    are the same run when their canonical forms are equal, whatever the sender's formatting."""
    return run.model_dump_json(by_alias=True).encode()


def pack(data: bytes) -> bytes:
    return zlib.compress(data, 1)


def load_payload(row: Run) -> InspectionRun:
    """The run as it was received: its JSON zlib-packed here, or gzip as the sender posted it
    (wbits 47: whichever header the stored bytes carry)."""
    return InspectionRun.model_validate_json(zlib.decompress(row.payload, 47))


def load_results(row: Run) -> list[CheckResult]:
    """The collector's own evaluation of the run, with the contract's thresholds."""
    return _RESULTS.validate_json(zlib.decompress(row.results))


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
    """Store `run` for `host` once; returns the receipt (duplicate=True for a replay). Raises
    the run's IngestError. (The API goes through `group_commit`, which batches `store_many`.)"""
    (outcome,) = store_many(db, [prepare(host, run, via)], now=now)
    if isinstance(outcome, Exception):
        raise outcome
    return outcome.receipt


@dataclass
class Prepared:
    """A run ready to store: its canonical bytes and their digest, and — when this process knows
    the contract's current version — its results, judged before any transaction."""

    host: HostRef
    run: InspectionRun
    via: str
    body: bytes
    sha: str
    packed: Optional[bytes] = None  # `body` compressed as posted (gzip), stored as it is
    judged: Optional[tuple[str, list[CheckResult]]] = None  # (contract version, results)

    @property
    def run_id(self) -> str:
        return str(self.run.run_id)


def prepare(
    host: HostRef,
    run: InspectionRun,
    via: str = "agent",
    raw: Optional[bytes] = None,
    packed: Optional[bytes] = None,
) -> Prepared:
    """`raw`: the JSON text `run` was validated from, kept as the stored payload (what the
    sender sent, and no serialising on the hot path); without it, the canonical form.
    `packed`: `raw` gzipped as it was posted, stored instead of compressing `raw` again."""
    body = raw if raw is not None else canonical(run)
    item = Prepared(host, run, via, body, hashlib.sha256(body).hexdigest(), packed)
    known = last_known(host.contract)
    if known is not None:
        item.judged = (known[0], _evaluate(known[1], host, run))
    return item


Outcome = Union[Ingested, Exception]
"""What became of one run of a batch: stored (or a replay), refused (IngestError), or the
database's own error when the run could not be stored even alone."""


def store_many(
    db: Database, items: Sequence[Prepared], *, now: Optional[datetime] = None
) -> list[Outcome]:
    """Store runs of distinct hosts in one transaction (group commit); one outcome per item.

    Each statement is a round trip, and under load the round trips, not the SQL, were the cost:
    a batch locks its hosts, inserts its runs and carries their findings in about six
    statements, whether it holds one run or sixty. A run refused on its own merits (credential
    gone, unknown contract, run_id taken) is answered without touching the others; should the
    transaction itself fail, each run is retried alone so that one cannot sink the rest.
    """
    assert len({i.host.id for i in items}) == len(items), "one run per host in a batch"
    try:
        with db.write() as session:
            return _store_batch(session, items, now or utcnow())
    except Exception as exc:
        if len(items) == 1:
            return [exc]
        log.warning("batch of %d runs failed; storing them one by one", len(items), exc_info=True)
    return [store_many(db, [item], now=now)[0] for item in items]


def _store_batch(session: Session, items: Sequence[Prepared], now: datetime) -> list[Outcome]:
    outcomes: list[Optional[Outcome]] = [None] * len(items)
    columns = (
        _HOSTS.c.last_run_at,
        _HOSTS.c.last_run_id,
        _HOSTS.c.machine_id,
        _HOSTS.c.agent_version,
    )
    locked = {
        key: _Locked(*row)
        for key, row in lock_hosts(session, [i.host.id for i in items], *columns).items()
    }
    ready: list[tuple[int, _Locked, list[CheckResult]]] = []
    for n, item in enumerate(items):
        try:
            ready.append((n, *_checked(session, item, locked.get(item.host.id))))
        except IngestError as exc:
            outcomes[n] = exc
    inserted = _insert_runs(session, [(items[n], host, results) for n, host, results in ready], now)
    newest: list[tuple[int, _Locked, _Stored, dict[tuple[str, str], CheckResult]]] = []
    moved: list[dict[str, Any]] = []
    for n, host, results in ready:
        item = items[n]
        key = inserted.get(item.run_id)
        if key is None:  # a replay, or the id taken by another payload or host
            outcomes[n] = _existing(session, item, host.id)
            continue
        bad = [r for r in results if r.severity in BAD]
        stored = _Stored(key, item.run_id, item.run.created_at)
        outcomes[n] = Ingested(
            RunReceipt(run_id=item.run.run_id, host_id=host.id, received_at=now, findings=len(bad)),
            False,
        )
        if host.last_run_at is None or item.run.created_at >= host.last_run_at:
            newest.append((n, host, stored, _by_key(bad)))
            moved.append(_moved_on(host, item.run))
        elif _backfill(session, host, stored, _by_key(bad)):
            outcomes[n] = Ingested(_receipt(outcomes[n]), True)
    for (n, *_), due in zip(newest, _advance(session, [w[1:] for w in newest])):
        outcomes[n] = Ingested(_receipt(outcomes[n]), due)
    if moved:
        session.connection().execute(_MOVE_HOST, moved)
    assert all(o is not None for o in outcomes)
    return [o for o in outcomes if o is not None]


def _receipt(outcome: Optional[Outcome]) -> RunReceipt:
    assert isinstance(outcome, Ingested)
    return outcome.receipt


@dataclass(frozen=True)
class _Locked:
    """The columns of a locked host row that storing a run reads (no ORM object per host)."""

    id: str
    contract: str
    credential_sha256: Optional[str]
    revoked_at: Optional[datetime]
    last_run_at: Optional[datetime]
    last_run_id: Optional[str]
    machine_id: Optional[str]
    agent_version: str
    version: str  # the contract's source_sha256


_HOSTS = cast(Table, Host.__table__)
_CONTRACTS = cast(Table, ContractRow.__table__)
_MOVE_HOST = (
    update(_HOSTS)
    .where(_HOSTS.c.id == bindparam("b_id"))
    .values(
        last_run_at=bindparam("b_last_run_at"),
        last_run_id=bindparam("b_last_run_id"),
        identity=bindparam("b_identity"),
        machine_id=bindparam("b_machine_id"),
        agent_version=bindparam("b_agent_version"),
    )
)
"""The host's newest run and the identity it reported, for all hosts of a batch at once. The
newest run is also every open finding's last run (`Finding.last_run`, `last_seen`)."""


def _moved_on(host: _Locked, run: InspectionRun) -> dict[str, Any]:
    return {
        "b_id": host.id,
        "b_last_run_at": run.created_at,
        "b_last_run_id": str(run.run_id),
        "b_identity": run.host.model_dump(mode="json"),
        "b_machine_id": run.host.machine_id or host.machine_id,
        "b_agent_version": run.agent_version or host.agent_version,
    }


def _checked(
    session: Session, item: Prepared, locked: Optional[_Locked]
) -> tuple[_Locked, list[CheckResult]]:
    """The item's locked host row, its credential still live, and the run's results judged with
    the contract's current version."""
    locked = live_host(item.host.id, locked, item.host.credential_sha256)
    if item.judged is not None and item.judged[0] == locked.version:
        return locked, item.judged[1]
    contract = contract_version(session, item.host.contract, locked.version)
    return locked, _evaluate(contract, item.host, item.run)


def _insert_runs(
    session: Session, work: Sequence[tuple[Prepared, _Locked, list[CheckResult]]], now: datetime
) -> dict[str, int]:
    """One INSERT … ON CONFLICT DO NOTHING for all runs: run_id → new row id of those inserted.
    A run_id already taken (a replay, or another collector's concurrent insert of it, which
    this waits for) inserts nothing and changes nothing: the stored row decides 200 or 409."""
    if not work:
        return {}
    connection = session.connection()
    rows = [
        {
            "run_id": item.run_id,
            "host_id": host.id,
            "contract": host.contract,
            "source": item.run.source.value,
            "via": item.via,
            "ad_hoc": item.via != "agent",
            "created_at": item.run.created_at,
            "received_at": now,
            "window_start": item.run.window.start,
            "window_end": item.run.window.end,
            "worst": worst([r.severity for r in results]).value,
            "findings": sum(r.severity in BAD for r in results),
            "payload_sha256": item.sha,
            "payload": item.packed or pack(item.body),
            "results": pack(_RESULTS.dump_json(results)),
        }
        for item, host, results in work
    ]
    # executemany: SQLAlchemy sends it as one multi-row INSERT ("insertmanyvalues") from a
    # statement compiled once, where `.values(rows)` compiled a new statement every batch
    stmt = _INSERT_RUNS[connection.dialect.name]
    return {run_id: key for run_id, key in connection.execute(stmt, rows)}


_INSERT_RUNS = {
    name: dialect.insert(Run).on_conflict_do_nothing().returning(Run.run_id, Run.id)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}


class Credentialed(Protocol):
    """A locked host row, as an ORM object or the columns a batch read."""

    @property
    def credential_sha256(self) -> Optional[str]: ...

    @property
    def revoked_at(self) -> Optional[datetime]: ...


def lock_hosts(session: Session, host_ids: Sequence[str], *columns: Any) -> dict[str, Any]:
    """Lock the hosts' rows for a batch, in id order (two collectors' batches never wait on each
    other in a cycle), serialising one host's writes across collectors: id → row of id,
    contract, credential_sha256, revoked_at, `columns`, and the contract's version
    (source_sha256), so its cached model needs no query of its own.

    Like the batch's other reads, a Core statement on the session's connection: through
    `session.execute` the ORM's statement and result layers cost more client CPU than the round
    trip itself (with the rest moved too, a batch of one run 3.5 → 3.1 ms, of one sample batch
    3.2 → 2.8 ms on PostgreSQL)."""
    rows = session.connection().execute(_lock_statement(columns), {"b_ids": sorted(host_ids)})
    return {row.id: row for row in rows}


@lru_cache(maxsize=None)
def _lock_statement(columns: tuple[Any, ...]) -> Select[Any]:
    """`lock_hosts`' statement, built once per set of columns: building it for every batch cost
    more client CPU than its round trip (~0.2 ms against ~0.1 ms)."""
    hosts, contracts = _HOSTS, _CONTRACTS
    return (
        select(
            hosts.c.id,
            hosts.c.contract,
            hosts.c.credential_sha256,
            hosts.c.revoked_at,
            *columns,
            contracts.c.source_sha256,
        )
        .join(contracts, contracts.c.number == hosts.c.contract)
        .where(hosts.c.id.in_(bindparam("b_ids", expanding=True)))
        .order_by(hosts.c.id)
        .with_for_update(of=hosts)
    )


T = TypeVar("T", bound="Credentialed")


def live_host(host_id: str, locked: Optional[T], expected: Optional[str]) -> T:
    """The locked row of `host_id` (None: not found), refused unless `expected` is still its
    live credential."""
    if locked is None:
        raise CredentialGone(f"host {host_id} is not enrolled")
    check_credential(locked, expected)
    return locked


def check_credential(row: Credentialed, expected: Optional[str]) -> None:
    """Refuse a credential the API took from its cache (`expected`, see `HostRef`) unless it is
    still the live credential of `row`, which the caller has locked."""
    if expected is not None and (
        row.revoked_at is not None
        or row.credential_sha256 is None
        or not hmac.compare_digest(row.credential_sha256, expected)
    ):
        raise CredentialGone("host credential revoked or replaced")


def _existing(session: Session, item: Prepared, host_id: str) -> Outcome:
    """The answer for a run whose run_id is taken: a replay (same host, same run) gets the
    original receipt; anything else is a conflict."""
    row = session.execute(
        select(Run.payload_sha256, Run.host_id, Run.received_at, Run.findings).where(
            Run.run_id == item.run_id
        )
    ).first()
    if row is None:  # the conflicting insert was rolled back since: the sender retries
        return IngestError(f"run_id {item.run_id} is being stored by another request; retry")
    if row.host_id != host_id or (row.payload_sha256 != item.sha and not _same_run(session, item)):
        return RunConflict(f"run_id {item.run_id} was already stored with a different payload")
    receipt = RunReceipt(
        run_id=item.run.run_id,
        host_id=host_id,
        received_at=row.received_at,
        findings=row.findings,
        duplicate=True,
    )
    return Ingested(receipt, False)


def _same_run(session: Session, item: Prepared) -> bool:
    """Other bytes may still be the same run (re-serialised by the sender): compare canonical
    forms. Only on this rare path is the stored payload read back."""
    stored = session.scalar(select(Run).where(Run.run_id == item.run_id))
    return stored is not None and canonical(load_payload(stored)) == canonical(item.run)


def _by_key(results: Iterable[CheckResult]) -> dict[tuple[str, str], CheckResult]:
    """One result per (check, item); should a rule repeat one, the worst counts."""
    out: dict[tuple[str, str], CheckResult] = {}
    for r in results:
        key = (r.check, r.item or "")
        if key not in out or r.severity.rank > out[key].severity.rank:
            out[key] = r
    return out


_FINDINGS = cast(Table, Finding.__table__)
_RESOLVE = (
    update(_FINDINGS)
    .where(_FINDINGS.c.id == bindparam("b_id"))
    .values(
        state=RESOLVED,
        resolved_run=bindparam("b_run"),
        resolved_at=bindparam("b_at"),
        # the last run that saw it: the host's newest until this one (unknown only for a host
        # whose runs were all deleted; then the run of its last change stays)
        last_run=func.coalesce(bindparam("b_seen_run", type_=String), _FINDINGS.c.last_run),
        last_seen=func.coalesce(bindparam("b_seen_at", type_=UtcDateTime()), _FINDINGS.c.last_seen),
    )
)
"""What an open finding carries from run to run is not written: it reads its host's newest run
(`Finding.last_run`). Until the ninth round each run updated every open finding of its host
(~12 rows a run), the database's largest statement in the bench."""
_OPEN_FINDINGS = select(
    _FINDINGS.c.id,
    _FINDINGS.c.host_id,
    _FINDINGS.c.check,
    _FINDINGS.c.item,
    _FINDINGS.c.severity,
).where(_FINDINGS.c.host_id.in_(bindparam("b_hosts", expanding=True)), _FINDINGS.c.state == OPEN)
"""The open findings of a batch's hosts, only the columns `_advance` decides on; built once, as
`_lock_statement`."""


def _advance(
    session: Session,
    work: Sequence[tuple[_Locked, _Stored, dict[tuple[str, str], CheckResult]]],
) -> list[bool]:
    """Runs that are their host's newest: open what is new, carry what persists, resolve what
    went away — for all of them in a handful of statements. Per run: True when a finding
    opened, changed severity or resolved.

    Only the columns the decision needs are read: most runs repeat the host's open problems
    unchanged, and loading every open finding whole (JSON value, evidence, parameters) cost
    more than the rest of the run's storage. Whole rows are loaded for the few that change;
    those that persist unchanged are not written at all (see `_RESOLVE`).
    """
    if not work:
        return []
    open_rows: dict[str, dict[tuple[str, str], Any]] = {host.id: {} for host, _, _ in work}
    for f in session.connection().execute(_OPEN_FINDINGS, {"b_hosts": list(open_rows)}):
        open_rows[f.host_id][(f.check, f.item)] = f
    resolved: list[dict[str, Any]] = []
    changed: dict[int, tuple[_Stored, CheckResult]] = {}
    due: list[bool] = []
    for host, run, bad in work:
        current = open_rows[host.id]
        moved = len(changed)
        kept = 0
        for key, result in bad.items():
            found = current.pop(key, None)
            if found is None:
                session.add(_new_finding(host, run, result))
            elif found.severity == result.severity.value:
                # Value and evidence stay as of the last change of severity; the run's stored
                # results hold each run's exact figures.
                kept += 1
            else:
                changed[found.id] = (run, result)
        resolved += [
            {
                "b_id": f.id,
                "b_run": run.run_id,
                "b_at": run.created_at,
                "b_seen_run": host.last_run_id,
                "b_seen_at": host.last_run_at,
            }
            for f in current.values()
        ]
        due.append(len(changed) > moved or kept < len(bad) or bool(current))
    if resolved:  # one executemany, whatever the number of hosts
        session.connection().execute(_RESOLVE, resolved)
    if changed:
        for finding in session.scalars(select(Finding).where(Finding.id.in_(changed))):
            _update(finding, *changed[finding.id])
    return due


def _backfill(
    session: Session, host: _Locked, run: _Stored, bad: dict[tuple[str, str], CheckResult]
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
        return _advance(session, [(host, run, bad)])[0]
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


def _new_finding(host: _Locked, run: _Stored, result: CheckResult) -> Finding:
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
    finding.stored_last_run = run.run_id
    finding.stored_last_seen = run.created_at


def _raise_max(finding: Finding, severity: Severity) -> None:
    if finding.max_severity is None or severity.rank > Severity(finding.max_severity).rank:
        finding.max_severity = severity.value


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
