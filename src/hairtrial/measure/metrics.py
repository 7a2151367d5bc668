"""Scoring a measurement against annotations, apart from the algorithm it scores.

Detections are matched one to one to annotated hairs with the Hungarian algorithm
(:func:`scipy.optimize.linear_sum_assignment`) on exit-point distance, or on a symmetric
centreline distance where exits are not annotated; a pair further apart than the tolerance
never matches. From the matching come precision, recall, F1, the count error, the diameter
error of matched hairs and the terminal-fraction error.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import linear_sum_assignment

from hairtrial._validate import InputError, check_positive
from hairtrial.records import DEFAULT_CLASSES, TERMINAL_MIN_UM, HairClasses, HairRecord

F64 = NDArray[np.float64]
Pair = tuple[int, int]

_FORBIDDEN = 1e12


def _as_points(points: ArrayLike, name: str) -> F64:
    arr = np.asarray(points, dtype=float).reshape(-1, 2) if np.size(points) else np.zeros((0, 2))
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name}: points must be finite")
    return arr


def _assign(cost: F64, allowed: NDArray[np.bool_]) -> list[Pair]:
    """Minimum-cost one-to-one assignment restricted to `allowed` pairs."""
    if cost.size == 0 or not allowed.any():
        return []
    c = np.where(allowed, cost, _FORBIDDEN)
    rows, cols = linear_sum_assignment(c)
    return sorted((int(i), int(j)) for i, j in zip(rows, cols, strict=True) if allowed[i, j])


def match_points(detected: ArrayLike, truth: ArrayLike, *, max_distance: float) -> list[Pair]:
    """Match detected points to true points one to one, minimising total distance.

    Parameters
    ----------
    detected : (N, 2) array_like, px
        Detected points (x, y), e.g. exits.
    truth : (M, 2) array_like, px
        True points.
    max_distance : float, px
        Pairs further apart never match.

    Returns
    -------
    list of (int, int)
        ``(detected index, truth index)`` pairs, sorted.
    """
    check_positive(max_distance, name="max_distance")
    d = _as_points(detected, "detected")
    t = _as_points(truth, "truth")
    dist = np.hypot(d[:, None, 0] - t[None, :, 0], d[:, None, 1] - t[None, :, 1])
    return _assign(dist, dist <= max_distance)


def match_boxes(detected: ArrayLike, boxes: ArrayLike, *, centre_tolerance: float) -> list[Pair]:
    """Match detected points to annotation boxes one to one.

    A point may match a box when it lies inside the box or within `centre_tolerance` of
    its centre; among allowed pairs the total distance to box centres is minimised.

    Parameters
    ----------
    detected : (N, 2) array_like, px
        Detected points (x, y).
    boxes : (M, 4) array_like, px
        Boxes as ``(xmin, ymin, xmax, ymax)`` (corners in any order).
    centre_tolerance : float, px
        Distance to the box centre that always allows a match.

    Returns
    -------
    list of (int, int)
        ``(detected index, box index)`` pairs, sorted.
    """
    check_positive(centre_tolerance, name="centre_tolerance")
    d = _as_points(detected, "detected")
    b = np.asarray(boxes, dtype=float).reshape(-1, 4) if np.size(boxes) else np.zeros((0, 4))
    x0 = np.minimum(b[:, 0], b[:, 2])
    x1 = np.maximum(b[:, 0], b[:, 2])
    y0 = np.minimum(b[:, 1], b[:, 3])
    y1 = np.maximum(b[:, 1], b[:, 3])
    cx, cy = 0.5 * (x0 + x1), 0.5 * (y0 + y1)
    dist = np.hypot(d[:, None, 0] - cx[None, :], d[:, None, 1] - cy[None, :])
    inside = (
        (d[:, None, 0] >= x0[None, :])
        & (d[:, None, 0] <= x1[None, :])
        & (d[:, None, 1] >= y0[None, :])
        & (d[:, None, 1] <= y1[None, :])
    )
    return _assign(dist, inside | (dist <= centre_tolerance))


def _resample(line: F64, step: float) -> F64:
    if len(line) < 2:
        return line
    seg = np.hypot(*np.diff(line, axis=0).T)
    dist = np.r_[0.0, np.cumsum(seg)]
    count = max(2, math.ceil(dist[-1] / step) + 1)
    s = np.linspace(0.0, dist[-1], count)
    return np.column_stack([np.interp(s, dist, line[:, 0]), np.interp(s, dist, line[:, 1])])


def centreline_distance(a: ArrayLike, b: ArrayLike) -> float:
    """Symmetric mean distance between two polylines (px).

    The mean, over points sampled every pixel along each line, of the distance to the
    nearest sample of the other line, averaged over both directions.

    Parameters
    ----------
    a, b : (P, 2) array_like, px
        Polylines (x, y).

    Returns
    -------
    float, px
        Distance; ``inf`` when either line is empty.
    """
    pa = _resample(_as_points(a, "a"), 1.0)
    pb = _resample(_as_points(b, "b"), 1.0)
    if len(pa) == 0 or len(pb) == 0:
        return math.inf
    d = np.hypot(pa[:, None, 0] - pb[None, :, 0], pa[:, None, 1] - pb[None, :, 1])
    return float(0.5 * (d.min(axis=1).mean() + d.min(axis=0).mean()))


def match_centrelines(
    detected: Sequence[ArrayLike], truth: Sequence[ArrayLike], *, max_distance: float
) -> list[Pair]:
    """Match detected centrelines to true ones one to one by :func:`centreline_distance`.

    Parameters
    ----------
    detected, truth : sequence of (P, 2) array_like, px
        Polylines.
    max_distance : float, px
        Pairs with a larger symmetric mean distance never match.

    Returns
    -------
    list of (int, int)
        ``(detected index, truth index)`` pairs, sorted.
    """
    from scipy.spatial import cKDTree

    check_positive(max_distance, name="max_distance")
    det = [_resample(_as_points(x, "detected"), 1.0) for x in detected]
    tru = [_resample(_as_points(x, "truth"), 1.0) for x in truth]
    cost = np.full((len(det), len(tru)), math.inf)
    if not det or not tru:
        return []
    det_trees = [cKDTree(a) if len(a) else None for a in det]
    tru_trees = [cKDTree(b) if len(b) else None for b in tru]
    # candidate pairs: truth lines with any point near the detection
    all_t = np.concatenate([b for b in tru if len(b)]) if any(len(b) for b in tru) else None
    owner = np.concatenate([np.full(len(b), j) for j, b in enumerate(tru) if len(b)])
    if all_t is None:
        return []
    big = cKDTree(all_t)
    for i, a in enumerate(det):
        tree_a = det_trees[i]
        if tree_a is None:
            continue
        near = big.query_ball_point(a, r=max_distance)
        cands = np.unique(owner[np.concatenate([np.asarray(n, dtype=int) for n in near])])
        for j in cands:
            tree_b = tru_trees[j]
            if tree_b is None:
                continue
            d_ab = tree_b.query(a)[0].mean()
            d_ba = tree_a.query(tru[j])[0].mean()
            cost[i, j] = 0.5 * (d_ab + d_ba)
    finite = np.isfinite(cost)
    return _assign(np.where(finite, cost, _FORBIDDEN), finite & (cost <= max_distance))


@dataclass(frozen=True)
class DetectionScore:
    """Detection accuracy of one image or a pooled set.

    Parameters
    ----------
    n_detected, n_true, n_matched : int
        Detections, annotated hairs, one-to-one matches.
    precision, recall, f1 : float
        In [0, 1]; precision is 1 with no detections, recall 1 with no true hairs.
    count_error : float
        ``(n_detected - n_true) / n_true`` (signed, a fraction; NaN when ``n_true`` is 0).
    """

    n_detected: int
    n_true: int
    n_matched: int
    precision: float
    recall: float
    f1: float
    count_error: float


def detection_score(n_detected: int, n_true: int, n_matched: int) -> DetectionScore:
    """Precision, recall, F1 and count error from match counts.

    Parameters
    ----------
    n_detected, n_true, n_matched : int
        Counts; ``n_matched`` cannot exceed either of the others.

    Returns
    -------
    DetectionScore
    """
    if min(n_detected, n_true, n_matched) < 0 or n_matched > min(n_detected, n_true):
        raise InputError(
            f"detection_score: inconsistent counts detected={n_detected}, true={n_true}, "
            f"matched={n_matched}"
        )
    precision = n_matched / n_detected if n_detected else 1.0
    recall = n_matched / n_true if n_true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    count_error = (n_detected - n_true) / n_true if n_true else math.nan
    return DetectionScore(n_detected, n_true, n_matched, precision, recall, f1, count_error)


@dataclass(frozen=True)
class HairScore:
    """Accuracy of one measured image against its truth.

    Parameters
    ----------
    detection : DetectionScore
        Detection of counted hairs.
    diameter_mae_um : float, µm
        Mean absolute diameter error over matched hairs (NaN without matches).
    diameter_bias_um : float, µm
        Mean signed diameter error (measured - true) over matched hairs.
    mean_diameter_error_um : float, µm
        Per-image mean diameter, measured minus true (NaN if either is empty).
    terminal_fraction_error : float
        Terminal fraction, measured minus true (NaN if either is empty).
    matches : tuple of (int, int)
        ``(detected index, truth index)`` into the counted-hair lists.
    """

    detection: DetectionScore
    diameter_mae_um: float
    diameter_bias_um: float
    mean_diameter_error_um: float
    terminal_fraction_error: float
    matches: tuple[Pair, ...]


def terminal_fraction(
    diameters_um: ArrayLike, *, terminal_min_um: float = TERMINAL_MIN_UM
) -> float:
    """Share of hairs with diameter ≥ `terminal_min_um` (NaN for no hairs).

    Parameters
    ----------
    diameters_um : (N,) array_like, µm
        Shaft diameters.
    terminal_min_um : float, µm
        Terminal threshold.

    Returns
    -------
    float
    """
    d = np.asarray(diameters_um, dtype=float).ravel()
    return float(np.mean(d >= terminal_min_um)) if d.size else math.nan


def score_hairs(
    detected: Sequence[HairRecord],
    truth: Sequence[HairRecord],
    *,
    max_distance_px: float,
    by: str = "exit",
    terminal_min_um: float = TERMINAL_MIN_UM,
) -> HairScore:
    """Score measured hairs against true hairs of the same image.

    Only counted hairs (exit inside the image) take part.

    Parameters
    ----------
    detected, truth : sequence of HairRecord
        Measured and true hairs.
    max_distance_px : float, px
        Match tolerance (exit distance, or symmetric centreline distance).
    by : {'exit', 'centreline'}
        What to match on.
    terminal_min_um : float, µm
        Terminal threshold for the terminal fraction.

    Returns
    -------
    HairScore
    """
    if by not in ("exit", "centreline"):
        raise InputError(f"by: {by!r} is not one of {{exit, centreline}}")
    det = [h for h in detected if h.exit_px is not None]
    tru = [h for h in truth if h.exit_px is not None]
    if by == "exit":
        matches = match_points(
            [h.exit_px for h in det if h.exit_px is not None],
            [h.exit_px for h in tru if h.exit_px is not None],
            max_distance=max_distance_px,
        )
    else:
        matches = match_centrelines(
            [h.centerline_px for h in det],
            [h.centerline_px for h in tru],
            max_distance=max_distance_px,
        )
    # annotations without a diameter (points only) carry NaN and drop out of diameter errors
    err = np.array([det[i].diameter_um - tru[j].diameter_um for i, j in matches])
    err = err[np.isfinite(err)]
    dd = [h.diameter_um for h in det]
    td = [h.diameter_um for h in tru if math.isfinite(h.diameter_um)]
    return HairScore(
        detection=detection_score(len(det), len(tru), len(matches)),
        diameter_mae_um=float(np.mean(np.abs(err))) if err.size else math.nan,
        diameter_bias_um=float(np.mean(err)) if err.size else math.nan,
        mean_diameter_error_um=float(np.mean(dd) - np.mean(td)) if dd and td else math.nan,
        terminal_fraction_error=terminal_fraction(dd, terminal_min_um=terminal_min_um)
        - terminal_fraction(td, terminal_min_um=terminal_min_um),
        matches=tuple(matches),
    )


#: Edges of the exit-confidence bins of :func:`score_exit_ends` (the measurement gives
#: 0.5–1; the review page rings exits below 0.95).
EXIT_CONFIDENCE_EDGES = (0.5, 0.7, 0.9, 0.95, 0.99, 1.0)


@dataclass(frozen=True)
class ConfidenceBin:
    """Matched hairs whose stated exit confidence lies in ``[low, high)``.

    The last bin includes its upper edge (1).

    Attributes
    ----------
    low, high : float
        Bin edges.
    n : int
        Hairs in the bin.
    n_right : int
        Of those, hairs whose exit is at the annotated exit end.
    mean_confidence : float
        Mean stated confidence in the bin (NaN when empty): a calibrated confidence is
        about ``n_right / n``.
    """

    low: float
    high: float
    n: int
    n_right: int
    mean_confidence: float

    @property
    def right_fraction(self) -> float:
        """Share of the bin's hairs with the exit at the right end (NaN when empty)."""
        return self.n_right / self.n if self.n else math.nan


