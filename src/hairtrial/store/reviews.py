"""Blinded review: the queue, revisions of an image's hair set and progress.

A correction never touches the automatic result: each save is a new ``review`` row (a
revision) holding the image's full corrected hair list (DESIGN.md JSON form), the
endpoints recomputed from it (:func:`hairtrial.records.summarize_hairs`), its base (the
automatic run and the revision it started from), author, time, status (``draft`` or
``approved``) and an optional flag that the image is unusable, with a reason. Each
revision's per-hair diff against its base is kept in ``correction`` rows, and every save
is appended to the audit trail with the endpoints before and after.

Endpoints use the latest approved revision of an image when there is one
(:func:`latest_approved_revision`; :mod:`hairtrial.store.export` does the same in SQL).

What these functions return never carries the arm or the visit day; an assessor's queue
shows subjects under a keyed pseudonym (:func:`pseudonym`). Agreement between the
automatic result and the corrections, and between assessors, is in
:mod:`hairtrial.store.agreement`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Row, Select, Text, bindparam, cast, func, insert, select
from sqlalchemy.orm import Session, aliased

from hairtrial._validate import InputError, check_choice, check_range
from hairtrial.records import HairRecord, summarize_hairs
from hairtrial.store.audit import append_event
from hairtrial.store.models import (
    REVISION_STATUSES,
    Base,
    Correction,
    Hair,
    Image,
    MeasurementRun,
    Review,
    Site,
    Subject,
    User,
    Visit,
    utcnow,
)

#: Largest number of hairs one revision may hold.
MAX_HAIRS = 5000

# Statements of the review page and the save, built once: on SQLite, building a statement
# costs about as much as running it.
_AUTHOR = select(User.id, User.username, User.active).where(User.id == bindparam("author_id"))
_BASE_REVISION = select(Review.image_id, Review.hairs, Review.summary).where(
    Review.id == bindparam("revision_id")
)
_INSERT_REVIEW = insert(Base.metadata.tables["review"])
_INSERT_CORRECTION = insert(Base.metadata.tables["correction"])
_OWN_NEWEST_HAIRS = (
    select(Review.id, cast(Review.hairs, Text))
    .where(Review.image_id == bindparam("image_id"), Review.author_id == bindparam("author_id"))
    .order_by(Review.id.desc())
    .limit(1)
)

#: ``automatic_base(session, run_id)``: a done run's hairs in stored form (see
#: :func:`save_revision`).
AutomaticBase = Callable[[Session, int], Sequence[Mapping[str, Any]]]


@dataclass(frozen=True)
class ImageForReview:
    """An image as the review pages see it: no arm, no visit day, subject pseudonymised.

    Parameters
    ----------
    image_id, run_id : int
        Image and its latest done automatic run.
    subject : str
        Keyed pseudonym of the subject (:func:`pseudonym`).
    width, height : int, px
        Image size.
    um_per_px : float, µm/px
        Calibration.
    area_cm2 : float, cm²
        Imaged area.
    auto_summary : dict
        Endpoints of the automatic run.
    status : {'todo', 'draft', 'approved', 'unusable'}
        The asking reviewer's state on this image.
    """

    image_id: int
    run_id: int
    subject: str
    width: int
    height: int
    um_per_px: float
    area_cm2: float
    auto_summary: dict[str, Any]
    status: str


@dataclass(frozen=True)
class RevisionInfo:
    """One revision of an image's hair set (see the module docstring)."""

    id: int
    image_id: int
    run_id: int
    base_revision_id: int | None
    author_id: int
    author: str
    status: str
    unusable: bool
    unusable_reason: str | None
    comment: str | None
    hairs: tuple[dict[str, Any], ...]
    summary: dict[str, Any]
    created_at: dt.datetime
    n_added: int
    n_deleted: int
    n_edited: int


