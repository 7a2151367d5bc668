"""The review queue and the review page, with the JSON API their JavaScript uses.

Blinded users get :class:`ImageBlinded` (no arm, visit day or subject code); admin and
investigator get :class:`ImageUnblinded`. Every save is a new revision (audited).
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from hairtrial._validate import InputError
from hairtrial.store.reviews import (
    ImageForReview,
    RevisionInfo,
    image_context,
    image_for_review,
    latest_revision_hairs_json,
    review_queue,
    revision_history,
    save_revision,
)
from hairtrial.web.cache import AutomaticHairsCache
from hairtrial.web.deps import (
    PendingReader,
    PendingReviewerWrite,
    Principal,
    Reader,
    SessionDep,
    SettingsDep,
    run_as_user,
)
from hairtrial.web.routes import render
from hairtrial.web.schemas import (
    ImageBlinded,
    ImageUnblinded,
    ReviewState,
    RevisionCreate,
    RevisionPublic,
)

router = APIRouter(tags=["review"])
ImageSchema = ImageBlinded | ImageUnblinded
ImageId = Path(ge=1, le=2**62)


def image_public(
    item: ImageForReview, principal: Principal, db: SessionDep
) -> ImageBlinded | ImageUnblinded:
    """Return the image schema the user's role may see."""
    blinded = ImageBlinded(
        image_id=item.image_id, subject=item.subject, width=item.width, height=item.height,
        um_per_px=item.um_per_px, area_cm2=item.area_cm2, status=item.status,
        auto_summary=item.auto_summary,
    )  # fmt: skip
    if principal.blinded:
        return blinded
    ctx = image_context(session=db, image_id=item.image_id)
    return ImageUnblinded(
        **blinded.model_dump(),
        subject_code=ctx["subject_code"],
        site=ctx["site"],
        arm=ctx["arm"],
        visit_day=ctx["visit_day"],
    )


def _revision_public(rev: RevisionInfo) -> RevisionPublic:
    return RevisionPublic(
        id=rev.id, image_id=rev.image_id, run_id=rev.run_id,
        base_revision_id=rev.base_revision_id, author=rev.author, status=rev.status,
        unusable=rev.unusable, unusable_reason=rev.unusable_reason, comment=rev.comment,
        summary=rev.summary, created_at=rev.created_at, n_added=rev.n_added,
        n_deleted=rev.n_deleted, n_edited=rev.n_edited,
    )  # fmt: skip


def _item(db: SessionDep, image_id: int, principal: Principal, key: str) -> ImageForReview:
    try:
        return image_for_review(
            session=db, image_id=image_id, reviewer_id=principal.user.id, key=key
        )
    except InputError:
        raise HTTPException(status_code=404, detail="no such measured image") from None


def _queue(db: SessionDep, principal: Principal, key: str) -> list[ImageBlinded | ImageUnblinded]:
    items = review_queue(session=db, reviewer_id=principal.user.id, key=key)
    return [image_public(i, principal, db) for i in items]


@router.get("/queue", response_class=HTMLResponse)
def queue_page(
    request: Request, principal: Reader, db: SessionDep, settings: SettingsDep
) -> Response:
    """Show the review queue, in this reviewer's random but stable order."""
    return render(request, "queue.html", principal, items=_queue(db, principal, settings.key))


@router.get("/api/queue", response_model=list[ImageUnblinded | ImageBlinded])
def queue(
    principal: Reader, db: SessionDep, settings: SettingsDep
) -> list[ImageBlinded | ImageUnblinded]:
    """Return the review queue as JSON."""
    return _queue(db, principal, settings.key)


@router.get("/review/{image_id}", response_class=HTMLResponse)
async def review_page(
    request: Request, pending: PendingReader, settings: SettingsDep, image_id: int = ImageId
) -> Response:
    """Show the review page: image, hair overlay, editing tools and live endpoints."""

    def load(db: Session, principal: Principal) -> tuple[ImageSchema, Principal]:
        return image_public(_item(db, image_id, principal, settings.key), principal, db), principal

    item, principal = await run_as_user(request, pending, load)
    return render(request, "review.html", principal, image=item)


@router.get("/api/images/{image_id}", response_model=ReviewState)
async def review_state(
    request: Request, pending: PendingReader, settings: SettingsDep, image_id: int = ImageId
) -> Response:
    """Return the image and the hairs to edit: own latest revision, else the automatic run.

    The body is a :class:`ReviewState` written directly: the hairs are JSON text, either
    the own revision's as stored (checked on save) or the automatic run's from the app's
    cache (a done run never changes), so they are not parsed, validated and encoded again.
    Both are in the form a revision stores (rounded to 0.01 px and µm), so the page shows
    exactly what a save keeps.
    """
    cache: AutomaticHairsCache = request.app.state.hairs_cache

    def load(db: Session, principal: Principal) -> tuple[ImageSchema, str, str, str]:
        item = _item(db, image_id, principal, settings.key)
        image = image_public(item, principal, db)
        mine = latest_revision_hairs_json(
            session=db, image_id=image_id, author_id=principal.user.id
        )
        if mine is None:
            return image, "automatic", "null", cache.json(db, item.run_id)
        return image, "revision", str(int(mine[0])), mine[1]

    image, source, revision_id, hairs_json = await run_as_user(request, pending, load)
    body = (
        f'{{"image":{image.model_dump_json()},"hairs":{hairs_json},"source":"{source}",'
        f'"revision_id":{revision_id}}}'
    )
    return Response(body, media_type="application/json")


@router.get("/api/images/{image_id}/revisions", response_model=list[RevisionPublic])
def history(principal: Reader, db: SessionDep, image_id: int = ImageId) -> list[RevisionPublic]:
    """Return every revision of an image, oldest first."""
    return [_revision_public(r) for r in revision_history(session=db, image_id=image_id)]


@router.post("/api/images/{image_id}/revisions", response_model=RevisionPublic, status_code=201)
async def create_revision(
    request: Request,
    body: RevisionCreate,
    pending: PendingReviewerWrite,
    image_id: int = ImageId,
) -> RevisionPublic:
    """Save a new revision (draft or approved) of the image's hairs; audited.

    The user check and the save run in one call on the write threads (it may wait for
    the database write lock, so it never takes one of the threads of the reads). The
    writes and the commit of concurrent saves are serialised in the process
    (``app.state.write_lock``), so they queue on a lock instead of polling SQLite's busy
    handler; the audit chain's own serialisation (:func:`append_event`) is unchanged. A
    save based on the automatic result diffs against the app's cache of the run's hairs.
    """
    cache: AutomaticHairsCache = request.app.state.hairs_cache
    hairs = [h.to_record() for h in body.hairs]

    def save(db: Session, principal: Principal) -> RevisionInfo:
        return save_revision(
            session=db,
            image_id=image_id,
            author_id=principal.user.id,
            hairs=hairs,
            status=body.status,
            base_revision_id=body.base_revision_id,
            unusable=body.unusable,
            unusable_reason=body.unusable_reason,
            comment=body.comment,
            write_lock=request.app.state.write_lock,
            commit=True,
            automatic_base=cache.stored,
        )

    try:
        rev = await run_as_user(request, pending, save, may_wait=True)
    except InputError as exc:
        status = 404 if "no such measured image" in str(exc) else 422
        raise HTTPException(status_code=status, detail=str(exc)) from None
    return _revision_public(rev)
