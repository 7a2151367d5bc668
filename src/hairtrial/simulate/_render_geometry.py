"""Geometry behind :mod:`hairtrial.simulate.render` (private).

Per-follicle random features come from a counter-based hash of the follicle id, so a
follicle looks the same in every image of its site whatever the image seed; shaft centrelines
are integrated from a curvature profile in site micrometres and only then mapped to pixels,
so that the camera pose is honoured exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtri

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
B = NDArray[np.bool_]

_MASK64 = 0xFFFFFFFFFFFFFFFF
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)

#: Stream tags: one per independent per-follicle feature family.
HAIR_STREAM = 0x4841_4952  # "HAIR"
UNIT_STREAM = 0x554E_4954  # "UNIT" (follicular-unit features: ostium, halo)


@dataclass(frozen=True)
class PoseMap:
    """Site µm to image px for one pose, image size and calibration (a similarity).

    ``x_px = px0 + c u + s v``, ``y_px = py0 - s u + c v`` with ``u = k (x - x0)`` and
    ``v = k (y - y0)``: the one formula used for every coordinate, so truth and pixels agree
    to the last bit.
    """

    k: float  # px per µm
    cos: float
    sin: float
    x0: float  # site point (µm) imaged at (px0, py0)
    y0: float
    px0: float
    py0: float

    def __call__(self, x: ArrayLike, y: ArrayLike) -> tuple[F64, F64]:
        """Map site coordinates (µm) to pixel coordinates (px, corner origin)."""
        u = (np.asarray(x, dtype=np.float64) - self.x0) * self.k
        v = (np.asarray(y, dtype=np.float64) - self.y0) * self.k
        return self.px0 + self.cos * u + self.sin * v, self.py0 - self.sin * u + self.cos * v

    def inverse(self, x: ArrayLike, y: ArrayLike) -> tuple[F64, F64]:
        """Map pixel coordinates (px) back to site coordinates (µm)."""
        du = np.asarray(x, dtype=np.float64) - self.px0
        dv = np.asarray(y, dtype=np.float64) - self.py0
        return (
            self.x0 + (self.cos * du - self.sin * dv) / self.k,
            self.y0 + (self.sin * du + self.cos * dv) / self.k,
        )


def _mix(z: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """SplitMix64 finaliser (a bijective, well-mixing 64-bit hash)."""
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def hash_uniform(ids: I64, stream: int, draw: int) -> F64:
    """Return one uniform number in (0, 1) per id, independent across `stream` and `draw`.

    Parameters
    ----------
    ids : (n,) ndarray of int64
        Follicle or follicular-unit ids (any int64 value).
    stream, draw : int
        Feature family and draw number; each pair gives an independent sequence.

    Returns
    -------
    (n,) ndarray of float64
        Numbers strictly inside (0, 1), a pure function of (id, stream, draw).
    """
    key = np.uint64(((stream & 0xFFFFFFFF) << 32 | (draw & 0xFFFFFFFF)) & _MASK64)
    z = np.ascontiguousarray(ids, dtype=np.int64).view(np.uint64)
    z = _mix(_mix(z * _GOLDEN + key) + _GOLDEN)
    return ((z >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53


def hash_normal(ids: I64, stream: int, draw: int) -> F64:
    """Return standard normal numbers, one per id; see :func:`hash_uniform`."""
    return np.asarray(ndtri(hash_uniform(ids, stream, draw)), dtype=np.float64)


@dataclass(frozen=True)
class ShaftShapes:
    """Per-follicle shape and look parameters drawn from the follicle id.

    Every array has one entry per follicle. Curvatures in 1/µm, lengths in µm.
    """

    kappa0: F64
    straight_um: F64
    decay_um: F64
    wave_amp: F64  # (n, 3), 1/µm
    wave_k: F64  # (n, 3), rad/µm
    wave_phase: F64  # (n, 3), rad
    twist_um: F64
    twist_phase: F64
    ellipticity: F64
    pigment_jitter: F64
    unpigmented_u: F64
    streak_phase: F64
    cut_tan: F64  # obliqueness of a clipped shaft's cut face (tan of its tilt)


def shaft_shapes(follicle_id: I64, diameter_um: F64) -> ShaftShapes:
    """Draw the per-follicle shape parameters from the follicle ids.

    Thin shafts bend more (bending stiffness grows with the fourth power of the diameter), so
    the curvature scale grows as diameters fall below ~70 µm.

    Parameters
    ----------
    follicle_id : (n,) ndarray of int64
        Follicle ids.
    diameter_um : (n,) ndarray of float64, µm
        Shaft diameters (NaN where there is no shaft; those rows get placeholder values).

    Returns
    -------
    ShaftShapes
    """
    ids = np.asarray(follicle_id, dtype=np.int64)

    def u(k: int) -> F64:
        return hash_uniform(ids, HAIR_STREAM, k)

    def n(k: int) -> F64:
        return hash_normal(ids, HAIR_STREAM, k)

    d = np.where(np.isfinite(diameter_um), diameter_um, 60.0)
    stiffness = np.clip(70.0 / np.maximum(d, 5.0), 0.6, 4.0)
    kappa0 = n(0) * stiffness / 7000.0
    amp = np.stack([n(10 + i) for i in range(3)], axis=1) * stiffness[:, None] / 14000.0
    wavelength = np.stack([2000.0 + 9000.0 * u(20 + i) for i in range(3)], axis=1)
    return ShaftShapes(
        kappa0=kappa0,
        straight_um=500.0 + 900.0 * u(1),
        decay_um=3000.0 + 6000.0 * u(2),
        wave_amp=amp,
        wave_k=2.0 * np.pi / wavelength,
        wave_phase=np.stack([2.0 * np.pi * u(30 + i) for i in range(3)], axis=1),
        twist_um=250.0 + 650.0 * u(3),
        twist_phase=2.0 * np.pi * u(4),
        ellipticity=0.03 * u(5),
        pigment_jitter=np.exp(0.10 * n(6)),
        unpigmented_u=u(7),
        streak_phase=2.0 * np.pi * u(8),
        cut_tan=np.tan(np.radians(-35.0 + 70.0 * u(9))),
    )


def centreline_site(
    x0_um: float,
    y0_um: float,
    azimuth_rad: float,
    length_um: float,
    step_um: float,
    shapes: ShaftShapes,
    index: int,
) -> tuple[F64, F64]:
    """Integrate the projected shaft centreline of one follicle in site coordinates.

    The curvature along the arc length s (µm) is

        kappa(s) = (1 - exp(-s / straight)) * (kappa0 exp(-s / decay) + sum_k A_k sin(w_k s + p_k))

    straight where the follicle holds the shaft, then a bend that relaxes and a gentle wave.
    Because it depends only on s and the follicle id, a growing hair keeps its shape.

    Parameters
    ----------
    x0_um, y0_um : float, µm
        Exit point in site coordinates.
    azimuth_rad : float, rad
        Initial direction in the site plane (0 = +x, pi/2 = +y).
    length_um : float, µm
        Projected arc length of the shaft (> 0).
    step_um : float, µm
        Largest integration step.
    shapes : ShaftShapes
        Per-follicle parameters.
    index : int
        Row of this follicle in `shapes`.

    Returns
    -------
    x_um, y_um : (m,) ndarray of float64, µm
        Points at equal arc-length steps from the exit (first point) to the tip (last point).
    """
    n_steps = max(1, math.ceil(length_um / step_um))
    h = length_um / n_steps
    s_mid = (np.arange(n_steps, dtype=np.float64) + 0.5) * h
    ramp = -np.expm1(-s_mid / shapes.straight_um[index])
    kappa = shapes.kappa0[index] * np.exp(-s_mid / shapes.decay_um[index])
    for k in range(3):
        kappa = kappa + shapes.wave_amp[index, k] * np.sin(
            shapes.wave_k[index, k] * s_mid + shapes.wave_phase[index, k]
        )
    kappa *= ramp
    # Angle at the segment midpoints: integral of kappa up to s_mid (midpoint rule).
    theta_nodes = azimuth_rad + np.concatenate(([0.0], np.cumsum(kappa * h)))
    theta_mid = 0.5 * (theta_nodes[:-1] + theta_nodes[1:])
    x = x0_um + np.concatenate(([0.0], np.cumsum(h * np.cos(theta_mid))))
    y = y0_um + np.concatenate(([0.0], np.cumsum(h * np.sin(theta_mid))))
    return x, y


def clip_segment_to_box(
    p: tuple[float, float], q: tuple[float, float], width: float, height: float
) -> tuple[float, float] | None:
    """Return the parameter range [t0, t1] of segment p->q inside [0, width] x [0, height].

    Liang-Barsky clipping; ``None`` when the segment misses the box.
    """
    t0, t1 = 0.0, 1.0
    dx, dy = q[0] - p[0], q[1] - p[1]
    for den, num in ((-dx, p[0]), (dx, width - p[0]), (-dy, p[1]), (dy, height - p[1])):
        if den == 0.0:
            if num < 0.0:
                return None
            continue
        t = num / den
        if den < 0.0:
            t0 = max(t0, t)
        else:
            t1 = min(t1, t)
        if t0 > t1:
            return None
    return t0, t1


def _clip_segments(
    px: F64, py: F64, qx: F64, qy: F64, width: float, height: float
) -> tuple[F64, F64]:
    """Vectorised Liang-Barsky: parameter range of each segment inside the box.

    Segments that miss the box get ``t0 > t1``.
    """
    t0 = np.zeros(px.shape)
    t1 = np.ones(px.shape)
    dx, dy = qx - px, qy - py
    for den, num in ((-dx, px), (dx, width - px), (-dy, py), (dy, height - py)):
        parallel = den == 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            t = num / np.where(parallel, 1.0, den)
        t0 = np.where(~parallel & (den < 0.0), np.maximum(t0, t), t0)
        t1 = np.where(~parallel & (den > 0.0), np.minimum(t1, t), t1)
        t1 = np.where(parallel & (num < 0.0), -1.0, t1)
    return t0, t1


def visible_run(x: F64, y: F64, width: int, height: int) -> F64 | None:
    """Return the first part of a polyline that lies inside the image, cut at the border.

    Parameters
    ----------
    x, y : (m,) ndarray of float64, px
        Polyline from exit to tip, corner-origin pixel coordinates.
    width, height : int
        Image size in pixels.

    Returns
    -------
    (k, 2) ndarray of float64 or None
        The first contiguous visible run (exit or entry point on the border first), or
        ``None`` when no point of the polyline falls inside ``[0, W) x [0, H)``.
    """
    inside = (x >= 0.0) & (x < width) & (y >= 0.0) & (y < height)
    if not inside.any():
        # A polyline may still cross a corner between two samples outside the image.
        if x.size < 2 or x.max() < 0 or x.min() > width or y.max() < 0 or y.min() > height:
            return None
        t0, t1 = _clip_segments(x[:-1], y[:-1], x[1:], y[1:], width, height)
        hit = np.flatnonzero(t1 > t0)
        if hit.size == 0:
            return None
        i = int(hit[0])
        dx, dy = x[i + 1] - x[i], y[i + 1] - y[i]
        return np.array(
            [[x[i] + t0[i] * dx, y[i] + t0[i] * dy], [x[i] + t1[i] * dx, y[i] + t1[i] * dy]]
        )
    first = int(np.argmax(inside))
    outside_after = np.flatnonzero(~inside[first:])
    last = first + int(outside_after[0]) - 1 if outside_after.size else len(x) - 1
    pts = np.stack([x[first : last + 1], y[first : last + 1]], axis=1)
    if first > 0:
        t = clip_segment_to_box((x[first - 1], y[first - 1]), (x[first], y[first]), width, height)
        if t is not None:
            entry = (
                x[first - 1] + t[0] * (x[first] - x[first - 1]),
                y[first - 1] + t[0] * (y[first] - y[first - 1]),
            )
            pts = np.vstack([np.array([entry]), pts])
    if last < len(x) - 1:
        t = clip_segment_to_box((x[last], y[last]), (x[last + 1], y[last + 1]), width, height)
        if t is not None:
            leave = (
                x[last] + t[1] * (x[last + 1] - x[last]),
                y[last] + t[1] * (y[last + 1] - y[last]),
            )
            pts = np.vstack([pts, np.array([leave])])
    return pts


def resample_polyline(pts: F64, spacing: float) -> F64:
    """Resample a polyline at (about) equal arc-length spacing, keeping both ends.

    Parameters
    ----------
    pts : (k, 2) ndarray of float64
        Polyline vertices.
    spacing : float
        Wanted distance between consecutive output points.

    Returns
    -------
    (m, 2) ndarray of float64
        At least two points (the first and last input points).
    """
    seg = np.hypot(np.diff(pts[:, 0]), np.diff(pts[:, 1]))
    arc = np.concatenate(([0.0], np.cumsum(seg)))
    total = float(arc[-1])
    n = max(1, math.ceil(total / spacing - 1e-9))
    if total <= 0.0:
        return np.vstack([pts[:1], pts[:1]])
    targets = np.linspace(0.0, total, n + 1)
    out = np.stack([np.interp(targets, arc, pts[:, 0]), np.interp(targets, arc, pts[:, 1])], 1)
    out[0], out[-1] = pts[0], pts[-1]
    return out


def runs_inside(mask: B) -> list[tuple[int, int]]:
    """Return [start, stop) index pairs of the contiguous True runs of `mask`."""
    if mask.size == 0:
        return []
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b)) for a, b in zip(edges[0::2], edges[1::2], strict=True)]
