"""Reports over the API: the listing with delivery state, and the stored HTML and PDF.

Scoped like every other resource: a contract-scoped key sees only its contract's reports (and
gets 404, not 403, for others, so report ids do not reveal other contracts).
"""

from __future__ import annotations

from typing import Optional

from fastapi import APIRouter, HTTPException, Response

from collector.api.schemas import ERRORS, NOT_FOUND
from collector.auth import Db, Reader
from collector.reports.store import ReportInfo, list_reports, stored_document

router = APIRouter(tags=["reports"])


@router.get("/reports", response_model=list[ReportInfo], responses=ERRORS)
def get_reports(db: Db, who: Reader, contract: Optional[str] = None) -> list[ReportInfo]:
    if contract is not None and not who.sees(contract):
        return []
    with db.read() as session:
        infos = list_reports(session, contract=contract or who.contract)
    return [i for i in infos if who.sees(i.contract)]


def _document(db: Db, who: Reader, report_id: int, kind: str) -> bytes:
    with db.read() as session:
        found = stored_document(session, report_id, kind)
    if found is None or not who.sees(found[0]):
        raise HTTPException(404, "report not found or not built")
    return found[1]


@router.get(
    "/reports/{report_id}/html",
    response_class=Response,
    responses={**ERRORS, **NOT_FOUND, 200: {"content": {"text/html": {}}}},
)
def get_report_html(report_id: int, db: Db, who: Reader) -> Response:
    return Response(_document(db, who, report_id, "html"), media_type="text/html; charset=utf-8")


@router.get(
    "/reports/{report_id}/pdf",
    response_class=Response,
    responses={**ERRORS, **NOT_FOUND, 200: {"content": {"application/pdf": {}}}},
)
def get_report_pdf(report_id: int, db: Db, who: Reader) -> Response:
    return Response(
        _document(db, who, report_id, "pdf"),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="report-{report_id}.pdf"'},
    )
