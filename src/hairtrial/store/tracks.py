"""Follicle tracks: follicles followed across the visits of one site.

The tracking step (``hairtrial.track``) links hairs of one site's images into follicles;
:func:`save_tracks` stores its result for one site, package version and config hash in one
transaction. Saving the same site, version and config again is a no-op.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from hairtrial._validate import InputError
from hairtrial.store.models import Follicle, FollicleObservation, Hair, Image, MeasurementRun, Visit

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