@dataclass(frozen=True)
class ExitEndScore:
    """How often matched hairs have their exit at the annotated exit end.

    Attributes
    ----------
    n : int
        Matched hairs scored (both exits known).
    n_right : int
        Of those, hairs whose measured exit lies nearer the annotated exit than their tip
        does.
    bins : tuple of ConfidenceBin
        The same by stated exit confidence (empty without confidences).
    wrong : tuple of int
        The matched hairs with the exit at the wrong end, as indices into the counted
        detections (those of `matches`); one image's only, a pooled score keeps none.
    """

    n: int
    n_right: int
    bins: tuple[ConfidenceBin, ...] = ()
    wrong: tuple[int, ...] = ()

    @property
    def right_fraction(self) -> float:
        """Share of scored hairs with the exit at the right end (NaN without any)."""
        return self.n_right / self.n if self.n else math.nan

    def __add__(self, other: ExitEndScore) -> ExitEndScore:
        """Pool two scores (of two images), bin by bin; indices do not pool."""
        if not self.bins or not other.bins:
            bins = self.bins or other.bins
        else:
            bins = tuple(
                ConfidenceBin(
                    a.low, a.high, a.n + b.n, a.n_right + b.n_right,
                    _pooled_mean(a.mean_confidence, a.n, b.mean_confidence, b.n),
                )
                for a, b in zip(self.bins, other.bins, strict=True)
            )  # fmt: skip
        return ExitEndScore(self.n + other.n, self.n_right + other.n_right, bins)


