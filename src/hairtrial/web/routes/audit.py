"""The audit trail, for monitors and admins: events and chain verification."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from hairtrial.store.audit import list_events, verify_audit_chain
from hairtrial.web.deps import Auditor, SessionDep, StoreDep
from hairtrial.web.routes import render
from hairtrial.web.schemas import AuditEventPublic, ChainPublic

router = APIRouter(tags=["audit"])


def _events(db: SessionDep, limit: int, offset: int) -> list[AuditEventPublic]:
    return [
        AuditEventPublic(**asdict(e)) for e in list_events(session=db, limit=limit, offset=offset)
    ]


@router.get("/api/audit", response_model=list[AuditEventPublic])
def events(
    principal: Auditor,
    db: SessionDep,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=10**12),
) -> list[AuditEventPublic]:
    """Audit events, newest first."""
    return _events(db, limit, offset)


@router.get("/api/audit/verify", response_model=ChainPublic)
def verify(principal: Auditor, store: StoreDep) -> ChainPublic:
    """Recompute the hash chain; report the first broken link."""
    return ChainPublic(**asdict(verify_audit_chain(store=store)))


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request, principal: Auditor, db: SessionDep, store: StoreDep,
    offset: int = Query(0, ge=0, le=10**12),
) -> Response:  # fmt: skip
    """Show the audit trail page with the chain's verification."""
    chain = ChainPublic(**asdict(verify_audit_chain(store=store)))
    return render(
        request, "audit.html", principal, events=_events(db, 200, offset), chain=chain,
        offset=offset,
    )  # fmt: skip
