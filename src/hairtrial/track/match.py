"""One-to-one hair matching between two registered images.

The cost of pairing two hairs is ``(distance / match_gate_um)² + w_dir (Δdirection /
direction_gate)² + w_diam (Δdiameter / diameter_sigma_um)² + w_unit Δ(unit size)``; pairs
beyond the distance or direction gate are impossible, and every hair may also stay
unmatched at a fixed cost, so a shed hair next to a new one is not forced into a pair. The
assignment is solved exactly (Hungarian algorithm, :func:`scipy.optimize.linear_sum_assignment`)
within each group of hairs that could be paired with each other. A first pass measures the
local residual displacement (skin stretches, the transform is not perfect), which then
corrects each hair's position before the final pass, whose distance gate narrows to the
exit noise actually seen (6 × the median corrected distance, at least 3/8 of
``match_gate_um``) across the hair and stretches ``along_stretch`` times along it (at most
to ``match_gate_um``): a measured exit is misjudged along its own shaft, seldom across it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from hairtrial._validate import InputError, check_positive
from hairtrial.records import HairRecord
from hairtrial.track._geometry import (
    F64,
    I64,
    HairPoints,
    angle_diff,
    apply,
    hair_points,
    rotation_of,
    tips_px,
)
from hairtrial.track.config import TrackConfig, resolve_config
from hairtrial.track.register import Registration, register_visits

#: Cost of leaving a hair unmatched (each side): a pair is made only when it costs less
#: than leaving both hairs alone.
_UNMATCHED_COST = 0.5
#: Fewest matched neighbours for a local displacement estimate.
_LOCAL_MIN = 3
#: Narrowest adaptive distance gate, as a share of ``match_gate_um``.
_GATE_FLOOR = 0.375
#: Adaptive gate in medians of the corrected distance.
_GATE_MEDIANS = 6.0
#: Share of ``match_gate_um`` a hair with swapped ends is matched within: a traced end is
#: about as sharp as an exit, and a new hair's tip meeting a shed follicle's exit by
#: chance is kept out by a narrow gate (perturbed-truth cases: no wrong link at 0.5).
_SWAP_GATE = 0.5


@dataclass(frozen=True)
class Cues:
    """Positions and cues of hairs (or follicles) in one common frame, µm."""

    xy_um: F64
    direction: F64
    diameter_um: F64
    unit_size: F64

    def __len__(self) -> int:
        return len(self.xy_um)


def unit_sizes(xy_um: F64, radius_um: float) -> F64:
    """Count the exits within `radius_um` of each exit (its follicular unit, itself included)."""
    if len(xy_um) == 0:
        return np.zeros(0)
    tree = cKDTree(xy_um)
    return np.asarray(tree.query_ball_point(xy_um, radius_um, return_length=True), dtype=float)


def _pair_costs(
    a: Cues, b: Cues, shift: F64, cfg: TrackConfig, gate: float | None = None
) -> tuple[I64, I64, F64, F64]:
    """Candidate pairs within the gates, with their costs and gated distances (µm).

    The distance of a pair is the exit distance, with its component along the hair
    divided by the along-shaft stretch where the gate is narrowed.
    """
    gate = cfg.match_gate_um if gate is None else gate
    if len(a) == 0 or len(b) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0), np.zeros(0)
    pos_b = b.xy_um + shift
    # exits are misjudged along their shaft: a narrowed gate stretches along the hair
    stretch = max(1.0, min(cfg.along_stretch, cfg.match_gate_um / gate))
    sparse = cKDTree(pos_b).sparse_distance_matrix(
        cKDTree(a.xy_um), gate * stretch, output_type="ndarray"
    )
    ib, ia = sparse["i"].astype(np.int64), sparse["j"].astype(np.int64)
    offset = pos_b[ib] - a.xy_um[ia]
    dist = np.hypot(*offset.T)
    if stretch > 1.0 and len(ib):
        # the follicle's direction, else the hair's; none known: the round gate
        angle = np.where(np.isfinite(a.direction[ia]), a.direction[ia], b.direction[ib])
        along = offset[:, 0] * np.cos(angle) + offset[:, 1] * np.sin(angle)
        across = offset[:, 1] * np.cos(angle) - offset[:, 0] * np.sin(angle)
        dist = np.where(np.isfinite(angle), np.hypot(along / stretch, across), dist)
        inside = dist <= gate
        ia, ib, dist = ia[inside], ib[inside], dist[inside]
    gate_dir = math.radians(cfg.direction_gate_deg)
    both = np.isfinite(a.direction[ia]) & np.isfinite(b.direction[ib])
    d_dir = np.where(both, angle_diff(a.direction[ia], b.direction[ib]), 0.0)
    keep = d_dir <= gate_dir
    ia, ib, dist, d_dir = ia[keep], ib[keep], dist[keep], d_dir[keep]
    cost = (dist / gate) ** 2
    if gate_dir > 0:
        cost = cost + cfg.direction_weight * (d_dir / gate_dir) ** 2
    d_diam = (a.diameter_um[ia] - b.diameter_um[ib]) / cfg.diameter_sigma_um
    cost = cost + cfg.diameter_weight * np.minimum(d_diam**2, 4.0) * 0.25
    ua, ub = a.unit_size[ia], b.unit_size[ib]
    cost = cost + cfg.unit_weight * np.abs(ua - ub) / np.maximum(np.maximum(ua, ub), 1.0)
    return ia, ib, cost, dist


def _solve(ia: I64, ib: I64, cost: F64, n_a: int, n_b: int) -> tuple[I64, I64]:
    """Optimal one-to-one pairs with an 'unmatched' option, solved per connected group."""
    useful = cost < 2 * _UNMATCHED_COST
    ia, ib, cost = ia[useful], ib[useful], cost[useful]
    if len(ia) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    graph = coo_matrix((np.ones(len(ia)), (ia, n_a + ib)), shape=(n_a + n_b, n_a + n_b))
    _, label = connected_components(graph, directed=False)
    comp = label[ia]
    order = np.argsort(comp, kind="stable")
    bounds = np.flatnonzero(np.diff(comp[order])) + 1
    out_a: list[int] = []
    out_b: list[int] = []
    for group in np.split(order, bounds):
        ga, gb, gc = ia[group], ib[group], cost[group]
        if len(group) == 1:
            out_a.append(int(ga[0]))
            out_b.append(int(gb[0]))
            continue
        ua, ra = np.unique(ga, return_inverse=True)
        ub, rb = np.unique(gb, return_inverse=True)
        na, nb = len(ua), len(ub)
        big = 1e6
        # [pairs | a unmatched; b unmatched | dummy] so each hair may stay alone.
        mat = np.full((na + nb, nb + na), big)
        mat[ra, rb] = gc
        mat[np.arange(na), nb + np.arange(na)] = _UNMATCHED_COST
        mat[na + np.arange(nb), np.arange(nb)] = _UNMATCHED_COST
        mat[na:, nb:] = 0.0
        rows, cols = linear_sum_assignment(mat)
        real = (rows < na) & (cols < nb)
        out_a.extend(int(v) for v in ua[rows[real]])
        out_b.extend(int(v) for v in ub[cols[real]])
    return np.asarray(out_a, dtype=np.int64), np.asarray(out_b, dtype=np.int64)


def assign(a: Cues, b: Cues, cfg: TrackConfig) -> tuple[I64, I64, F64]:
    """Match `b` onto `a` one to one (both in one frame, µm), with local correction.

    Returns
    -------
    ia, ib : (k,) int64
        Indices of the matched entries of `a` and `b`.
    distance_um : (k,) float64, µm
        Exit distance of each pair after the local correction.
    """
    shift = np.zeros((len(b), 2))
    ia, ib, cost, _ = _pair_costs(a, b, shift, cfg)
    ia, ib = _solve(ia, ib, cost, len(a), len(b))
    if len(ia) >= _LOCAL_MIN:
        residual = a.xy_um[ia] - b.xy_um[ib]
        tree = cKDTree(b.xy_um[ib])
        near = tree.query_ball_point(b.xy_um, cfg.local_radius_um)
        fallback = np.median(residual, axis=0)
        shift = np.array(
            [np.median(residual[n], axis=0) if len(n) >= _LOCAL_MIN else fallback for n in near]
        ).reshape(-1, 2)
        # The gate adapts to the exit noise seen in this image pair: 6 × the median
        # corrected distance of the first-pass pairs (4 × already holds 99.99 % of a 2-D
        # Gaussian scatter; real scatter has heavier tails), between 3/8 of match_gate_um
        # and match_gate_um. Sharp exits then get a tight gate, so a new hair next to a
        # shed one is not taken for it.
        moved = np.hypot(*(b.xy_um[ib] + shift[ib] - a.xy_um[ia]).T)
        gate = float(
            np.clip(
                _GATE_MEDIANS * np.median(moved), _GATE_FLOOR * cfg.match_gate_um, cfg.match_gate_um
            )
        )
        ia, ib, cost, _ = _pair_costs(a, b, shift, cfg, gate)
        ia, ib = _solve(ia, ib, cost, len(a), len(b))
    dist = np.hypot(*(b.xy_um[ib] + shift[ib] - a.xy_um[ia]).T) if len(ia) else np.zeros(0)
    return ia, ib, dist


def _cues_at(cues: Cues, idx: I64, xy_um: F64 | None = None, turned: bool = False) -> Cues:
    """Take the `idx` entries of `cues`, at other positions or pointing the other way."""
    direction = cues.direction[idx] + math.pi if turned else cues.direction[idx]
    xy = cues.xy_um[idx] if xy_um is None else xy_um[idx]
    return Cues(xy, direction, cues.diameter_um[idx], cues.unit_size[idx])


def link_swapped(
    follicle: I64,
    swapped: NDArray[np.bool_],
    cues: Cues,
    tips: F64,
    mean: Cues,
    tip_mean: F64,
    cfg: TrackConfig,
) -> list[int]:
    """Link hairs left unmatched whose ends were swapped, at this visit or before.

    A hair's exit end is judged from one image and is sometimes the wrong end. The exit
    stays put between visits while the tip moves with growth, so a hair of this visit
    whose *tip* lies at an unmatched follicle's exit (its direction reversed) is that
    follicle's hair seen with its ends swapped; and one whose exit lies at an unmatched
    follicle's mean *tip* is that follicle's hair, the earlier ones having been seen
    swapped. Fills `follicle` and `swapped` in place; returns the follicles whose
    history is to be swapped.
    """
    flip: list[int] = []
    narrow = replace(cfg, match_gate_um=_SWAP_GATE * cfg.match_gate_um)
    for history in (False, True):
        # hairs and follicles without a known tip (points-only records) take no part
        free_h = np.flatnonzero((follicle < 0) & np.isfinite(tips).all(axis=1))
        taken = np.zeros(len(mean), dtype=bool)
        if history:
            taken |= ~np.isfinite(tip_mean).all(axis=1)
        taken[follicle[follicle >= 0]] = True
        free_f = np.flatnonzero(~taken)
        if free_h.size == 0 or free_f.size == 0:
            break
        if history:  # this hair's exit at the follicle's tips so far
            fol = _cues_at(mean, free_f, tip_mean, turned=True)
            hair = _cues_at(cues, free_h)
        else:  # this hair's tip at the follicle's exit
            fol = _cues_at(mean, free_f)
            hair = _cues_at(cues, free_h, tips, turned=True)
        ia, ib, _ = assign(fol, hair, narrow)
        follicle[free_h[ib]] = free_f[ia]
        if history:
            flip.extend(int(f) for f in free_f[ia])
        else:
            swapped[free_h[ib]] = True
    return flip


def cues_of(points: HairPoints, matrix: F64, um_per_px: float, cfg: TrackConfig) -> Cues:
    """Cues of an image's hairs mapped by `matrix` into a frame of `um_per_px` µm/px."""
    xy = apply(matrix, points.xy) * um_per_px
    return Cues(
        xy_um=xy,
        direction=points.direction + rotation_of(matrix),
        diameter_um=points.diameter_um,
        unit_size=unit_sizes(xy, cfg.unit_radius_um),
    )