@dataclass(frozen=True)
class Progress:
    """Counts for the dashboard.

    Images ingested, measured (a done run), reviewed (an approved revision), flagged
    unusable (latest approved revision), and failed (a failed run and no done run).
    """

    ingested: int
    measured: int
    reviewed: int
    flagged: int
    failed: int


def pseudonym(*, key: str | bytes, subject_id: int) -> str:
    """Return a stable pseudonym for a subject, keyed so it cannot be reversed.

    Parameters
    ----------
    key : str or bytes
        Secret key (the web app's secret).
    subject_id : int
        Subject row id.

    Returns
    -------
    str
        ``"P-"`` and 8 hex digits of HMAC-SHA256(key, subject id).
    """
    raw = key.encode() if isinstance(key, str) else key
    return "P-" + hmac.new(raw, f"subject:{subject_id}".encode(), hashlib.sha256).hexdigest()[:8]


def _order_key(reviewer_id: int, image_id: int) -> str:
    return hashlib.sha256(f"queue:{reviewer_id}:{image_id}".encode()).hexdigest()


def _latest_done_runs(session: Session) -> dict[int, Row[tuple[int, int, Any]]]:
    """Map image id → (id, image id, summary) of its latest done run, in one query."""
    rows = session.execute(
        select(MeasurementRun.id, MeasurementRun.image_id, MeasurementRun.summary)
        .where(MeasurementRun.status == "done")
        .order_by(
            MeasurementRun.image_id, MeasurementRun.finished_at.desc(), MeasurementRun.id.desc()
        )
    )
    out: dict[int, Row[tuple[int, int, Any]]] = {}
    for row in rows:
        out.setdefault(row.image_id, row)
    return out


def _review_states(*where: Any) -> Select[int, int, str, bool]:
    # The state columns only: a revision's hair list is large JSON, not needed here.
    return select(Review.id, Review.image_id, Review.status, Review.unusable).where(*where)


def _area_cm2(image: Any) -> float:
    # `image`: an Image row, or any row with its width, height and um_per_px.
    return float(image.width * image.height * image.um_per_px**2 / 1e8)


def _status_of(rows: Sequence[Any]) -> str:
    if not rows:
        return "todo"
    latest = max(rows, key=lambda r: r.id)
    if latest.unusable:
        return "unusable"
    return "approved" if latest.status == "approved" else "draft"


def review_queue(
    *, session: Session, reviewer_id: int, key: str | bytes, trial_id: int | None = None
) -> list[ImageForReview]:
    """Return the measured images in this reviewer's random but stable order.

    Parameters
    ----------
    session : Session
        Open session.
    reviewer_id : int
        User row id: fixes the order (each reviewer sees a different one) and the status.
    key : str or bytes
        Pseudonym key (:func:`pseudonym`).
    trial_id : int, optional
        Only this trial's images.

    Returns
    -------
    list of ImageForReview
    """
    query = select(Image, Subject.id).join(Visit, Visit.id == Image.visit_id)
    query = query.join(Site, Site.id == Visit.site_id).join(Subject, Subject.id == Site.subject_id)
    if trial_id is not None:
        query = query.where(Image.trial_id == trial_id)
    mine: dict[int, list[Any]] = {}
    for rev in session.execute(_review_states(Review.author_id == reviewer_id)):
        mine.setdefault(rev.image_id, []).append(rev)
    runs = _latest_done_runs(session)
    out = []
    for image, subject_id in session.execute(query):
        run = runs.get(image.id)
        if run is None:
            continue
        out.append(
            ImageForReview(
                image_id=image.id,
                run_id=run.id,
                subject=pseudonym(key=key, subject_id=subject_id),
                width=image.width,
                height=image.height,
                um_per_px=image.um_per_px,
                area_cm2=_area_cm2(image),
                auto_summary=dict(run.summary or {}),
                status=_status_of(mine.get(image.id, [])),
            )
        )
    out.sort(key=lambda item: _order_key(reviewer_id, item.image_id))
    return out


