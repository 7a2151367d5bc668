"""Scoring of tracking against truth (simulator follicle ids), apart from the algorithm.

The truth is given per visit as hair records carrying ``extra["follicle_id"]``
(simulator truth JSON, :meth:`HairRecord.from_json`). The tracked hairs are labelled with
the truth follicle they show through `labels`: for simulator truth tracked directly, or
truth perturbed with detection noise, the labels come from the records themselves
(:func:`truth_labels`); for measured hairs, the caller joins measured and truth exits
first (e.g. :mod:`hairtrial.measure.metrics`). A false hair has label ``None``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hairtrial._validate import InputError
from hairtrial.measure.metrics import match_points
from hairtrial.records import HairRecord
from hairtrial.track._geometry import F64
from hairtrial.track.site import SiteTracks

Labels = Mapping[int, int | None]


def truth_labels(hairs_by_visit: Sequence[Sequence[HairRecord]]) -> list[dict[int, int | None]]:
    """Map hair id → truth follicle id per visit, from ``extra["follicle_id"]``.

    Parameters
    ----------
    hairs_by_visit : sequence of sequence of HairRecord
        Records that carry ``follicle_id`` in `extra` (``None`` or missing for a false hair).

    Returns
    -------
    list of dict
        One ``{hair_id: follicle_id or None}`` per visit, for the counted hairs only (exit
        inside the image): a hair entering from outside the field is neither tracked nor
        expected to be.
    """
    out = []
    for hairs in hairs_by_visit:
        labels: dict[int, int | None] = {}
        for h in hairs:
            if h.exit_px is None:
                continue
            fid = h.extra.get("follicle_id")
            labels[int(h.id)] = None if fid is None else int(fid)
        out.append(labels)
    return out


def labels_from_truth(
    measured_by_visit: Sequence[Sequence[HairRecord]],
    truth_by_visit: Sequence[Sequence[HairRecord]],
    *,
    max_distance_px: float = 10.0,
    tips: bool = True,
) -> list[dict[int, int | None]]:
    """Label measured hairs with the truth follicle whose exit they found.

    Measured and truth exits of each image are paired one to one (Hungarian algorithm,
    least total distance, pairs beyond `max_distance_px` forbidden). With `tips`, the
    measured hairs left unpaired are then paired by their *tip* with the truth exits
    left unpaired: a hair whose exit end was judged at the wrong end is still that
    follicle's hair (its ends swapped). A measured hair paired neither way is a false
    hair (``None``).

    Parameters
    ----------
    measured_by_visit, truth_by_visit : sequence of sequence of HairRecord
        Measured hairs and truth hairs (with ``follicle_id``) of each visit's image.
    max_distance_px : float, px
        Largest exit (or tip-to-exit) distance of a pair.
    tips : bool
        Also pair hairs seen with their ends swapped.

    Returns
    -------
    list of dict
        One ``{measured hair id: follicle_id or None}`` per visit (counted hairs only).
    """
    if len(measured_by_visit) != len(truth_by_visit):
        raise InputError(
            f"truth_by_visit: expected {len(measured_by_visit)} visits, got {len(truth_by_visit)}"
        )
    out = []
    for measured, truth in zip(measured_by_visit, truth_by_visit, strict=True):
        found = [h for h in measured if h.exit_px is not None]
        real = [h for h in truth if h.exit_px is not None]
        real_exits = np.array([h.exit_px for h in real], dtype=float).reshape(-1, 2)
        labels: dict[int, int | None] = {int(h.id): None for h in found}
        free = list(range(len(real)))
        ends = ("exit_px", "tip_px") if tips else ("exit_px",)
        paired: set[int] = set()
        for end in ends:
            # a point-only record has no tip to pair by
            left = [
                h for h in found if int(h.id) not in paired and np.isfinite(getattr(h, end)).all()
            ]
            pairs = match_points(
                [getattr(h, end) for h in left],
                real_exits[free],
                max_distance=max_distance_px,
            )
            for i, k in pairs:
                paired.add(int(left[i].id))
                fid = real[free[k]].extra.get("follicle_id")
                labels[int(left[i].id)] = None if fid is None else int(fid)
            taken = {k for _, k in pairs}
            free = [j for k, j in enumerate(free) if k not in taken]
        out.append(labels)
    return out


def _check(tracks: SiteTracks, per_visit: Sequence[object], name: str) -> None:
    if not isinstance(tracks, SiteTracks):
        raise InputError(f"tracks: expected a SiteTracks, got {type(tracks).__name__}")
    if len(per_visit) != len(tracks.visit_days):
        raise InputError(
            f"{name}: expected {len(tracks.visit_days)} entries (one per visit), "
            f"got {len(per_visit)}"
        )


def _labelled(tracks: SiteTracks, labels: Sequence[Labels], v: int) -> dict[int, int | None]:
    """Tracked follicle id → truth follicle id of its hair at visit `v`."""
    ids = tracks.follicle_ids(v)
    return {f: labels[v].get(h) for h, f in ids.items()}


@dataclass(frozen=True)
class PairScore:
    """Matching quality between two visits.

    Parameters
    ----------
    visit_a, visit_b : int
        Visit indices.
    n_predicted : int
        Hair pairs the tracker linked (same tracked follicle at both visits).
    n_true : int
        Hair pairs of the same truth follicle among the hairs given to the tracker.
    n_correct : int
        Predicted pairs that are true.
    precision, recall : float
        ``n_correct / n_predicted`` and ``n_correct / n_true`` (NaN when undefined).
    n_false_hair_links : int
        Predicted links with a false hair (no truth follicle) at either end: detection
        errors carried into the links, counted as wrong in `precision`.
    """

    visit_a: int
    visit_b: int
    n_predicted: int
    n_true: int
    n_correct: int
    precision: float
    recall: float
    n_false_hair_links: int = 0

    @property
    def matching_precision(self) -> float:
        """Precision over links between real hairs (false hairs left out), NaN if none."""
        real = self.n_predicted - self.n_false_hair_links
        return self.n_correct / real if real else math.nan


def pair_scores(tracks: SiteTracks, labels: Sequence[Labels]) -> list[PairScore]:
    """Precision and recall of hair-to-hair links for every pair of visits.

    Parameters
    ----------
    tracks : SiteTracks
        Tracking result.
    labels : sequence of mapping
        Per visit, hair id → truth follicle id (``None`` for a false hair).

    Returns
    -------
    list of PairScore
        For all visit pairs ``a < b``. Hairs of unregistered visits count as unlinked.
    """
    _check(tracks, labels, "labels")
    n = len(tracks.visit_days)
    by_visit = [_labelled(tracks, labels, v) for v in range(n)]
    out = []
    for a, b in itertools.combinations(range(n), 2):
        la, lb = by_visit[a], by_visit[b]
        linked = [f for f in la if f in lb]
        correct = sum(1 for f in linked if la[f] is not None and la[f] == lb[f])
        false_links = sum(1 for f in linked if la[f] is None or lb[f] is None)
        truth_a = {fid for fid in labels[a].values() if fid is not None}
        truth_b = {fid for fid in labels[b].values() if fid is not None}
        n_true = len(truth_a & truth_b)
        out.append(
            PairScore(
                visit_a=a,
                visit_b=b,
                n_predicted=len(linked),
                n_true=n_true,
                n_correct=correct,
                precision=correct / len(linked) if linked else math.nan,
                recall=correct / n_true if n_true else math.nan,
                n_false_hair_links=false_links,
            )
        )
    return out


def identity_counts(tracks: SiteTracks, labels: Sequence[Labels]) -> tuple[int, int]:
    """Count truth follicles seen at every visit, and those that keep one tracked id.

    A follicle keeps its identity when all its hairs carry the same tracked follicle id and
    that tracked follicle holds no hair of another truth follicle. A follicle whose hair
    lies in a visit that could not be registered does not keep its identity.

    Parameters
    ----------
    tracks : SiteTracks
        Tracking result.
    labels : sequence of mapping
        Per visit, hair id → truth follicle id.

    Returns
    -------
    kept, total : int
        Follicles that keep their identity, and follicles with a hair given to the
        tracker at every visit.
    """
    _check(tracks, labels, "labels")
    n = len(tracks.visit_days)
    seen = [{fid for fid in labels[v].values() if fid is not None} for v in range(n)]
    always = set.intersection(*seen) if seen else set()
    tracked_of: dict[int, set[int | None]] = {}
    truth_of: dict[int, set[int | None]] = {}
    for v in range(n):
        ids = tracks.follicle_ids(v)
        for hair, fid in labels[v].items():
            tracked = ids.get(hair)
            if fid is not None:
                tracked_of.setdefault(fid, set()).add(tracked)
            if tracked is not None:
                truth_of.setdefault(tracked, set()).add(fid)
    kept = 0
    for fid in always:
        ids_seen = tracked_of.get(fid, set())
        if len(ids_seen) == 1:
            (only,) = tuple(ids_seen)
            if only is not None and truth_of.get(only) == {fid}:
                kept += 1
    return kept, len(always)


def identity_kept(tracks: SiteTracks, labels: Sequence[Labels]) -> float:
    """Share of truth follicles seen at every visit that keep one tracked id throughout.

    Parameters
    ----------
    tracks : SiteTracks
        Tracking result.
    labels : sequence of mapping
        Per visit, hair id → truth follicle id.

    Returns
    -------
    float
        Share in [0, 1] (see :func:`identity_counts`); NaN when no truth follicle has a
        hair at every visit.
    """
    kept, total = identity_counts(tracks, labels)
    return kept / total if total else math.nan


def _truth_exits(hairs: Sequence[HairRecord]) -> dict[int, tuple[float, float]]:
    out = {}
    for h in hairs:
        fid = h.extra.get("follicle_id")
        if fid is not None and h.exit_px is not None:
            out[int(fid)] = (float(h.exit_px[0]), float(h.exit_px[1]))
    return out


def registration_errors_px(
    tracks: SiteTracks, truth: Sequence[Sequence[HairRecord]]
) -> dict[int, F64]:
    """Registration error per visit from truth: the same follicle's exit in both images.

    Parameters
    ----------
    tracks : SiteTracks
        Tracking result (its registrations are scored).
    truth : sequence of sequence of HairRecord
        Truth hairs per visit with ``follicle_id`` (exact exits).

    Returns
    -------
    dict of int to ndarray, px
        For each registered visit ``v ≥ 1``, the distances in first-visit pixels between
        the first visit's truth exit and the mapped visit-``v`` truth exit of every
        follicle with a hair at both.
    """
    _check(tracks, truth, "truth")
    first = _truth_exits(truth[0])
    out = {}
    for v in range(1, len(truth)):
        reg = tracks.registrations[v]
        if not reg.ok:
            continue
        here = _truth_exits(truth[v])
        common = sorted(set(first) & set(here))
        if not common:
            out[v] = np.zeros(0)
            continue
        mapped = reg.apply(np.array([here[f] for f in common]))
        ref = np.array([first[f] for f in common])
        out[v] = np.hypot(*(mapped - ref).T)
    return out


def change_errors(
    tracks: SiteTracks,
    truth: Sequence[Sequence[HairRecord]],
    labels: Sequence[Labels],
    *,
    baseline_day: int = 0,
) -> pd.DataFrame:
    """Count-change and per-follicle diameter-change errors against truth, per visit.

    The tracked count change includes hairs recovered by the image re-check
    (:attr:`SiteTracks.recovered`). The true count change is counted over the skin the
    tracker judged: truth hairs whose exit, mapped by the tracker's registration, lies
    inside both visits' fields (as :meth:`SiteTracks.in_fields` judges), so the error
    measures detection and matching, not the choice of area (registration error is
    scored apart).

    Parameters
    ----------
    tracks : SiteTracks
        Tracking result.
    truth : sequence of sequence of HairRecord
        Truth hairs per visit (``follicle_id``, exact exits and diameters).
    labels : sequence of mapping
        Per visit, tracked hair id → truth follicle id.
    baseline_day : int, days
        Baseline visit day.

    Returns
    -------
    DataFrame
        Per later visit: ``visit_day``, ``count_change`` (tracked), ``true_count_change``,
        ``true_count_baseline``, ``count_change_error`` (``|Δ tracked − Δ true| / true
        baseline count``), ``diameter_change_mae_um`` (µm, over tracked follicles with a
        hair at both visits whose baseline hair's truth follicle has a hair at both; a
        wrong link is scored against the baseline follicle's true change; hairs
        counted through the image re-check are left out, as in
        :meth:`SiteTracks.change_endpoints`) and ``n_diameter_pairs``.
    """
    _check(tracks, truth, "truth")
    _check(tracks, labels, "labels")
    endpoints = tracks.change_endpoints(baseline_day)
    b = tracks.visit_days.index(baseline_day)
    truth_diam = [
        {int(h.extra["follicle_id"]): float(h.diameter_um) for h in hairs
         if h.extra.get("follicle_id") is not None and h.exit_px is not None}
        for hairs in truth
    ]  # fmt: skip
    rows = []
    for _, row in endpoints.iterrows():
        v = tracks.visit_days.index(int(row["visit_day"]))
        counts = []
        for w in (b, v):
            exits = _truth_exits(truth[w])
            if not exits or not tracks.registrations[w].ok:
                counts.append(0)
                continue
            xy = tracks.registrations[w].apply(np.array(list(exits.values())))
            counts.append(int(tracks.in_fields(xy, [b, v]).sum()))
        n0, n1 = counts
        true_change = n1 - n0
        errors = []
        # diameter changes are scored, like the endpoints, on detected hairs at both visits
        both = tracks.detected[:, b] & tracks.detected[:, v] & tracks.in_field[:, b]
        both &= tracks.in_field[:, v]
        for f in np.flatnonzero(both):
            hb = tracks.hairs[b][int(tracks.hair_index[f, b])]
            hv = tracks.hairs[v][int(tracks.hair_index[f, v])]
            fid = labels[b].get(hb.id)
            if fid is None or fid not in truth_diam[v] or fid not in truth_diam[b]:
                continue
            measured = hv.diameter_um - hb.diameter_um
            errors.append(abs(measured - (truth_diam[v][fid] - truth_diam[b][fid])))
        change = int(row["count_change"])
        rows.append({
            "visit_day": int(row["visit_day"]),
            "count_change": change,
            "true_count_change": true_change,
            "true_count_baseline": n0,
            "count_change_error": abs(change - true_change) / n0 if n0 else math.nan,
            "diameter_change_mae_um": float(np.mean(errors)) if errors else math.nan,
            "n_diameter_pairs": len(errors),
        })  # fmt: skip
    return pd.DataFrame(rows)


__all__ = [
    "PairScore",
    "change_errors",
    "identity_counts",
    "identity_kept",
    "labels_from_truth",
    "pair_scores",
    "registration_errors_px",
    "truth_labels",
]
