"""Follicle trajectories of one site across visits, and the change endpoints they give.

:func:`track_site` registers every visit onto the first (:func:`register_visits`) and then
walks the visits in order, matching each visit's hairs one to one against *every follicle
known so far* at its mean registered position — not only against the previous visit — so
that a follicle keeps its id through a gap (telogen shedding, kenogen, a missed
detection). Hairs left unmatched start new follicles. A visit whose registration is refused
is reported with its score and reason but not tracked.

When the images are given, an optional re-check (:mod:`hairtrial.track._recheck`,
``TrackConfig.recheck``) then looks in each image for the shaft of every follicle that
has no detected hair there although the field covers it, as a reviewer would; a clear
shaft becomes a *recovered* observation, which the count-change endpoints use.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from hairtrial._validate import InputError
from hairtrial.records import HairClasses, HairRecord
from hairtrial.track._geometry import F64, I64, Field, apply, invert, tips_px
from hairtrial.track.config import TrackConfig, resolve_config
from hairtrial.track.match import Cues, assign, cues_of, link_swapped
from hairtrial.track.register import Registration, _check_sequences, register_visits

if TYPE_CHECKING:
    from hairtrial.track._recheck import RecheckResult

_TABLE_COLUMNS = [
    "follicle_id", "visit_day", "present", "diameter_um", "class", "length_um", "image",
    "hair_id", "in_field", "recovered", "bare_skin",
]  # fmt: skip


@dataclass(frozen=True)
class SiteTracks:
    """Follicles of one site tracked across visits.

    Parameters
    ----------
    visit_days : tuple of int, days
        Day of each visit (days since the site's first treatment).
    images : tuple of str
        Image name of each visit.
    um_per_px : tuple of float, µm/px
        Calibration of each visit's image.
    registrations : tuple of Registration
        Transform of each visit onto the first visit (the first is the identity).
    hairs : tuple of tuple of HairRecord
        The input hairs of each visit.
    hair_index : (F, V) ndarray of int64
        For follicle ``f`` (row = follicle id) and visit ``v``, the index in
        ``hairs[v]`` of its hair, or -1 when it has none there.
    position_px : (F, 2) ndarray of float64, px
        Mean exit position of each follicle in first-visit pixels.
    in_field : (F, V) ndarray of bool
        Whether the follicle lies inside visit ``v``'s field (at least
        ``field_margin_um`` from its edge) in a registered visit: only there can its
        absence be judged.
    classes : HairClasses
        Diameter class limits.
    config_hash : str
        Hash of the :class:`TrackConfig` used.
    fields : tuple of Field
        Imaged area of each visit (its own pixels).
    field_margin_um : float, µm
        Distance from a field's edge inside which absence is not judged.
    ends_swapped : (F, V) ndarray of bool, optional
        Whether the follicle's hair at that visit was measured with its exit and tip the
        wrong way round (found by the tracking, ``TrackConfig.swapped_ends``): its tip is
        the follicle's exit there.
    recheck : RecheckResult or None
        What the image re-check found (``None`` when it did not run: no images, or
        ``TrackConfig.recheck`` off): recovered observations (a clear shaft at a
        follicle with no detected hair), their exits and diameters, and locations seen
        as bare skin.
    """

    visit_days: tuple[int, ...]
    images: tuple[str, ...]
    um_per_px: tuple[float, ...]
    registrations: tuple[Registration, ...]
    hairs: tuple[tuple[HairRecord, ...], ...] = field(repr=False)
    hair_index: NDArray[np.int64] = field(repr=False)
    position_px: NDArray[np.float64] = field(repr=False)
    in_field: NDArray[np.bool_] = field(repr=False)
    classes: HairClasses = field(default_factory=HairClasses)
    config_hash: str = ""
    fields: tuple[Field, ...] = field(default=(), repr=False)
    field_margin_um: float = 0.0
    recheck: RecheckResult | None = field(default=None, repr=False)
    ends_swapped: NDArray[np.bool_] | None = field(default=None, repr=False)

    def in_fields(self, xy_px: Any, visits: Sequence[int]) -> NDArray[np.bool_]:
        """Whether points lie inside the fields of all `visits`, as the tracker judges.

        Parameters
        ----------
        xy_px : (n, 2) array_like, px
            Points in first-visit pixels.
        visits : sequence of int
            Visit indices.

        Returns
        -------
        (n,) ndarray of bool
            ``False`` for any point when one of the visits is not registered.
        """
        pts = np.asarray(xy_px, dtype=np.float64).reshape(-1, 2)
        inside = np.ones(len(pts), dtype=bool)
        for v in visits:
            reg = self.registrations[v]
            if not reg.ok or not self.fields:
                return np.zeros(len(pts), dtype=bool)
            local = apply(invert(reg.matrix), pts)
            inside &= self.fields[v].contains(
                local, margin=self.field_margin_um / self.um_per_px[v]
            )
        return inside

    @property
    def n_follicles(self) -> int:
        """Number of follicles seen at least once."""
        return int(self.hair_index.shape[0])

    @property
    def detected(self) -> NDArray[np.bool_]:
        """(F, V) whether each follicle has a detected hair at each visit."""
        return np.asarray(self.hair_index >= 0)

    @property
    def recovered(self) -> NDArray[np.bool_]:
        """(F, V) whether the image re-check found the follicle's shaft (no detection)."""
        if self.recheck is None:
            return np.zeros(self.hair_index.shape, dtype=bool)
        return np.asarray(self.recheck.recovered)

    @property
    def bare_skin(self) -> NDArray[np.bool_]:
        """(F, V) whether the re-check saw clear skin where the follicle has no hair."""
        if self.recheck is None:
            return np.zeros(self.hair_index.shape, dtype=bool)
        return np.asarray(self.recheck.bare_skin)

    @property
    def present(self) -> NDArray[np.bool_]:
        """(F, V) whether each follicle has a hair at each visit (detected or recovered)."""
        return np.asarray(self.detected | self.recovered)

    def follicle_ids(self, visit: int) -> dict[int, int]:
        """Map hair id → follicle id for the tracked hairs of visit index `visit`.

        Parameters
        ----------
        visit : int
            Visit index (0 = first visit).

        Returns
        -------
        dict of int to int
        """
        col = self.hair_index[:, visit]
        rows = np.flatnonzero(col >= 0)
        return {int(self.hairs[visit][int(col[f])].id): int(f) for f in rows}

    def _values(self) -> tuple[F64, F64]:
        n_f, n_v = self.hair_index.shape
        diam = np.full((n_f, n_v), np.nan)
        length = np.full((n_f, n_v), np.nan)
        for v in range(n_v):
            rows = np.flatnonzero(self.hair_index[:, v] >= 0)
            for f in rows:
                hair = self.hairs[v][int(self.hair_index[f, v])]
                diam[f, v] = hair.diameter_um
                length[f, v] = hair.length_um
        if self.recheck is not None:
            rec = self.recheck.recovered
            diam[rec] = self.recheck.diameter_um[rec]
            length[rec] = self.recheck.length_um[rec]
        return diam, length

    def to_table(self) -> pd.DataFrame:
        """Per-follicle trajectories as a tidy table, one row per follicle × visit.

        A row is given where the follicle has a hair or lies inside the visit's field
        (``in_field``); follicles outside a visit's field, and visits whose registration
        was refused, have no row there.

        Returns
        -------
        DataFrame
            ``follicle_id, visit_day, present, diameter_um`` (µm, NaN when absent or not
            measured), ``class`` ({'vellus', 'intermediate', 'terminal'} or None),
            ``length_um`` (µm), ``image``, ``hair_id`` (nullable Int64; null for a
            recovered shaft), ``in_field``, ``recovered`` (present through the image
            re-check: a clear shaft, no detected hair) and ``bare_skin`` (absent, and the
            re-check saw clear skin there).
        """
        diam, length = self._values()
        present = self.present
        detected = self.detected
        recovered = self.recovered
        bare = self.bare_skin
        rows: list[dict[str, Any]] = []
        for f in range(self.n_follicles):
            for v, day in enumerate(self.visit_days):
                if not (present[f, v] or self.in_field[f, v]):
                    continue
                hair = self.hairs[v][int(self.hair_index[f, v])] if detected[f, v] else None
                d = diam[f, v]
                rows.append({
                    "follicle_id": f,
                    "visit_day": day,
                    "present": bool(present[f, v]),
                    "diameter_um": d,
                    "class": self.classes.classify(d) if math.isfinite(d) else None,
                    "length_um": length[f, v],
                    "image": self.images[v],
                    "hair_id": None if hair is None else int(hair.id),
                    "in_field": bool(self.in_field[f, v]),
                    "recovered": bool(recovered[f, v]),
                    "bare_skin": bool(bare[f, v]),
                })  # fmt: skip
        table = pd.DataFrame(rows, columns=_TABLE_COLUMNS)
        table["hair_id"] = table["hair_id"].astype("Int64")
        for name in ("present", "in_field", "recovered", "bare_skin"):
            table[name] = table[name].astype(bool)
        return table

    def change_endpoints(self, baseline_day: int = 0) -> pd.DataFrame:
        """Per-site change from baseline by hair-to-hair matching, one row per later visit.

        Only follicles inside the fields of both visits count (``in_field``), so the
        numbers refer to the skin imaged at both visits.

        Parameters
        ----------
        baseline_day : int, days
            Visit day taken as baseline (must be one of `visit_days`).

        Returns
        -------
        DataFrame
            ``visit_day, baseline_day, registered`` (bool), ``count_baseline``,
            ``count_visit``, ``matched``, ``shed`` (hair at baseline, none at the visit),
            ``new`` (the reverse), ``count_change`` (= new − shed), ``count_change_pct``
            (% of the baseline count), ``recovered_baseline`` and ``recovered_visit``
            (hairs counted through the image re-check, included in the counts above),
            ``diameter_change_um`` (mean per-follicle change of matched hairs, µm; hairs
            *detected* at both visits, recovered shafts are counted but not measured
            here), ``diameter_change_{vellus,intermediate,terminal}_um`` (by
            baseline class), ``diameter_change_below_index_um`` and
            ``diameter_change_above_index_um`` (baseline diameter below / at least the
            terminal limit, 60 µm by default), ``to_terminal`` (vellus or intermediate at
            baseline, terminal at the visit), ``from_terminal`` (the reverse),
            ``terminal_change`` (= to_terminal − from_terminal).
        """
        if baseline_day not in self.visit_days:
            raise InputError(
                f"baseline_day: {baseline_day!r} is not one of the visit days {self.visit_days}"
            )
        b = self.visit_days.index(baseline_day)
        diam, _ = self._values()
        present = self.present
        detected = self.detected
        recovered = self.recovered
        limit = self.classes.terminal_min_um
        rows = []
        for v, day in enumerate(self.visit_days):
            if v == b:
                continue
            registered = self.registrations[v].ok and self.registrations[b].ok
            common = self.in_field[:, b] & self.in_field[:, v]
            pb, pv = present[:, b] & common, present[:, v] & common
            both = pb & pv
            # diameters from detected hairs only: a recovered shaft's fitted diameter comes
            # from a short stretch that may cross other hairs (docs/track.md)
            sized = both & detected[:, b] & detected[:, v]
            d0, d1 = diam[sized, b], diam[sized, v]
            delta = d1 - d0
            cls0 = np.array([self.classes.classify(x) for x in d0], dtype=object)
            term0, term1 = d0 >= limit, d1 >= limit
            n0 = int(pb.sum())
            row: dict[str, Any] = {
                "visit_day": day,
                "baseline_day": baseline_day,
                "registered": bool(registered),
                "count_baseline": n0,
                "count_visit": int(pv.sum()),
                "matched": int(both.sum()),
                "shed": int((pb & ~pv).sum()),
                "new": int((pv & ~pb).sum()),
            }
            row["count_change"] = row["count_visit"] - n0
            row["count_change_pct"] = 100.0 * row["count_change"] / n0 if n0 else math.nan
            row["recovered_baseline"] = int((pb & recovered[:, b]).sum())
            row["recovered_visit"] = int((pv & recovered[:, v]).sum())
            row["diameter_change_um"] = _mean(delta)
            for name in ("vellus", "intermediate", "terminal"):
                row[f"diameter_change_{name}_um"] = _mean(delta[cls0 == name])
            row["diameter_change_below_index_um"] = _mean(delta[~term0])
            row["diameter_change_above_index_um"] = _mean(delta[term0])
            row["to_terminal"] = int((~term0 & term1).sum())
            row["from_terminal"] = int((term0 & ~term1).sum())
            row["terminal_change"] = row["to_terminal"] - row["from_terminal"]
            rows.append(row)
        return pd.DataFrame(rows)

    def to_json(self, *, ndigits: int = 2) -> dict[str, Any]:
        """Return the ``hairtrial track`` JSON document.

        Parameters
        ----------
        ndigits : int
            Decimal places for pixel coordinates.

        Returns
        -------
        dict
            ``{"images": [{"image", "visit_day", "matrix" (2×3, to the first image),
            "score", "ok", "reason", "inliers", "residual_px"}], "follicles":
            [{"follicle_id", "observations": [{"image", "hair_id", "exit_px"}]}],
            "config_hash", "recheck"}``. A hair whose ends the tracking found swapped
            (``TrackConfig.swapped_ends``) has ``"ends_swapped": true`` and its tip as
            ``exit_px``. An observation recovered by the image re-check
            has ``hair_id`` null, ``"recovered": true`` and its fitted ``diameter_um``
            (µm, null when not measured). ``recheck`` is null when the re-check did not
            run, else ``{"recovered": n, "seconds", "bare_skin": [{"follicle_id",
            "image"}]}`` listing follicles detected at one visit only whose location
            shows clear skin at another visit (reported, not removed).
        """
        images = []
        for name, day, reg in zip(self.images, self.visit_days, self.registrations, strict=True):
            info = reg.to_json()
            images.append({
                "image": name, "visit_day": day, "matrix": info["matrix"],
                "score": info["score"], "ok": info["ok"], "reason": info["reason"],
                "inliers": info["inliers"], "residual_px": info["residual_px"],
            })  # fmt: skip
        follicles = []
        rec = self.recheck
        for f in range(self.n_follicles):
            obs: list[dict[str, Any]] = []
            for v in range(len(self.visit_days)):
                k = int(self.hair_index[f, v])
                if k < 0:
                    if rec is not None and rec.recovered[f, v]:
                        x, y = (float(c) for c in rec.exit_px[f, v])
                        d = float(rec.diameter_um[f, v])
                        obs.append({
                            "image": self.images[v], "hair_id": None,
                            "exit_px": [round(x, ndigits), round(y, ndigits)],
                            "recovered": True,
                            "diameter_um": round(d, 2) if math.isfinite(d) else None,
                        })  # fmt: skip
                    continue
                hair = self.hairs[v][k]
                assert hair.exit_px is not None  # only hairs with an exit are tracked
                swapped = self.ends_swapped is not None and bool(self.ends_swapped[f, v])
                exit_px = hair.tip_px if swapped else hair.exit_px
                obs.append({
                    "image": self.images[v],
                    "hair_id": int(hair.id),
                    "exit_px": [round(float(exit_px[0]), ndigits),
                                round(float(exit_px[1]), ndigits)],
                    **({"ends_swapped": True} if swapped else {}),
                })  # fmt: skip
            follicles.append({"follicle_id": f, "observations": obs})
        recheck: dict[str, Any] | None = None
        if rec is not None:
            single = np.flatnonzero(self.detected.sum(axis=1) == 1)
            bare = [
                {"follicle_id": int(f), "image": self.images[int(v)]}
                for f in single
                for v in np.flatnonzero(rec.bare_skin[f])
            ]
            recheck = {
                "recovered": int(rec.recovered.sum()),
                "seconds": round(rec.seconds, 3),
                "bare_skin": bare,
            }
        return {
            "images": images,
            "follicles": follicles,
            "config_hash": self.config_hash,
            "recheck": recheck,
        }