@cache
def _measured_image_query(with_reviewer: bool) -> Select[Any]:
    # Built once (see _AUTHOR). Bound parameters: ``image_id`` and, `with_reviewer`,
    # ``reviewer_id``.
    run = aliased(MeasurementRun)
    latest_run = (
        select(run.id)
        .where(run.image_id == Image.id, run.status == "done")
        .order_by(run.finished_at.desc(), run.id.desc())
        .limit(1)
        .correlate(Image)
        .scalar_subquery()
    )
    columns = (
        Image.width, Image.height, Image.um_per_px, Site.subject_id,
        MeasurementRun.id.label("run_id"), MeasurementRun.summary.label("run_summary"),
    )  # fmt: skip
    query = (
        select(*columns)
        .join(Visit, Visit.id == Image.visit_id)
        .join(Site, Site.id == Visit.site_id)
        .join(MeasurementRun, MeasurementRun.id == latest_run)
        .where(Image.id == bindparam("image_id"))
    )
    if with_reviewer:
        mine = aliased(Review)
        newest = (
            select(func.max(Review.id))
            .where(Review.image_id == Image.id, Review.author_id == bindparam("reviewer_id"))
            .correlate(Image)
            .scalar_subquery()
        )
        query = query.add_columns(
            mine.status.label("rev_status"), mine.unusable.label("rev_unusable")
        ).outerjoin(mine, mine.id == newest)
    return query


def _measured_image(
    session: Session, image_id: int, reviewer_id: int | None = None
) -> Row[Any] | None:
    """One query for what a review of `image_id` needs, or ``None`` if it is not measured.

    The image's size and calibration, its subject id, its latest done run (id and
    endpoints; newest ``finished_at``, then highest id) and, with `reviewer_id`, the state
    of that reviewer's newest revision of it (``rev_status``/``rev_unusable``, ``None``
    without one).
    """
    params = {"image_id": image_id}
    if reviewer_id is not None:
        params["reviewer_id"] = reviewer_id
    return session.execute(_measured_image_query(reviewer_id is not None), params).first()


def image_for_review(
    *, session: Session, image_id: int, reviewer_id: int, key: str | bytes
) -> ImageForReview:
    """Return one measured image for review (see :func:`review_queue`), in one query.

    Raises
    ------
    InputError
        If there is no such image or it has no done run.
    """
    row = _measured_image(session, image_id, reviewer_id)
    if row is None:
        raise InputError(f"image_id {image_id}: no such measured image")
    if row.rev_status is None:
        status = "todo"
    elif row.rev_unusable:
        status = "unusable"
    else:
        status = "approved" if row.rev_status == "approved" else "draft"
    return ImageForReview(
        image_id=image_id,
        run_id=row.run_id,
        subject=pseudonym(key=key, subject_id=int(row.subject_id or 0)),
        width=row.width,
        height=row.height,
        um_per_px=row.um_per_px,
        area_cm2=_area_cm2(row),
        auto_summary=dict(row.run_summary or {}),
        status=status,
    )


def automatic_hairs(*, session: Session, run_id: int) -> list[dict[str, Any]]:
    """Return the hairs of a measurement run in their DESIGN.md JSON form, by hair id.

    A hair stored with its exit confidence carries it as ``exit_confidence`` (0–1), as in
    the ``hairtrial measure`` JSON.
    """
    columns = (
        Hair.hair_id, Hair.exit_x_px, Hair.exit_y_px, Hair.tip_x_px, Hair.tip_y_px,
        Hair.centerline_px, Hair.diameter_um, Hair.length_um, Hair.hair_class, Hair.confidence,
        Hair.exit_confidence,
    )  # fmt: skip
    query = select(*columns).where(Hair.run_id == run_id).order_by(Hair.hair_id)
    hairs = []
    for row in session.execute(query):
        hair = {
            "id": row.hair_id,
            "exit_px": None if row.exit_x_px is None else [row.exit_x_px, row.exit_y_px],
            "tip_px": [row.tip_x_px, row.tip_y_px],
            "centerline_px": row.centerline_px,
            "diameter_um": row.diameter_um,
            "length_um": row.length_um,
            "class": row.hair_class,
            "confidence": row.confidence,
        }
        if row.exit_confidence is not None:
            hair["exit_confidence"] = row.exit_confidence
        hairs.append(hair)
    return hairs


