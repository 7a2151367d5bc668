"""Follicle tracks: follicles followed across the visits of one site.

The tracking step (``hairtrial.track``) links hairs of one site's images into follicles;
:func:`save_tracks` stores its result for one site, package version and config hash in one
transaction. Saving the same site, version and config again is a no-op.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, insert, select
from sqlalchemy.orm import Session

from hairtrial._validate import InputError
from hairtrial.records import HairRecord
from hairtrial.store.models import Follicle, FollicleObservation, Hair, Image, MeasurementRun, Visit
from hairtrial.store.phototrichograms import REGROWTH_KIND

log = logging.getLogger(__name__)


def _hair_pk(session: Session, image_id: int, hair_id: int) -> int:
    """Return the row id of hair `hair_id` in the image's latest done run."""
    run_id = session.scalar(
        select(MeasurementRun.id)
        .where(MeasurementRun.image_id == image_id, MeasurementRun.status == "done")
        .order_by(MeasurementRun.finished_at.desc(), MeasurementRun.id.desc())
        .limit(1)
    )
    pk = None
    if run_id is not None:
        pk = session.scalar(select(Hair.id).where(Hair.run_id == run_id, Hair.hair_id == hair_id))
    if pk is None:
        raise InputError(f"image {image_id}: no hair {hair_id} in its latest done run")
    return pk


