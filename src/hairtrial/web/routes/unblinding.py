"""Unblinding one image's arm: admin only, with a reason, always audited."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from hairtrial._validate import InputError
from hairtrial.store.audit import append_event
from hairtrial.store.reviews import image_context
from hairtrial.web.deps import Admin, Csrf, SessionDep
from hairtrial.web.schemas import UnblindPublic, UnblindRequest

router = APIRouter(tags=["unblinding"])


@router.post("/api/unblind", response_model=UnblindPublic)
def unblind(body: UnblindRequest, principal: Admin, csrf: Csrf, db: SessionDep) -> UnblindPublic:
    """Reveal the arm of one image's site; the event and its reason are audited."""
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
