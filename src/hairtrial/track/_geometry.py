"""Geometry shared by registration, matching and tracking (private).

Pixel coordinates are (x, y) with the origin at the top-left pixel's corner (DESIGN.md); a
2×3 matrix ``M`` maps a point ``p`` to ``M[:, :2] @ p + M[:, 2]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hairtrial._validate import InputError
from hairtrial.records import HairRecord

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
B = NDArray[np.bool_]

#: Centreline points (≈2 px apart) between the exit and the point that sets a hair's
#: direction: far enough to average out pixel noise, near enough for a curved shaft.
_DIRECTION_STEP = 5
#: A hair shorter than this (px) has no usable direction.
_MIN_DIRECTION_PX = 2.0


@dataclass(frozen=True)
class HairPoints:
    """The counted hairs of one image as arrays (hairs with an exit point only).

    Parameters
    ----------
    index : (n,) int64
        Position of each hair in the input sequence.
    hair_id : (n,) int64
        ``HairRecord.id``.
    xy : (n, 2) float64, px
        Exit points.
    direction : (n,) float64, radians
        Direction from the exit towards the tip in pixel axes; NaN when unknown.
    diameter_um : (n,) float64, µm
        Shaft diameters.
    """

    index: I64
    hair_id: I64
    xy: F64
    direction: F64
    diameter_um: F64

    def __len__(self) -> int:
        return len(self.index)


def hair_points(hairs: Sequence[HairRecord], *, name: str) -> HairPoints:
    """Extract the counted hairs (exit inside the image) as arrays, checking them.

    Parameters
    ----------
    hairs : sequence of HairRecord
        Hairs of one image.
    name : str
        Argument name used in error messages.

    Returns
    -------
    HairPoints
    """
    if isinstance(hairs, HairRecord | str | bytes) or not isinstance(hairs, Sequence):
        raise InputError(f"{name}: expected a sequence of HairRecord, got {type(hairs).__name__}")
    index: list[int] = []
    ids: list[int] = []
    xy: list[tuple[float, float]] = []
    direction: list[float] = []
    diameter: list[float] = []
    seen: set[int] = set()
    for i, hair in enumerate(hairs):
        if not isinstance(hair, HairRecord):
            raise InputError(f"{name}[{i}]: expected a HairRecord, got {type(hair).__name__}")
        if hair.id in seen:
            raise InputError(f"{name}: hair id {hair.id} occurs twice in one image")
        seen.add(hair.id)
        if hair.exit_px is None:
            continue
        x, y = float(hair.exit_px[0]), float(hair.exit_px[1])
        d = float(hair.diameter_um)
        if not (math.isfinite(x) and math.isfinite(y)):
            raise InputError(f"{name}[{i}] (hair {hair.id}): exit_px is not finite")
        if not math.isfinite(d) or d < 0:
            raise InputError(f"{name}[{i}] (hair {hair.id}): diameter_um must be ≥ 0, got {d}")
        index.append(i)
        ids.append(int(hair.id))
        xy.append((x, y))
        direction.append(_direction(hair, x, y))
        diameter.append(d)
    return HairPoints(
        index=np.asarray(index, dtype=np.int64),
        hair_id=np.asarray(ids, dtype=np.int64),
        xy=np.asarray(xy, dtype=np.float64).reshape(-1, 2),
        direction=np.asarray(direction, dtype=np.float64),
        diameter_um=np.asarray(diameter, dtype=np.float64),
    )


def tips_px(hairs: Sequence[HairRecord], index: I64) -> F64:
    """Tips (px) of the hairs `index` (e.g. :attr:`HairPoints.index`), one row each."""
    return np.array([hairs[int(i)].tip_px for i in index], dtype=np.float64).reshape(-1, 2)


def _direction(hair: HairRecord, x: float, y: float) -> float:
    line = hair.centerline_px
    target = line[min(len(line) - 1, _DIRECTION_STEP)] if len(line) >= 2 else hair.tip_px
    dx, dy = float(target[0]) - x, float(target[1]) - y
    if math.hypot(dx, dy) < _MIN_DIRECTION_PX:
        dx, dy = float(hair.tip_px[0]) - x, float(hair.tip_px[1]) - y
    if not math.hypot(dx, dy) >= _MIN_DIRECTION_PX:
        return math.nan
    return math.atan2(dy, dx)


def apply(matrix: F64, xy: F64) -> F64:
    """Map points (..., 2) through a 2×3 matrix."""
    return np.asarray(xy, dtype=np.float64) @ matrix[:, :2].T + matrix[:, 2]


def rotation_of(matrix: F64) -> float:
    """Rotation angle (radians) of the linear part of a 2×3 matrix (polar part)."""
    a = matrix[:, :2]
    return math.atan2(a[1, 0] - a[0, 1], a[0, 0] + a[1, 1])


def scale_of(matrix: F64) -> float:
    """Mean linear scale (square root of the determinant) of a 2×3 matrix."""
    return math.sqrt(abs(float(np.linalg.det(matrix[:, :2]))))


def compose(outer: F64, inner: F64) -> F64:
    """Return the matrix of ``outer ∘ inner``."""
    lin = outer[:, :2] @ inner[:, :2]
    return np.hstack([lin, (outer[:, :2] @ inner[:, 2] + outer[:, 2])[:, None]])


def invert(matrix: F64) -> F64:
    """Return the inverse of an invertible 2×3 matrix."""
    inv = np.linalg.inv(matrix[:, :2])
    return np.hstack([inv, (-inv @ matrix[:, 2])[:, None]])


def similarity(theta: float, scale: float, tx: float, ty: float) -> F64:
    """Build a similarity matrix from rotation (radians), scale and translation."""
    c, s = scale * math.cos(theta), scale * math.sin(theta)
    return np.array([[c, -s, tx], [s, c, ty]], dtype=np.float64)


def fit_similarity(src: F64, dst: F64, weights: F64 | None = None) -> F64:
    """Least-squares similarity ``dst ≈ s R src + t`` (Umeyama 1991), no reflection."""
    w = np.ones(len(src)) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    mu_s, mu_d = w @ src, w @ dst
    a, b = src - mu_s, dst - mu_d
    cov = (b * w[:, None]).T @ a
    u, sv, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1] = -1.0
    rot = u @ np.diag(d) @ vt
    var = float(w @ (a**2).sum(axis=1))
    scale = float((sv * d).sum() / var) if var > 0 else 1.0
    t = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, t[:, None]])


def fit_affine(src: F64, dst: F64) -> F64:
    """Least-squares affine map ``dst ≈ A src + t``."""
    design = np.hstack([src, np.ones((len(src), 1))])
    sol, *_ = np.linalg.lstsq(design, dst, rcond=None)
    return np.asarray(sol.T, dtype=np.float64)


def angle_diff(a: F64 | float, b: F64 | float) -> Any:
    """Absolute difference of angles (radians), wrapped to [0, π]."""
    return np.abs((np.asarray(a) - np.asarray(b) + np.pi) % (2 * np.pi) - np.pi)


@dataclass(frozen=True)
class Field:
    """The imaged area of one visit as a convex polygon in that image's pixels.

    Built from the image size when known (less the rows a status bar hides, when the
    image itself is given), else from the convex hull of the hairs' exits
    (which lies slightly inside the true field, so judgements stay conservative).
    """

    normals: F64  # (m, 2) outward unit normals
    offsets: F64  # (m,) so that normals @ p + offsets <= 0 inside

    @classmethod
    def from_shape(cls, shape: tuple[int, int], *, top: float = 0.0, bottom: float = 0.0) -> Field:
        """Rectangle ``[0, W] × [top, H - bottom]`` of an image of shape (H, W).

        `top` and `bottom` (px) are rows hidden by a burned-in status bar: skin no exit
        can be seen on is not part of the field. Empty when nothing is left.
        """
        h, w = float(shape[0]), float(shape[1])
        if top + bottom >= h:
            return cls.empty()
        normals = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])
        offsets = np.array([0.0, -w, float(top), -(h - float(bottom))])
        return cls(normals=normals, offsets=offsets)

    @classmethod
    def from_points(cls, xy: F64) -> Field:
        """Convex hull of points; an empty field when they span no area."""
        from scipy.spatial import ConvexHull, QhullError

        if len(xy) < 3:
            return cls.empty()
        try:
            hull = ConvexHull(xy)
        except QhullError:
            return cls.empty()
        eq = np.asarray(hull.equations, dtype=np.float64)
        return cls(normals=eq[:, :2], offsets=eq[:, 2])

    @classmethod
    def empty(cls) -> Field:
        """Return a field that contains nothing."""
        return cls(normals=np.array([[0.0, 0.0]]), offsets=np.array([1.0]))

    def contains(self, xy: F64, *, margin: float = 0.0) -> B:
        """Whether points (n, 2) lie inside, at least `margin` (px) from the edge."""
        pts = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        return np.all(pts @ self.normals.T + self.offsets <= -margin, axis=1)
