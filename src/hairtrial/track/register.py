"""Register the images of one site across visits from their hairs' exit points.

Every visit is mapped onto the first visit's pixels by a similarity (optionally affine)
transform, estimated in four steps:

1. **Invariant pair descriptors.** Each exit is paired with its nearest neighbours
   (pairs shorter than ``min_pair_um`` are skipped: hairs of one follicular unit give
   unstable angles). A pair is described by its length in µm (calibrations make the scale
   nearly 1), the two hairs' directions measured from the pair's own axis (invariant to
   rotation) and the two shaft diameters.
2. **Pre-matching and voting.** Pairs of the two visits with similar descriptors are
   matched with a k-d tree; each matched pair proposes a full similarity. Proposals are
   voted on in (rotation, log scale), then, at the winning rotations and scales, on the
   position the moving field's centre maps to — so one wrong pair cannot dominate.
3. **Verification.** Each of the best-voted hypotheses is refined by iterative closest
   point with mutual-nearest one-to-one pairs and a least-squares (Umeyama) fit, then
   checked by counting exits that agree (distance ≤ ``inlier_um`` and a consistent hair
   direction, each reference exit counted once). A vote's bin is 3° and 3 % of scale
   wide: on a field 2 mm across, a hypothesis 2° off misplaces the far hairs by more
   than ``inlier_um``, so hypotheses are compared after refinement, not before.
4. **Acceptance.** The score is the share of hairs in the overlap that agree. A
   registration is accepted only with enough agreeing hairs, a high enough score and no
   clearly different transform that explains nearly as many hairs; otherwise
   ``ok=False`` with the reason — the tracker never matches hairs through a refused
   transform.

A visit whose field barely overlaps the first visit's is registered to another visit
already registered, and the transforms composed. Each visit may turn by up to
``max_rotation_deg`` and rescale by up to ``max_scale_change`` against the first, so two
later visits may differ by their two turns: the search for such a pair reaches the
bound plus the registered visit's own turn and rescale.

When images are given and the hairs cannot register a visit, ORB features with RANSAC
(OpenCV) propose a transform, which the hairs must then confirm (or, with too few hairs,
the feature inliers alone).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from hairtrial._validate import InputError, check_image, check_um_per_px
from hairtrial.measure._absorbance import overlay_bands
from hairtrial.records import HairRecord
from hairtrial.track._geometry import (
    F64,
    I64,
    Field,
    HairPoints,
    angle_diff,
    apply,
    compose,
    fit_affine,
    fit_similarity,
    hair_points,
    invert,
    rotation_of,
    scale_of,
    similarity,
)
from hairtrial.track.config import TrackConfig, resolve_config

#: Descriptor scales: log pair length, direction (chord ≈ radians), diameter (µm).
_SIGMA_LOG_D = 0.1
_SIGMA_ANGLE = 0.3
_SIGMA_DIAM_UM = 20.0
#: Radius of the descriptor ball (in units of the scales above).
_DESCRIPTOR_RADIUS = 2.5
#: Largest direction difference of an agreeing exit pair at verification.
_INLIER_ANGLE = math.radians(45.0)
#: Hough bin sizes: rotation, log scale; translation bins are 2 × inlier_um.
_BIN_THETA = math.radians(3.0)
_BIN_LOG_S = 0.03
_ROTATION_PEAKS = 6
_TRANSLATION_PEAKS = 3
_ICP_ITERATIONS = 6
#: Share of agreeing exits within half the inlier distance that marks a precise fit.
_TIGHT_SHARE = 0.75


@dataclass(frozen=True)
class Registration:
    """Transform of one visit's image onto the first visit's image.

    Parameters
    ----------
    matrix : (2, 3) ndarray of float64
        Maps this visit's pixel coordinates (x, y) to the first visit's:
        ``p_first = matrix[:, :2] @ p + matrix[:, 2]``. Identity for the first visit.
    score : float
        Quality in [0, 1]: the share of hairs in the overlap of the two fields that agree
        under the transform (1 for the first visit).
    inliers : int
        Number of hair exits that agree (one-to-one) under the transform.
    residual_px : float, px
        Root-mean-square distance of the agreeing exits, in first-visit pixels.
    ok : bool
        Whether the transform is trusted. When ``False`` the visit is not tracked.
    reason : str
        Why a registration was refused (empty when `ok`).
    method : {'identity', 'hairs', 'image'}
        What estimated the transform.
    pairs : tuple of (int, int)
        Agreeing hairs as ``(hair id in this visit, hair id in the visit registered to)``.
    via : int
        Visit index this visit was registered to directly (0 unless chained).
    tight_share : float
        Share of the agreeing exits within half the inlier distance: near 1 for a true
        registration, about 0.25 for exits that agree by chance (spread over the disc).
    """

    matrix: NDArray[np.float64]
    score: float
    inliers: int
    residual_px: float
    ok: bool
    reason: str = ""
    method: str = "hairs"
    pairs: tuple[tuple[int, int], ...] = field(default=(), repr=False)
    via: int = 0
    tight_share: float = 1.0

    @property
    def rotation_deg(self) -> float:
        """Rotation of the transform in degrees, from +x towards +y (clockwise on screen)."""
        return math.degrees(rotation_of(self.matrix))

    @property
    def scale(self) -> float:
        """Linear scale of the transform (first-visit px per visit px)."""
        return scale_of(self.matrix)

    def apply(self, xy: Any) -> F64:
        """Map points (n, 2) in this visit's pixels to first-visit pixels.

        Parameters
        ----------
        xy : (n, 2) array_like, px
            Points in this visit's image.

        Returns
        -------
        (n, 2) ndarray of float64, px
        """
        return apply(self.matrix, np.asarray(xy, dtype=np.float64).reshape(-1, 2))

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (matrix rounded to 6 digits).

        Returns
        -------
        dict
            ``matrix``, ``score``, ``inliers``, ``residual_px``, ``ok``, ``reason``,
            ``method``, ``rotation_deg``, ``scale``.
        """
        return {
            "matrix": [[round(float(v), 6) for v in row] for row in self.matrix],
            "score": round(float(self.score), 4),
            "inliers": int(self.inliers),
            "residual_px": round(float(self.residual_px), 3),
            "ok": bool(self.ok),
            "reason": self.reason,
            "method": self.method,
            "rotation_deg": round(self.rotation_deg, 3),
            "scale": round(self.scale, 5),
        }


IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def _identity() -> Registration:
    return Registration(
        matrix=IDENTITY.copy(), score=1.0, inliers=0, residual_px=0.0, ok=True,
        method="identity",
    )  # fmt: skip


# --------------------------------------------------------------------------- descriptors


@dataclass(frozen=True)
class _Pairs:
    i: I64
    j: I64
    mid: F64  # (m, 2) midpoints, µm
    phi: F64  # pair axis angle, radians
    log_d: F64
    features: F64


def _pairs(xy_um: F64, direction: F64, diameter: F64, cfg: TrackConfig, use_dir: bool) -> _Pairs:
    n = len(xy_um)
    k = min(n - 1, cfg.neighbours + 6)
    if k < 1:
        empty = np.zeros(0, dtype=np.int64)
        width = 7 if use_dir else 3
        return _Pairs(i=empty, j=empty, mid=np.zeros((0, 2)), phi=np.zeros(0),
                      log_d=np.zeros(0), features=np.zeros((0, width)))  # fmt: skip
    tree = cKDTree(xy_um)
    dist, nb = tree.query(xy_um, k=k + 1)
    dist, nb = dist[:, 1:], nb[:, 1:]
    valid = dist >= cfg.min_pair_um
    valid &= np.cumsum(valid, axis=1) <= cfg.neighbours
    rows, cols = np.nonzero(valid)
    i, j = rows.astype(np.int64), nb[rows, cols].astype(np.int64)
    if use_dir:
        keep = np.isfinite(direction[i]) & np.isfinite(direction[j])
        i, j = i[keep], j[keep]
    vec = xy_um[j] - xy_um[i]
    phi = np.arctan2(vec[:, 1], vec[:, 0])
    log_d = np.log(np.hypot(vec[:, 0], vec[:, 1]))
    cols_f = [log_d / _SIGMA_LOG_D, diameter[i] / _SIGMA_DIAM_UM, diameter[j] / _SIGMA_DIAM_UM]
    if use_dir:
        ai, aj = direction[i] - phi, direction[j] - phi
        cols_f += [np.cos(ai) / _SIGMA_ANGLE, np.sin(ai) / _SIGMA_ANGLE]
        cols_f += [np.cos(aj) / _SIGMA_ANGLE, np.sin(aj) / _SIGMA_ANGLE]
    features = np.column_stack(cols_f) if len(i) else np.zeros((0, len(cols_f)))
    return _Pairs(i=i, j=j, mid=0.5 * (xy_um[i] + xy_um[j]), phi=phi, log_d=log_d,
                  features=features)  # fmt: skip


