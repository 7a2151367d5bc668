"""Agreement: automatic vs corrected, and ICC between assessors of the same images."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from hairtrial.store.agreement import Agreement, assessor_agreement, automatic_vs_corrected
from hairtrial.web.deps import Reader, SessionDep
from hairtrial.web.routes import render
from hairtrial.web.schemas import AgreementPublic, AgreementReport

router = APIRouter(tags=["agreement"])
Metric = Literal["hair_count", "density_per_cm2", "mean_diameter_um", "terminal_fraction"]


def _public(a: Agreement) -> AgreementPublic:
    return AgreementPublic(
        n=a.n, mean_difference=a.mean_difference, mean_abs_percent=a.mean_abs_percent, icc=a.icc
    )


def _report(db: SessionDep, metric: str) -> AgreementReport:
    return AgreementReport(
        metric=metric,
        automatic_vs_corrected=_public(automatic_vs_corrected(session=db, metric=metric)),
        between_assessors=_public(assessor_agreement(session=db, metric=metric)),
    )


@router.get("/api/agreement", response_model=AgreementReport)
def agreement(
    principal: Reader, db: SessionDep, metric: Annotated[Metric, Query()] = "hair_count"
) -> AgreementReport:
    """Agreement figures for one endpoint."""
    return _report(db, metric)


@router.get("/agreement", response_class=HTMLResponse)
def agreement_page(request: Request, principal: Reader, db: SessionDep) -> Response:
    """Agreement figures for the main endpoints."""
    reports = [_report(db, m) for m in ("hair_count", "mean_diameter_um", "terminal_fraction")]
    return render(request, "agreement.html", principal, reports=reports)
