"""Several collectors on one database: each report is claimed once and each mail sent once."""

from __future__ import annotations

import threading
import zlib
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from collector import periods
from collector.contracts import Contract
from collector.db.contract_store import import_contracts
from collector.db.engine import Database
from collector.db.models_reports import OutboxRow, ReportRow
from collector.mail import compose, message_id
from collector.outbox import backoff, drain, enqueue
from collector.reports.store import REPORT_MAIL, claim, metrics_text, report_mail_handler
from collector.settings import SmtpSettings
from tests.collector.conftest import free_port
from tests.reports.helpers import EXAMPLE, example_contract
from tests.reports.smtp_server import smtp_server

pytestmark = pytest.mark.py311

NOW = datetime(2027, 1, 10, tzinfo=timezone.utc)
SENDER = "reports@vendor.example"
N = 50


def _daily_contract() -> Contract:
    """50 one-day 'periods' would be odd; instead 50 explicit ad hoc spans of one contract."""
    return example_contract(start=date(2026, 1, 1), end=date(2026, 12, 31))


def _spans(contract: Contract) -> list[periods.Period]:
    return [
        periods.parse(f"{d.isoformat()}..{d.isoformat()}", contract)
        for d in (date(2026, 1, 1) + timedelta(days=i) for i in range(N))
    ]


def _run_in_threads(workers: list[Callable[[], None]]) -> None:
    errors: list[BaseException] = []

    def wrap(fn: Callable[[], None]) -> None:
        try:
            fn()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=wrap, args=(fn,)) for fn in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors


def test_two_collectors_claim_each_report_once(db: Database) -> None:
    import_contracts(db, [EXAMPLE])
    contract = _daily_contract()
    won: dict[str, list[str]] = {"a": [], "b": []}

    def collector(name: str) -> Callable[[], None]:
        def work() -> None:
            own = Database(db.url, pool_size=2)  # a separate engine, like another process
            try:
                for p in _spans(contract):
                    if claim(own, contract, p, "zh_CN", name, now=NOW):
                        won[name].append(p.key)
            finally:
                own.dispose()

        return work

    _run_in_threads([collector("a"), collector("b")])
    assert sorted(won["a"] + won["b"]) == sorted(p.key for p in _spans(contract))
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(ReportRow)) == N


def test_two_collectors_send_each_of_50_reports_exactly_once(db: Database) -> None:
    import_contracts(db, [EXAMPLE])
    contract = _daily_contract()
    mail = compose(
        subject="s",
        text="t",
        html="<p>h</p>",
        images={},
        pdf=b"%PDF-1.7\n%%EOF\n",
        filename="巡检报告.pdf",
        ascii_filename="report.pdf",
    ).as_bytes()
    expected: list[str] = []
    with db.write() as session:
        for p in _spans(contract):
            row = ReportRow(
                contract=contract.number,
                period_key=p.key,
                period_start=p.start,
                period_end=p.end,
                scheduled=False,
                state="built",
                lang="zh_CN",
                version=1,
                runs=1,
                hosts_inspected=1,
                hosts_expected=1,
                summary={},
                mail=zlib.compress(mail),
                created_at=NOW,
                built_at=NOW,
            )
            session.add(row)
            session.flush()
            msg_id = message_id(contract.number, p.key, "v1", SENDER)
            expected.append(msg_id)
            assert enqueue(
                session,
                kind=REPORT_MAIL,
                key=f"report:{contract.number}:{p.key}:v1",
                ref=f"report:{row.id}",
                contract=contract.number,
                payload={"report_id": row.id, "to": ["zhang.wei@customer.example"], "cc": []},
                message_id=msg_id,
            )
        # queuing the same key again is a no-op
        assert not enqueue(
            session,
            kind=REPORT_MAIL,
            key=f"report:{contract.number}:{_spans(contract)[0].key}:v1",
            ref="x",
            payload={},
        )
    port = free_port()
    smtp = SmtpSettings(host="127.0.0.1", port=port, security="none", **{"from": SENDER})
    sent: dict[str, list[int]] = {}

    def collector(name: str) -> Callable[[], None]:
        def work() -> None:
            own = Database(db.url, pool_size=2)
            try:
                sent[name] = drain(
                    own, name, {REPORT_MAIL: report_mail_handler(own, smtp)}, limit=3
                ).sent
            finally:
                own.dispose()

        return work

    with smtp_server(port) as sink:
        _run_in_threads([collector("a"), collector("b")])
    received = Counter(m["Message-ID"] for m in sink.parsed())
    assert sorted(received) == sorted(expected)
    assert set(received.values()) == {1}
    assert len(sent["a"]) + len(sent["b"]) == N
    assert sent["a"] and sent["b"], "both collectors took part"
    with db.read() as session:
        states = Counter(session.scalars(select(OutboxRow.state)).all())
        assert states == {"sent": N}
        metrics = metrics_text(session)
    assert f'xunjian_report_mail{{state="sent"}} {N}' in metrics
    assert 'xunjian_report_mail{state="failed"} 0' in metrics


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert backoff(40) == timedelta(hours=2)
