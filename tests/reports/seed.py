"""Put a contract, hosts, runs and samples into a collector database through its own ingest."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from collector.contracts import Contract, load_contract
from collector.db.contract_store import import_contracts
from collector.db.engine import Database
from collector.db.models import SampleRow
from collector.ingest import host_for_submission, ingest_run
from tests.reports.fixtures import make_run, make_samples


def seed(
    db: Database,
    contract_file: Path,
    hostnames: list[str],
    *,
    run_times: list[datetime],
    samples_until: datetime | None = None,
    sample_step_minutes: int = 1,
) -> Contract:
    """Each host gets a run at each of `run_times` (the last one has the fixture's figures) and,
    with `samples_until`, a day of samples ending there."""
    import_contracts(db, [contract_file])
    contract = load_contract(contract_file)
    for i, hostname in enumerate(hostnames):
        ref = None
        for at in run_times:
            run = make_run(hostname, at, data_used_percent=91.5 if i % 3 == 0 else 60.0)
            if ref is None:
                ref = host_for_submission(db, contract.number, run.host, now=at - timedelta(days=1))
            ingest_run(db, ref, run, via="import", now=at)
        if samples_until is not None and ref is not None:
            rows: list[dict[str, Any]] = [
                {
                    **s.model_dump(exclude={"mounts"}),
                    "mounts": [m.model_dump() for m in s.mounts],
                    "host_id": ref.id,
                }
                for s in make_samples(samples_until, step_minutes=sample_step_minutes, seed=i)
            ]
            with db.write() as session:
                session.execute(insert(SampleRow), rows)
    return contract
