"""Entry points that turn inspection data into finished reports.

`build_report_for_runs` needs no database: `xunjian ssh --report FILE` hands it the runs it just
made. The collector's own path (database → ReportData → stored report → outbox) lives in
collector.reports.store.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Optional

from checks.model import InspectionRun
from collector.contracts import Contract
from collector.reports.data import inputs_from_runs
from collector.reports.render import produce


def build_report_for_runs(
    contract: Optional[Contract], runs: Iterable[InspectionRun], lang: Optional[str] = None
) -> tuple[str, bytes]:
    """(standalone HTML, PDF bytes) of a report on just `runs`; `lang` defaults to the
    contract's report language, else Chinese. Raises ValueError when `runs` is empty."""
    chosen = lang or (contract.report.language if contract else "zh_CN")
    ((_, out),) = produce(inputs_from_runs(contract, runs), [chosen])
    return out.html, out.pdf