@dataclass(frozen=True)
class HairMatch:
    """One-to-one pairs of hairs between two images.

    Parameters
    ----------
    pairs : tuple of (int, int)
        Matched ``(hair id in a, hair id in b)``.
    distance_um : tuple of float, µm
        Exit distance of each pair after registration (and local correction).
    unmatched_a, unmatched_b : tuple of int
        Counted hairs (exit in the image) of each image left without a partner.
    swapped_a, swapped_b : tuple of int
        Hairs of each image that were paired with their ends swapped: measured with the
        exit at the wrong end in that image (``TrackConfig.swapped_ends``). For such a
        pair `distance_um` is between the ends that meet (the real exit and the other
        image's misjudged end).
    """

    pairs: tuple[tuple[int, int], ...]
    distance_um: tuple[float, ...]
    unmatched_a: tuple[int, ...] = field(default=())
    unmatched_b: tuple[int, ...] = field(default=())
    swapped_a: tuple[int, ...] = field(default=())
    swapped_b: tuple[int, ...] = field(default=())


def _as_matrix(transform: Any) -> F64:
    if isinstance(transform, Registration):
        if not transform.ok:
            raise InputError(
                f"transform: the registration was refused ({transform.reason}); "
                "hairs are not matched through it"
            )
        return np.asarray(transform.matrix, dtype=np.float64)
    arr = np.asarray(transform, dtype=np.float64)
    if arr.shape != (2, 3) or not np.all(np.isfinite(arr)):
        raise InputError(f"transform: expected a finite 2×3 matrix, got shape {arr.shape}")
    if abs(np.linalg.det(arr[:, :2])) < 1e-12:
        raise InputError("transform: the matrix is singular")
    return arr


