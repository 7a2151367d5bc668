"""Agreement: automatic against corrected, and between assessors (ICC).

Per image, the automatic run's endpoint against the latest approved revision
(:func:`automatic_vs_corrected`), and between two assessors who approved the same image
(:func:`assessor_agreement`), summarised as the mean difference, the mean absolute
percentage and ICC(2,1) (:func:`icc_2_1`, Shrout & Fleiss 1979).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from sqlalchemy import select
from sqlalchemy.orm import Session

from hairtrial._validate import InputError
from hairtrial.store.models import MeasurementRun, Review


@dataclass(frozen=True)
class Agreement:
    """Agreement between two sets of per-image values (e.g. hair counts).

    Parameters
    ----------
    n : int
        Images compared.
    mean_difference : float or None
        Mean of second − first.
    mean_abs_percent : float or None
        Mean |second − first| / first in percent (images with first > 0).
    icc : float or None
        ICC(2,1), two-way random, absolute agreement, single rater (Shrout & Fleiss).
    """

    n: int
    mean_difference: float | None
    mean_abs_percent: float | None
    icc: float | None


def icc_2_1(values: ArrayLike) -> float:
    """ICC(2,1): two-way random effects, absolute agreement, single rater.

    Shrout & Fleiss (1979): ``(MSR − MSE) / (MSR + (k − 1) MSE + k (MSC − MSE) / n)``
    over `n` targets rated by the same `k` raters.

    Parameters
    ----------
    values : (n, k) array_like
        One row per target (image), one column per rater; no missing values.

    Returns
    -------
    float
        NaN when undefined (fewer than 2 targets or raters, or no variance at all).
    """
    x = np.asarray(values, dtype=float)
    if x.ndim != 2:
        raise InputError(f"values: expected an (n, k) table, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise InputError("values: must be finite (no missing ratings)")
    n, k = x.shape
    if n < 2 or k < 2:
        return float("nan")
    grand = x.mean()
    ss_rows = k * float(((x.mean(axis=1) - grand) ** 2).sum())
    ss_cols = n * float(((x.mean(axis=0) - grand) ** 2).sum())
    ss_err = float(((x - grand) ** 2).sum()) - ss_rows - ss_cols
    msr = ss_rows / (n - 1)
    msc = ss_cols / (k - 1)
    mse = ss_err / ((n - 1) * (k - 1))
    denominator = msr + (k - 1) * mse + k * (msc - mse) / n
    return float("nan") if denominator == 0 else float((msr - mse) / denominator)


def _agreement(pairs: Sequence[tuple[float, float]]) -> Agreement:
    if not pairs:
        return Agreement(n=0, mean_difference=None, mean_abs_percent=None, icc=None)
    a = np.array(pairs, dtype=float)
    diff = a[:, 1] - a[:, 0]
    positive = a[:, 0] > 0
    pct = float(np.mean(np.abs(diff[positive]) / a[positive, 0]) * 100) if positive.any() else None
    icc = icc_2_1(a) if len(a) >= 2 else float("nan")
    return Agreement(
        n=len(a),
        mean_difference=float(diff.mean()),
        mean_abs_percent=pct,
        icc=None if math.isnan(icc) else icc,
    )


def _approved_by_author(session: Session, metric: str) -> dict[int, dict[int, float]]:
    """Map image id → author id → metric of that author's latest approved usable revision."""
    rows = session.scalars(
        select(Review).where(Review.status == "approved").order_by(Review.id)
    ).all()
    out: dict[int, dict[int, float]] = {}
    for r in rows:
        value = r.summary.get(metric)
        per_image = out.setdefault(r.image_id, {})
        if r.unusable or value is None:
            per_image.pop(r.author_id, None)
        else:
            per_image[r.author_id] = float(value)
    return out


def automatic_vs_corrected(*, session: Session, metric: str = "hair_count") -> Agreement:
    """Agreement of the automatic run with the latest approved revision, per image.

    Parameters
    ----------
    session : Session
        Open session.
    metric : str
        Endpoint compared (a key of the summaries, e.g. ``hair_count``,
        ``mean_diameter_um``).

    Returns
    -------
    Agreement
        First = automatic, second = corrected.
    """
    latest: dict[int, Review] = {}
    for r in session.scalars(select(Review).where(Review.status == "approved").order_by(Review.id)):
        latest[r.image_id] = r
    pairs = []
    for _, rev in sorted(latest.items()):
        run = session.get(MeasurementRun, rev.run_id)
        auto = None if run is None else (run.summary or {}).get(metric)
        corrected = rev.summary.get(metric)
        if auto is not None and corrected is not None and not rev.unusable:
            pairs.append((float(auto), float(corrected)))
    return _agreement(pairs)


def assessor_agreement(*, session: Session, metric: str = "hair_count") -> Agreement:
    """ICC between assessors who reviewed the same images.

    Each image approved (and usable) by at least two authors contributes the latest
    values of its first two authors (by user id) as rater 1 and rater 2.

    Parameters
    ----------
    session : Session
        Open session.
    metric : str
        Endpoint compared (see :func:`automatic_vs_corrected`).

    Returns
    -------
    Agreement
    """
    pairs = []
    for _, by_author in sorted(_approved_by_author(session, metric).items()):
        if len(by_author) >= 2:
            first, second = sorted(by_author)[:2]
            pairs.append((by_author[first], by_author[second]))
    return _agreement(pairs)
