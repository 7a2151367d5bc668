"""Image-guided re-check of follicles with no detected hair at a visit (private).

Detection misses hairs independently at each visit, and each miss reads as a shed hair
in the count change. A reviewer who knows where a follicle is looks at that spot in the
image: is its shaft there? This module does the same for every follicle tracked at some
visits but without a detected hair at another registered visit whose field covers its
exit:

1. **Projection.** The follicle's exit and direction at the nearest visit where it was
   detected are mapped into the other visit's image through the two accepted
   registrations, then shifted by the median residual of the hairs detected at both
   visits nearby (skin is not rigid; ``local_radius_um``).
2. **Line search.** On the visit's absorptance map (:func:`hairtrial.measure.absorptance_image`:
   ``1 - I / I_skin``, so the same on light or dark skin and under uneven light), straight
   shafts leaving positions within ``recheck_position_um`` of the expected exit, at
   directions within ``recheck_angle_deg``, are sampled along their axis (1 px steps) and
   beside it (flanks at half a shaft width plus max(2 px, half a width)). The shaft
   contrast of a sample is the axis absorptance minus the mean of its flanks.
3. **A clear shaft**, judged against the follicle's *own* shaft: its median contrast
   along its detected centreline at the reference visit, measured the same way over the
   same stretch (``recheck_position_um`` to ``recheck_position_um +
   recheck_min_length_um`` from the exit). A line is a shaft when
   over ``recheck_min_length_um`` (the shortest hair the detector reports) its median
   contrast reaches ``recheck_contrast_share`` of that level (and at least
   ``recheck_min_contrast``), no gap (contrast below half of that) is longer than one
   shaft width, the line is clearly fainter behind the expected exit (a shaft starts
   there rather than passing by), and at most half of it lies on a hair detected in that
   image (it would be that hair, counted already). The accepted line is then followed
   along the shaft to its end (re-centred at each pixel, as in the phototrichogram's
   regrowth tracing); if at least half of the whole shaft lies on detected hairs, it is
   one of them (e.g. the far end of a hair whose detection stopped short) and is not
   recovered. The traced length is the recovered hair's length.
4. **Width.** The median perpendicular profile of the traced shaft is fitted with the
   measurement's blurred-cylinder model (:mod:`hairtrial.measure._profile`), the blur
   estimated jointly with the clearest detected shafts of the image; the diameter must
   lie within ``recheck_width_ratio`` of the follicle's diameter at the reference visit.
   The fitted diameter is reported with the recovered observation (the diameter-change
   endpoints keep to detected hairs: a short stretch that may cross other hairs measures
   less precisely). The recovered exit is the expected exit moved across onto the shaft's
   axis; along the axis it is known to ``recheck_position_um``.

Accepted shafts are taken greedily (follicles detected at more visits, then clearer
shafts first), each masking its shaft so that two follicles never claim one shaft. A
location where no line reaches ``recheck_min_contrast`` nor ``recheck_bare_share`` of the
follicle's level, nor is brighter than the skin beside it by ``recheck_min_contrast`` (a
grey or white shaft does not absorb), is reported as bare skin; nothing is ever removed.
A follicle whose own shaft is fainter than ``recheck_min_contrast`` where it was detected,
or that was detected at fewer than ``recheck_min_visits`` visits (a single detection may be
a misplaced exit, e.g. at a hair's cut end, or an artefact), is looked for only to report
bare skin.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from hairtrial.measure._ridges import remap_points
from hairtrial.records import HairRecord
from hairtrial.track._geometry import F64, HairPoints, apply, compose, invert
from hairtrial.track.config import TrackConfig
from hairtrial.track.register import Registration

B = NDArray[np.bool_]
F32 = NDArray[np.float32]

#: Flank probes beside the axis: half a width plus this many widths, at least _FLANK_PX.
_FLANK_WIDTHS = 0.5
_FLANK_PX = 2.0
#: Behind the expected exit, the line is sampled over this length (µm) and must be fainter
#: than this share of the shaft's contrast in front.
_BACK_UM = 60.0
_BACK_SHARE = 0.5
#: A gap is a stretch whose contrast is below this share of the required level.
_GAP_SHARE = 0.5
#: Shortest gap that breaks a shaft, px (a shaft width when wider).
_MIN_GAP_PX = 3.0
#: A line lying on a detected hair (or an accepted shaft) over this share is that hair.
_EXPLAINED_SHARE = 0.5
#: Fewest neighbours for a local residual estimate.
_LOCAL_MIN = 3
#: Detected shafts used with the candidates to estimate an image's optical blur.
_BLUR_SHAFTS = 24
#: Tracing along a recovered shaft: on the shaft while the axis absorptance stays above
#: this share of the accepted line's own; lateral search in shaft widths (≥ 1.5 px);
#: largest sideways step per pixel (follows a slow bend, ≤ ~11°); longest trace, µm.
_ON_SHARE = 0.5
_TRACE_WIDTHS = 0.4
_MAX_DRIFT = 0.2
_TRACE_UM = 2000.0


@dataclass(frozen=True)
class RecheckResult:
    """What the image re-check found, per follicle × visit.

    Parameters
    ----------
    checked : (F, V) ndarray of bool
        The images were looked at for this follicle at this visit.
    recovered : (F, V) ndarray of bool
        A clear shaft was found: an observation of the follicle without a detected hair.
    exit_px : (F, V, 2) ndarray of float64, px
        Exit of the recovered shaft in that visit's image (NaN elsewhere).
    diameter_um : (F, V) ndarray of float64, µm
        Diameter fitted on the recovered shaft's profile (NaN elsewhere).
    length_um : (F, V) ndarray of float64, µm
        Visible length of the recovered shaft, from the expected exit to where the
        tracing reached bare skin (NaN elsewhere).
    contrast : (F, V) ndarray of float64
        Best shaft contrast found (absorptance) relative to the follicle's own level at
        its reference visit (NaN where not checked).
    bare_skin : (F, V) ndarray of bool
        Checked, and no line came near the follicle's own shaft contrast: clear skin.
    seconds : float, s
        Time spent.
    """

    checked: B
    recovered: B
    exit_px: F64
    diameter_um: F64
    length_um: F64
    contrast: F64
    bare_skin: B
    seconds: float

    @classmethod
    def empty(cls, n_follicles: int, n_visits: int) -> RecheckResult:
        """Return a result where nothing was checked."""
        shape = (n_follicles, n_visits)
        return cls(
            checked=np.zeros(shape, dtype=bool),
            recovered=np.zeros(shape, dtype=bool),
            exit_px=np.full((*shape, 2), np.nan),
            diameter_um=np.full(shape, np.nan),
            length_um=np.full(shape, np.nan),
            contrast=np.full(shape, np.nan),
            bare_skin=np.zeros(shape, dtype=bool),
            seconds=0.0,
        )


@dataclass(frozen=True)
class _Lines:
    """The best line of one search and what was measured on it (px of one image)."""

    level: float  # best median front contrast over the lines inside the image
    bright: float  # largest median brightening of the axis over its flanks (NaN: not asked)
    ok: bool  # a line passed the contrast, gap, exit and detected-hair tests
    start: F64  # (2,) start (the exit), corner-origin px
    direction: F64  # (2,) unit vector
    score: float  # median front contrast of the accepted line
    centre: float  # median axis absorptance of the accepted line


@dataclass
class _Candidate:
    follicle: int
    visit: int
    seen: int
    line: _Lines
    width_px: float
    ref_diameter_um: float


def _sample(od: F32, xy: F64) -> F64:
    """Bilinear absorptance at corner-origin points (…, 2); NaN outside the image."""
    flat = xy.reshape(-1, 2)
    out = remap_points(od, flat[:, 0] - 0.5, flat[:, 1] - 0.5, fill=math.nan)
    return np.asarray(out, dtype=np.float64).reshape(xy.shape[:-1])


def _longest_run(mask: B) -> NDArray[np.int64]:
    """Length of the longest run of True along the last axis, per row."""
    run = np.zeros(mask.shape[:-1], dtype=np.int64)
    best = np.zeros_like(run)
    for k in range(mask.shape[-1]):
        run = np.where(mask[..., k], run + 1, 0)
        best = np.maximum(best, run)
    return best


def _search(
    od: F32,
    exit_xy: F64,
    theta: float,
    width_px: float,
    *,
    tol_px: float,
    angle_rad: float,
    length_px: float,
    back_px: float,
    required: float,
    explained: NDArray[np.uint8] | None,
    grey: F32 | None = None,
) -> _Lines:
    """Sample every line near the expected shaft and keep the best clear one.

    Lines start at most `tol_px` across the expected exit and turn at most `angle_rad`
    from `theta`; each is sampled over ``[tol_px, tol_px + length_px]`` in front of the
    exit and ``[-tol_px - back_px, -tol_px]`` behind it (the true exit lies between). With
    `grey` (luminance), the largest brightening of a line over its flanks is measured too.
    """
    step_a = min(math.radians(2.0), 1.0 / max(length_px + tol_px, 1.0))
    n_a = math.ceil(angle_rad / step_a)
    angles = theta + step_a * np.arange(-n_a, n_a + 1)
    step_d = min(1.0, max(0.5, width_px / 4.0))
    n_d = math.ceil(tol_px / step_d)
    deltas = step_d * np.arange(-n_d, n_d + 1)
    normal0 = np.array([-math.sin(theta), math.cos(theta)])
    starts = exit_xy[None, :] + deltas[:, None] * normal0[None, :]  # (D, 2)
    u = np.stack([np.cos(angles), np.sin(angles)], axis=1)  # (A, 2)
    n = np.stack([-u[:, 1], u[:, 0]], axis=1)
    s_front = tol_px + np.arange(0.0, length_px + 0.5, 1.0)
    s_back = -tol_px - np.arange(0.0, back_px + 0.5, 1.0)
    side = 0.5 * width_px + max(_FLANK_PX, _FLANK_WIDTHS * width_px)
    off = side * n[None, :, None, :]

    def axis_at(s: F64) -> F64:  # (D, A, S, 2)
        return starts[:, None, None, :] + s[None, None, :, None] * u[None, :, None, :]

    def contrast(img: F32, axis: F64) -> tuple[F64, F64]:
        centre = _sample(img, axis)
        return centre, centre - 0.5 * (_sample(img, axis + off) + _sample(img, axis - off))

    axis = axis_at(s_front)
    centre, front = contrast(od, axis)
    _, back = contrast(od, axis_at(s_back))
    inside = np.all(np.isfinite(front), axis=2)
    safe = np.where(inside[..., None], front, 0.0)
    front_med = np.where(inside, np.median(safe, axis=2), -np.inf)
    # lines leaving the image are not judged: a shaft that runs out of the field
    level = float(front_med.max()) if inside.any() else math.nan
    bright = math.nan
    if grey is not None and inside.any():
        lum, rise = contrast(grey, axis)
        flank = np.maximum(lum - rise, 1e-3)  # luminance of the skin beside the axis
        rise = np.where(inside[..., None], rise / flank, 0.0)
        bright = float(np.median(rise, axis=2)[inside].max())
    gap = _longest_run(safe < _GAP_SHARE * required)
    back_med = np.median(np.where(np.isfinite(back), back, 0.0), axis=2)
    ok = inside & (front_med >= required)
    ok &= gap <= max(_MIN_GAP_PX, width_px)
    ok &= back_med <= _BACK_SHARE * front_med
    if explained is not None and ok.any():
        ok &= _on_mask(explained, axis).mean(axis=2) < _EXPLAINED_SHARE
    if not ok.any():
        u0 = np.array([math.cos(theta), math.sin(theta)])
        return _Lines(level, bright, False, exit_xy, u0, 0.0, 0.0)
    score = np.where(ok, front_med, -np.inf)
    d, a = np.unravel_index(int(np.argmax(score)), score.shape)
    return _Lines(
        level, bright, True, starts[d].copy(), u[a].copy(), float(front_med[d, a]),
        float(np.median(centre[d, a])),
    )  # fmt: skip


def _on_mask(mask: NDArray[np.uint8], xy: F64) -> B:
    """Whether corner-origin points (…, 2) fall on set pixels of `mask` (outside: no)."""
    h, w = mask.shape
    ix = np.floor(xy[..., 0]).astype(np.int64)
    iy = np.floor(xy[..., 1]).astype(np.int64)
    inside = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
    out = np.zeros(xy.shape[:-1], dtype=bool)
    out[inside] = mask[iy[inside], ix[inside]] > 0
    return out


def _trace(od: F32, starts: F64, dirs: F64, width_px: F64, level: F64, max_px: float) -> list[F64]:
    """Follow shafts from `starts` along `dirs` (k, 2) until bare skin; paths in px.

    A step is on the shaft where the axis absorptance (best of a small lateral search)
    reaches `level`; the trace re-centres by at most ``_MAX_DRIFT`` px per px and stops
    after a gap longer than one shaft width (at least ``_MIN_GAP_PX``) or at the border.
    Each path runs from its start to the last point on the shaft.
    """
    k = len(starts)
    p = starts.astype(np.float64).copy()
    normal = np.column_stack([-dirs[:, 1], dirs[:, 0]])
    lateral = np.maximum(_TRACE_WIDTHS * width_px, 1.5)
    offsets = np.linspace(-1.0, 1.0, 7)
    gap_max = np.maximum(width_px, _MIN_GAP_PX)
    gap = np.zeros(k)
    last_on = np.zeros(k, dtype=np.int64)
    active = np.ones(k, dtype=bool)
    rows = np.arange(k)
    history = [p.copy()]
    for step in range(1, math.ceil(max_px) + 1):
        if not active.any():
            break
        nxt = p + dirs
        probe = nxt[:, None] + (offsets[None, :] * lateral[:, None])[..., None] * normal[:, None]
        values = _sample(od, probe)
        j = np.argmax(np.nan_to_num(values, nan=-1.0), axis=1)
        best = values[rows, j]
        outside = ~np.isfinite(best)
        on = ~outside & (best >= level)
        shift = np.clip(offsets[j] * lateral, -_MAX_DRIFT, _MAX_DRIFT)
        moved = np.where(on[:, None], nxt + shift[:, None] * normal, nxt)
        p = np.where(active[:, None], moved, p)
        history.append(p.copy())
        last_on = np.where(active & on, step, last_on)
        gap = np.where(on, 0.0, gap + 1.0)
        active &= ~outside & (gap <= gap_max)
    path = np.stack(history, axis=1)  # (k, steps, 2)
    return [path[i, : int(last_on[i]) + 1] for i in range(k)]


def _shaft_mask(
    shape: tuple[int, int], hairs: Sequence[HairRecord], um_per_px: float
) -> NDArray[np.uint8]:
    """Pixels covered by the detected shafts of one image (half a width plus 1 px)."""
    mask = np.zeros(shape, dtype=np.uint8)
    for hair in hairs:
        pts = np.asarray(hair.centerline_px, dtype=np.float64).reshape(-1, 2)
        if len(pts) < 2:
            continue
        _draw(mask, pts, hair.diameter_um / um_per_px)
    return mask


def _draw(mask: NDArray[np.uint8], pts: F64, width_px: float) -> None:
    # 4 bits of sub-pixel precision; centre-origin for OpenCV
    line = np.round((pts - 0.5) * 16.0).astype(np.int32).reshape(-1, 1, 2)
    thickness = max(1, round(width_px + 2.0))
    cv2.polylines(mask, [line], isClosed=False, color=1, thickness=thickness, shift=4)


def _local_shift(pairs: tuple[F64, Any] | None, at: F64, radius_px: float) -> F64:
    """Median residual (detected − mapped) of the hairs seen at both visits near `at`.

    `pairs` holds the residuals and a k-d tree of the mapped exits they belong to.
    """
    if pairs is None:
        return np.zeros(2)
    resid, tree = pairs
    near = tree.query_ball_point(at, radius_px)
    if len(near) >= _LOCAL_MIN:
        return np.asarray(np.median(resid[near], axis=0), dtype=np.float64)
    if len(resid) >= _LOCAL_MIN:
        return np.asarray(np.median(resid, axis=0), dtype=np.float64)
    return np.zeros(2)


def _blur_and_widths(
    od: F32,
    shafts: list[F64],
    guess_px: F64,
    hairs: Sequence[HairRecord],
    um_per_px: float,
) -> F64:
    """Fitted diameters (px) of the `shafts` (corner-origin polylines) of one image.

    The optical blur is a property of the image: it is fitted jointly with the clearest
    detected shafts of the image (as the measurement does), then held for every profile.
    """
    from hairtrial.measure._profile import column_medians, fit_diameters, sample_profile_stack

    lines = [pts - 0.5 for pts in shafts]  # centre-origin, as sample_profile_stack expects
    guess = list(guess_px)
    clear = sorted(
        (h for h in hairs if len(h.centerline_px) >= 2 and h.length_um > 0),
        key=lambda h: -(h.diameter_um * h.length_um),
    )[:_BLUR_SHAFTS]
    for h in clear:
        lines.append(np.asarray(h.centerline_px, dtype=np.float64).reshape(-1, 2) - 0.5)
        guess.append(max(h.diameter_um / um_per_px, 1.0))
    g = np.asarray(guess, dtype=np.float64)
    half = np.maximum(1.6 * g + 4.0, 6.0)
    transmittance = (1.0 - od).astype(np.float32)
    offsets, stack = sample_profile_stack(transmittance, lines, half, trim_px=0.5 * half + 2.0)
    diam_px = fit_diameters(offsets, column_medians(stack), g, psf_sigma_px=None).diameter_px
    return np.asarray(diam_px[: len(shafts)], dtype=np.float64)


def _own_level(
    od: F32, centreline: F64, width_px: float, *, tol_px: float, length_px: float
) -> float:
    """Median shaft contrast along a detected hair, over the stretch the search tests.

    The contrast is taken as in :func:`_search` (axis minus the mean of the flanks), at
    arc lengths ``[tol_px, tol_px + length_px]`` from the exit (what the hair has of it).
    """
    pts = np.asarray(centreline, dtype=np.float64).reshape(-1, 2)
    if len(pts) < 2:
        return math.nan
    arc = np.r_[0.0, np.cumsum(np.hypot(*np.diff(pts, axis=0).T))]
    total = float(arc[-1])
    if total < 2.0:
        return math.nan
    lo = min(tol_px, 0.5 * total)
    s = np.arange(lo, min(lo + length_px, total) + 0.5, 1.0)
    s = s[s <= total]
    x, y = np.interp(s, arc, pts[:, 0]), np.interp(s, arc, pts[:, 1])
    ds = 2.0
    tx = np.interp(s + ds, arc, pts[:, 0]) - np.interp(s - ds, arc, pts[:, 0])
    ty = np.interp(s + ds, arc, pts[:, 1]) - np.interp(s - ds, arc, pts[:, 1])
    norm = np.maximum(np.hypot(tx, ty), 1e-9)
    normal = np.column_stack([-ty / norm, tx / norm])
    axis = np.column_stack([x, y])
    side = 0.5 * width_px + max(_FLANK_PX, _FLANK_WIDTHS * width_px)
    values = _sample(od, axis) - 0.5 * (
        _sample(od, axis + side * normal) + _sample(od, axis - side * normal)
    )
    values = values[np.isfinite(values)]
    return float(np.median(values)) if len(values) else math.nan


def recheck_site(
    *,
    hair_index: NDArray[np.int64],
    points: Sequence[HairPoints],
    hairs: Sequence[Sequence[HairRecord]],
    registrations: Sequence[Registration],
    in_field: B,
    images: Sequence[NDArray[Any]],
    um_per_px: Sequence[float],
    config: TrackConfig,
) -> RecheckResult:
    """Look for the shaft of every follicle missing at a visit whose field covers it.

    Parameters
    ----------
    hair_index : (F, V) ndarray of int64
        Index of each follicle's hair in ``hairs[v]``, -1 when none (see
        :class:`~hairtrial.track.site.SiteTracks`).
    points : sequence of HairPoints
        Counted hairs of each visit as arrays (their ``index`` refers to ``hairs[v]``).
    hairs : sequence of sequence of HairRecord
        Detected hairs of each visit.
    registrations : sequence of Registration
        Transform of each visit onto the first visit.
    in_field : (F, V) ndarray of bool
        Whether each follicle lies inside each visit's field.
    images : sequence of ndarray
        The visit images (not modified).
    um_per_px : sequence of float, µm/px
        Calibration of each image.
    config : TrackConfig
        ``recheck_*`` parameters and ``local_radius_um``.

    Returns
    -------
    RecheckResult
    """
    from hairtrial.measure import absorptance_image

    start_time = time.perf_counter()
    n_f, n_v = hair_index.shape
    out = RecheckResult.empty(n_f, n_v)
    ok_visit = np.array([r.ok for r in registrations], dtype=bool)
    detected = (hair_index >= 0) & ok_visit[None, :]
    seen = detected.sum(axis=1)
    todo = in_field & (hair_index < 0) & ok_visit[None, :] & (seen >= 1)[:, None]
    if not todo.any():
        return out
    row_of = [{int(i): r for r, i in enumerate(p.index)} for p in points]
    maps: dict[int, F32] = {}

    def absorptance(v: int) -> F32:
        if v not in maps:
            maps[v] = absorptance_image(images[v], um_per_px=um_per_px[v])
        return maps[v]

    transforms: dict[tuple[int, int], F64] = {}
    residuals: dict[tuple[int, int], tuple[F64, Any] | None] = {}

    def transform(u: int, v: int) -> F64:
        key = (u, v)
        if key not in transforms:
            m = compose(invert(registrations[v].matrix), registrations[u].matrix)
            transforms[key] = m
            both = detected[:, u] & detected[:, v]
            rows = np.flatnonzero(both)
            if len(rows) >= _LOCAL_MIN:
                src = np.array([points[u].xy[row_of[u][int(hair_index[f, u])]] for f in rows])
                dst = np.array([points[v].xy[row_of[v][int(hair_index[f, v])]] for f in rows])
                pred = apply(m, src)
                residuals[key] = (dst - pred, cKDTree(pred))
            else:
                residuals[key] = None
        return transforms[key]

    grey_maps: dict[int, F32] = {}

    def luminance(v: int) -> F32:
        if v not in grey_maps:
            img = np.asarray(images[v])
            lum = np.asarray(img.mean(axis=2) if img.ndim == 3 else img, dtype=np.float32)
            if img.dtype.kind in "ui":
                top = float(np.iinfo(img.dtype).max)
            else:  # floats in [0, 1], or scaled by their maximum (as the measurement does)
                top = max(1.0, float(lum.max()) if lum.size else 1.0)
            grey_maps[v] = lum / np.float32(top)
        return grey_maps[v]

    angle = math.radians(config.recheck_angle_deg)
    levels: dict[tuple[int, int], float] = {}
    cands: list[_Candidate] = []
    checked = out.checked.copy()
    contrast = out.contrast.copy()
    bare = out.bare_skin.copy()
    masks: dict[int, NDArray[np.uint8]] = {}
    for f, v in zip(*np.nonzero(todo), strict=True):
        f, v = int(f), int(v)
        visits = np.flatnonzero(detected[f])
        u = int(min(visits, key=lambda k: (abs(int(k) - v), int(k))))
        r_u = row_of[u][int(hair_index[f, u])]
        exit_u = points[u].xy[r_u]
        theta_u = float(points[u].direction[r_u])
        d_um = float(points[u].diameter_um[r_u])
        if not math.isfinite(theta_u) or not d_um > 0:
            continue
        um_u, um_v = float(um_per_px[u]), float(um_per_px[v])
        m = transform(u, v)
        exit_v = apply(m, exit_u[None, :])[0]
        exit_v = exit_v + _local_shift(residuals[(u, v)], exit_v, config.local_radius_um / um_v)
        vec = m[:, :2] @ np.array([math.cos(theta_u), math.sin(theta_u)])
        theta_v = math.atan2(float(vec[1]), float(vec[0]))
        width_v = max(d_um / um_v, 1.0)
        if (f, u) not in levels:
            hair_u = hairs[u][int(hair_index[f, u])]
            levels[(f, u)] = _own_level(
                absorptance(u), np.asarray(hair_u.centerline_px), max(d_um / um_u, 1.0),
                tol_px=config.recheck_position_um / um_u,
                length_px=config.recheck_min_length_um / um_u,
            )  # fmt: skip
        level = levels[(f, u)]
        if not math.isfinite(level):
            continue  # no stretch of its shaft to compare with at the reference visit
        required = max(config.recheck_min_contrast, config.recheck_contrast_share * level)
        if v not in masks:
            masks[v] = _shaft_mask(absorptance(v).shape, hairs[v], um_v)
        found = _search(
            absorptance(v), exit_v, theta_v, width_v,
            tol_px=config.recheck_position_um / um_v, angle_rad=angle,
            length_px=config.recheck_min_length_um / um_v, back_px=_BACK_UM / um_v,
            required=required, explained=masks[v], grey=luminance(v),
        )  # fmt: skip
        if not math.isfinite(found.level):
            continue  # every line leaves the image: not judged
        checked[f, v] = True
        contrast[f, v] = found.level / level if level > 0 else math.nan
        # clear skin: below the faintest shaft the detector follows and well below the
        # follicle's own shaft, and no brighter (grey, white) shaft either
        faint = max(config.recheck_min_contrast, config.recheck_bare_share * level)
        bare[f, v] = found.level < faint and found.bright < config.recheck_min_contrast
        # a detection without a clear shaft of its own gives nothing to look for, and one
        # seen at a single visit may be a misplaced exit or an artefact: report only
        reliable = seen[f] >= config.recheck_min_visits
        if found.ok and reliable and level >= config.recheck_min_contrast:
            cands.append(_Candidate(f, v, int(seen[f]), found, width_v, d_um))
    recovered = out.recovered.copy()
    exits = out.exit_px.copy()
    diameters = out.diameter_um.copy()
    lengths = out.length_um.copy()
    for v in sorted({c.visit for c in cands}):
        here = [c for c in cands if c.visit == v]
        um_v = float(um_per_px[v])
        od = absorptance(v)
        tol_px = config.recheck_position_um / um_v
        front = tol_px + np.arange(0.0, config.recheck_min_length_um / um_v + 0.5, 1.0)
        width = np.array([c.width_px for c in here])
        starts = np.array([c.line.start + front[-1] * c.line.direction for c in here])
        dirs = np.array([c.line.direction for c in here])
        on_level = np.array([_ON_SHARE * c.line.centre for c in here])
        traced = _trace(od, starts, dirs, width, on_level, _TRACE_UM / um_v)
        shafts = [
            np.vstack([c.line.start + front[:, None] * c.line.direction[None, :], path[1:]])
            for c, path in zip(here, traced, strict=True)
        ]
        fitted = _blur_and_widths(od, shafts, width, hairs[v], um_v)
        order = sorted(range(len(here)), key=lambda k: (-here[k].seen, -here[k].line.score))
        taken = np.zeros_like(masks[v])
        for k in order:
            c = here[k]
            d_fit_um = float(fitted[k]) * um_v
            ratio = config.recheck_width_ratio
            if not (c.ref_diameter_um / ratio <= d_fit_um <= c.ref_diameter_um * ratio):
                continue  # also NaN: no width measured
            shaft = shafts[k]
            if _on_mask(masks[v], shaft).mean() >= _EXPLAINED_SHARE:
                continue  # a detected hair's shaft (its exit is elsewhere)
            if _on_mask(taken, shaft).mean() >= _EXPLAINED_SHARE:
                continue  # another follicle's recovered shaft
            _draw(taken, shaft, c.width_px)
            recovered[c.follicle, v] = True
            exits[c.follicle, v] = c.line.start
            diameters[c.follicle, v] = d_fit_um
            steps = np.hypot(*np.diff(shaft, axis=0).T).sum() if len(shaft) > 1 else 0.0
            lengths[c.follicle, v] = (tol_px + float(steps)) * um_v
    return RecheckResult(
        checked=checked,
        recovered=recovered,
        exit_px=exits,
        diameter_um=diameters,
        length_um=lengths,
        contrast=contrast,
        bare_skin=bare & ~recovered,
        seconds=time.perf_counter() - start_time,
    )