def match_hairs(
    a: Sequence[HairRecord],
    b: Sequence[HairRecord],
    *,
    transform: Registration | NDArray[np.float64],
    um_per_px: float,
    config: TrackConfig | None = None,
) -> HairMatch:
    """Match the hairs of image `b` one to one to those of image `a`.

    Parameters
    ----------
    a, b : sequence of HairRecord
        Hairs of the two images; only hairs with an exit point take part.
    transform : Registration or (2, 3) array_like
        Maps `b`'s pixel coordinates to `a`'s (e.g. ``register_visits([a, b], ...)[1]``).
        A refused registration (``ok=False``) is an error.
    um_per_px : float, µm/px
        Calibration of image `a` (the gates are in µm).
    config : TrackConfig, optional
        Gates and cue weights.

    Returns
    -------
    HairMatch

    Raises
    ------
    InputError
        For malformed records, a bad or refused transform, or a missing calibration.
    """
    cfg = resolve_config(config)
    um = check_positive(um_per_px, name="um_per_px")
    matrix = _as_matrix(transform)
    pa = hair_points(a, name="a")
    pb = hair_points(b, name="b")
    identity = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    ca = cues_of(pa, identity, um, cfg)
    cb = cues_of(pb, matrix, um, cfg)
    ia, ib, dist = assign(ca, cb, cfg)
    flip_a = np.zeros(len(pa), dtype=bool)
    flip_b = np.zeros(len(pb), dtype=bool)
    if cfg.swapped_ends and len(ia) < min(len(pa), len(pb)):
        # the hairs left: a hair measured with its ends swapped in one of the images has
        # its tip where the other image's hair has its exit
        tips_a = tips_px(a, pa.index) * um
        tips_b = apply(matrix, tips_px(b, pb.index)) * um
        partner = np.full(len(pb), -1, dtype=np.int64)
        partner[ib] = ia
        flipped = link_swapped(partner, flip_b, cb, tips_b, ca, tips_a, cfg)
        flip_a[flipped] = True
        new_b = np.setdiff1d(np.flatnonzero(partner >= 0), ib)
        new_a = partner[new_b]
        ends_a = np.where(flip_a[new_a, None], tips_a[new_a], ca.xy_um[new_a])
        ends_b = np.where(flip_b[new_b, None], tips_b[new_b], cb.xy_um[new_b])
        ia = np.concatenate([ia, new_a])
        ib = np.concatenate([ib, new_b])
        dist = np.concatenate([dist, np.hypot(*(ends_b - ends_a).T)])
    order = np.argsort(ia, kind="stable")
    ia, ib, dist = ia[order], ib[order], dist[order]
    left_a = np.setdiff1d(np.arange(len(pa)), ia)
    left_b = np.setdiff1d(np.arange(len(pb)), ib)
    return HairMatch(
        pairs=tuple((int(pa.hair_id[i]), int(pb.hair_id[j])) for i, j in zip(ia, ib, strict=True)),
        distance_um=tuple(float(v) for v in dist),
        unmatched_a=tuple(int(v) for v in pa.hair_id[left_a]),
        unmatched_b=tuple(int(v) for v in pb.hair_id[left_b]),
        swapped_a=tuple(int(v) for v in pa.hair_id[flip_a]),
        swapped_b=tuple(int(v) for v in pb.hair_id[flip_b]),
    )