def _pooled_mean(a: float, n_a: int, b: float, n_b: int) -> float:
    if not n_a + n_b:
        return math.nan
    return ((a * n_a if n_a else 0.0) + (b * n_b if n_b else 0.0)) / (n_a + n_b)


def exit_at_right_end(hair: HairRecord, true_exit_px: tuple[float, float]) -> bool:
    """Whether a measured hair's exit lies nearer the annotated exit than its tip does.

    Parameters
    ----------
    hair : HairRecord
        A counted measured hair (exit known).
    true_exit_px : (x, y), px
        The annotated exit of the hair it was matched to.

    Returns
    -------
    bool
    """
    if hair.exit_px is None:
        raise InputError(f"hair {hair.id}: no exit (not counted), so no exit end to score")
    return math.dist(hair.exit_px, true_exit_px) < math.dist(hair.tip_px, true_exit_px)


def score_exit_ends(
    detected: Sequence[HairRecord],
    truth: Sequence[HairRecord],
    matches: Sequence[Pair],
    *,
    exit_confidence: Sequence[float] | None = None,
    edges: Sequence[float] = EXIT_CONFIDENCE_EDGES,
) -> ExitEndScore:
    """Score the exit end of matched hairs, and how well its stated confidence holds.

    A matched hair has the right end when its measured exit lies nearer the annotated
    exit than its measured tip does. Meaningful only when the hairs were matched by
    centreline and the annotation states exits (the simulator's truth, or hand
    annotations whose centrelines start at the exit); matching by exit makes it trivial.

    Parameters
    ----------
    detected, truth : sequence of HairRecord
        Measured and annotated hairs of one image (all of them).
    matches : sequence of (int, int)
        ``(detection, annotation)`` pairs into the counted lists, as :func:`score_hairs`
        returns them.
    exit_confidence : sequence of float, optional
        Each detected hair's stated exit confidence, in the order of `detected`
        (:attr:`~hairtrial.measure.ImageMeasurement.exit_confidence`).
    edges : sequence of float
        Bin edges for the confidences, increasing.

    Returns
    -------
    ExitEndScore
    """
    counted = [k for k, h in enumerate(detected) if h.exit_px is not None]
    tru = [h for h in truth if h.exit_px is not None]
    if exit_confidence is not None and len(exit_confidence) != len(detected):
        raise InputError(
            f"exit_confidence: expected {len(detected)} values (one per hair), "
            f"got {len(exit_confidence)}"
        )
    right: list[bool] = []
    sure: list[float] = []
    wrong: list[int] = []
    for i, j in matches:
        true_exit = tru[j].exit_px
        assert true_exit is not None
        right.append(exit_at_right_end(detected[counted[i]], true_exit))
        if not right[-1]:
            wrong.append(int(i))
        if exit_confidence is not None:
            sure.append(float(exit_confidence[counted[i]]))
    bins: list[ConfidenceBin] = []
    if exit_confidence is not None:
        values, ok = np.asarray(sure, dtype=float), np.asarray(right, dtype=bool)
        for k, (low, high) in enumerate(itertools.pairwise(edges)):
            last = k == len(edges) - 2
            inside = (values >= low) & ((values <= high) if last else (values < high))
            n = int(inside.sum())
            bins.append(
                ConfidenceBin(float(low), float(high), n, int(ok[inside].sum()),
                              float(values[inside].mean()) if n else math.nan)
            )  # fmt: skip
    return ExitEndScore(len(right), int(sum(right)), tuple(bins), tuple(wrong))