# --------------------------------------------------------------------------- hypotheses


def _peaks(values: F64, *, lo: Any, hi: Any, bins: Any, top: int) -> list[tuple[F64, F64]]:
    """Local maxima of a 2-D histogram (3×3 summed), best first, as bin-centre boxes."""
    from scipy.ndimage import maximum_filter, uniform_filter

    hist, ex, ey = np.histogram2d(values[:, 0], values[:, 1], bins=bins, range=[lo, hi])
    smooth = uniform_filter(hist, size=3, mode="constant") * 9.0
    is_peak = (smooth == maximum_filter(smooth, size=3, mode="constant")) & (smooth > 0)
    order = np.argsort(-smooth[is_peak], kind="stable")[:top]
    ix, iy = np.nonzero(is_peak)
    wx, wy = ex[1] - ex[0], ey[1] - ey[0]
    out = []
    for o in order:
        cx, cy = ex[ix[o]] + 0.5 * wx, ey[iy[o]] + 0.5 * wy
        half = np.array([1.5 * wx, 1.5 * wy])
        centre = np.array([cx, cy])
        out.append((centre - half, centre + half))
    return out


def _hypotheses(mov: _Pairs, ref: _Pairs, centre: F64, cfg: TrackConfig) -> list[F64]:
    """Similarity matrices (moving µm → reference µm) from voted pair matches."""
    if len(mov.i) == 0 or len(ref.i) == 0:
        return []
    tree_m, tree_r = cKDTree(mov.features), cKDTree(ref.features)
    sparse = tree_m.sparse_distance_matrix(tree_r, _DESCRIPTOR_RADIUS, output_type="ndarray")
    pm, pr = sparse["i"].astype(np.int64), sparse["j"].astype(np.int64)
    if len(pm) == 0:
        return []
    theta = (ref.phi[pr] - mov.phi[pm] + np.pi) % (2 * np.pi) - np.pi
    log_s = ref.log_d[pr] - mov.log_d[pm]
    max_rot = math.radians(cfg.max_rotation_deg)
    keep = (np.abs(theta) <= max_rot + 1e-9) & (np.abs(log_s) <= cfg.max_scale_change)
    pm, pr, theta, log_s = pm[keep], pr[keep], theta[keep], log_s[keep]
    if len(pm) == 0:
        return []
    n_t = max(1, math.ceil(2 * max_rot / _BIN_THETA))
    n_s = max(1, math.ceil(2 * cfg.max_scale_change / _BIN_LOG_S))
    rs = np.column_stack([theta, log_s])
    lo_rs = [-max_rot - 1e-9, max_rot + 1e-9]
    hi_rs = [-cfg.max_scale_change - 1e-9, cfg.max_scale_change + 1e-9]
    out: list[F64] = []
    for box_lo, box_hi in _peaks(rs, lo=lo_rs, hi=hi_rs, bins=[n_t, n_s], top=_ROTATION_PEAKS):
        sel = np.all((rs >= box_lo) & (rs <= box_hi), axis=1)
        if sel.sum() < 2:
            continue
        th, ls = float(np.median(theta[sel])), float(np.median(log_s[sel]))
        s = math.exp(ls)
        rot = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
        # Where the moving centre lands, by each pair at the consensus rotation and scale.
        q = ref.mid[pr[sel]] + s * (centre - mov.mid[pm[sel]]) @ rot.T
        step = 2.0 * cfg.inlier_um
        lo_q, hi_q = q.min(axis=0) - step, q.max(axis=0) + step
        bins = np.maximum(1, np.ceil((hi_q - lo_q) / step)).astype(int)
        peaks = _peaks(q, lo=[lo_q[0], hi_q[0]], hi=[lo_q[1], hi_q[1]], bins=list(bins),
                       top=_TRANSLATION_PEAKS)  # fmt: skip
        for q_lo, q_hi in peaks:
            inside = np.all((q >= q_lo) & (q <= q_hi), axis=1)
            if inside.sum() < 2:
                continue
            qc = np.median(q[inside], axis=0)
            t = qc - s * rot @ centre
            out.append(similarity(th, s, float(t[0]), float(t[1])))
    return out