@dataclass(frozen=True)
class PairMatch:
    """A phototrichogram pair (before / after re-imaging) registered and matched.

    Parameters
    ----------
    registration : Registration
        Transform of the second image onto the first.
    match : HairMatch
        Matched hairs (empty when the registration was refused).
    before, after : tuple of HairRecord
        The two images' hairs.
    """

    registration: Registration
    match: HairMatch
    before: tuple[HairRecord, ...]
    after: tuple[HairRecord, ...]

    def to_table(self) -> pd.DataFrame:
        """Per matched hair: lengths, diameters and growth between the two images.

        Returns
        -------
        DataFrame
            ``hair_id_before, hair_id_after, length_before_um, length_after_um, growth_um``
            (µm; growth = after − before), ``diameter_before_um, diameter_after_um`` (µm)
            and ``distance_um`` (exit distance after registration, µm).
        """
        by_b = {h.id: h for h in self.before}
        by_a = {h.id: h for h in self.after}
        rows = []
        for (i, j), dist in zip(self.match.pairs, self.match.distance_um, strict=True):
            hb, ha = by_b[i], by_a[j]
            rows.append({
                "hair_id_before": i,
                "hair_id_after": j,
                "length_before_um": hb.length_um,
                "length_after_um": ha.length_um,
                "growth_um": ha.length_um - hb.length_um,
                "diameter_before_um": hb.diameter_um,
                "diameter_after_um": ha.diameter_um,
                "distance_um": dist,
            })  # fmt: skip
        columns = [
            "hair_id_before", "hair_id_after", "length_before_um", "length_after_um",
            "growth_um", "diameter_before_um", "diameter_after_um", "distance_um",
        ]  # fmt: skip
        return pd.DataFrame(rows, columns=columns)