#: Why an annotated hair was missed, in the order the reasons are tried
#: (:func:`explain_errors`).
MISSED_REASONS = ("beside_found_hair", "joined_to_another", "traced_in_part", "not_counted",
                  "at_border", "not_found")  # fmt: skip
#: Why a detection matched no annotated hair (:func:`explain_errors`).
FALSE_REASONS = ("on_missed_hair", "on_found_hair", "on_uncounted_hair", "on_no_hair")


@dataclass(frozen=True)
class ErrorBreakdown:
    """Why annotated hairs were missed and why detections matched nothing, for one image.

    Parameters
    ----------
    missed : dict of str to int
        Missed counted annotated hairs per reason (:data:`MISSED_REASONS`, all keys):

        * ``beside_found_hair``: most of it lies along a detection matched to another
          hair (two shafts traced as one: overlapping follicular-unit partners, hairs
          side by side or in line);
        * ``joined_to_another``: as ``traced_in_part``, the detection also running along
          another annotated hair (one trace through two hairs);
        * ``traced_in_part``: a detection that matched nothing lies along most of it, or
          on it over most of its own length (cut short, or offset beyond the tolerance);
        * ``not_counted``: most of it lies along a detection whose exit was not placed
          inside the image (the measurement saw the hair but did not count it);
        * ``at_border``: nothing lies along it and it reaches the image border;
        * ``not_found``: nothing lies along it.
    false : dict of str to int
        Counted detections matched to no annotated hair per reason
        (:data:`FALSE_REASONS`): most of it lies along a missed annotated hair, along a
        matched one (a duplicate or fragment), along an annotated hair whose exit is
        outside the image (counted, but not a hair of this field), or along none (skin,
        clutter, overlays).
    missed_reason : tuple of (int, str)
        ``(truth index, reason)`` per missed hair, indices into the counted annotated hairs.
    false_reason : tuple of (int, str)
        ``(detection index, reason)`` per false detection, indices into the counted
        detections.
    """

    missed: dict[str, int]
    false: dict[str, int]
    missed_reason: tuple[tuple[int, str], ...]
    false_reason: tuple[tuple[int, str], ...]

    @classmethod
    def from_reasons(
        cls,
        missed: Sequence[tuple[int, str]],
        false: Sequence[tuple[int, str]],
        *,
        missed_keys: Sequence[str] = MISSED_REASONS,
        false_keys: Sequence[str] = FALSE_REASONS,
    ) -> ErrorBreakdown:
        """Count ``(index, reason)`` pairs per reason, every key present (0 if unused)."""
        return cls(
            missed={r: sum(1 for _, x in missed if x == r) for r in missed_keys},
            false={r: sum(1 for _, x in false if x == r) for r in false_keys},
            missed_reason=tuple(missed),
            false_reason=tuple(false),
        )


