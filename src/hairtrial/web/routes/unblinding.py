"""Unblinding one image's arm: admin only, with a reason, always audited.

``POST /api/unblind`` for scripts and the ``/unblind`` page (a form: image id and reason)
for people; both record the same ``unblind`` audit event before the arm is shown.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from hairtrial._validate import InputError
from hairtrial.store.audit import append_event
from hairtrial.store.reviews import image_context
from hairtrial.web.deps import Admin, Csrf, Principal, SessionDep
from hairtrial.web.routes import render
from hairtrial.web.schemas import UnblindPublic, UnblindRequest

router = APIRouter(tags=["unblinding"])


def _unblind(body: UnblindRequest, principal: Principal, db: Session) -> UnblindPublic:
    """Record the audited event, then return the image's arm (404 for no such image)."""
    try:
        ctx = image_context(session=db, image_id=body.image_id)
    except InputError:
        raise HTTPException(status_code=404, detail="no such image") from None
    append_event(
        session=db,
        actor=principal.user.username,
        user_id=principal.user.id,
        action="unblind",
        entity="image",
        entity_id=body.image_id,
        detail={"reason": body.reason},
    )
    db.commit()
    return UnblindPublic(
        image_id=body.image_id, subject_code=ctx["subject_code"], site=ctx["site"],
        arm=ctx["arm"], visit_day=ctx["visit_day"],
    )  # fmt: skip


@router.post("/api/unblind", response_model=UnblindPublic)
def unblind(body: UnblindRequest, principal: Admin, csrf: Csrf, db: SessionDep) -> UnblindPublic:
    """Reveal the arm of one image's site; the event and its reason are audited."""
    return _unblind(body, principal, db)


@router.get("/unblind", response_class=HTMLResponse)
def unblind_page(request: Request, principal: Admin) -> Response:
    """Show the unblinding form."""
    return render(request, "unblind.html", principal, result=None, error=None)


@router.post("/unblind", response_class=HTMLResponse)
def unblind_form(
    request: Request,
    principal: Admin,
    csrf: Csrf,
    db: SessionDep,
    image_id: Annotated[str, Form(max_length=20)],
    reason: Annotated[str, Form(max_length=2000)],
) -> Response:
    """Unblind one image from the form; show its arm, or why it was refused."""
    try:
        body = UnblindRequest(image_id=image_id, reason=reason)  # type: ignore[arg-type]
        result = _unblind(body, principal, db)
    except (ValidationError, HTTPException) as exc:
        status = exc.status_code if isinstance(exc, HTTPException) else 422
        message = (
            exc.detail
            if isinstance(exc, HTTPException)
            else "give an image id and a reason of at least 3 characters"
        )
        response = render(request, "unblind.html", principal, result=None, error=message)
        response.status_code = status
        return response
    return render(request, "unblind.html", principal, result=result, error=None)
