"""Responders and the baseline predictors of response (ROC, AUC, Youden cut-off).

A subject responds when the treated-minus-control change from baseline of
``config.responder_endpoint`` at ``config.responder_day`` (the first post-baseline visit
by default) is greater than ``config.responder_min_change``. Each baseline predictor is
taken at the treated site (the site that received the cells), plus the subject's age and
severity rank when a subjects table is given.

For each predictor the ROC curve, its area (AUC, the probability that a random responder
scores beyond a random non-responder, ties counting one half — the Mann–Whitney
identity), a percentile bootstrap CI of the AUC (resampling subjects) and the Youden
cut-off (maximising sensitivity + specificity − 1) are reported. The direction is fixed in
advance where the biology says which way it goes (thinner hair and a larger share below
the index predict more diameter recovery: ``lower`` and ``higher``); for the others it is
chosen from the data (``auto``) and the AUC is then ≥ 0.5 by construction, which is
optimistic and flagged in the ``direction`` column.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from hairtrial._validate import InputError
from hairtrial.analyze.config import AnalysisConfig, resolve_arms
from hairtrial.analyze.paired import paired_differences
from hairtrial.analyze.tables import SITE_KEYS, require_columns

#: Baseline predictors from the site table and their pre-specified direction.
PREDICTOR_DIRECTIONS: dict[str, str] = {
    "mean_diameter_um": "lower",
    "fraction_below_index": "higher",
    "density_per_cm2": "auto",
    "age": "auto",
    "severity_rank": "auto",
}
ROC_COLUMNS: tuple[str, ...] = (
    "predictor", "n", "auc", "auc_ci_low", "auc_ci_high", "youden_cutoff", "sensitivity",
    "specificity", "direction", "n_responders",
)  # fmt: skip
_ROMAN = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5, "VI": 6, "VII": 7, "VIII": 8}


@dataclass(frozen=True)
class ResponderResult:
    """Who responded, and how well each baseline predictor foretells it.

    Parameters
    ----------
    responders : DataFrame
        One row per subject: ``subject, change`` (treated-minus-control change of the
        responder endpoint), ``responder`` (bool) and the baseline predictors
        ``mean_diameter_um, fraction_below_index, density_per_cm2`` [+ ``age``,
        ``severity_rank``].
    roc : DataFrame
        ``predictor, n, auc, auc_ci_low, auc_ci_high, youden_cutoff, sensitivity,
        specificity, direction, n_responders``. ``direction`` ``lower`` means "a value at
        or below the cut-off predicts response", ``higher`` the reverse; ``(auto)`` marks
        a direction chosen from the data.
    curves : dict of str to DataFrame
        Per predictor the ROC curve ``fpr, tpr, threshold`` (from (0, 0) to (1, 1)).
    definition : str
        The responder definition in words.
    notes : tuple of str
        Predictors left out and why.
    """

    responders: pd.DataFrame = field(compare=False)
    roc: pd.DataFrame = field(compare=False)
    curves: dict[str, pd.DataFrame] = field(compare=False)
    definition: str = ""
    notes: tuple[str, ...] = ()


def severity_rank(label: Any) -> float:
    """Rank of a severity label: ``healthy`` 0, ``HN-V`` 5, ``Ludwig-II`` 2 (else NaN)."""
    text = str(label).strip()
    if text.lower() in {"healthy", "none", "normal"}:
        return 0.0
    match = re.search(r"([IVX]+|\d+)[a-zA-Z]?$", text.split("-")[-1])
    if match is None:
        return math.nan
    token = match.group(1)
    return float(token) if token.isdigit() else float(_ROMAN.get(token, math.nan))


def roc_curve(scores: Any, labels: Any) -> pd.DataFrame:
    """ROC curve of "score ≥ threshold predicts positive".

    Parameters
    ----------
    scores : (n,) array_like of float
        Predictor values (higher = more likely positive).
    labels : (n,) array_like of bool
        True for positives.

    Returns
    -------
    DataFrame
        ``fpr, tpr, threshold``: one row per distinct score, from ``threshold=+inf``
        (nothing positive) down to the smallest score (everything positive).
    """
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    thresholds = np.concatenate([[np.inf], np.unique(s)[::-1]])
    tpr = np.array([(s[y] >= t).sum() for t in thresholds], dtype=float) / max(n_pos, 1)
    fpr = np.array([(s[~y] >= t).sum() for t in thresholds], dtype=float) / max(n_neg, 1)
    return pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": thresholds})


def auc_trapezoid(curve: pd.DataFrame) -> float:
    """Area under an ROC curve by the trapezoid rule."""
    x = curve["fpr"].to_numpy(dtype=float)
    y = curve["tpr"].to_numpy(dtype=float)
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))


def youden(curve: pd.DataFrame) -> tuple[float, float, float]:
    """Youden cut-off of an ROC curve: ``(threshold, sensitivity, specificity)``.

    The first (highest) threshold with the largest ``tpr - fpr`` wins ties, i.e. the
    most specific of the equally good cut-offs.
    """
    j = curve["tpr"].to_numpy() - curve["fpr"].to_numpy()
    best = int(np.flatnonzero(j >= j.max() - 1e-12)[0])  # ties up to rounding: first wins
    row = curve.iloc[best]
    return float(row["threshold"]), float(row["tpr"]), float(1.0 - row["fpr"])


def _bootstrap_auc(s: np.ndarray, y: np.ndarray, *, draws: int, seed: int) -> np.ndarray:
    """AUCs of `draws` bootstrap resamples of the subjects (vectorised pair counts)."""
    rng = np.random.default_rng(seed)
    n = len(s)
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=draws).astype(float)
    pairs = (s[:, None] > s[None, :]) + 0.5 * (s[:, None] == s[None, :])
    pos = weights * y
    neg = weights * ~y
    num = np.einsum("bi,ij,bj->b", pos, pairs, neg)
    den = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = np.where(den > 0, num / den, np.nan)
    return auc[np.isfinite(auc)]


def _roc_row(
    name: str, x: np.ndarray, y: np.ndarray, direction: str, config: AnalysisConfig, index: int
) -> tuple[dict[str, Any], pd.DataFrame | None]:
    ok = np.isfinite(x)
    x, y = x[ok], y[ok]
    row: dict[str, Any] = dict.fromkeys(ROC_COLUMNS, math.nan)
    row.update(predictor=name, n=len(x), direction=direction, n_responders=int(y.sum()))
    if y.all() or not y.any():
        return row, None
    chosen = direction
    if direction == "auto":
        up = auc_trapezoid(roc_curve(x, y))
        chosen = "higher" if up >= 0.5 else "lower"
    sign = 1.0 if chosen == "higher" else -1.0
    curve = roc_curve(sign * x, y)
    curve["threshold"] = sign * curve["threshold"]
    auc = auc_trapezoid(curve)
    cut, sens, spec = youden(curve)
    row.update(auc=auc, youden_cutoff=cut, sensitivity=sens, specificity=spec,
               direction=chosen + (" (auto)" if direction == "auto" else ""))  # fmt: skip
    if config.bootstrap > 0:
        boots = _bootstrap_auc(sign * x, y, draws=config.bootstrap, seed=config.seed + index)
        if direction == "auto":  # the direction is re-chosen in each resample, like above
            boots = np.maximum(boots, 1.0 - boots)
        if len(boots):
            lo, hi = np.quantile(boots, [config.alpha / 2, 1 - config.alpha / 2])
            row.update(auc_ci_low=float(lo), auc_ci_high=float(hi))
    return row, curve


def responder_analysis(
    table: pd.DataFrame,
    *,
    config: AnalysisConfig | None = None,
    subjects: pd.DataFrame | None = None,
) -> ResponderResult:
    """Classify subjects as responders and score the baseline predictors by ROC.

    Parameters
    ----------
    table : DataFrame
        Site × visit table (``subject, site, arm, visit_day``, the responder endpoint and
        its ``_change``, and the predictor columns at baseline).
    config : AnalysisConfig, optional
        Responder definition (``responder_endpoint``, ``responder_day``,
        ``responder_min_change``), ``bootstrap``, ``seed``, ``alpha``.
    subjects : DataFrame, optional
        ``subject`` plus ``age`` and/or ``severity``; without it age and severity are
        "not available" and left out.

    Returns
    -------
    ResponderResult

    Raises
    ------
    InputError
        For missing columns, or when there is no post-baseline visit to define response.
    """
    config = config or AnalysisConfig()
    endpoint = config.responder_endpoint
    predictors = ["mean_diameter_um", "fraction_below_index", "density_per_cm2"]
    require_columns(table, (*SITE_KEYS, endpoint, f"{endpoint}_change"), name="site_visits")
    config, _ = resolve_arms(table["arm"].unique(), config)
    notes: list[str] = []
    days = sorted(int(d) for d in table["visit_day"].unique() if d != config.baseline_day)
    day = config.responder_day if config.responder_day is not None else (days[0] if days else None)
    if day is None or day not in days:
        raise InputError(
            f"responder_day: no post-baseline visit {day!r} in the data (visits: {days})"
        )
    pairs = paired_differences(table, column=f"{endpoint}_change", visit_day=day, config=config)
    out = pd.DataFrame({"subject": pairs.index.astype(str), "change": pairs["diff"].to_numpy()})
    out["responder"] = out["change"] > config.responder_min_change
    base = table[(table["visit_day"] == config.baseline_day) & (table["arm"] == config.treated_arm)]
    available = [p for p in predictors if p in base.columns]
    notes += [f"{p}: not in the site table" for p in predictors if p not in available]
    base = base.groupby("subject")[available].mean()
    out = out.join(base, on="subject")
    if subjects is not None:
        require_columns(subjects, ("subject",), name="subjects")
        info = subjects.assign(subject=subjects["subject"].astype(str)).set_index("subject")
        if "age" in info.columns:
            out["age"] = out["subject"].map(pd.to_numeric(info["age"], errors="coerce"))
            available.append("age")
        else:
            notes.append("age: not in the subjects table")
        if "severity" in info.columns:
            out["severity_rank"] = out["subject"].map(info["severity"].map(severity_rank))
            available.append("severity_rank")
        else:
            notes.append("severity: not in the subjects table")
    else:
        notes.append("age, severity: no subjects table, not available")
    rows: list[dict[str, Any]] = []
    curves: dict[str, pd.DataFrame] = {}
    y = out["responder"].to_numpy(dtype=bool)
    for index, name in enumerate(available):
        x = pd.to_numeric(out[name], errors="coerce").to_numpy(dtype=float)
        row, curve = _roc_row(name, x, y, PREDICTOR_DIRECTIONS.get(name, "auto"), config, index)
        rows.append(row)
        if curve is not None:
            curves[name] = curve
    if y.all() or not y.any():
        notes.append("every subject is in the same class: ROC not defined")
    definition = (
        f"responder: treated-minus-control change from baseline in {endpoint} at day {day} "
        f"greater than {config.responder_min_change:g}"
    )
    return ResponderResult(
        responders=out.reset_index(drop=True),
        roc=pd.DataFrame(rows, columns=list(ROC_COLUMNS)),
        curves=curves,
        definition=definition,
        notes=tuple(notes),
    )
