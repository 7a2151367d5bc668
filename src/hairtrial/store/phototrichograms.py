"""Phototrichogram pairs and their results in the trial database.

A phototrichogram re-images a clipped visit field a few days later (image kind
``clipped-regrowth``); the hairs that grew are anagen. :func:`phototrichogram_pairs`
pairs each re-image with the clipped image of the same site it re-images (the latest one
at most :data:`MAX_REGROWTH_DAYS` days before it), :func:`save_phototrichogram` stores
one pair's result in one transaction (saving the same pair, version and key again is a
no-op), and :func:`latest_phototrichograms` gives the export its newest result per re-image.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session, defer

from hairtrial._validate import InputError
from hairtrial.store.models import Image, MeasurementRun, Phototrichogram, Visit

log = logging.getLogger(__name__)

#: Kind of a phototrichogram re-image, and of the clipped image it re-images.
REGROWTH_KIND = "clipped-regrowth"
CLIPPED_KIND = "clipped"
#: Longest delay between a clipped image and its re-image, days.
MAX_REGROWTH_DAYS = 7


@dataclass(frozen=True)
class PhotoPair:
    """A clipped image and its re-image, as the phototrichogram step needs them.

    Parameters
    ----------
    regrowth_image_id, clipped_image_id : int
        Image row ids.
    regrowth_run_id, clipped_run_id : int or None
        Done measurement runs for the version and config asked (``None``: not measured).
    days : float, days
        Time between the two images: from their acquisition times when both have one,
        else from their visit days.
    um_per_px : (float, float), µm/px
        Calibrations (clipped, re-image).
    shapes : ((int, int), (int, int))
        Image sizes in px, height × width (clipped, re-image).
    """

    regrowth_image_id: int
    clipped_image_id: int
    regrowth_run_id: int | None
    clipped_run_id: int | None
    days: float
    um_per_px: tuple[float, float]
    shapes: tuple[tuple[int, int], tuple[int, int]]


def phototrichogram_pairs(*, session: Session, version: str, config_hash: str) -> list[PhotoPair]:
    """Pair every re-image with the clipped image of its site that it re-images.

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
    list of PhotoPair
        Ordered by re-image id. A re-image without a clipped image of its site in the
        :data:`MAX_REGROWTH_DAYS` days before it is left out (logged).
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
            Visit.day,
            Image.id,
            Image.kind,
            Image.acquired_at,
            Image.um_per_px,
            Image.height,
            Image.width,
            MeasurementRun.id,
        )
        .join(Visit, Visit.id == Image.visit_id)
        .outerjoin(MeasurementRun, done)
        .where(Image.kind.in_((REGROWTH_KIND, CLIPPED_KIND)))
        .order_by(Visit.site_id, Visit.day, Image.id)
    ).all()
    by_site: dict[int, list[Any]] = defaultdict(list)
    for row in rows:
        by_site[row[0]].append(row)
    pairs = []
    for site_rows in by_site.values():
        clipped = [r for r in site_rows if r[3] == CLIPPED_KIND]
        for r in (r for r in site_rows if r[3] == REGROWTH_KIND):
            before = [c for c in clipped if r[1] - MAX_REGROWTH_DAYS <= c[1] < r[1]]
            if not before:
                log.warning(
                    "image %d: no clipped image of its site in the %d days before it",
                    r[2], MAX_REGROWTH_DAYS,
                )  # fmt: skip
                continue
            latest = max(c[1] for c in before)
            c = min((c for c in before if c[1] == latest), key=lambda c: c[2])
            days = float(r[1] - c[1])
            if r[4] is not None and c[4] is not None:
                elapsed = (r[4] - c[4]).total_seconds() / 86400.0
                days = elapsed if elapsed > 0 else days
            pairs.append(
                PhotoPair(
                    regrowth_image_id=r[2],
                    clipped_image_id=c[2],
                    regrowth_run_id=r[8],
                    clipped_run_id=c[8],
                    days=days,
                    um_per_px=(c[5], r[5]),
                    shapes=((c[6], c[7]), (r[6], r[7])),
                )
            )
    return sorted(pairs, key=lambda p: p.regrowth_image_id)


def stored_phototrichograms(*, session: Session, version: str, key: str) -> set[int]:
    """Return the re-image ids that have a stored result for this version and key.

    Parameters
    ----------
    session : Session
        Open session (read only).
    version : str
        Package version of the results.
    key : str
        Phototrichogram key stored with the results.

    Returns
    -------
    set of int
    """
    query = select(Phototrichogram.regrowth_image_id).where(
        Phototrichogram.package_version == version, Phototrichogram.config_hash == key
    )
    return set(session.scalars(query))