# --------------------------------------------------------------------------- verification


def _agreeing(
    matrix: F64, mov_um: F64, mov_dir: F64, ref_tree: Any, ref_dir: F64, radius: float
) -> tuple[I64, I64, F64]:
    """One-to-one agreeing exits (mutual nearest within `radius`, consistent direction)."""
    mapped = apply(matrix, mov_um)
    dist, idx = ref_tree.query(mapped, distance_upper_bound=radius)
    found = np.isfinite(dist)
    im = np.flatnonzero(found)
    ir = idx[found].astype(np.int64)
    d = dist[found]
    turn = rotation_of(matrix)
    both = np.isfinite(mov_dir[im]) & np.isfinite(ref_dir[ir])
    bad_dir = both & (angle_diff(mov_dir[im] + turn, ref_dir[ir]) > _INLIER_ANGLE)
    im, ir, d = im[~bad_dir], ir[~bad_dir], d[~bad_dir]
    # Keep the nearest moving exit per reference exit.
    order = np.lexsort((d, ir))
    first = np.ones(len(order), dtype=bool)
    first[1:] = ir[order][1:] != ir[order][:-1]
    pick = order[first]
    return im[pick], ir[pick], d[pick]


def _refine(matrix: F64, mov_um: F64, mov_dir: F64, ref_um: F64, ref_tree: Any, ref_dir: F64,
            cfg: TrackConfig) -> F64:  # fmt: skip
    """Refine by iterative closest point: one-to-one pairs, least-squares similarity."""
    for _ in range(_ICP_ITERATIONS):
        im, ir, _d = _agreeing(matrix, mov_um, mov_dir, ref_tree, ref_dir, 1.5 * cfg.inlier_um)
        if len(im) < 3:
            break
        new = fit_similarity(mov_um[im], ref_um[ir])
        if math.fabs(math.log(scale_of(new))) > cfg.max_scale_change * 1.5:
            break
        moved = float(np.abs(apply(new, mov_um[im]) - apply(matrix, mov_um[im])).max())
        matrix = new
        if moved < 0.01:
            break
    if cfg.model == "affine":
        im, ir, _d = _agreeing(matrix, mov_um, mov_dir, ref_tree, ref_dir, cfg.inlier_um)
        if len(im) >= 6:
            matrix = fit_affine(mov_um[im], ref_um[ir])
    return matrix


def _distinct(a: F64, b: F64, pts: F64, tol: float) -> bool:
    """Whether two transforms place the points more than `tol` apart on average."""
    return float(np.hypot(*(apply(a, pts) - apply(b, pts)).T).mean()) > tol