def _mean(values: F64) -> float:
    return float(np.mean(values)) if len(values) else math.nan


def _check_days(visit_days: Any, n: int) -> tuple[int, ...]:
    if isinstance(visit_days, str | bytes) or not isinstance(visit_days, Sequence):
        raise InputError("visit_days: expected one day per visit")
    if len(visit_days) != n:
        raise InputError(f"visit_days: expected {n} days (one per visit), got {len(visit_days)}")
    days = []
    for d in visit_days:
        if isinstance(d, bool) or not isinstance(d, int | np.integer):
            raise InputError(f"visit_days: expected whole days, got {d!r}")
        days.append(int(d))
    if any(b <= a for a, b in itertools.pairwise(days)):
        raise InputError(f"visit_days: must be strictly increasing (visit order), got {days}")
    return tuple(days)


def _turn_history(
    turn: NDArray[np.bool_],
    pos_sum: F64,
    tip_sum: F64,
    index_cols: list[I64],
    swapped_cols: list[NDArray[np.bool_]],
) -> None:
    """Swap the exit and tip of every hair so far of the follicles `turn`, in place."""
    pos_sum[turn], tip_sum[turn] = tip_sum[turn].copy(), pos_sum[turn].copy()
    for follicle, sw in zip(index_cols, swapped_cols, strict=True):
        ok = follicle >= 0
        sw[ok] ^= turn[follicle[ok]]


