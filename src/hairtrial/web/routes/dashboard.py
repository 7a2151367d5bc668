"""The trial dashboard: progress counts and the report link."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from hairtrial.store.reviews import review_progress
from hairtrial.web.deps import Reader, SessionDep, SettingsDep
from hairtrial.web.routes import render
from hairtrial.web.schemas import ProgressPublic

router = APIRouter(tags=["dashboard"])


def _progress(db: SessionDep) -> ProgressPublic:
    p = review_progress(session=db)
    return ProgressPublic(
        ingested=p.ingested, measured=p.measured, reviewed=p.reviewed, flagged=p.flagged,
        failed=p.failed,
    )  # fmt: skip


@router.get("/", response_class=HTMLResponse)
def dashboard(
    request: Request, principal: Reader, db: SessionDep, settings: SettingsDep
) -> Response:
    """Show progress (images ingested, measured, reviewed, flagged, failed) and the report."""
    report = settings.report_path
    has_report = report is not None and report.is_file() and not principal.blinded
    return render(request, "dashboard.html", principal, progress=_progress(db), report=has_report)


@router.get("/api/progress", response_model=ProgressPublic)
def progress(principal: Reader, db: SessionDep) -> ProgressPublic:
    """Return the progress counts."""
    return _progress(db)


@router.get("/report")
def report(principal: Reader, settings: SettingsDep) -> Response:
    """Send the trial report file (unblinded roles: it carries arm-level results)."""
    if principal.blinded:
        raise HTTPException(status_code=403, detail="the report is unblinded")
    path = settings.report_path
    if path is None or not path.is_file():
        raise HTTPException(status_code=404, detail="no report yet")
    return FileResponse(path, filename=path.name)