def _register_pair(
    mov: HairPoints,
    ref: HairPoints,
    *,
    um_mov: float,
    um_ref: float,
    field_mov: Field,
    field_ref: Field,
    cfg: TrackConfig,
    image_guess: F64 | None = None,
) -> Registration:
    """Register one visit (`mov`) onto another (`ref`); the matrix maps px → px."""
    n_need = cfg.min_inliers
    if len(mov) < n_need or len(ref) < n_need:
        return Registration(
            matrix=IDENTITY.copy(), score=0.0, inliers=0, residual_px=math.nan, ok=False,
            reason=f"too few hairs to register ({len(mov)} and {len(ref)}, need {n_need})",
            tight_share=0.0,
        )  # fmt: skip
    mov_um, ref_um = mov.xy * um_mov, ref.xy * um_ref
    ref_tree = cKDTree(ref_um)
    candidates: list[F64] = []
    if image_guess is not None:
        # px → px guess expressed in µm on both sides.
        to_um = np.diag([um_ref, um_ref]) @ image_guess[:, :2] / um_mov
        candidates.append(np.hstack([to_um, (um_ref * image_guess[:, 2])[:, None]]))
    else:
        known = (
            np.isfinite(mov.direction).mean() >= 0.5 and np.isfinite(ref.direction).mean() >= 0.5
        )
        p_mov = _pairs(mov_um, mov.direction, mov.diameter_um, cfg, known)
        p_ref = _pairs(ref_um, ref.direction, ref.diameter_um, cfg, known)
        candidates = _hypotheses(p_mov, p_ref, mov_um.mean(axis=0), cfg)
    if not candidates:
        return Registration(
            matrix=IDENTITY.copy(), score=0.0, inliers=0, residual_px=math.nan, ok=False,
            reason="no consistent hair constellation found in both images", tight_share=0.0,
        )  # fmt: skip
    # refined before they are compared: a hypothesis from a coarse vote bin may be a
    # couple of degrees off, and then agrees on fewer exits than a chance alignment
    candidates = [
        _refine(m, mov_um, mov.direction, ref_um, ref_tree, ref.direction, cfg)
        for m in candidates[: cfg.max_hypotheses]
    ]
    counts = [
        len(_agreeing(m, mov_um, mov.direction, ref_tree, ref.direction, cfg.inlier_um)[0])
        for m in candidates
    ]
    best_i = int(np.argmax(counts))
    best = candidates[best_i]
    im, ir, d = _agreeing(best, mov_um, mov.direction, ref_tree, ref.direction, cfg.inlier_um)
    n_in = len(im)
    rival = max(
        (c for m, c in zip(candidates, counts, strict=False)
         if _distinct(m, best, mov_um, 2.0 * cfg.inlier_um)),
        default=0,
    )  # fmt: skip
    # Overlap: moving hairs that land in the reference field and reference hairs that land
    # in the moving field.
    matrix_px = np.hstack([best[:, :2] * (um_mov / um_ref), (best[:, 2] / um_ref)[:, None]])
    n_mov_in = int(field_ref.contains(apply(matrix_px, mov.xy)).sum())
    n_ref_in = int(field_mov.contains(apply(invert(matrix_px), ref.xy)).sum())
    overlap = max(1, min(n_mov_in, n_ref_in))
    score = min(1.0, n_in / overlap)
    residual = float(math.sqrt(np.mean(d**2))) / um_ref if n_in else math.nan
    tight = float(np.mean(d <= 0.5 * cfg.inlier_um)) if n_in else 0.0
    reasons = []
    if n_in < n_need:
        reasons.append(f"only {n_in} hairs agree (need {n_need})")
    # A tight fit may pass with a lower score (low detection recall lowers the score of a
    # true registration; chance agreement spreads over the whole inlier disc).
    precise = tight >= _TIGHT_SHARE and n_in >= 8
    floor = cfg.min_score_precise if precise else cfg.min_score
    if score < floor:
        reasons.append(f"score {score:.2f} below {floor:.2f}")
    if rival >= cfg.ambiguity_ratio * max(n_in, 1) and n_in > 0:
        reasons.append(f"ambiguous: another transform explains {rival} of {n_in} hairs")
    log_s = math.log(scale_of(best)) if scale_of(best) > 0 else math.inf
    if abs(log_s) > cfg.max_scale_change * 1.5:
        reasons.append(f"scale {math.exp(log_s):.3f} outside the accepted range")
    pairs = tuple((int(mov.hair_id[a]), int(ref.hair_id[b])) for a, b in zip(im, ir, strict=True))
    return Registration(
        matrix=matrix_px, score=float(score), inliers=n_in, residual_px=residual,
        ok=not reasons, reason="; ".join(reasons), pairs=pairs, tight_share=tight,
    )  # fmt: skip