def track_site(
    hairs_by_visit: Sequence[Sequence[HairRecord]],
    *,
    visit_days: Sequence[int],
    um_per_px: Sequence[float],
    images: Sequence[NDArray[Any]] | None = None,
    shapes: Sequence[tuple[int, int]] | None = None,
    image_names: Sequence[str] | None = None,
    config: TrackConfig | None = None,
    hidden_rows: Sequence[tuple[int, int]] | None = None,
) -> SiteTracks:
    """Track the follicles of one site across its visits.

    Parameters
    ----------
    hairs_by_visit : sequence of sequence of HairRecord
        Hairs of each visit's image in visit order (``hairtrial measure`` output, or
        simulator truth). Hairs without an exit point are not tracked.
    visit_days : sequence of int, days
        Day of each visit, strictly increasing.
    um_per_px : sequence of float, µm/px
        Calibration of each visit's image.
    images : sequence of ndarray, optional
        The images (field sizes, rows hidden by a status bar, image-feature registration
        fallback and the re-check of follicles with no detected hair,
        ``TrackConfig.recheck``); not modified.
    shapes : sequence of (H, W), optional
        Image sizes in px when the images are not given (else fields are the convex hulls
        of the exits).
    image_names : sequence of str, optional
        Names used in the table and JSON (default ``visit0``, ``visit1``, ...).
    config : TrackConfig, optional
        Parameters.
    hidden_rows : sequence of (int, int), optional
        Rows (px) a burned-in status bar hides across the whole width at the top and the
        bottom of each visit's image (``ImageMeasurement.hidden_rows``). They are not
        part of that visit's field: a follicle there is neither present nor absent.
        Found from the images when they are given instead.

    Returns
    -------
    SiteTracks

    Raises
    ------
    InputError
        If the inputs do not give one entry per visit, days are not increasing, a
        calibration is missing, or a record is malformed.
    """
    cfg = resolve_config(config)
    points, cal, imgs, fields, hidden = _check_sequences(
        hairs_by_visit, um_per_px, images, shapes, hidden_rows
    )
    n = len(points)
    days = _check_days(visit_days, n)
    names = tuple(f"visit{k}" for k in range(n)) if image_names is None else tuple(image_names)
    if len(names) != n or not all(isinstance(s, str) for s in names):
        raise InputError(f"image_names: expected {n} strings (one per visit)")
    regs = register_visits(hairs_by_visit, um_per_px=cal, images=images, shapes=shapes,
                           config=cfg, hidden_rows=hidden)  # fmt: skip
    um0 = cal[0]
    pos_sum = np.zeros((0, 2))
    tip_sum = np.zeros((0, 2))
    n_obs = np.zeros(0)
    last = Cues(np.zeros((0, 2)), np.zeros(0), np.zeros(0), np.zeros(0))
    index_cols: list[I64] = []  # per visit: follicle id of each counted hair
    swapped_cols: list[NDArray[np.bool_]] = []  # per visit: hair seen with its ends swapped
    visit_tips = [tips_px(h, p.index) for h, p in zip(hairs_by_visit, points, strict=True)]
    for v in range(n):
        pts = points[v]
        swapped = np.zeros(len(pts), dtype=bool)
        if not regs[v].ok:
            index_cols.append(np.full(len(pts), -1, dtype=np.int64))
            swapped_cols.append(swapped)
            continue
        cues = cues_of(pts, regs[v].matrix, um0, cfg)
        tips = apply(regs[v].matrix, visit_tips[v]) * um0
        follicle = np.full(len(pts), -1, dtype=np.int64)
        if len(last):
            mean = Cues(pos_sum / n_obs[:, None], last.direction, last.diameter_um,
                        last.unit_size)  # fmt: skip
            ia, ib, _ = assign(mean, cues, cfg)
            follicle[ib] = ia
            if cfg.swapped_ends:
                tip_mean = tip_sum / n_obs[:, None]
                flip_f = link_swapped(follicle, swapped, cues, tips, mean, tip_mean, cfg)
                if flip_f:  # those follicles' earlier hairs had their ends swapped
                    turn = np.zeros(len(n_obs), dtype=bool)
                    turn[flip_f] = True
                    _turn_history(turn, pos_sum, tip_sum, index_cols, swapped_cols)
        fresh = np.flatnonzero(follicle < 0)
        follicle[fresh] = len(n_obs) + np.arange(len(fresh))
        grow = len(fresh)
        pos_sum = np.vstack([pos_sum, np.zeros((grow, 2))])
        tip_sum = np.vstack([tip_sum, np.zeros((grow, 2))])
        n_obs = np.concatenate([n_obs, np.zeros(grow)])
        last = Cues(
            np.vstack([last.xy_um, np.zeros((grow, 2))]),
            np.concatenate([last.direction, np.full(grow, np.nan)]),
            np.concatenate([last.diameter_um, np.zeros(grow)]),
            np.concatenate([last.unit_size, np.zeros(grow)]),
        )
        exit_um = np.where(swapped[:, None], tips, cues.xy_um)
        pos_sum[follicle] += exit_um
        tip_sum[follicle] += np.where(swapped[:, None], cues.xy_um, tips)
        n_obs[follicle] += 1
        last.direction[follicle] = np.where(swapped, cues.direction + math.pi, cues.direction)
        last.diameter_um[follicle] = cues.diameter_um
        last.unit_size[follicle] = cues.unit_size
        index_cols.append(follicle)
        swapped_cols.append(swapped)
    n_f = len(n_obs)
    if cfg.swapped_ends and n_f:
        # a follicle's exit is the end most of its hairs agree on
        votes = np.zeros(n_f)
        for follicle, sw in zip(index_cols, swapped_cols, strict=True):
            ok = follicle >= 0
            np.add.at(votes, follicle[ok], np.where(sw[ok], 1.0, -1.0))
        _turn_history(votes > 0, pos_sum, tip_sum, index_cols, swapped_cols)
    hair_index = np.full((n_f, n), -1, dtype=np.int64)
    ends_swapped = np.zeros((n_f, n), dtype=bool)
    for v, (follicle, sw) in enumerate(zip(index_cols, swapped_cols, strict=True)):
        ok = follicle >= 0
        hair_index[follicle[ok], v] = points[v].index[ok]
        ends_swapped[follicle[ok], v] = sw[ok]
    position = pos_sum / np.maximum(n_obs, 1)[:, None] / um0
    tracks = SiteTracks(
        visit_days=days, images=names, um_per_px=tuple(cal), registrations=regs,
        hairs=tuple(tuple(h) for h in hairs_by_visit), hair_index=hair_index,
        position_px=position, in_field=np.zeros((n_f, n), dtype=bool), classes=cfg.classes,
        config_hash=cfg.config_hash(), fields=tuple(fields), field_margin_um=cfg.field_margin_um,
        ends_swapped=ends_swapped,
    )  # fmt: skip
    in_field = np.column_stack([tracks.in_fields(position, [v]) for v in range(n)])
    in_field = in_field.reshape(n_f, n)
    recheck = None
    if imgs is not None and cfg.recheck:
        from hairtrial.track._recheck import recheck_site

        # a hair seen with its ends swapped is projected from its real exit
        fixed = []
        for pts, sw, tip in zip(points, swapped_cols, visit_tips, strict=True):
            turned = np.where(sw, pts.direction + math.pi, pts.direction)
            fixed.append(replace(pts, xy=np.where(sw[:, None], tip, pts.xy), direction=turned))
        recheck = recheck_site(
            hair_index=hair_index, points=fixed, hairs=tracks.hairs, registrations=regs,
            in_field=in_field, images=imgs, um_per_px=cal, config=cfg,
        )  # fmt: skip
    return replace(tracks, in_field=in_field, recheck=recheck)
