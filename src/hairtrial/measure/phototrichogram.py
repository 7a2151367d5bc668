"""Phototrichogram: the same clipped field imaged twice, growing hairs are anagen.

Between the two pictures the field shifts and turns a little, even with a tattoo mark, so
the hairs' exit points are registered first: the translation is the mode of all pairwise
exit differences (robust to missing and new hairs), then a least-squares similarity
(Umeyama) is fitted to the one-to-one matches and the matching repeated. An anagen hair has
grown by ~0.3–0.4 mm/day; a telogen hair has not grown at all, so the growth per matched
hair splits the two phases with a wide margin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from hairtrial._validate import InputError, check_positive
from hairtrial.measure.core import ImageMeasurement
from hairtrial.measure.metrics import match_points

F64 = NDArray[np.float64]


@dataclass(frozen=True)
class HairGrowth:
    """One hair matched between the two images.

    Parameters
    ----------
    id_first, id_second : int
        Hair ids in the first and second measurement.
    growth_um_per_day : float, µm/day
        Change of visible length per day.
    phase : {'anagen', 'telogen'}
        Growing or not.
    """

    id_first: int
    id_second: int
    growth_um_per_day: float
    phase: str


@dataclass(frozen=True)
class PhototrichogramResult:
    """Growth per hair and the anagen / telogen counts.

    Parameters
    ----------
    hairs : tuple of HairGrowth
        Matched hairs.
    n_anagen, n_telogen : int
        Matched hairs by phase.
    anagen_fraction : float or None
        ``n_anagen / (n_anagen + n_telogen)``; ``None`` without matches.
    n_unmatched_first, n_unmatched_second : int
        Counted hairs seen in only one image.
    transform : (2, 3) ndarray
        Similarity mapping first-image pixels to second-image pixels.
    """

    hairs: tuple[HairGrowth, ...]
    n_anagen: int
    n_telogen: int
    anagen_fraction: float | None
    n_unmatched_first: int
    n_unmatched_second: int
    transform: F64


def _translation_vote(a: F64, b: F64, cell: float) -> F64:
    """Mode of all pairwise differences b - a (2-D histogram with `cell` px bins)."""
    diff = (b[None, :, :] - a[:, None, :]).reshape(-1, 2)
    keys = np.round(diff / cell).astype(np.int64)
    _, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    best = int(np.argmax(counts))
    return np.asarray(diff[inverse.ravel() == best].mean(axis=0), dtype=float)


def _similarity(src: F64, dst: F64) -> F64:
    """Least-squares similarity (rotation, scale, translation) src → dst (Umeyama)."""
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    fix = np.eye(2)
    if np.linalg.det(u @ vt) < 0:
        fix[1, 1] = -1
    rot = u @ fix @ vt
    var = float((s**2).sum() / len(src))
    scale = float(np.trace(np.diag(sig) @ fix) / var) if var > 0 else 1.0
    t = mu_d - scale * rot @ mu_s
    return np.column_stack([scale * rot, t])


def phototrichogram(
    first: ImageMeasurement,
    second: ImageMeasurement,
    *,
    days: float,
    max_distance_um: float = 120.0,
    anagen_min_um_per_day: float = 100.0,
) -> PhototrichogramResult:
    """Register two measurements of one field, match hairs, classify growth.

    Parameters
    ----------
    first, second : ImageMeasurement
        The field just after clipping and `days` later (same calibration expected).
    days : float, days
        Time between the two images.
    max_distance_um : float, µm
        Largest exit distance, after registration, for a match.
    anagen_min_um_per_day : float, µm/day
        Growth at or above which a hair is anagen.

    Returns
    -------
    PhototrichogramResult
    """
    days = check_positive(days, name="days")
    check_positive(max_distance_um, name="max_distance_um")
    check_positive(anagen_min_um_per_day, name="anagen_min_um_per_day")
    if not math.isclose(first.um_per_px, second.um_per_px, rel_tol=0.1):
        raise InputError(
            f"phototrichogram: calibrations differ ({first.um_per_px} vs {second.um_per_px} µm/px)"
        )
    a_hairs = [h for h in first.hairs if h.exit_px is not None]
    b_hairs = [h for h in second.hairs if h.exit_px is not None]
    a = np.array([h.exit_px for h in a_hairs], dtype=float).reshape(-1, 2)
    b = np.array([h.exit_px for h in b_hairs], dtype=float).reshape(-1, 2)
    tol_px = max_distance_um / first.um_per_px
    transform = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    pairs: list[tuple[int, int]] = []
    if len(a) and len(b):
        transform[:, 2] = _translation_vote(a, b, cell=tol_px / 2)
        for _ in range(3):
            moved = a @ transform[:, :2].T + transform[:, 2]
            pairs = match_points(moved, b, max_distance=tol_px)
            if len(pairs) < 3:
                break
            ia = [i for i, _ in pairs]
            ib = [j for _, j in pairs]
            transform = _similarity(a[ia], b[ib])
        moved = a @ transform[:, :2].T + transform[:, 2]
        pairs = match_points(moved, b, max_distance=tol_px)
    growth = []
    for i, j in pairs:
        rate = (b_hairs[j].length_um - a_hairs[i].length_um) / days
        phase = "anagen" if rate >= anagen_min_um_per_day else "telogen"
        growth.append(HairGrowth(a_hairs[i].id, b_hairs[j].id, float(rate), phase))
    n_ana = sum(1 for g in growth if g.phase == "anagen")
    n_tel = len(growth) - n_ana
    return PhototrichogramResult(
        hairs=tuple(growth),
        n_anagen=n_ana,
        n_telogen=n_tel,
        anagen_fraction=(n_ana / len(growth)) if growth else None,
        n_unmatched_first=len(a_hairs) - len(pairs),
        n_unmatched_second=len(b_hairs) - len(pairs),
        transform=transform,
    )