def stored_form(hairs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Return hairs in the form a revision stores them (rounded by :meth:`HairRecord.to_json`).

    A run's automatic hairs in this form are the base a revision is diffed against.
    """
    return [HairRecord.from_json(dict(h)).to_json(ndigits=2) for h in hairs]


def _check_hairs(hairs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    if len(hairs) > MAX_HAIRS:
        raise InputError(f"hairs: at most {MAX_HAIRS} hairs per image, got {len(hairs)}")
    out = []
    seen: set[int] = set()
    for i, raw in enumerate(hairs):
        try:
            record = HairRecord.from_json(dict(raw))
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise InputError(f"hairs[{i}]: not a hair record ({exc!r})") from None
        where = f"hairs[{i}] (id {record.id})"
        if record.id in seen:
            raise InputError(f"{where}: hair id appears twice")
        seen.add(record.id)
        check_choice(
            record.hair_class, name=f"{where}.class", choices=("vellus", "intermediate", "terminal")
        )
        numbers = [record.diameter_um, record.length_um, *record.tip_px]
        numbers += [v for p in record.centerline_px for v in p]
        numbers += [] if record.exit_px is None else list(record.exit_px)
        if not all(math.isfinite(v) for v in numbers):
            raise InputError(f"{where}: coordinates and sizes must be finite")
        if not 0 <= record.diameter_um <= 1000 or not 0 <= record.confidence <= 1:
            raise InputError(f"{where}: diameter_um must be in [0, 1000] µm, confidence in [0, 1]")
        if not 1 <= len(record.centerline_px) <= 2000:
            raise InputError(f"{where}: centerline_px needs 1 to 2000 points")
        if record.extra.get("exit_confidence") is not None:
            record.extra["exit_confidence"] = check_range(
                record.extra["exit_confidence"], name=f"{where}.exit_confidence", low=0, high=1
            )
        out.append(record.to_json(ndigits=2))
    return sorted(out, key=lambda h: int(h["id"]))


def _diff(
    before: Sequence[Mapping[str, Any]], after: Sequence[Mapping[str, Any]]
) -> list[tuple[int, str, dict[str, Any] | None, dict[str, Any] | None]]:
    # Both sides are in the stored (rounded) form (:func:`stored_form`), so only real
    # edits show.
    old = {int(h["id"]): dict(h) for h in before}
    new = {int(h["id"]): dict(h) for h in after}
    out: list[tuple[int, str, dict[str, Any] | None, dict[str, Any] | None]] = []
    for hid in sorted(old.keys() | new.keys()):
        a, b = old.get(hid), new.get(hid)
        if a is None:
            out.append((hid, "add", None, b))
        elif b is None:
            out.append((hid, "delete", a, None))
        elif a != b:
            out.append((hid, "edit", a, b))
    return out


def _info(row: Review, author: str, counts: Mapping[str, int]) -> RevisionInfo:
    return RevisionInfo(
        id=row.id,
        image_id=row.image_id,
        run_id=row.run_id,
        base_revision_id=row.base_revision_id,
        author_id=row.author_id,
        author=author,
        status=row.status,
        unusable=row.unusable,
        unusable_reason=row.unusable_reason,
        comment=row.comment,
        hairs=tuple(row.hairs),
        summary=dict(row.summary),
        created_at=row.created_at,
        n_added=counts.get("add", 0),
        n_deleted=counts.get("delete", 0),
        n_edited=counts.get("edit", 0),
    )


def save_revision(
    *,
    session: Session,
    image_id: int,
    author_id: int,
    hairs: Sequence[Mapping[str, Any]],
    status: str = "draft",
    base_revision_id: int | None = None,
    unusable: bool = False,
    unusable_reason: str | None = None,
    comment: str | None = None,
    write_lock: AbstractContextManager[Any] | None = None,
    commit: bool = False,
    automatic_base: AutomaticBase | None = None,
) -> RevisionInfo:
    """Store a new revision of an image's hair set and audit it (flushed, not committed).

    Every check and computation (hair records, endpoints, diff against the base) is done
    before the first write, so the database write lock is held only for the inserts
    (plain INSERT statements, no ORM unit of work).

    Parameters
    ----------
    session : Session
        Open session.
    image_id : int
        Image row id; it must have a done measurement run.
    author_id : int
        Active user row id of the reviewer.
    hairs : sequence of mapping
        The full corrected hair list in DESIGN.md JSON form (``id``, ``exit_px``,
        ``tip_px``, ``centerline_px`` in px; ``diameter_um``, ``length_um`` in µm;
        ``class``; ``confidence``).
    status : {'draft', 'approved'}
        Approved revisions count for the endpoints.
    base_revision_id : int, optional
        Revision this one was edited from (same image); default the automatic run.
    unusable : bool
        Flag the image as unusable (then `unusable_reason` is required).
    unusable_reason, comment : str, optional
        Free text, stored as given (escaped when shown).
    write_lock : context manager, optional
        Held around the writes (and the commit, with `commit`), e.g. a
        :class:`threading.Lock` serialising the writers of one process so they queue on
        it instead of polling the database's busy handler. On an error inside it the
        session is rolled back before it is released.
    commit : bool
        Commit the session after the writes (inside `write_lock`).
    automatic_base : callable, optional
        ``automatic_base(session, run_id)`` returns a done run's hairs in stored form
        (:func:`stored_form` of :func:`automatic_hairs`), e.g. from a cache: a done run's
        hairs never change. Default: read them from the database.

    Returns
    -------
    RevisionInfo

    Raises
    ------
    InputError
        On a bad hair record, status, base, missing reason, unknown image or user.
    """
    status = check_choice(status, name="status", choices=REVISION_STATUSES)
    author = session.execute(_AUTHOR, {"author_id": author_id}).first()
    if author is None or not author.active:
        raise InputError(f"author_id {author_id}: no such active user")
    image = _measured_image(session, image_id)
    if image is None:
        raise InputError(f"image_id {image_id}: no such measured image")
    for label, value in (("unusable_reason", unusable_reason), ("comment", comment)):
        if value is not None and "\x00" in value:
            raise InputError(f"{label}: must not contain NUL characters")
    reason = (unusable_reason or "").strip() or None
    if unusable and reason is None:
        raise InputError("unusable_reason: required when the image is flagged unusable")
    records = _check_hairs(hairs)
    base_hairs: Sequence[Mapping[str, Any]]
    if base_revision_id is not None:
        base = session.execute(_BASE_REVISION, {"revision_id": base_revision_id}).first()
        if base is None or base.image_id != image_id:
            raise InputError(f"base_revision_id {base_revision_id}: not a revision of this image")
        base_hairs, base_summary = base.hairs, dict(base.summary)
    else:
        if automatic_base is not None:
            base_hairs = automatic_base(session, image.run_id)
        else:
            base_hairs = stored_form(automatic_hairs(session=session, run_id=image.run_id))
        base_summary = dict(image.run_summary or {})
    summary = summarize_hairs([HairRecord.from_json(h) for h in records], area_cm2=_area_cm2(image))
    # Everything is computed before the first write, so the write lock is held briefly.
    changes = _diff(base_hairs, records)
    row = {
        "image_id": image_id, "run_id": image.run_id, "base_revision_id": base_revision_id,
        "author_id": author.id, "status": status, "unusable": bool(unusable),
        "unusable_reason": reason if unusable else None,
        "comment": (comment or "").strip() or None, "hairs": records, "summary": summary,
    }  # fmt: skip
    with write_lock if write_lock is not None else nullcontext():
        try:
            info = _write_revision(session, row, author.username, base_summary, changes)
            if commit:
                session.commit()
        except BaseException:
            if write_lock is not None:
                session.rollback()
            raise
    return info


def _write_revision(
    session: Session,
    row: dict[str, Any],
    author: str,
    base_summary: Mapping[str, Any],
    changes: list[tuple[int, str, dict[str, Any] | None, dict[str, Any] | None]],
) -> RevisionInfo:
    # `row`: the new review row's values (checked), without its id and time.
    row = {**row, "created_at": utcnow()}
    connection = session.connection()
    inserted = connection.execute(_INSERT_REVIEW, row).inserted_primary_key
    assert inserted is not None  # a single-row INSERT always reports its key
    review_id = int(inserted[0])
    counts: dict[str, int] = {}
    for _, action, _, _ in changes:
        counts[action] = counts.get(action, 0) + 1
    if changes:
        connection.execute(
            _INSERT_CORRECTION,
            [
                {"review_id": review_id, "hair_id": h, "action": a, "before": b, "after": c}
                for h, a, b, c in changes
            ],
        )
    keys = ("hair_count", "mean_diameter_um", "terminal_fraction", "density_per_cm2")
    append_event(
        session=session,
        actor=author,
        user_id=row["author_id"],
        action="approve" if row["status"] == "approved" else "revise",
        entity="review",
        entity_id=review_id,
        detail={
            "image_id": row["image_id"],
            "base_revision_id": row["base_revision_id"],
            "run_id": row["run_id"],
            "unusable": row["unusable"],
            "unusable_reason": row["unusable_reason"],
            "changes": counts,
        },
        before={k: base_summary.get(k) for k in keys},
        after={k: row["summary"].get(k) for k in keys},
    )
    return RevisionInfo(
        **{k: row[k] for k in _INFO_FIELDS}, id=review_id, author=author,
        hairs=tuple(row["hairs"]), summary=dict(row["summary"]),
        n_added=counts.get("add", 0), n_deleted=counts.get("delete", 0),
        n_edited=counts.get("edit", 0),
    )  # fmt: skip


#: Fields of :class:`RevisionInfo` taken as they are from a new review row.
_INFO_FIELDS = (
    "image_id", "run_id", "base_revision_id", "author_id", "status", "unusable",
    "unusable_reason", "comment", "created_at",
)  # fmt: skip


def _infos(session: Session, rows: Sequence[Review]) -> list[RevisionInfo]:
    if not rows:
        return []
    ids = [r.id for r in rows]
    counts: dict[int, dict[str, int]] = {}
    query = (
        select(Correction.review_id, Correction.action, func.count())
        .where(Correction.review_id.in_(ids))
        .group_by(Correction.review_id, Correction.action)
    )
    for review_id, action, n in session.execute(query):
        counts.setdefault(review_id, {})[action] = int(n)
    authors = {r.author_id for r in rows}
    names = dict(session.execute(select(User.id, User.username).where(User.id.in_(authors))).all())
    return [_info(r, names.get(r.author_id, "?"), counts.get(r.id, {})) for r in rows]


def revision_history(*, session: Session, image_id: int) -> list[RevisionInfo]:
    """Return every revision of an image, oldest first."""
    rows = session.scalars(
        select(Review).where(Review.image_id == image_id).order_by(Review.id)
    ).all()
    return _infos(session, rows)


def get_revision(*, session: Session, revision_id: int) -> RevisionInfo | None:
    """Return one revision, or ``None``."""
    row = session.get(Review, revision_id)
    return None if row is None else _infos(session, [row])[0]


def latest_revision(
    *, session: Session, image_id: int, author_id: int | None = None, status: str | None = None
) -> RevisionInfo | None:
    """Return the newest revision of an image (by one author, of one status), or ``None``."""
    query = select(Review).where(Review.image_id == image_id)
    if author_id is not None:
        query = query.where(Review.author_id == author_id)
    if status is not None:
        query = query.where(Review.status == status)
    row = session.scalar(query.order_by(Review.id.desc()).limit(1))
    return None if row is None else _infos(session, [row])[0]


def latest_revision_hairs_json(
    *, session: Session, image_id: int, author_id: int
) -> tuple[int, str] | None:
    """Return the id and the hairs, as stored JSON text, of an author's newest revision.

    For serving the hairs without parsing and re-encoding them; ``None`` if the author
    has no revision of the image.
    """
    row = session.execute(_OWN_NEWEST_HAIRS, {"image_id": image_id, "author_id": author_id}).first()
    return None if row is None else (int(row[0]), str(row[1]))


def latest_approved_revision(*, session: Session, image_id: int) -> RevisionInfo | None:
    """Return the revision the endpoints use: the newest approved one, or ``None``."""
    return latest_revision(session=session, image_id=image_id, status="approved")


def corrections_of(*, session: Session, revision_id: int) -> list[dict[str, Any]]:
    """Return a revision's per-hair diff: ``hair_id``, ``action``, ``before``, ``after``."""
    rows = session.scalars(
        select(Correction).where(Correction.review_id == revision_id).order_by(Correction.hair_id)
    )
    return [
        {"hair_id": c.hair_id, "action": c.action, "before": c.before, "after": c.after}
        for c in rows
    ]


def review_progress(*, session: Session, trial_id: int | None = None) -> Progress:
    """Return the dashboard counts (see :class:`Progress`)."""
    images = select(Image.id)
    if trial_id is not None:
        images = images.where(Image.trial_id == trial_id)
    image_ids = images
    ingested = session.scalar(select(func.count()).select_from(image_ids.subquery())) or 0
    done = select(MeasurementRun.image_id).where(
        MeasurementRun.status == "done", MeasurementRun.image_id.in_(image_ids)
    )
    done_q = done.subquery()
    measured = session.scalar(select(func.count(func.distinct(done_q.c.image_id)))) or 0
    failed_ids = select(MeasurementRun.image_id).where(
        MeasurementRun.status == "failed",
        MeasurementRun.image_id.in_(image_ids),
        MeasurementRun.image_id.not_in(done),
    )
    failed_q = failed_ids.subquery()
    failed = session.scalar(select(func.count(func.distinct(failed_q.c.image_id)))) or 0
    latest = (
        select(Review.image_id, func.max(Review.id).label("rid"))
        .where(Review.status == "approved", Review.image_id.in_(image_ids))
        .group_by(Review.image_id)
        .subquery()
    )
    reviewed = session.scalar(select(func.count()).select_from(latest)) or 0
    flagged = (
        session.scalar(
            select(func.count())
            .select_from(latest)
            .join(Review, Review.id == latest.c.rid)
            .where(Review.unusable.is_(True))
        )
        or 0
    )
    return Progress(
        ingested=int(ingested),
        measured=int(measured),
        reviewed=int(reviewed),
        flagged=int(flagged),
        failed=int(failed),
    )


def image_context(*, session: Session, image_id: int) -> dict[str, Any]:
    """Return an image's subject code, site, arm and visit day: unblinded use only."""
    row = session.execute(
        select(Subject.code, Site.code, Site.arm, Visit.day, Image.acquired_at)
        .join(Visit, Visit.id == Image.visit_id)
        .join(Site, Site.id == Visit.site_id)
        .join(Subject, Subject.id == Site.subject_id)
        .where(Image.id == image_id)
    ).first()
    if row is None:
        raise InputError(f"image_id {image_id}: no such image")
    subject, site, arm, day, acquired = row
    return {
        "subject_code": subject,
        "site": site,
        "arm": arm,
        "visit_day": day,
        "acquired_at": None if acquired is None else acquired.isoformat(),
    }
