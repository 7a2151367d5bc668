r"""Linear mixed model over all visits: ``endpoint ~ arm * C(visit_day)``.

The model
---------
For site :math:`s` of subject :math:`i` at visit :math:`v`,

.. math::

    y_{isv} = \mu_v + \delta_v [s \text{ treated}] + u_i + w_{is} + \varepsilon_{isv},
    \qquad u_i \sim N(0, \sigma_u^2),\; w_{is} \sim N(0, \sigma_w^2),\;
    \varepsilon \sim N(0, \sigma^2),

fitted by REML with ``statsmodels`` ``MixedLM`` on the endpoint's values (not changes):
``endpoint ~ C(arm, Treatment(control)) * C(visit_day)``, a random intercept per subject
and a variance component for the site within the subject.

Why this model
--------------
- The two sites of a subject share the person (genetics, hormones, compliance), so the
  random intercept per subject makes the comparison within subject, like the paired test.
- The same site is imaged at every visit; its own level (local severity, field placement)
  is the site variance component. It is identifiable only when sites are seen at several
  visits; otherwise (or when the fit fails) the model drops it and says so.
- Visits are categorical: the published course (a rise at month 1, a plateau to month 3 and
  a fade by months 7–9) is not linear in time, and no shape is imposed.
- Modelling the values, with the baseline as one of the visits, uses every observation and
  keeps subjects with missing visits: the likelihood is valid when visits are missing at
  random given the observed data, so nothing is imputed and nobody is dropped.
- The treatment effect at visit :math:`v`, :math:`\delta_v` (treated minus control), is a
  linear contrast of the fixed effects, tested with a Wald test
  (``MixedLMResults.t_test``, normal reference); at baseline it checks comparability.
  On balanced complete data it equals the difference of the arm means at that visit.

Fitting is guarded: warnings raised by the optimiser are recorded in ``notes``, a fit that
did not converge is retried with other optimisers and then without the site component,
and a result that still did not converge is returned with ``converged=False``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from hairtrial.analyze.config import ENDPOINT_LABELS, AnalysisConfig, resolve_arms
from hairtrial.analyze.tables import SITE_KEYS, require_columns

EFFECT_COLUMNS: tuple[str, ...] = ("visit_day", "estimate", "ci_low", "ci_high", "p")
_METHODS: tuple[str, ...] = ("lbfgs", "powell", "nm")


@dataclass(frozen=True)
class MixedModelResult:
    """A fitted mixed model and its per-visit treatment contrasts.

    Parameters
    ----------
    endpoint : str
        Modelled column.
    formula : str
        Fixed-effects formula.
    effects : DataFrame
        ``visit_day, estimate, ci_low, ci_high, p``: treated minus control at each visit
        (endpoint units), with its ``1 - alpha`` Wald interval and p-value.
    n_obs, n_subjects : int
        Observations and subjects used.
    converged : bool
        Whether the final fit converged without warnings.
    random_effects : str
        The random part that was fitted, in words.
    notes : tuple of str
        Warnings caught and fallbacks taken, in order.
    summary_text : str
        statsmodels' summary of the final fit.
    alpha : float
        Level of the intervals.
    method : str
        Optimiser of the final fit.
    """

    endpoint: str
    formula: str
    effects: pd.DataFrame = field(compare=False)
    n_obs: int
    n_subjects: int
    converged: bool
    random_effects: str
    notes: tuple[str, ...] = ()
    summary_text: str = ""
    alpha: float = 0.05
    method: str = ""

    def summary(self) -> str:
        """Return the model summary with the contrasts and any fitting notes."""
        lines = [
            f"Mixed model for {self.endpoint}: {self.formula}",
            f"random effects: {self.random_effects}; {self.n_obs} observations, "
            f"{self.n_subjects} subjects; converged: {self.converged}",
            "",
            self.summary_text,
            "",
            "treated minus control by visit:",
            self.effects.to_string(index=False),
        ]
        if self.notes:
            lines += ["", "notes:", *(f"  - {n}" for n in self.notes)]
        return "\n".join(lines)

    def methods_text(self) -> str:
        """Return a methods paragraph: the model, why, and how it was fitted."""
        label = ENDPOINT_LABELS.get(self.endpoint, (self.endpoint, ""))[0]
        text = (
            f"The {label} was analysed over all visits with a linear mixed model fitted by "
            f"restricted maximum likelihood (statsmodels MixedLM, {self.method or 'lbfgs'} "
            f"optimiser): fixed effects {self.formula.split('~', 1)[1].strip()} (arm, visit "
            "as a category, and their interaction) and {re}. The random intercept per "
            "subject makes the comparison within subject, as the two sites share the "
            "person; the site component accounts for repeated images of the same site. "
            "Visits are categorical because the response rises and fades without a "
            "prescribed shape. Values (not changes) were modelled with the baseline as a "
            "visit, so subjects with missing visits contribute what they have; missing "
            "visits were not imputed (valid if missing at random). The treated-minus-control "
            "difference at each visit is a linear contrast of the fixed effects with a "
            f"{100 * (1 - self.alpha):.0f} % Wald confidence interval; {self.n_obs} "
            f"observations from {self.n_subjects} subjects."
        ).replace("{re}", self.random_effects)
        if not self.converged:
            text += " The fit did not converge cleanly; its estimates are reported with caution."
        if self.notes:
            text += " Fitting notes: " + "; ".join(n.rstrip(".") for n in self.notes) + "."
        return text


def _formula(endpoint: str, control: str) -> str:
    return f"{endpoint} ~ C(arm, Treatment({control!r})) * C(visit_day)"


def _unfitted(
    endpoint: str,
    formula: str,
    effects: pd.DataFrame,
    n_obs: int,
    n_subjects: int,
    notes: list[str],
    config: AnalysisConfig,
) -> MixedModelResult:
    return MixedModelResult(
        endpoint=endpoint, formula=formula, effects=effects, n_obs=n_obs,
        n_subjects=n_subjects, converged=False, random_effects="none (not fitted)",
        notes=tuple(notes), alpha=config.alpha,
    )  # fmt: skip


def _site_identifiable(data: pd.DataFrame) -> bool:
    """Say whether a site component is identifiable (sites seen twice, 2 sites a subject)."""
    per_site = data.groupby("site").size()
    per_subject = data.groupby("subject")["site"].nunique()
    return bool((per_site > 1).sum() >= 2 and (per_subject > 1).any())


def _fit(
    data: pd.DataFrame, formula: str, *, with_site: bool, method: str
) -> tuple[Any, list[str], bool]:
    """Fit once; return the result, warning messages caught, and clean convergence."""
    import statsmodels.formula.api as smf

    kwargs: dict[str, Any] = {"groups": data["subject"], "re_formula": "1"}
    if with_site:
        kwargs["vc_formula"] = {"site": "0 + C(site)"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = smf.mixedlm(formula, data, **kwargs)
        result = model.fit(reml=True, method=method)
    messages = sorted({f"{type(w.message).__name__}: {w.message}" for w in caught})
    # A variance component estimated at zero ("MLE on the boundary") is a legitimate
    # REML answer, kept with a note; any other optimiser warning means a failed fit.
    ok = bool(getattr(result, "converged", False)) and not any(
        "boundary" not in m.lower() for m in messages
    )
    if not np.all(np.isfinite(np.asarray(result.fe_params, dtype=float))):
        ok = False
    return result, messages, ok


def _contrasts(result: Any, data: pd.DataFrame, days: list[int], config: AnalysisConfig) -> Any:
    """Rows of treated minus control design vectors, one per visit."""
    spec = result.model.data.model_spec  # patsy DesignInfo (or a formulaic ModelSpec)
    grid = pd.DataFrame(
        {
            "arm": [config.treated_arm] * len(days) + [config.control_arm] * len(days),
            "visit_day": days + days,
        }
    )
    grid[result.model.endog_names] = 0.0
    if hasattr(spec, "get_model_matrix"):
        x = pd.DataFrame(spec.get_model_matrix(grid))
    else:
        from patsy import build_design_matrices  # type: ignore[import-untyped]

        (x,) = build_design_matrices([spec], grid, return_type="dataframe")
    x = x[list(result.model.exog_names)]
    matrix = x.to_numpy(dtype=float)
    return matrix[: len(days)] - matrix[len(days) :]


def mixed_model(
    table: pd.DataFrame, *, endpoint: str, config: AnalysisConfig | None = None
) -> MixedModelResult:
    """Fit the mixed model of one endpoint over all visits (see the module docstring).

    Parameters
    ----------
    table : DataFrame
        Site × visit table (``subject, site, arm, visit_day`` and `endpoint`).
    endpoint : str
        Column to model (values, not changes).
    config : AnalysisConfig, optional
        Arms and ``alpha``.

    Returns
    -------
    MixedModelResult
        With ``converged=False`` and NaN effects when no fit succeeded (never raises on
        a numerical failure; the reasons are in ``notes``).
    """
    config = config or AnalysisConfig()
    require_columns(table, (*SITE_KEYS, endpoint), name="site_visits")
    config, arm_note = resolve_arms(table["arm"].unique(), config)
    data = table.loc[
        table["arm"].isin([config.treated_arm, config.control_arm]) & table[endpoint].notna(),
        [*SITE_KEYS, endpoint],
    ].copy()
    data[endpoint] = data[endpoint].astype(float)
    data["visit_day"] = data["visit_day"].astype(int)
    formula = _formula(endpoint, config.control_arm)
    days = sorted(int(d) for d in data["visit_day"].unique())
    notes: list[str] = [arm_note] if arm_note else []
    empty = pd.DataFrame({"visit_day": days, "estimate": math.nan, "ci_low": math.nan,
                          "ci_high": math.nan, "p": math.nan})  # fmt: skip
    n_subjects = int(data["subject"].nunique())
    if n_subjects < 2 or data["arm"].nunique() < 2:
        notes.append("too few subjects or arms to fit the model")
        return _unfitted(endpoint, formula, empty, len(data), n_subjects, notes, config)
    attempts = [(True, m) for m in _METHODS] if _site_identifiable(data) else []
    if not attempts:
        notes.append("site variance component not identifiable; subject intercept only")
    attempts += [(False, m) for m in _METHODS]
    best: tuple[Any, bool, str, bool] | None = None
    for with_site, method in attempts:
        label = f"{method}{' with site component' if with_site else ', subject intercept only'}"
        try:
            result, messages, ok = _fit(data, formula, with_site=with_site, method=method)
        except (np.linalg.LinAlgError, ValueError) as exc:
            notes.append(f"{label}: failed ({exc})")
            continue
        notes.extend(f"{label}: {message}" for message in messages)
        if best is None or ok:
            best = (result, with_site, method, ok)
        if ok:
            break
        notes.append(f"{label}: did not converge cleanly")
    if best is None:
        notes.append("every fit failed")
        return _unfitted(endpoint, formula, empty, len(data), n_subjects, notes, config)
    result, with_site, method, converged = best
    random_effects = (
        "a random intercept per subject and a variance component for the site within subject"
        if with_site
        else "a random intercept per subject"
    )
    matrix = _contrasts(result, data, days, config)
    test = result.t_test(matrix)
    ci = np.asarray(test.conf_int(alpha=config.alpha), dtype=float).reshape(len(days), 2)
    effects = pd.DataFrame(
        {
            "visit_day": days,
            "estimate": np.asarray(test.effect, dtype=float).ravel(),
            "ci_low": ci[:, 0],
            "ci_high": ci[:, 1],
            "p": np.asarray(test.pvalue, dtype=float).ravel(),
        }
    )
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")  # summary() re-warns about what notes already hold
        summary_text = str(result.summary(alpha=config.alpha))
    return MixedModelResult(
        endpoint=endpoint,
        formula=formula,
        effects=effects,
        n_obs=len(data),
        n_subjects=n_subjects,
        converged=converged,
        random_effects=random_effects,
        notes=tuple(notes),
        summary_text=summary_text,
        alpha=config.alpha,
        method=method,
    )