class _LinePool:
    """Sampled polylines in one k-d tree, for the share of a line along each of them."""

    def __init__(self, lines: list[F64]) -> None:
        from scipy.spatial import cKDTree

        self.count = len(lines)
        sizes = [len(x) for x in lines]
        self.points = np.concatenate(lines) if sum(sizes) else np.zeros((0, 2))
        self.owner = np.repeat(np.arange(self.count), sizes)
        self.tree = cKDTree(self.points) if len(self.points) else None

    def shares(self, line: F64, reach: float) -> F64:
        """Share of `line`'s samples closer than `reach` to each pooled polyline."""
        out = np.zeros(self.count)
        if len(line) == 0 or self.tree is None:
            return out
        near = self.tree.query_ball_point(line, r=reach)
        sizes = np.array([len(x) for x in near], dtype=np.intp)
        if not sizes.sum():
            return out
        sample = np.repeat(np.arange(len(line)), sizes)
        hit = np.concatenate([np.asarray(x, dtype=np.intp) for x in near])
        close = np.hypot(*(self.points[hit] - line[sample]).T) < reach
        pair = np.unique(sample[close] * self.count + self.owner[hit[close]])
        return np.bincount(pair % self.count, minlength=self.count) / len(line)


def explain_errors(
    detected: Sequence[HairRecord],
    truth: Sequence[HairRecord],
    matches: Sequence[Pair],
    *,
    shape: tuple[int, int],
    reach_px: float = 6.0,
    border_px: float = 3.0,
) -> ErrorBreakdown:
    """Sort the errors of one scored image by what lies where they are.

    Geometry only: each missed annotated hair and each unmatched detection is described
    by the centrelines lying along it (at least half of its length within `reach_px`; for
    a missed hair, also an unmatched detection lying on it over half of its own length).
    Counted hairs only take part, as in :func:`score_hairs`, whose ``matches`` (indices
    into the counted lists) this takes; uncounted detections serve to tell a hair that
    was seen but not counted.

    Parameters
    ----------
    detected, truth : sequence of HairRecord
        Measured and annotated hairs of one image (all of them; uncounted ones are
        filtered here as in :func:`score_hairs`).
    matches : sequence of (int, int)
        ``(detection, truth)`` pairs into the counted detections and counted annotations.
    shape : (int, int)
        Image rows and columns (px), for the border.
    reach_px : float, px
        How far a centreline may lie from another to run along it.
    border_px : float, px
        How close to the image edge a hair reaches the border.

    Returns
    -------
    ErrorBreakdown
    """
    check_positive(reach_px, name="reach_px")
    det = [h for h in detected if h.exit_px is not None]
    uncounted = [h for h in detected if h.exit_px is None]
    tru = [h for h in truth if h.exit_px is not None]
    outside = [h for h in truth if h.exit_px is None]

    def sampled(h: HairRecord) -> F64:
        return _resample(_as_points(h.centerline_px, "centerline_px"), 1.0)

    det_lines = [sampled(h) for h in det]
    tru_lines = [sampled(h) for h in tru]
    det_pool, tru_pool = _LinePool(det_lines), _LinePool(tru_lines)
    unc_pool = _LinePool([sampled(h) for h in uncounted])
    out_pool = _LinePool([sampled(h) for h in outside])
    det_match = {i: j for i, j in matches}
    tru_match = {j: i for i, j in matches}
    # share of each annotated hair along each detection, and of each detection along each hair
    hair_on = np.array([det_pool.shares(x, reach_px) for x in tru_lines]).reshape(
        len(tru_lines), len(det_lines)
    )
    det_on = np.array([tru_pool.shares(x, reach_px) for x in det_lines]).reshape(
        len(det_lines), len(tru_lines)
    )
    m, n = shape
    missed: list[tuple[int, str]] = []
    for j, line in enumerate(tru_lines):
        if j in tru_match:
            continue
        found = [i for i in np.flatnonzero(hair_on[j] >= 0.5) if int(i) in det_match]
        # an unmatched detection lies on the hair, or the hair along it
        loose = [
            int(i)
            for i in np.flatnonzero((hair_on[j] >= 0.5) | (det_on[:, j] >= 0.5))
            if int(i) not in det_match
        ]
        if found:
            reason = "beside_found_hair"
        elif loose:
            others = np.asarray((det_on[loose] >= 0.3).any(axis=0), dtype=bool)
            others[j] = False
            reason = "joined_to_another" if others.any() else "traced_in_part"
        elif (unc_pool.shares(line, reach_px) >= 0.5).any():
            reason = "not_counted"
        elif len(line) and (
            line.min() <= border_px
            or line[:, 0].max() >= n - border_px
            or line[:, 1].max() >= m - border_px
        ):
            reason = "at_border"
        else:
            reason = "not_found"
        missed.append((j, reason))
    missed_set = {j for j, _ in missed}
    false: list[tuple[int, str]] = []
    for i, line in enumerate(det_lines):
        if i in det_match:
            continue
        on = np.flatnonzero(det_on[i] >= 0.5)
        if any(int(k) in missed_set for k in on):
            reason = "on_missed_hair"
        elif on.size:
            reason = "on_found_hair"
        elif (out_pool.shares(line, reach_px) >= 0.5).any():
            reason = "on_uncounted_hair"
        else:
            reason = "on_no_hair"
        false.append((i, reason))
    return ErrorBreakdown.from_reasons(missed, false)