def _number(obs: Mapping[str, Any], key: str, *, required: bool) -> float | None:
    value = obs.get(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        if required:
            raise InputError(f"observation {dict(obs)}: {key} is required")
        return None
    return float(value)


def save_tracks(
    *,
    session: Session,
    site_id: int,
    version: str,
    config_hash: str,
    observations: Iterable[Mapping[str, Any]],
) -> int:
    """Store the follicles of one site and their observations in one transaction; commit.

    Parameters
    ----------
    session : Session
        Open session; committed here (rolled back on any error).
    site_id : int
        Site row id.
    version : str
        Package version that tracked.
    config_hash : str
        Hash of the tracking parameters.
    observations : iterable of mappings
        One per follicle × image: ``follicle_id`` (int label), ``image_id``, ``x_um`` and
        ``y_um`` (µm, site frame), and optionally ``present`` (bool, default true),
        ``diameter_um``, ``length_um`` (µm), ``phase`` and ``hair_id`` (the hair's id in
        the image's latest done run). ``DataFrame.to_dict("records")`` fits.

    Returns
    -------
    int
        Follicles stored (0 when this site, version and config were stored before).
    """
    try:
        existing = session.scalar(
            select(func.count())
            .select_from(Follicle)
            .where(
                Follicle.site_id == site_id,
                Follicle.package_version == version,
                Follicle.config_hash == config_hash,
            )
        )
        if existing:
            session.rollback()
            return 0
        site_images = set(
            session.scalars(
                select(Image.id)
                .join(Visit, Visit.id == Image.visit_id)
                .where(Visit.site_id == site_id)
            )
        )
        follicles: dict[int, int] = {}
        rows = []
        for obs in observations:
            image_id = int(obs["image_id"])
            if image_id not in site_images:
                raise InputError(f"image_id {image_id}: not an image of site {site_id}")
            label = int(obs["follicle_id"])
            if label not in follicles:
                follicle = Follicle(
                    site_id=site_id, package_version=version, config_hash=config_hash, label=label
                )
                session.add(follicle)
                session.flush()
                follicles[label] = follicle.id
            hair_id = _number(obs, "hair_id", required=False)
            hair_pk = None if hair_id is None else _hair_pk(session, image_id, int(hair_id))
            rows.append(
                {
                    "follicle_id": follicles[label],
                    "image_id": image_id,
                    "hair_pk": hair_pk,
                    "x_um": _number(obs, "x_um", required=True),
                    "y_um": _number(obs, "y_um", required=True),
                    "present": bool(obs.get("present", True)),
                    "diameter_um": _number(obs, "diameter_um", required=False),
                    "length_um": _number(obs, "length_um", required=False),
                    "phase": obs.get("phase"),
                }
            )
        if rows:
            session.execute(insert(FollicleObservation), rows)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    log.info(
        "site %d: stored %d follicle(s), %d observation(s)", site_id, len(follicles), len(rows)
    )
    return len(follicles)


@dataclass(frozen=True)
class VisitImage:
    """One visit image of a site, as the tracking step needs it.

    Parameters
    ----------
    image_id : int
        Image row id.
    day : int, days
        Visit day.
    um_per_px : float, µm/px
        Calibration.
    shape : (int, int)
        Height and width in pixels.
    run_id : int or None
        Done measurement run for the version and config asked (``None``: not measured).
    name : str
        File name of the source image.
    hidden_rows : (int, int), px
        Rows a status bar hides at the top and bottom, as the run measured them
        (``(0, 0)`` for runs stored without them).
    """

    image_id: int
    day: int
    um_per_px: float
    shape: tuple[int, int]
    run_id: int | None
    name: str
    hidden_rows: tuple[int, int] = (0, 0)


def site_visit_images(
    *, session: Session, version: str, config_hash: str
) -> dict[int, list[VisitImage]]:
    """Return the visit images of every site, in visit order, with their done run if any.

    Phototrichogram regrowth images (kind ``clipped-regrowth``) are not visits and are left
    out.

    Parameters
    ----------
    session : Session
        Open session (read only).
    version : str
        Package version of the measurement runs.
    config_hash : str
        Measurement config hash of the runs.

    Returns
    -------
    dict of int to list of VisitImage
        Keyed by site id.
    """
    done = and_(
        MeasurementRun.image_id == Image.id,
        MeasurementRun.status == "done",
        MeasurementRun.package_version == version,
        MeasurementRun.config_hash == config_hash,
    )
    rows = session.execute(
        select(
            Visit.site_id,
            Image.id,
            Visit.day,
            Image.um_per_px,
            Image.height,
            Image.width,
            MeasurementRun.id,
            Image.source_path,
            Image.kind,
            MeasurementRun.summary,
        )
        .join(Visit, Visit.id == Image.visit_id)
        .outerjoin(MeasurementRun, done)
        .order_by(Visit.site_id, Visit.day, Image.id)
    ).all()
    sites: dict[int, list[VisitImage]] = defaultdict(list)
    for site_id, image_id, day, um, height, width, run_id, source, kind, summary in rows:
        if kind == REGROWTH_KIND:  # a re-image of a visit's field days later
            continue
        sites[site_id].append(
            VisitImage(
                image_id, day, um, (height, width), run_id, source.rsplit("/", 1)[-1],
                hidden_rows=_hidden_rows(summary),
            )
        )  # fmt: skip
    return dict(sites)


def _hidden_rows(summary: Any) -> tuple[int, int]:
    """Rows a status bar hides, from a run's stored summary; (0, 0) when not recorded."""
    value = summary.get("hidden_rows") if isinstance(summary, dict) else None
    try:
        top, bottom = (int(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return (0, 0)
    return (max(top, 0), max(bottom, 0))


def tracked_site_ids(*, session: Session, version: str, config_hash: str) -> set[int]:
    """Return the ids of the sites already tracked for this version and tracking key.

    Parameters
    ----------
    session : Session
        Open session (read only).
    version : str
        Package version of the tracks.
    config_hash : str
        Tracking key stored with the follicles.

    Returns
    -------
    set of int
    """
    query = select(Follicle.site_id).where(
        Follicle.package_version == version, Follicle.config_hash == config_hash
    )
    return set(session.scalars(query.distinct()))


def _with_exit_confidence(extra: dict[str, Any] | None, sure: float | None) -> dict[str, Any]:
    """Return a stored hair's extra fields, with its exit confidence when it has one."""
    out = dict(extra or {})
    if sure is not None:
        out["exit_confidence"] = sure
    return out


def hairs_of_run(*, session: Session, run_id: int) -> list[HairRecord]:
    """Return the hair records saved by one measurement run, in hair-id order.

    Parameters
    ----------
    session : Session
        Open session (read only).
    run_id : int
        Measurement run id.

    Returns
    -------
    list of HairRecord
        As measured; a hair stored with its exit confidence carries it in `extra`
        (``exit_confidence``, the key of the ``hairtrial measure`` JSON).
    """
    hairs = []
    for h in session.scalars(select(Hair).where(Hair.run_id == run_id).order_by(Hair.hair_id)):
        exit_px = None if h.exit_x_px is None or h.exit_y_px is None else (h.exit_x_px, h.exit_y_px)
        hairs.append(
            HairRecord(
                id=h.hair_id,
                exit_px=exit_px,
                tip_px=(h.tip_x_px, h.tip_y_px),
                centerline_px=tuple((float(x), float(y)) for x, y in h.centerline_px),
                diameter_um=h.diameter_um,
                length_um=h.length_um,
                hair_class=h.hair_class,  # type: ignore[arg-type]
                confidence=h.confidence,
                extra=_with_exit_confidence(h.extra, h.exit_confidence),
            )
        )
    return hairs