def match_pair(
    before: Sequence[HairRecord],
    after: Sequence[HairRecord],
    *,
    um_per_px: tuple[float, float] | Sequence[float],
    images: Sequence[NDArray[Any]] | None = None,
    shapes: Sequence[tuple[int, int]] | None = None,
    config: TrackConfig | None = None,
) -> PairMatch:
    """Register and match a phototrichogram pair (clipped, then re-imaged days later).

    Parameters
    ----------
    before, after : sequence of HairRecord
        Hairs of the clipped image and of the regrowth image.
    um_per_px : (float, float), µm/px
        Calibrations of the two images.
    images : (before, after) ndarrays, optional
        The images (field sizes; image features when the hairs cannot register).
    shapes : ((H, W), (H, W)), optional
        Image sizes when the images are not given.
    config : TrackConfig, optional
        Parameters.

    Returns
    -------
    PairMatch
        With an empty match when the registration is refused (``registration.ok`` False);
        ``to_table()`` gives per-hair growth (an anagen hair grows ~0.3–0.4 mm/day, a
        telogen hair not at all).
    """
    cfg = resolve_config(config)
    regs = register_visits([before, after], um_per_px=um_per_px, images=images, shapes=shapes,
                           config=cfg)  # fmt: skip
    reg = regs[1]
    if reg.ok:
        match = match_hairs(before, after, transform=reg, um_per_px=next(iter(um_per_px)),
                            config=cfg)  # fmt: skip
    else:
        match = HairMatch(
            pairs=(), distance_um=(),
            unmatched_a=tuple(h.id for h in before if h.exit_px is not None),
            unmatched_b=tuple(h.id for h in after if h.exit_px is not None),
        )  # fmt: skip
    return PairMatch(registration=reg, match=match, before=tuple(before), after=tuple(after))


__all__ = ["HairMatch", "PairMatch", "match_hairs", "match_pair"]
