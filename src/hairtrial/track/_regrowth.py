"""Phototrichogram regrowth measured along each clipped hair's own axis.

A clipped field re-imaged a few days later holds the same hairs: an anagen hair has grown
out from its exit by 0.2–0.4 mm/day, a telogen hair has not changed. The second image's
own hair detection is the weak link (the grown hairs are long and cross each other), so
growth is not read from two independent detections. Instead:

1. The two fields are registered from their absorptance maps (hair over skin): a coarse
   search over rotations with phase correlation, refined by ECC (enhanced correlation
   coefficient) to a rigid transform. The maps share every hair, so the correlation peaks
   sharply at the true pose; unrelated fields give a low correlation and are refused.
2. Every counted hair of the clipped image is mapped into the second image and locked
   onto its shaft there (a small perpendicular search absorbs skin stretch).
3. From each end the shaft is followed outwards on the absorptance map, re-centred each
   pixel, until bare skin. The same tracing on the clipped image gives what lay beyond
   each measured end already (a fragment of a hair split at a crossing, a cut end the
   detector stopped short of), so growth is the difference of the two, per end, and the
   end that grew is the cut end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from hairtrial.measure._ridges import end_directions
from hairtrial.records import HairRecord
from hairtrial.track._geometry import compose, invert, rotation_of, scale_of
from hairtrial.track.register import Registration

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]

#: Resolutions of the coarse and the fine registration search, µm/px.
_COARSE_UM = 40.0
_FINE_UM = 20.0
#: Rotation (degrees) and scale (first-field px per second-field px, after calibration)
#: grids: the coarse search covers the whole range, the fine one the neighbourhood of
#: each of the best coarse poses.
_COARSE_STEP_DEG = 2.0
_COARSE_SCALES = (0.92, 0.96, 1.0, 1.04, 1.08)
_FINE_ANGLES = (-1.0, -0.5, 0.0, 0.5, 1.0)
_FINE_SCALES = (-0.02, -0.01, 0.0, 0.01, 0.02)
_CANDIDATES = 2
#: A pixel of the first map is hair where its absorptance reaches this share of the
#: map's 99th percentile.
_HAIR_SHARE = 0.3
#: Smallest share of the first field's hair the second field must cover.
_MIN_OVERLAP = 0.3
#: Perpendicular search when locking a mapped hair onto its shaft, µm.
_LOCK_UM = 40.0
#: A hair is on the shaft where the absorptance reaches this share of the shaft's level.
_ON_SHARE = 0.5
#: Bare skin longer than this many shaft widths (at least _MIN_GAP_PX) ends a shaft.
_GAP_WIDTHS = 1.0
_MIN_GAP_PX = 4.0
#: Flank probes beside the shaft, at half a width plus this many widths (≥ 2 px).
_SIDE_WIDTHS = 0.3
#: A crossing longer than this many widths is a neighbour alongside, not a crossing.
_MAX_CROSSING_WIDTHS = 4.0
#: Largest sideways step per pixel followed while tracing, px.
_MAX_DRIFT = 0.2
#: Lateral search while tracing, in shaft widths (at least 1.5 px each side).
_TRACE_WIDTHS = 0.4
#: A hair whose shaft in the second image is fainter than this share of its first-image
#: level (or below _MIN_LEVEL) is not found there (shed, or hidden).
_FOUND_SHARE = 0.4
_MIN_LEVEL = 0.05


def _scale_map(scale: float) -> F64:
    """Corner-origin full-resolution px → centre-origin (OpenCV) px of a map `scale` ×."""
    return np.array([[scale, 0.0, -0.5], [0.0, scale, -0.5]])


def _shift(dx: float, dy: float) -> F64:
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]])


def _small(od: F32, um_per_px: float, work_um: float) -> tuple[F32, float]:
    m, n = od.shape
    size = (max(8, round(n * um_per_px / work_um)), max(8, round(m * um_per_px / work_um)))
    small = cv2.resize(od, size, interpolation=cv2.INTER_AREA)
    return np.asarray(small, np.float32), size[0] / n


@dataclass(frozen=True)
class _Pose:
    contrast: float  # mean second-map absorptance on first-map hair / over the overlap
    covered: float  # share of the first map's hair inside the second field
    matrix: F64  # first-map px → second-map px (OpenCV px of the search maps)
    on_hair: float = 0.0  # share of the first map's covered hair lying on second-map hair


def _vertex(left: float, centre: float, right: float) -> float:
    """Offset (in [-0.5, 0.5]) of the vertex of the parabola through three samples."""
    bend = left - 2.0 * centre + right
    if bend >= 0:
        return 0.0
    return float(np.clip(0.5 * (left - right) / bend, -0.5, 0.5))


def _p99(a: F32) -> float:
    return float(np.percentile(a, 99.0))


def _hair_mask(a: F32) -> F32:
    big = _p99(a)
    if big <= 0:
        return np.zeros_like(a)
    return (a >= _HAIR_SHARE * big).astype(np.float32)


def _score(a: F32, hair: F32, b: F32, b_hair: float, matrix: F64) -> _Pose:
    """Contrast and coverage of the pose `matrix` (first-map px → second-map px).

    `b_hair` is the absorptance from which a pixel of `b` is hair (0: `b` has none).
    """
    m, n = a.shape
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    warped = cv2.warpAffine(b, matrix.astype(np.float32), (n, m), flags=flags)
    ones = cv2.warpAffine(np.ones_like(b), matrix.astype(np.float32), (n, m), flags=flags)
    inside = ones > 0.99
    on = hair.astype(bool) & inside
    covered = float(on.sum()) / max(float(hair.sum()), 1.0)
    if covered < _MIN_OVERLAP or not inside.any():
        return _Pose(0.0, covered, matrix)
    field = float(warped[inside].mean())
    contrast = float(warped[on].mean()) / field if field > 0 else 0.0
    on_hair = float(np.mean(warped[on] >= b_hair)) if b_hair > 0 else 0.0
    return _Pose(contrast, covered, matrix, on_hair)


def _search(a: F32, b: F32, poses: list[tuple[float, float]], keep: int) -> list[_Pose]:
    """Return the `keep` best poses over every translation of each (rotation in degrees, scale).

    The translations come from one FFT cross-correlation per rotation and scale of the
    second map (mean removed) with the first map's hair pixels; the best are then scored
    exactly by :func:`_score`: the contrast of the second map on the first map's hair
    pixels against the whole overlap, about 1 for unrelated fields and several times
    that when the first field's hairs lie on hairs of the second (the same hairs, longer).
    """
    from scipy import fft

    m, n = a.shape
    hair = _hair_mask(a)
    b_hair = _HAIR_SHARE * _p99(b)
    shape = (2 * m, 2 * n)
    f_hair = fft.rfft2(hair, shape)
    centre = (n / 2.0, m / 2.0)
    level = float(b.mean())
    # the second map is resampled on a canvas twice the first map's size, so that every
    # translation up to a full field is a cyclic shift without wrap-around
    to_canvas = _shift(-n / 2.0, -m / 2.0)
    peaks: list[tuple[float, F64]] = []
    for angle, scale in poses:
        # maps first-map px to second-map px (rotation and scale about the centre)
        rot = np.asarray(cv2.getRotationMatrix2D(centre, angle, 1.0 / scale), np.float64)
        warp = compose(rot, to_canvas)
        canvas = cv2.warpAffine(
            b - level, warp.astype(np.float32), (2 * n, 2 * m),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        )  # fmt: skip
        corr = fft.irfft2(f_hair * np.conj(fft.rfft2(canvas)), shape)
        k = int(np.argmax(corr))
        iy, ix = (int(v) for v in np.unravel_index(k, shape))
        # sub-pixel peak: a parabola through the peak and its cyclic neighbours
        fy = _vertex(corr[(iy - 1) % shape[0], ix], corr[iy, ix], corr[(iy + 1) % shape[0], ix])
        fx = _vertex(corr[iy, (ix - 1) % shape[1]], corr[iy, ix], corr[iy, (ix + 1) % shape[1]])
        dy = (iy - 2 * m if iy >= m else iy) + fy
        dx = (ix - 2 * n if ix >= n else ix) + fx
        # the correlation at d sums a's hair at y times the canvas at y - d, i.e. the
        # second map at warp(y - d)
        peaks.append((float(corr.flat[k]), compose(warp, _shift(-dx, -dy))))
    peaks.sort(key=lambda item: -item[0])
    scored = [_score(a, hair, b, b_hair, matrix) for _, matrix in peaks[: 2 * keep]]
    return sorted(scored, key=lambda pose: -pose.contrast)[:keep]


def register_absorptance(
    od_first: F32,
    od_second: F32,
    *,
    um_per_px: tuple[float, float],
    max_rotation_deg: float = 30.0,
    min_on_hair: float = 0.6,
) -> Registration:
    """Register two absorptance maps of one field (second image onto the first).

    A rigid transform (rotation and translation, after both calibrations) is searched
    exhaustively: every rotation on a coarse grid with every translation (FFT
    cross-correlation), then finer rotations around the best poses. No starting guess is
    needed and any shift within the field is found.

    Parameters
    ----------
    od_first, od_second : (M, N) ndarray of float32
        Absorptance maps (:func:`hairtrial.measure.absorptance_image`).
    um_per_px : (float, float), µm/px
        Calibrations of the two images.
    max_rotation_deg : float, degrees
        Largest rotation searched.
    min_on_hair : float
        Lowest score accepted: the share of the first field's hair pixels (inside the
        second field) that lie on hair in the second image. Every clipped hair is still
        there days later, bar the few shed, so a true pose scores about 0.85–0.95;
        unrelated fields score about 0.3–0.4 at their best chance alignment.

    Returns
    -------
    Registration
        ``matrix`` maps second-image px to first-image px (corner origin); ``score`` is
        the share of hair on hair; ``tight_share`` the share of the first field's hair
        inside the second field;
        ``method`` is ``"absorptance"``; ``ok`` is false with a reason when the fields do
        not match well enough.
    """
    a, sa = _small(od_first, um_per_px[0], _COARSE_UM)
    b, sb = _small(od_second, um_per_px[1], _COARSE_UM)
    steps = int(max_rotation_deg // _COARSE_STEP_DEG)
    grid = [
        (float(k * _COARSE_STEP_DEG), float(scale))
        for k in range(-steps, steps + 1)
        for scale in _COARSE_SCALES
    ]
    coarse = _search(a, b, grid, _CANDIDATES)
    a, sa = _small(od_first, um_per_px[0], _FINE_UM)
    b, sb = _small(od_second, um_per_px[1], _FINE_UM)
    near: set[tuple[float, float]] = set()
    for pose in coarse:
        if pose.contrast <= 0:
            continue
        # OpenCV's rotation angle (getRotationMatrix2D) is the opposite of rotation_of's
        angle = -math.degrees(rotation_of(pose.matrix))
        scale = 1.0 / scale_of(pose.matrix)
        near.update(
            (round(angle + da, 3), round(scale + ds, 4))
            for da in _FINE_ANGLES
            for ds in _FINE_SCALES
        )
    fine = _search(a, b, sorted(near), 1) if near else []
    if not fine or max(p.contrast for p in fine) <= 0:
        return Registration(
            matrix=np.eye(2, 3), score=0.0, inliers=0, residual_px=math.nan, ok=False,
            reason="the two fields do not overlap", method="absorptance", tight_share=0.0,
        )  # fmt: skip
    best = max(fine, key=lambda pose: pose.contrast)
    first_to_second = compose(invert(_scale_map(sb)), compose(best.matrix, _scale_map(sa)))
    matrix = invert(first_to_second)
    ok = best.on_hair >= min_on_hair
    reason = (
        ""
        if ok
        else f"only {best.on_hair:.0%} of the first field's hair lies on hair in the second "
        f"(at least {min_on_hair:.0%} needed)"
    )
    return Registration(
        matrix=matrix, score=best.on_hair, inliers=0, residual_px=math.nan, ok=ok,
        reason=reason, method="absorptance", tight_share=best.covered,
    )  # fmt: skip


def _sample(od: F32, xy: F64) -> F64:
    """Bilinear samples at corner-origin px; 0 outside the image."""
    m, n = od.shape
    x = xy[..., 0] - 0.5
    y = xy[..., 1] - 0.5
    inside = (x >= 0) & (x <= n - 1) & (y >= 0) & (y <= m - 1)
    xc = np.clip(x, 0, n - 1)
    yc = np.clip(y, 0, m - 1)
    x0 = np.minimum(np.floor(xc).astype(np.intp), max(n - 2, 0))
    y0 = np.minimum(np.floor(yc).astype(np.intp), max(m - 2, 0))
    fx, fy = xc - x0, yc - y0
    x1, y1 = np.minimum(x0 + 1, n - 1), np.minimum(y0 + 1, m - 1)
    top = od[y0, x0] * (1 - fx) + od[y0, x1] * fx
    bottom = od[y1, x0] * (1 - fx) + od[y1, x1] * fx
    return np.where(inside, top * (1 - fy) + bottom * fy, 0.0)


def _resample(pts: F64, count: int) -> F64:
    seg = np.hypot(*np.diff(pts, axis=0).T)
    dist = np.r_[0.0, np.cumsum(seg)]
    if dist[-1] <= 0:
        return np.repeat(pts[:1], count, axis=0)
    s = np.linspace(0.0, dist[-1], count)
    return np.column_stack([np.interp(s, dist, pts[:, 0]), np.interp(s, dist, pts[:, 1])])


@dataclass(frozen=True)
class Shafts:
    """Clipped hairs placed on one absorptance map (corner-origin px of that image).

    Parameters
    ----------
    body : (k, s, 2) ndarray, px
        Each hair's centreline resampled to `s` points.
    level : (k,) ndarray
        Median absorptance along each body.
    width_px : (k,) ndarray, px
        Shaft diameter in this image's pixels.
    """

    body: F64
    level: F64
    width_px: F64


def lock_shafts(od: F32, body: F64, width_px: F64, *, search_px: float) -> Shafts:
    """Shift each mapped hair across its axis onto the darkest line within `search_px`."""
    k = body.shape[0]
    if k == 0:
        return Shafts(body, np.zeros(0), width_px)
    chord = body[:, -1] - body[:, 0]
    length = np.maximum(np.hypot(chord[:, 0], chord[:, 1]), 1e-9)
    normal = np.column_stack([-chord[:, 1], chord[:, 0]]) / length[:, None]
    offsets = np.arange(-search_px, search_px + 0.25, 0.5)
    tries = body[:, None] + offsets[None, :, None, None] * normal[:, None, None, :]
    means = _sample(od, tries).mean(axis=2)
    best = offsets[np.argmax(means, axis=1)]
    locked = body + best[:, None, None] * normal[:, None, :]
    return Shafts(locked, np.median(_sample(od, locked), axis=1), width_px)


def trace_ends(od: F32, shafts: Shafts, *, max_px: float) -> tuple[F64, NDArray[np.bool_]]:
    """Follow each shaft outwards from both ends to bare skin.

    Parameters
    ----------
    od : (M, N) ndarray of float32
        Absorptance map.
    shafts : Shafts
        Hairs on this map.
    max_px : float, px
        Longest extension followed.

    Returns
    -------
    extension : (k, 2) ndarray, px
        Shaft length found beyond the start and the end of each body.
    censored : (k, 2) ndarray of bool
        The tracing reached the image border or `max_px` (the extension is a lower bound).
    """
    k = shafts.body.shape[0]
    if k == 0:
        return np.zeros((0, 2)), np.zeros((0, 2), dtype=bool)
    m, n = od.shape
    span = np.clip(shafts.width_px * 2.0, 6.0, 20.0)
    # both ends of every body: start in row 2 i, end in row 2 i + 1
    p = np.asarray(shafts.body[:, [0, -1]], dtype=np.float64).reshape(-1, 2)
    d = end_directions(list(shafts.body), span, np.zeros(k))
    width = np.repeat(shafts.width_px, 2)
    level = np.repeat(np.maximum(_ON_SHARE * shafts.level, _MIN_LEVEL / 2), 2)
    gap_max = np.maximum(_GAP_WIDTHS * width, _MIN_GAP_PX)
    lateral = np.maximum(_TRACE_WIDTHS * width, 1.5)
    offsets = np.linspace(-1.0, 1.0, 7)
    # beside an isolated shaft lies bare skin; where both sides are dark the tracing is
    # crossing another hair, which says nothing of where this shaft ends
    side = 0.5 * width + np.maximum(2.0, _SIDE_WIDTHS * width)
    last_on = np.zeros(len(p))
    gap = np.zeros(len(p))
    crossing = np.zeros(len(p))
    active = np.ones(len(p), dtype=bool)
    censored = np.zeros(len(p), dtype=bool)
    rows = np.arange(len(p))
    for step in range(1, math.ceil(max_px) + 1):
        if not active.any():
            break
        nxt = p + d
        normal = np.column_stack([-d[:, 1], d[:, 0]])
        probe = nxt[:, None] + (offsets[None, :] * lateral[:, None])[..., None] * normal[:, None]
        values = _sample(od, probe)
        j = np.argmax(values, axis=1)
        on = values[rows, j] >= level
        flanks = _sample(od, nxt[:, None] + side[:, None, None] * np.stack([normal, -normal], 1))
        crossed = on & np.all(flanks >= level[:, None], axis=1)
        crossing = np.where(crossed, crossing + 1.0, 0.0)
        crossed &= crossing <= _MAX_CROSSING_WIDTHS * np.maximum(width, 2.0)
        alone = on & ~crossed
        # the shaft grows straight on: re-centring follows a slow bend (≤ ~11°), not a
        # neighbour leaving the same opening at a wider angle
        shift = np.clip(offsets[j] * lateral, -_MAX_DRIFT, _MAX_DRIFT)
        moved = np.where(alone[:, None], nxt + shift[:, None] * normal, nxt)
        p = np.where(active[:, None], moved, p)
        last_on = np.where(active & alone, step, last_on)
        gap = np.where(alone, 0.0, np.where(crossed, gap, gap + 1.0))
        outside = (p[:, 0] < 0.5) | (p[:, 1] < 0.5) | (p[:, 0] > n - 0.5) | (p[:, 1] > m - 0.5)
        censored |= active & outside
        active &= ~outside & (gap <= gap_max)
    censored |= active  # still on a shaft at max_px
    return last_on.reshape(k, 2), censored.reshape(k, 2)


def _straight_piece(pts: F64, tol_px: float) -> F64:
    """Return the straight run of a polyline that starts at its first point.

    A clipped hair is straight over its whole visible length; where a traced centreline
    bends by more than `tol_px` off its chord it has run into another hair (a crossing,
    a neighbour it touches), and only the part before the bend is this hair.
    """
    while len(pts) > 2:
        chord = pts[-1] - pts[0]
        length = float(np.hypot(*chord))
        if length <= 0:
            break
        off = np.abs((pts[:, 0] - pts[0, 0]) * chord[1] - (pts[:, 1] - pts[0, 1]) * chord[0])
        k = int(np.argmax(off / length))
        if off[k] / length <= tol_px or k < 1:
            break
        pts = pts[: k + 1]
    return pts


def hair_bodies(hairs: list[HairRecord], widths_px: F64, points: int = 24) -> F64:
    """Return the straight run of each hair from its exit end, resampled to `points` points.

    Parameters
    ----------
    hairs : list of HairRecord
        Hairs with an exit point and a centreline (corner-origin px).
    widths_px : (k,) ndarray, px
        Shaft diameters; the straightness tolerance is a third of a width (≥ 2 px).
    points : int
        Points per body.

    Returns
    -------
    (k, points, 2) ndarray, px
        Bodies ordered from the exit end.
    """
    if not hairs:
        return np.zeros((0, points, 2))
    out = []
    for hair, width in zip(hairs, widths_px, strict=True):
        line = np.asarray(hair.centerline_px, np.float64)
        if hair.exit_px is not None:
            exit_px = np.asarray(hair.exit_px)
            if np.hypot(*(line[-1] - exit_px)) < np.hypot(*(line[0] - exit_px)):
                line = line[::-1]
        line = _resample(line, max(2, int(_length(line)) + 1))
        out.append(_resample(_straight_piece(line, max(2.0, width / 3.0)), points))
    return np.stack(out)


def _length(pts: F64) -> float:
    return float(np.hypot(*np.diff(pts, axis=0).T).sum())


def found_in_second(first: Shafts, second: Shafts) -> NDArray[np.bool_]:
    """Whether each hair's shaft is present in the second image."""
    return (second.level >= _FOUND_SHARE * first.level) & (second.level >= _MIN_LEVEL)


def lock_search_px(um_per_px: float) -> float:
    """Perpendicular search when locking mapped hairs onto their shafts, px."""
    return _LOCK_UM / um_per_px
