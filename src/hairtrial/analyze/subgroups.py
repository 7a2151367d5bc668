"""Subgroups by baseline shaft diameter: is the gain larger in miniaturised hair.

Two levels, both split at the miniaturisation index (``config.index_um``, 60 µm):

Follicle level (from tracking, ``follicle_trajectories``)
    Each tracked follicle's shaft diameter at its site's baseline visit puts it in the
    "< 60 µm" or "≥ 60 µm" subgroup; its diameter change is taken at each later visit
    where it is present at both. This follows the same follicles over time.

Hair level (no identity: ``hairs`` or, without it, the visible follicles of each image)
    Hairs cannot be followed, and classifying each visit's hairs by their own diameter
    would move a thin hair that thickened past 60 µm into the other group (regression
    to the mean makes both groups look changed). So the bands are set by the baseline
    share instead: if a share :math:`q_0` of the site's hairs was below the index at
    baseline, the "< 60 µm" band at every visit is the thinnest :math:`q_0` of that
    image's hairs, and the "≥ 60 µm" band the rest (quantile bands). The band's mean
    diameter change from baseline is the hair-level outcome.

Inference is on subject-level summaries: within each subject, site and visit the follicle
(or band) changes are averaged, the treated-minus-control difference is taken within the
subject, and the differences are tested across subjects with a one-sample t-test
(``estimate``, ``1 - alpha`` CI, ``p``). The interaction (treatment effect below the index
minus the effect above it) is tested the same way on each subject's difference of
differences. Sides are randomised within subject and follicles of one site are correlated,
so the subject is the unit of inference; collapsing to it gives exact t-based inference
without modelling the within-site correlation (cluster-robust standard errors would be
anti-conservative with the few subjects of a split-site trial).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from hairtrial._validate import InputError
from hairtrial.analyze.config import AnalysisConfig, resolve_arms
from hairtrial.analyze.paired import paired_summary
from hairtrial.analyze.tables import require_columns

EFFECT_COLUMNS: tuple[str, ...] = (
    "level", "subgroup", "visit_day", "n", "estimate", "ci_low", "ci_high", "p",
    "n_units", "treated_change", "control_change",
)  # fmt: skip
INTERACTION_COLUMNS: tuple[str, ...] = (
    "level", "visit_day", "p_interaction", "estimate", "ci_low", "ci_high", "n",
)  # fmt: skip


@dataclass(frozen=True)
class SubgroupResult:
    """Treatment effect on shaft diameter by baseline diameter subgroup.

    Parameters
    ----------
    effects : DataFrame
        ``level`` ({'follicle', 'hair'}), ``subgroup`` (``"< 60 µm"``, ``"≥ 60 µm"``),
        ``visit_day``, ``n`` (subjects with both sides), ``estimate`` (treated minus
        control mean diameter change from baseline, µm), ``ci_low, ci_high, p``,
        ``n_units`` (follicles or hairs behind it), ``treated_change, control_change``
        (mean change of each side, µm).
    interaction : DataFrame
        ``level, visit_day, p_interaction, estimate, ci_low, ci_high, n``: the effect
        below the index minus the effect above it (µm), tested across subjects.
    index_um : float, µm
        The threshold used.
    notes : tuple of str
        What was left out and why.
    """

    effects: pd.DataFrame = field(compare=False)
    interaction: pd.DataFrame = field(compare=False)
    index_um: float = 60.0
    notes: tuple[str, ...] = ()


def subgroup_labels(index_um: float) -> tuple[str, str]:
    """Return the labels of the subgroups below and at/above `index_um`."""
    return f"< {index_um:g} µm", f"≥ {index_um:g} µm"


def _present(frame: pd.DataFrame) -> np.ndarray:
    d = pd.to_numeric(frame["diameter_um"], errors="coerce").to_numpy(dtype=float)
    ok = np.isfinite(d) & (d > 0)
    for flag in ("present", "has_shaft"):
        if flag in frame.columns:
            ok &= frame[flag].fillna(False).astype(bool).to_numpy()
            break
    return ok


def _latest_version(frame: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """Keep one tracking version per site (the latest), so no follicle counts twice."""
    keys = [c for c in ("package_version", "config_hash") if c in frame.columns]
    if not keys:
        return frame
    versions = frame[["site", *keys]].astype(str).drop_duplicates()
    if len(versions) == versions["site"].nunique():
        return frame
    latest = versions.sort_values(["site", *keys]).groupby("site").tail(1)
    tag = frame[["site", *keys]].astype(str).apply(tuple, axis=1)
    keep = set(latest.apply(tuple, axis=1))
    notes.append("follicles: several tracking versions of a site; the latest was used")
    return frame[tag.isin(keep).to_numpy()]


def _follicle_changes(
    follicles: pd.DataFrame, config: AnalysisConfig, notes: list[str]
) -> pd.DataFrame:
    frame = _latest_version(follicles, notes)
    frame = frame.assign(
        visit_day=pd.to_numeric(frame["visit_day"]).round().astype(int),
        diameter_um=pd.to_numeric(frame["diameter_um"], errors="coerce").astype(float),
    )[_present(frame)]
    keys = ["site", "follicle_id"]
    at_base = frame[frame["visit_day"] == config.baseline_day]
    base = at_base.groupby(keys)["diameter_um"].mean().rename("baseline_um")
    after = frame[frame["visit_day"] != config.baseline_day]
    later = after.groupby([*keys, "subject", "arm", "visit_day"])["diameter_um"].mean()
    out = later.reset_index().join(base, on=keys, how="inner")
    out["change"] = out["diameter_um"] - out["baseline_um"]
    out["below"] = out["baseline_um"] < config.index_um
    return out[["subject", "site", "arm", "visit_day", "below", "change"]]


def _hair_bands(hairs: pd.DataFrame, config: AnalysisConfig) -> pd.DataFrame:
    """Quantile bands: per site × visit the thinnest baseline share, and the rest."""
    rows: list[dict[str, Any]] = []
    for (subject, site, arm), site_hairs in hairs.groupby(["subject", "site", "arm"], sort=True):
        by_day = {
            int(str(day)): np.sort(g["diameter_um"].to_numpy(dtype=float))
            for day, g in site_hairs.groupby("visit_day")
        }
        base = by_day.get(config.baseline_day)
        if base is None or len(base) == 0:
            continue
        share = float(np.mean(base < config.index_um))
        means: dict[int, tuple[float, float, int, int]] = {}
        for day, d in by_day.items():
            k = round(share * len(d))
            low = float(d[:k].mean()) if k > 0 else math.nan
            high = float(d[k:].mean()) if k < len(d) else math.nan
            means[day] = (low, high, k, len(d) - k)
        b_low, b_high = means[config.baseline_day][:2]
        for day, (low, high, n_low, n_high) in means.items():
            if day == config.baseline_day:
                continue
            common = {"subject": subject, "site": site, "arm": arm, "visit_day": day}
            rows.append({**common, "below": True, "change": low - b_low, "units": n_low})
            rows.append({**common, "below": False, "change": high - b_high, "units": n_high})
    return pd.DataFrame(
        rows, columns=["subject", "site", "arm", "visit_day", "below", "change", "units"]
    )


def _subject_means(changes: pd.DataFrame, config: AnalysisConfig) -> pd.DataFrame:
    """Per subject × visit × subgroup: mean change on each side and the unit counts."""
    data = changes[np.isfinite(changes["change"].to_numpy(dtype=float))]
    if "units" not in data.columns:
        data = data.assign(units=1)
    side = data.groupby(["subject", "visit_day", "below", "arm"]).agg(
        change=("change", "mean"), units=("units", "sum")
    )
    wide = side.unstack("arm")
    out = pd.DataFrame(index=wide.index)
    for name, arm in (("treated", config.treated_arm), ("control", config.control_arm)):
        out[name] = wide["change"][arm] if arm in wide["change"].columns else math.nan
        out[f"{name}_units"] = wide["units"][arm] if arm in wide["units"].columns else 0
    out = out.dropna(subset=["treated", "control"])
    out["diff"] = out["treated"] - out["control"]
    return out.reset_index()


def _effects(
    level: str, means: pd.DataFrame, config: AnalysisConfig
) -> tuple[list[dict], list[dict]]:
    labels = subgroup_labels(config.index_um)
    effects: list[dict[str, Any]] = []
    interactions: list[dict[str, Any]] = []
    for day in sorted(int(d) for d in means["visit_day"].unique()):
        at = means[means["visit_day"] == day]
        for below, label in ((True, labels[0]), (False, labels[1])):
            part = at[at["below"] == below]
            s = paired_summary(part["diff"], alpha=config.alpha)
            effects.append(
                {
                    "level": level, "subgroup": label, "visit_day": day, "n": int(s["n"]),
                    "estimate": s["mean_diff"], "ci_low": s["ci_low"], "ci_high": s["ci_high"],
                    "p": s["p_t"],
                    "n_units": int(part["treated_units"].sum() + part["control_units"].sum()),
                    "treated_change": float(part["treated"].mean()) if len(part) else math.nan,
                    "control_change": float(part["control"].mean()) if len(part) else math.nan,
                }
            )  # fmt: skip
        wide = at.pivot_table(index="subject", columns="below", values="diff")
        if True in wide.columns and False in wide.columns:
            dd = (wide[True] - wide[False]).dropna()
        else:
            dd = pd.Series([], dtype=float)
        s = paired_summary(dd, alpha=config.alpha)
        interactions.append(
            {
                "level": level, "visit_day": day, "p_interaction": s["p_t"],
                "estimate": s["mean_diff"], "ci_low": s["ci_low"], "ci_high": s["ci_high"],
                "n": int(s["n"]),
            }
        )  # fmt: skip
    return effects, interactions


def subgroup_effects(
    follicles: pd.DataFrame | None,
    *,
    config: AnalysisConfig | None = None,
    hairs: pd.DataFrame | None = None,
    image_ids: Any = None,
) -> SubgroupResult:
    """Treated-minus-control diameter change below and above the index, with interaction.

    Parameters
    ----------
    follicles : DataFrame or None
        ``follicle_trajectories`` (``subject, site, arm, visit_day, follicle_id,
        diameter_um`` and ``present``) or the simulator's follicle truth (``has_shaft``
        instead of ``present``). Gives the follicle level, and the hair level when
        `hairs` is not given.
    config : AnalysisConfig, optional
        ``index_um``, arms, baseline day, ``alpha``.
    hairs : DataFrame, optional
        Per-hair table (``subject, site, arm, visit_day, diameter_um``; ``counted`` and
        ``image_id`` used when present) for the hair level.
    image_ids : collection of int, optional
        Only hairs of these images (e.g. those of the analysed image kind).

    Returns
    -------
    SubgroupResult
        See the module docstring for the definitions.

    Raises
    ------
    InputError
        When both tables are missing, or for a missing column.
    """
    config = config or AnalysisConfig()
    if follicles is None and hairs is None:
        raise InputError("subgroup_effects: give follicle trajectories, hairs, or both")
    notes: list[str] = []
    effects: list[dict[str, Any]] = []
    interactions: list[dict[str, Any]] = []
    keys = ("subject", "site", "arm", "visit_day", "diameter_um")
    hair_source: pd.DataFrame | None = None
    if follicles is not None:
        require_columns(follicles, (*keys, "follicle_id"), name="follicle_trajectories")
        config, note = resolve_arms(follicles["arm"].unique(), config)
        notes.extend([note] if note else [])
        changes = _follicle_changes(follicles, config, notes)
        e, i = _effects("follicle", _subject_means(changes, config), config)
        effects += e
        interactions += i
        present = follicles[_present(follicles)]
        hair_source = present.assign(
            visit_day=pd.to_numeric(present["visit_day"]).round().astype(int)
        )
    if hairs is not None:
        require_columns(hairs, keys, name="hairs")
        config, note = resolve_arms(hairs["arm"].unique(), config)
        notes.extend([note] if note and note not in notes else [])
        chosen = hairs
        if "counted" in chosen.columns:
            chosen = chosen[chosen["counted"].fillna(False).astype(bool)]
        if image_ids is not None and "image_id" in chosen.columns:
            chosen = chosen[chosen["image_id"].isin(list(image_ids))]
        d = pd.to_numeric(chosen["diameter_um"], errors="coerce")
        hair_source = chosen[np.isfinite(d.to_numpy(dtype=float))].assign(
            diameter_um=d, visit_day=pd.to_numeric(chosen["visit_day"]).round().astype(int)
        )
    elif follicles is not None:
        notes.append("hair level: from the visible follicles of each image (no hairs table)")
    if hair_source is not None:
        bands = _hair_bands(hair_source.astype({"subject": str, "site": str, "arm": str}), config)
        e, i = _effects("hair", _subject_means(bands, config), config)
        effects += e
        interactions += i
    return SubgroupResult(
        effects=pd.DataFrame(effects, columns=list(EFFECT_COLUMNS)),
        interaction=pd.DataFrame(interactions, columns=list(INTERACTION_COLUMNS)),
        index_um=float(config.index_um),
        notes=tuple(notes),
    )