# --------------------------------------------------------------------------- images


def _grey_u8(image: NDArray[Any]) -> NDArray[np.uint8]:
    import cv2

    arr = np.asarray(image)
    if arr.ndim == 3:
        arr = arr.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    arr = arr.astype(np.float64)
    lo, hi = float(arr.min()), float(arr.max())
    scaled = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
    grey = np.clip(scaled, 0, 255).astype(np.uint8)
    # Contrast-limited equalisation evens out differences in lighting between visits.
    return np.asarray(cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(grey))


def _image_guess(mov: NDArray[Any], ref: NDArray[Any]) -> tuple[F64 | None, int]:
    """Similarity (px → px) from ORB features with RANSAC, and its inlier count."""
    import cv2

    orb = cv2.ORB_create(nfeatures=3000)  # type: ignore[attr-defined]
    km, dm = orb.detectAndCompute(_grey_u8(mov), None)
    kr, dr = orb.detectAndCompute(_grey_u8(ref), None)
    if dm is None or dr is None or len(km) < 8 or len(kr) < 8:
        return None, 0
    matches = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(dm, dr, k=2)
    good = [m[0] for m in matches if len(m) == 2 and m[0].distance < 0.8 * m[1].distance]
    if len(good) < 8:
        return None, 0
    src = np.array([km[m.queryIdx].pt for m in good], dtype=np.float32)
    dst = np.array([kr[m.trainIdx].pt for m in good], dtype=np.float32)
    matrix, mask = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC,
                                               ransacReprojThreshold=3.0)  # fmt: skip
    if matrix is None:
        return None, 0
    # OpenCV keypoints use pixel-centre coordinates; ours use the corner origin.
    shift = np.array([[1.0, 0.0, -0.5], [0.0, 1.0, -0.5]])
    back = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5]])
    out = compose(back, compose(np.asarray(matrix, dtype=np.float64), shift))
    return out, int(mask.sum())


# --------------------------------------------------------------------------- public


def _check_sequences(
    hairs_by_visit: Any, um_per_px: Any, images: Any, shapes: Any, hidden_rows: Any = None
) -> tuple[
    list[HairPoints], list[float], list[NDArray[Any]] | None, list[Field], list[tuple[int, int]]
]:
    if isinstance(hairs_by_visit, str | bytes) or not isinstance(hairs_by_visit, Sequence):
        raise InputError("hairs_by_visit: expected a sequence (one entry per visit)")
    n = len(hairs_by_visit)
    if n == 0:
        raise InputError("hairs_by_visit: at least one visit is required")
    points = [hair_points(h, name=f"hairs_by_visit[{k}]") for k, h in enumerate(hairs_by_visit)]
    if isinstance(um_per_px, int | float) or um_per_px is None:
        raise InputError("um_per_px: expected one calibration (µm/px) per visit, got a scalar")
    cal = list(um_per_px)
    if len(cal) != n:
        raise InputError(f"um_per_px: expected {n} calibrations (one per visit), got {len(cal)}")
    cal = [check_um_per_px(c, path=f"visit {k}") for k, c in enumerate(cal)]
    imgs: list[NDArray[Any]] | None = None
    if images is not None:
        imgs = list(images)
        if len(imgs) != n:
            raise InputError(f"images: expected {n} images (one per visit), got {len(imgs)}")
        imgs = [check_image(im, name=f"images[{k}]") for k, im in enumerate(imgs)]
    if shapes is not None:
        shp = list(shapes)
        if len(shp) != n:
            raise InputError(f"shapes: expected {n} (height, width) pairs, got {len(shp)}")
    elif imgs is not None:
        shp = [im.shape[:2] for im in imgs]
    else:
        shp = [None] * n
    # rows a burned-in status bar hides: no exit can be judged there, so they are not
    # part of the field (a follicle under the bar is neither present nor absent)
    if hidden_rows is not None:
        hidden = _check_hidden_rows(hidden_rows, n)
    elif imgs is not None:
        hidden = [overlay_bands(im) for im in imgs]
    else:
        hidden = [(0, 0)] * n
    fields = []
    for k, (pts, s) in enumerate(zip(points, shp, strict=True)):
        if s is None:
            fields.append(Field.from_points(pts.xy))
            continue
        try:
            h, w = (int(v) for v in s)
        except (TypeError, ValueError):
            raise InputError(f"shapes[{k}]: expected (height, width) in px, got {s!r}") from None
        if h < 2 or w < 2:
            raise InputError(f"shapes[{k}]: image too small ({w}x{h} px)")
        top, bottom = hidden[k]
        fields.append(Field.from_shape((h, w), top=top, bottom=bottom))
    return points, cal, imgs, fields, hidden


