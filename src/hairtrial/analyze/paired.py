r"""Treated against control site within subject, visit by visit.

For each endpoint and each post-baseline visit, the paired difference
:math:`d_i = \Delta_{treated,i} - \Delta_{control,i}` of the change from baseline is
tested with the paired t-test (mean difference, its ``1 - alpha`` confidence interval
:math:`\bar d \pm t_{n-1} s_d/\sqrt n`, effect size :math:`d_z = \bar d / s_d`) and the
Wilcoxon signed-rank test. The t-test p-values are Holm-adjusted across the visits of each
endpoint (the family is "any visit of this endpoint"), so claiming an effect at any visit
keeps the family-wise error at ``alpha``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from hairtrial.analyze.config import AnalysisConfig, resolve_arms
from hairtrial.analyze.tables import SITE_KEYS, require_columns

PAIRED_COLUMNS: tuple[str, ...] = (
    "endpoint", "visit_day", "n", "treated_mean", "control_mean", "mean_diff", "sd_diff",
    "ci_low", "ci_high", "t", "p_t", "wilcoxon_w", "p_wilcoxon", "effect_size_dz", "p_holm",
)  # fmt: skip


def holm(pvalues: Any) -> np.ndarray:
    """Holm step-down adjusted p-values (NaN entries are left out and stay NaN).

    The k-th smallest of m p-values becomes ``max_{j ≤ k} min(1, (m - j + 1) p_(j))``; the
    same as ``statsmodels.stats.multitest.multipletests(method="holm")`` (checked in the
    tests), written out because that function forces a garbage collection on every call,
    which dominates the power simulation.

    Parameters
    ----------
    pvalues : (K,) array_like of float
        Unadjusted p-values.

    Returns
    -------
    (K,) ndarray of float
        Adjusted p-values.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if len(ok):
        order = ok[np.argsort(p[ok], kind="stable")]
        m = len(order)
        scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
        out[order] = np.maximum.accumulate(scaled)
    return out


def paired_differences(
    table: pd.DataFrame, *, column: str, visit_day: int, config: AnalysisConfig
) -> pd.DataFrame:
    """Per subject, the treated and control values of `column` at one visit.

    Parameters
    ----------
    table : DataFrame
        Site × visit table (:func:`~hairtrial.analyze.tables.site_visit_table`).
    column : str
        Column to pair (e.g. ``terminal_fraction_change``).
    visit_day : int, days
        Visit.
    config : AnalysisConfig
        Arm labels.

    Returns
    -------
    DataFrame
        Indexed by subject: ``treated, control, diff``; subjects missing either side (or
        with NaN) are dropped. Several sites of one arm are averaged.
    """
    at = table[(table["visit_day"] == visit_day) & table[column].notna()]
    wide = at.pivot_table(index="subject", columns="arm", values=column, aggfunc="mean")
    if config.treated_arm not in wide.columns or config.control_arm not in wide.columns:
        return pd.DataFrame({"treated": [], "control": [], "diff": []}, dtype=float)
    out = pd.DataFrame(
        {"treated": wide[config.treated_arm], "control": wide[config.control_arm]}
    ).dropna()
    out["diff"] = out["treated"] - out["control"]
    return out.astype(float)