def truth_from_json(
    obj: dict[str, Any], *, um_per_px: float | None = None, classes: HairClasses = DEFAULT_CLASSES
) -> list[HairRecord]:
    """Read annotated hairs: simulator truth or the simple hand-annotation format.

    Two shapes are accepted (see ``docs/measure.md``):

    * the DESIGN.md measurement / simulator-truth object: ``{"hairs": [HairRecord JSON]}``;
    * hand annotation: ``{"um_per_px": F, "hairs": [{"exit_px": [x, y],
      "centerline_px": [[x, y], ...], "diameter_um": D | "width_px": W}]}`` where everything
      but one of ``exit_px`` / ``centerline_px`` is optional (points-only annotation is
      fine; a missing exit is the centreline's first point; a missing diameter is NaN and
      takes no part in diameter errors).

    Parameters
    ----------
    obj : dict
        Parsed JSON.
    um_per_px : float, optional, µm/px
        Calibration for ``width_px`` (defaults to the object's ``um_per_px``).
    classes : HairClasses
        Class limits for hairs whose class is not given.

    Returns
    -------
    list of HairRecord
    """
    if not isinstance(obj, dict) or not isinstance(obj.get("hairs"), list):
        raise InputError('truth: expected a JSON object with a "hairs" list')
    scale = um_per_px if um_per_px is not None else obj.get("um_per_px")
    out: list[HairRecord] = []
    for i, h in enumerate(obj["hairs"]):
        if not isinstance(h, dict):
            raise InputError(f"truth: hair {i} is not an object")
        if {"tip_px", "class", "length_um"} <= set(h):
            out.append(HairRecord.from_json(h))
            continue
        line = h.get("centerline_px") or h.get("polyline") or []
        pts = [(float(x), float(y)) for x, y in line]
        exit_raw = h.get("exit_px", pts[0] if pts else None)
        if exit_raw is None and "exit_px" not in h:
            raise InputError(f"truth: hair {i} has neither exit_px nor centerline_px")
        exit_px = None if exit_raw is None else (float(exit_raw[0]), float(exit_raw[1]))
        if not pts:
            pts = [exit_px] if exit_px is not None else []
        if "diameter_um" in h:
            diameter = float(h["diameter_um"])
        elif "width_px" in h and scale is not None:
            diameter = float(h["width_px"]) * check_positive(scale, name="um_per_px")
        else:
            diameter = math.nan
        length_px = (
            float(np.sum(np.hypot(*np.diff(np.asarray(pts), axis=0).T))) if len(pts) > 1 else 0.0
        )
        out.append(
            HairRecord(
                id=int(h.get("id", i + 1)),
                exit_px=exit_px,
                tip_px=pts[-1] if pts else (math.nan, math.nan),
                centerline_px=tuple(pts),
                diameter_um=diameter,
                length_um=length_px * float(scale) if scale is not None else math.nan,
                hair_class=classes.classify(diameter)
                if math.isfinite(diameter)
                else "intermediate",
            )
        )
    return out