def _check_hidden_rows(hidden_rows: Any, n: int) -> list[tuple[int, int]]:
    if isinstance(hidden_rows, str | bytes) or not isinstance(hidden_rows, Sequence):
        raise InputError("hidden_rows: expected one (top, bottom) pair per visit")
    if len(hidden_rows) != n:
        raise InputError(f"hidden_rows: expected {n} (top, bottom) pairs, got {len(hidden_rows)}")
    out = []
    for k, pair in enumerate(hidden_rows):
        try:
            top, bottom = (int(v) for v in pair)
            ok = all(float(v) == int(v) for v in pair)
        except (TypeError, ValueError):
            ok = False
        if not ok or top < 0 or bottom < 0:
            raise InputError(
                f"hidden_rows[{k}]: expected two whole numbers of rows >= 0, got {pair!r}"
            )
        out.append((top, bottom))
    return out


def register_visits(
    hairs_by_visit: Sequence[Sequence[HairRecord]],
    *,
    um_per_px: Sequence[float],
    images: Sequence[NDArray[Any]] | None = None,
    shapes: Sequence[tuple[int, int]] | None = None,
    config: TrackConfig | None = None,
    hidden_rows: Sequence[tuple[int, int]] | None = None,
) -> tuple[Registration, ...]:
    """Register every visit of one site onto the first visit.

    Parameters
    ----------
    hairs_by_visit : sequence of sequence of HairRecord
        Hairs of each visit's image, in visit order (measured, or simulator truth). Only
        hairs with an exit point in the image are used.
    um_per_px : sequence of float, µm/px
        Calibration of each visit's image.
    images : sequence of (M, N[, 3]) ndarray, optional
        The images; they give each field's size and, when the hairs cannot register a
        visit, image features (ORB) propose a transform that the hairs must confirm.
        They are not modified.
    shapes : sequence of (H, W), optional
        Image sizes in px when the images are not given; without either, each field is
        approximated by the convex hull of its hairs' exits.
    config : TrackConfig, optional
        Parameters; defaults to ``TrackConfig()``.
    hidden_rows : sequence of (int, int), optional
        Rows (px) a burned-in status bar hides across the whole width at the top and the
        bottom of each visit's image (``ImageMeasurement.hidden_rows``); they are not
        part of the field. Found from the images when they are given instead; none
        without either.

    Returns
    -------
    tuple of Registration
        One per visit; the first is the identity. A visit that cannot be registered to the
        first is tried against the other visits already registered (earlier ones first,
        most recent first; then later ones) and the transforms composed (``via``); if
        that fails too, ``ok`` is ``False``.

    Raises
    ------
    InputError
        If the inputs are not one entry per visit, a calibration is missing or not
        positive, a hair record is malformed, or an image is not an image.
    """
    cfg = resolve_config(config)
    points, cal, imgs, fields, _ = _check_sequences(
        hairs_by_visit, um_per_px, images, shapes, hidden_rows
    )
    regs: list[Registration] = [_identity()]
    tried: dict[int, set[int]] = {}
    for k in range(1, len(points)):
        order = [0] + [j for j in range(k - 1, 0, -1) if regs[j].ok]
        regs.append(_first_ok(points, cal, imgs, fields, regs, k, order, cfg))
        tried[k] = set(order)
    # A visit that failed may still overlap a later visit that registered: try those too.
    changed = True
    while changed:
        changed = False
        for k in range(1, len(points)):
            if regs[k].ok:
                continue
            order = [j for j in range(1, len(points)) if regs[j].ok and j not in tried[k]]
            if not order:
                continue
            tried[k] |= set(order)
            reg = _first_ok(points, cal, imgs, fields, regs, k, order, cfg)
            if reg.ok:
                regs[k] = reg
                changed = True
    return tuple(regs)