def paired_summary(diff: Any, *, alpha: float) -> dict[str, float]:
    """Paired t-test, Wilcoxon signed-rank test and effect size of differences `diff`.

    Parameters
    ----------
    diff : (n,) array_like of float
        Within-subject differences.
    alpha : float
        Two-sided level of the confidence interval.

    Returns
    -------
    dict
        ``n, mean_diff, sd_diff, ci_low, ci_high, t, p_t, wilcoxon_w, p_wilcoxon,
        effect_size_dz`` (NaN where undefined: fewer than 2 differences, or all equal).
        The Wilcoxon statistic is the smaller of the signed-rank sums (scipy's default);
        zero differences are dropped (Wilcoxon's original treatment); the p-value is exact
        for up to 50 differences without ties, else from the normal approximation with
        the tie correction (as R's ``wilcox.test``).
    """
    from scipy import stats

    d = np.asarray(diff, dtype=float)
    d = d[np.isfinite(d)]
    n = len(d)
    nan = math.nan
    out = dict(n=float(n), mean_diff=float(d.mean()) if n else nan, sd_diff=nan, ci_low=nan,
               ci_high=nan, t=nan, p_t=nan, wilcoxon_w=nan, p_wilcoxon=nan,
               effect_size_dz=nan)  # fmt: skip
    if n < 2:
        return out
    sd = float(d.std(ddof=1))
    out["sd_diff"] = sd
    half = float(stats.t.ppf(1 - alpha / 2, n - 1)) * sd / math.sqrt(n)
    out["ci_low"], out["ci_high"] = out["mean_diff"] - half, out["mean_diff"] + half
    if sd > 0:
        res = stats.ttest_1samp(d, 0.0)
        out["t"], out["p_t"] = float(res.statistic), float(res.pvalue)
        out["effect_size_dz"] = out["mean_diff"] / sd
    nonzero = d[d != 0]
    if len(nonzero) >= 1:
        # As R's wilcox.test: the exact null distribution without ties, else the normal
        # approximation with tie correction (scipy would run a slow permutation test).
        tied = len(np.unique(np.abs(nonzero))) < len(nonzero)
        method = "approx" if tied or len(nonzero) > 50 else "exact"
        w = stats.wilcoxon(nonzero, zero_method="wilcox", method=method)
        out["wilcoxon_w"], out["p_wilcoxon"] = float(w.statistic), float(w.pvalue)
    return out


def paired_tests(table: pd.DataFrame, *, config: AnalysisConfig | None = None) -> pd.DataFrame:
    """Treated minus control within subject on the change from baseline, at each visit.

    Parameters
    ----------
    table : DataFrame
        Site × visit table from :func:`~hairtrial.analyze.tables.site_visit_table`
        (``subject, site, arm, visit_day`` and ``<endpoint>_change`` columns).
    config : AnalysisConfig, optional
        Options: endpoints, arms, baseline day, ``alpha``.

    Returns
    -------
    DataFrame
        One row per endpoint × post-baseline visit: ``endpoint, visit_day, n,
        treated_mean, control_mean`` (mean change of each arm in the paired subjects),
        ``mean_diff, sd_diff, ci_low, ci_high`` (treated minus control, ``1 - alpha`` CI
        from the t distribution), ``t, p_t`` (paired t-test), ``wilcoxon_w, p_wilcoxon``
        (signed-rank test), ``effect_size_dz`` (mean / SD of the differences) and
        ``p_holm`` (t-test p Holm-adjusted across the visits of that endpoint).
    """
    config = config or AnalysisConfig()
    changes = [f"{e}_change" for e in config.endpoints]
    require_columns(table, (*SITE_KEYS, *changes), name="site_visits")
    config, _ = resolve_arms(table["arm"].unique(), config)
    days = sorted(int(d) for d in table["visit_day"].unique() if d != config.baseline_day)
    rows: list[dict[str, Any]] = []
    for endpoint in config.endpoints:
        block: list[dict[str, Any]] = []
        for day in days:
            pairs = paired_differences(
                table, column=f"{endpoint}_change", visit_day=day, config=config
            )
            stats_ = paired_summary(pairs["diff"], alpha=config.alpha)
            block.append(
                {
                    "endpoint": endpoint,
                    "visit_day": day,
                    "treated_mean": float(pairs["treated"].mean()) if len(pairs) else math.nan,
                    "control_mean": float(pairs["control"].mean()) if len(pairs) else math.nan,
                    **stats_,
                }
            )
        adjusted = holm([r["p_t"] for r in block])
        for row, p in zip(block, adjusted, strict=True):
            row["p_holm"] = float(p)
        rows.extend(block)
    out = pd.DataFrame(rows, columns=list(PAIRED_COLUMNS))
    out["n"] = out["n"].astype(int)
    out["visit_day"] = out["visit_day"].astype(int)
    return out
