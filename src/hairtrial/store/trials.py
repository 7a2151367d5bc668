"""Trials, subjects, sites and visits: keyword-only data functions and public views.

The functions add and flush rows in the caller's session; the caller commits (or uses
:meth:`Store.begin`). Existing rows are returned as they are and never rewritten: asking
for an existing site with a different arm is an error, not an update.

What these functions return are frozen dataclasses, never ORM rows. None of them carries
a site's arm: the trial is assessor-blinded, and code that needs the arm must ask for it
explicitly (:func:`site_arm`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from hairtrial._validate import InputError, check_positive
from hairtrial.store.audit import append_event
from hairtrial.store.models import Site, Subject, Trial, Visit

#: Arm labels a new trial accepts unless told otherwise.
DEFAULT_ARMS = ("cells", "saline", "untreated")
#: Trial name used by ingest when none is given.
DEFAULT_TRIAL = "trial"


@dataclass(frozen=True)
class TrialInfo:
    """A trial as returned by the data functions."""

    id: int
    name: str
    arms: tuple[str, ...]
    created_at: dt.datetime


@dataclass(frozen=True)
class SubjectInfo:
    """A subject: pseudonymised `code` within trial `trial_id`."""

    id: int
    trial_id: int
    code: str


@dataclass(frozen=True)
class SiteInfo:
    """A site without its arm (blinded view); `area_cm2` in cm², may be unknown."""

    id: int
    subject_id: int
    code: str
    location: str | None
    area_cm2: float | None


def _trial_info(row: Trial) -> TrialInfo:
    return TrialInfo(id=row.id, name=row.name, arms=tuple(row.arms), created_at=row.created_at)


def _site_info(row: Site) -> SiteInfo:
    return SiteInfo(
        id=row.id,
        subject_id=row.subject_id,
        code=row.code,
        location=row.location,
        area_cm2=row.area_cm2,
    )


def _check_code(value: str, *, name: str) -> str:
    text = str(value).strip()
    if not text:
        raise InputError(f"{name}: must not be empty")
    return text


def add_trial(
    *,
    session: Session,
    name: str,
    arms: Sequence[str] = DEFAULT_ARMS,
    description: str | None = None,
) -> TrialInfo:
    """Add a trial.

    Parameters
    ----------
    session : Session
        Open session (flushed, not committed).
    name : str
        Unique trial name.
    arms : sequence of str
        Arm labels the trial's sites may carry.
    description : str, optional
        Free text.

    Returns
    -------
    TrialInfo

    Raises
    ------
    InputError
        If the name is empty or taken, or `arms` is empty or has duplicates.
    """
    name = _check_code(name, name="name")
    labels = tuple(_check_code(a, name="arms") for a in arms)
    if not labels or len(set(labels)) != len(labels):
        raise InputError(f"arms: expected distinct, non-empty labels, got {list(arms)}")
    if session.scalar(select(Trial).where(Trial.name == name)) is not None:
        raise InputError(f"name: trial {name!r} already exists")
    row = Trial(name=name, arms=list(labels), description=description)
    session.add(row)
    session.flush()
    return _trial_info(row)


def get_trial(*, session: Session, name: str) -> TrialInfo | None:
    """Return the trial called `name`, or ``None``."""
    row = session.scalar(select(Trial).where(Trial.name == name))
    return None if row is None else _trial_info(row)


def get_or_create_trial(
    *, session: Session, name: str, arms: Sequence[str] = DEFAULT_ARMS
) -> TrialInfo:
    """Return the trial called `name`, adding it with `arms` if it does not exist."""
    found = get_trial(session=session, name=name)
    return found if found is not None else add_trial(session=session, name=name, arms=arms)


def list_trials(*, session: Session) -> list[TrialInfo]:
    """Return all trials, by name."""
    return [_trial_info(t) for t in session.scalars(select(Trial).order_by(Trial.name))]


def get_or_create_subject(*, session: Session, trial_id: int, code: str) -> SubjectInfo:
    """Return subject `code` of trial `trial_id`, adding it if new.

    Parameters
    ----------
    session : Session
        Open session (flushed, not committed).
    trial_id : int
        Trial row id.
    code : str
        Pseudonymised subject code (never a name or other identifier).

    Returns
    -------
    SubjectInfo
    """
    code = _check_code(code, name="subject")
    if session.get(Trial, trial_id) is None:
        raise InputError(f"trial_id {trial_id}: no such trial")
    row = session.scalar(select(Subject).where(Subject.trial_id == trial_id, Subject.code == code))
    if row is None:
        row = Subject(trial_id=trial_id, code=code)
        session.add(row)
        session.flush()
    return SubjectInfo(id=row.id, trial_id=row.trial_id, code=row.code)


def get_or_create_site(
    *,
    session: Session,
    subject_id: int,
    code: str,
    arm: str,
    location: str | None = None,
    area_cm2: float | None = None,
) -> SiteInfo:
    """Return site `code` of a subject, adding it if new (the arm is checked, not returned).

    Parameters
    ----------
    session : Session
        Open session (flushed, not committed).
    subject_id : int
        Subject row id.
    code : str
        Site code, unique per subject.
    arm : str
        Arm label; must be one of the trial's arms, and equal the stored arm of an
        existing site.
    location : str, optional
        Anatomical location (e.g. ``"vertex left"``).
    area_cm2 : float, optional, cm²
        Marked area of the site.

    Returns
    -------
    SiteInfo
        The site, without its arm.

    Raises
    ------
    InputError
        If the arm is not one of the trial's, or differs from the stored one.
    """
    code = _check_code(code, name="site")
    subject = session.get(Subject, subject_id)
    if subject is None:
        raise InputError(f"subject_id {subject_id}: no such subject")
    trial = session.get(Trial, subject.trial_id)
    assert trial is not None  # foreign key
    if arm not in trial.arms:
        raise InputError(f"arm: {arm!r} is not one of trial {trial.name!r}'s arms {trial.arms}")
    area = None if area_cm2 is None else check_positive(area_cm2, name="area_cm2")
    row = session.scalar(select(Site).where(Site.subject_id == subject_id, Site.code == code))
    if row is None:
        row = Site(subject_id=subject_id, code=code, arm=arm, location=location, area_cm2=area)
        session.add(row)
        session.flush()
    elif row.arm != arm:
        raise InputError(
            f"site {code!r} of subject {subject.code!r} is already stored with another arm; "
            "stored rows are never rewritten"
        )
    return _site_info(row)


def get_or_create_visit(*, session: Session, site_id: int, day: int) -> int:
    """Return the id of the visit of site `site_id` on `day` (days since baseline)."""
    row = session.scalar(select(Visit).where(Visit.site_id == site_id, Visit.day == int(day)))
    if row is None:
        row = Visit(site_id=site_id, day=int(day))
        session.add(row)
        session.flush()
    return row.id


def site_arm(*, session: Session, site_id: int) -> str:
    """Return the arm of a site: unblinded use only (analysis, unblinded roles)."""
    row = session.get(Site, site_id)
    if row is None:
        raise InputError(f"site_id {site_id}: no such site")
    return row.arm


def record_event(
    *,
    session: Session,
    actor: str,
    action: str,
    entity: str,
    entity_id: str | int | None = None,
    detail: dict[str, object] | None = None,
    user_id: int | None = None,
) -> None:
    """Append an audit event to the hash chain (flushed with the caller's transaction).

    A thin wrapper over :func:`hairtrial.store.audit.append_event`, the one path by which
    audit rows are written.

    Parameters
    ----------
    session : Session
        Open session.
    actor : str
        Who acted: a user name, or a process such as ``"ingest"``.
    action : str
        What was done (``"ingest"``, ``"measure"``, ``"correct"``...).
    entity : str
        Kind of thing acted on (table name).
    entity_id : str or int, optional
        Which one.
    detail : dict, optional
        JSON-serialisable details.
    user_id : int, optional
        Web-app user row id, when a user acted.
    """
    append_event(
        session=session,
        actor=actor,
        action=action,
        entity=entity,
        entity_id=entity_id,
        detail=detail,
        user_id=user_id,
    )
