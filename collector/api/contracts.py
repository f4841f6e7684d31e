"""Contracts as imported (read only over the API; `xunjian contract import` writes them)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from sqlalchemy import func, select

from collector.api.schemas import ERRORS, NOT_FOUND, ContractOut, ContractSummary
from collector.auth import Db, Reader
from collector.db.contract_store import get_contract
from collector.db.models import ContractRow, Host

router = APIRouter(tags=["contracts"])


@router.get("/contracts", response_model=list[ContractSummary], responses=ERRORS)
def list_contracts(db: Db, who: Reader) -> list[ContractSummary]:
    query = select(ContractRow.number).order_by(ContractRow.number)
    if who.contract is not None:
        query = query.where(ContractRow.number == who.contract)
    with db.read() as session:
        counts = dict(
            session.execute(
                select(Host.contract, func.count())
                .where(Host.revoked_at.is_(None), Host.credential_sha256.is_not(None))
                .group_by(Host.contract)
            ).all()
        )
        out = []
        for number in session.scalars(query):
            row = session.get(ContractRow, number)
            contract = get_contract(session, number)
            assert row is not None and contract is not None
            out.append(
                ContractSummary(
                    number=number,
                    title=contract.title,
                    customer=contract.customer.name,
                    level=contract.level.value,
                    start=contract.start,
                    end=contract.end,
                    hosts_enrolled=counts.get(number, 0),
                    imported_at=row.imported_at,
                )
            )
        return out


@router.get(
    "/contracts/{number:path}", response_model=ContractOut, responses={**ERRORS, **NOT_FOUND}
)
def get_contract_detail(number: str, db: Db, who: Reader) -> ContractOut:
    """Contract numbers may contain '/', hence the path converter."""
    if not who.sees(number):
        raise HTTPException(404, "contract not found")
    with db.read() as session:
        row = session.get(ContractRow, number)
        contract = get_contract(session, number)
        if row is None or contract is None:
            raise HTTPException(404, "contract not found")
        return ContractOut(
            number=number,
            source_name=row.source_name,
            imported_at=row.imported_at,
            contract=contract,
        )