def _count(result: Mapping[str, Any], name: str) -> int:
    value = result.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputError(f"phototrichogram result: {name} must be a count, got {value!r}")
    return value


def save_phototrichogram(
    *, session: Session, pair: PhotoPair, version: str, key: str, result: Mapping[str, Any]
) -> bool:
    """Store one pair's result in one transaction; commit.

    Parameters
    ----------
    session : Session
        Open session; committed here (rolled back on any error).
    pair : PhotoPair
        The pair, with both runs done.
    version : str
        Package version that computed the result.
    key : str
        Hash of the measurement config and phototrichogram parameters.
    result : mapping
        :meth:`hairtrial.track.phototrichogram.PhototrichogramResult.to_json`.

    Returns
    -------
    bool
        True when stored, False when this re-image, version and key were stored before.

    Raises
    ------
    InputError
        For a pair without done runs or a malformed result (nothing is written).
    """
    try:
        if pair.regrowth_run_id is None or pair.clipped_run_id is None:
            raise InputError(f"image {pair.regrowth_image_id}: the pair has no done runs")
        existing = session.scalar(
            select(Phototrichogram.id).where(
                Phototrichogram.regrowth_image_id == pair.regrowth_image_id,
                Phototrichogram.package_version == version,
                Phototrichogram.config_hash == key,
            )
        )
        if existing is not None:
            session.rollback()
            return False
        fraction = result.get("anagen_fraction")
        if fraction is not None and not (0.0 <= float(fraction) <= 1.0):
            raise InputError(f"phototrichogram result: anagen_fraction {fraction!r} not in [0, 1]")
        days = float(result.get("days", pair.days))
        if not (math.isfinite(days) and days > 0):
            raise InputError(f"phototrichogram result: days must be positive, got {days!r}")
        registration = result.get("registration") or {}
        session.add(
            Phototrichogram(
                regrowth_image_id=pair.regrowth_image_id,
                clipped_image_id=pair.clipped_image_id,
                regrowth_run_id=pair.regrowth_run_id,
                clipped_run_id=pair.clipped_run_id,
                package_version=version,
                config_hash=key,
                days=days,
                registered=bool(result.get("registered")),
                score=float(registration.get("score", 0.0)),
                method=str(result.get("method", "")),
                n_anagen=_count(result, "n_anagen"),
                n_telogen=_count(result, "n_telogen"),
                n_lost=_count(result, "lost"),
                n_undetermined=_count(result, "undetermined"),
                anagen_fraction=None if fraction is None else float(fraction),
                result=dict(result),
            )
        )
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return True


def latest_phototrichograms(*, session: Session) -> dict[int, Phototrichogram]:
    """Return the newest stored result of every re-image, keyed by its image id.

    Parameters
    ----------
    session : Session
        Open session (read only). The rows' per-hair ``result`` JSON is not read until
        it is used, so use it while the session is open.

    Returns
    -------
    dict of int to Phototrichogram
    """
    newest: dict[int, Phototrichogram] = {}
    query = (
        select(Phototrichogram)
        .options(defer(Phototrichogram.result))
        .order_by(Phototrichogram.created_at, Phototrichogram.id)
    )
    for row in session.scalars(query):
        newest[row.regrowth_image_id] = row
    return newest


@dataclass(frozen=True)
class PhotoStatus:
    """Phototrichogram progress of a trial database.

    Parameters
    ----------
    n_reimages : int
        Images of kind ``clipped-regrowth``.
    n_done : int
        Re-images with a stored result (any version or key).
    refused : tuple of (str, str)
        ``(image file name, reason)`` of re-images whose newest result could not be
        registered to their clipped image.
    """

    n_reimages: int
    n_done: int
    refused: tuple[tuple[str, str], ...]


def phototrichogram_status(*, session: Session) -> PhotoStatus:
    """Count re-images and their stored results; list the refused pairs.

    Parameters
    ----------
    session : Session
        Open session (read only).

    Returns
    -------
    PhotoStatus
    """
    from sqlalchemy import func

    n_reimages = session.scalar(
        select(func.count()).select_from(Image).where(Image.kind == REGROWTH_KIND)
    )
    newest = latest_phototrichograms(session=session)
    names: dict[int, str] = {
        int(image_id): str(source)
        for image_id, source in session.execute(
            select(Image.id, Image.source_path).where(Image.id.in_(list(newest)))
        )
    }
    refused = tuple(
        (
            names[image_id].rsplit("/", 1)[-1],
            str((row.result.get("registration") or {}).get("reason") or "not registered"),
        )
        for image_id, row in sorted(newest.items())
        if not row.registered
    )
    return PhotoStatus(n_reimages=int(n_reimages or 0), n_done=len(newest), refused=refused)