def _first_ok(
    points: list[HairPoints],
    cal: list[float],
    imgs: list[NDArray[Any]] | None,
    fields: list[Field],
    regs: list[Registration],
    k: int,
    order: list[int],
    cfg: TrackConfig,
) -> Registration:
    """Register visit `k` to the first visit of `order` that accepts it, composed to visit 0.

    Returns the first refusal when none accepts.
    """
    first: Registration | None = None
    for j in order:
        reg = _register_one(points, cal, imgs, fields, k, j, _reach_via(cfg, regs[j], cal, j))
        if reg.ok and j != 0:
            reg = Registration(
                matrix=compose(regs[j].matrix, reg.matrix), score=reg.score,
                inliers=reg.inliers, residual_px=reg.residual_px * regs[j].scale,
                ok=True, method=reg.method, pairs=reg.pairs, via=j,
                tight_share=reg.tight_share,
            )  # fmt: skip
        if reg.ok:
            return reg
        first = first or reg
    assert first is not None
    return first


def _reach_via(cfg: TrackConfig, reg: Registration, cal: list[float], j: int) -> TrackConfig:
    """`cfg` with the rotation and scale search widened by visit `j`'s own registration.

    Every visit turns and rescales by at most ``max_rotation_deg`` and
    ``max_scale_change`` against the first visit, so against visit `j` (registered to the
    first by `reg`) by at most those plus `j`'s own turn and rescale.
    """
    if j == 0 or not reg.ok:
        return cfg
    turn = abs(reg.rotation_deg)
    # the matrix maps px to px: its physical rescale is corrected by the calibrations
    log_s = abs(math.log(max(reg.scale * cal[0] / cal[j], 1e-9)))
    return replace(
        cfg,
        max_rotation_deg=min(180.0, cfg.max_rotation_deg + turn),
        max_scale_change=min(1.0, cfg.max_scale_change + log_s),
    )


def _register_one(
    points: list[HairPoints],
    cal: list[float],
    imgs: list[NDArray[Any]] | None,
    fields: list[Field],
    k: int,
    j: int,
    cfg: TrackConfig,
) -> Registration:
    reg = _register_pair(
        points[k], points[j], um_mov=cal[k], um_ref=cal[j], field_mov=fields[k],
        field_ref=fields[j], cfg=cfg,
    )  # fmt: skip
    if reg.ok or imgs is None:
        return reg
    guess, n_feat = _image_guess(imgs[k], imgs[j])
    if guess is None:
        return reg
    if min(len(points[k]), len(points[j])) >= cfg.min_inliers:
        by_image = _register_pair(
            points[k], points[j], um_mov=cal[k], um_ref=cal[j], field_mov=fields[k],
            field_ref=fields[j], cfg=cfg, image_guess=guess,
        )  # fmt: skip
        if by_image.ok:
            return Registration(
                matrix=by_image.matrix, score=by_image.score, inliers=by_image.inliers,
                residual_px=by_image.residual_px, ok=True, method="image",
                pairs=by_image.pairs,
            )  # fmt: skip
        return reg
    enough = n_feat >= 30
    return Registration(
        matrix=guess, score=min(1.0, n_feat / 100.0), inliers=0, residual_px=math.nan,
        ok=enough, reason="" if enough else f"{reg.reason}; only {n_feat} image features agree",
        method="image",
    )  # fmt: skip
