"""Efficacy sections: baseline, time course, paired tests, subgroups, responders, ROC.

Each builder takes parts of a :class:`~hairtrial.analyze.TrialAnalysis` and the report's
:class:`~hairtrial.report.blinding.ArmCoding` and returns a
:class:`~hairtrial.report.model.Section`. Between-arm differences are shown as
``coding.difference`` (first coded arm minus second), see :mod:`hairtrial.report.blinding`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, cast

import numpy as np
import pandas as pd

from hairtrial.report import figures
from hairtrial.report.blinding import ArmCoding
from hairtrial.report.model import (
    Block,
    Figure,
    Section,
    Table,
    Text,
    fmt,
    fmt_ci,
    fmt_p,
    iter_rows,
)

log = logging.getLogger(__name__)

_DIGITS = {
    "terminal_fraction": 3,
    "fraction_below_index": 3,
    "anagen_fraction": 3,
    "mean_diameter_um": 1,
    "density_per_cm2": 1,
    "hair_count": 1,
    "cumulative_thickness_mm_per_cm2": 2,
}
_NOT_AVAILABLE = "Not available for this trial."


def endpoint_label(endpoint: str) -> tuple[str, str]:
    """Plain-language name and unit suffix of an endpoint (e.g. ``" µm"``)."""
    try:
        from hairtrial.analyze.config import ENDPOINT_LABELS
    except ImportError:  # pragma: no cover - the analysis package is part of hairtrial
        ENDPOINT_LABELS = {}
    name, unit = ENDPOINT_LABELS.get(endpoint, (endpoint.replace("_", " "), ""))
    return name, unit


def predictor_label(predictor: str) -> str:
    """Name of a baseline predictor of response, e.g. ``baseline mean shaft diameter``."""
    if predictor == "age":
        return "age"
    if predictor == "severity_rank":
        return "baseline severity (rank)"
    return "baseline " + endpoint_label(predictor)[0]


def _digits(endpoint: str) -> int:
    return _DIGITS.get(endpoint, 2)


def _ci_percent(config: Any) -> float:
    return round(100.0 * (1.0 - float(config.alpha)), 1)


def mean_ci(values: pd.Series, *, alpha: float) -> tuple[int, float, float, float]:
    """Mean with its t-based confidence interval.

    Parameters
    ----------
    values : Series
        Observations (missing values dropped).
    alpha : float
        Two-sided level; the interval is ``1 - alpha``.

    Returns
    -------
    n, mean, ci_low, ci_high : int, float, float, float
        NaN bounds with fewer than two observations.
    """
    from scipy import stats

    x = pd.to_numeric(values, errors="coerce").dropna().to_numpy(dtype=float)
    n = len(x)
    if n == 0:
        return 0, float("nan"), float("nan"), float("nan")
    mean = float(x.mean())
    if n < 2:
        return n, mean, float("nan"), float("nan")
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf(1 - alpha / 2, n - 1)) * sd / np.sqrt(n)
    return n, mean, mean - half, mean + half


def arm_means(
    site_visits: pd.DataFrame, *, endpoint: str, coding: ArmCoding, alpha: float
) -> pd.DataFrame:
    """Mean change from baseline per shown arm label and visit, with CIs.

    Parameters
    ----------
    site_visits : DataFrame
        ``arm, visit_day, <endpoint>_change``.
    endpoint : str
        Endpoint column.
    coding : ArmCoding
        Arm labels.
    alpha : float
        Two-sided level.

    Returns
    -------
    DataFrame
        ``arm, visit_day, n, mean, ci_low, ci_high``.
    """
    column = f"{endpoint}_change"
    rows = []
    if column in site_visits and "arm" in site_visits:
        labelled = site_visits.assign(_label=coding.relabel(site_visits["arm"]))
        for key, group in labelled.groupby(["_label", "visit_day"], sort=True):
            label, day = cast(tuple[str, int], key)
            n, mean, low, high = mean_ci(group[column], alpha=alpha)
            if n:
                rows.append((str(label), int(day), n, mean, low, high))
    return pd.DataFrame(rows, columns=["arm", "visit_day", "n", "mean", "ci_low", "ci_high"])


def _arm_order(coding: ArmCoding, labels: Any) -> list[str]:
    present = {str(v) for v in labels}
    return [a for a in coding.order if a in present]


def baseline_section(
    site_visits: pd.DataFrame,
    *,
    config: Any,
    coding: ArmCoding,
    subjects: pd.DataFrame | None,
) -> Section:
    """Baseline characteristics by arm (sites, density, diameter, fractions, age, severity)."""
    base = site_visits[site_visits["visit_day"] == config.baseline_day]
    if base.empty:
        return Section("baseline", "Baseline characteristics", (Text(_NOT_AVAILABLE),))
    base = base.assign(_label=coding.relabel(base["arm"]))
    order = _arm_order(coding, base["_label"])
    groups = [(label, base[base["_label"] == label]) for label in order] + [("All", base)]
    rows: list[tuple[str, ...]] = [("Sites (n)", *(str(len(g)) for _, g in groups))]
    rows.append(("Subjects (n)", *(str(g["subject"].nunique()) for _, g in groups)))
    index = f"{float(config.index_um):g}"
    characteristics = [
        ("density_per_cm2", "Density, hairs/cm²"),
        ("hair_count", "Hair count in field"),
        ("mean_diameter_um", "Mean shaft diameter, µm"),
        ("terminal_fraction", "Terminal-hair fraction"),
        ("fraction_below_index", f"Fraction of hairs < {index} µm"),
    ]
    for column, name in characteristics:
        if column not in base:
            continue
        cells = []
        for _, g in groups:
            x = pd.to_numeric(g[column], errors="coerce").dropna()
            d = _digits(column)
            cells.append(f"{fmt(x.mean(), d)} ({fmt(x.std(ddof=1), d)})" if len(x) else "–")
        rows.append((f"{name}: mean (SD)", *cells))
    note = "Site-level values at the baseline visit."
    if subjects is not None and "subject" in subjects:
        people = subjects.drop_duplicates("subject").set_index("subject")
        if "age" in people:
            cells = []
            for _, g in groups:
                ages = pd.to_numeric(people["age"].reindex(g["subject"].unique()), errors="coerce")
                ages = ages.dropna()
                cells.append(
                    f"{fmt(ages.mean(), 1)} ({fmt(ages.std(ddof=1), 1)})" if len(ages) else "–"
                )
            rows.append(("Age, years: mean (SD)", *cells))
        if "severity" in people:
            levels = sorted(people["severity"].dropna().astype(str).unique())
            for level in levels:
                cells = []
                for _, g in groups:
                    sev = people["severity"].reindex(g["subject"].unique()).astype(str)
                    cells.append(str(int((sev == level).sum())))
                rows.append((f"Severity {level} (subjects)", *cells))
        note += " Subject characteristics count each subject once per arm they contribute to"
        note += " (in a split-site design the same subjects carry both arms)."
    else:
        note += " Age and severity: not available (no subjects table given)."
    return Section(
        "baseline",
        "Baseline characteristics",
        (
            Table(
                "Baseline characteristics by arm",
                ("Characteristic", *(g for g, _ in groups)),
                tuple(rows),
                note,
            ),
        ),
    )


def time_course_section(analysis: Any, *, coding: ArmCoding) -> Section:
    """Mean change per arm and the mixed-model between-arm effect per visit, per endpoint."""
    config = analysis.config
    site_visits = analysis.site_visits
    level = _ci_percent(config)
    blocks: list[Block] = [
        Text(
            f"Left: mean change from baseline per arm with {level:g} % t-based confidence "
            f"intervals (sites observed at that visit). Right: the between-arm difference "
            f"{coding.difference} in the endpoint at each visit (baseline included), estimated "
            "by the mixed model over all visits (see Methods), with its confidence interval."
        )
    ]
    effect_rows: list[tuple[str, ...]] = []
    mixed: Mapping[str, Any] = analysis.mixed or {}
    for endpoint in config.endpoints:
        name, unit = endpoint_label(endpoint)
        means = arm_means(site_visits, endpoint=endpoint, coding=coding, alpha=config.alpha)
        model = mixed.get(endpoint)
        effects = None
        if model is not None and len(model.effects):
            effects = coding.directed(model.effects)
            for r in iter_rows(effects.sort_values("visit_day")):
                effect_rows.append(
                    (
                        name,
                        str(int(r.visit_day)),
                        fmt_ci(r.estimate, r.ci_low, r.ci_high, _digits(endpoint) + 1),
                        fmt_p(r.p),
                        "yes" if model.converged else "no",
                    )
                )
        if means.empty and effects is None:
            continue
        png = figures.time_course_figure(
            title=name,
            unit=unit,
            arm_means=means,
            arm_order=_arm_order(coding, means["arm"]),
            effects=effects,
            difference=coding.difference,
            ci_percent=level,
        )
        blocks.append(
            Figure(f"time_course_{endpoint}", f"Time course of {name}{_unit_note(unit)}.", png)
        )
    if effect_rows:
        blocks.append(
            Table(
                f"Mixed-model between-arm differences ({coding.difference}) at each visit",
                ("Endpoint", "Day", f"Estimate ({level:g} % CI)", "p", "Converged"),
                tuple(effect_rows),
            )
        )
    return Section("time-course", "Time course of each endpoint", tuple(blocks))


def _unit_note(unit: str) -> str:
    return f" (units:{unit})" if unit.strip() else ""


def paired_section(paired: pd.DataFrame | None, *, config: Any, coding: ArmCoding) -> Section:
    """Within-subject paired tests per endpoint and visit, with Holm-adjusted p."""
    title = "Paired tests"
    if paired is None or paired.empty:
        return Section("paired", title, (Text(_NOT_AVAILABLE),))
    sign = coding.sign
    first_is_treated = sign == 1
    directed = coding.directed(paired, value="mean_diff")
    rows = []
    for r in iter_rows(directed.sort_values(["endpoint", "visit_day"])):
        d = _digits(str(r.endpoint)) + 1
        first_mean = r.treated_mean if first_is_treated else r.control_mean
        second_mean = r.control_mean if first_is_treated else r.treated_mean
        rows.append(
            (
                endpoint_label(str(r.endpoint))[0],
                str(int(r.visit_day)),
                fmt(r.n, 0),
                fmt(first_mean, d),
                fmt(second_mean, d),
                fmt_ci(r.mean_diff, r.ci_low, r.ci_high, d),
                fmt(sign * r.t, 2),
                fmt_p(r.p_t),
                fmt(r.wilcoxon_w, 1),
                fmt_p(r.p_wilcoxon),
                fmt(sign * r.effect_size_dz, 2),
                fmt_p(r.p_holm),
            )
        )
    level = _ci_percent(config)
    columns = (
        "Endpoint",
        "Day",
        "n",
        f"{coding.first} mean Δ",
        f"{coding.second} mean Δ",
        f"{coding.difference} ({level:g} % CI)",
        "t",
        "p (t)",
        "W",
        "p (Wilcoxon)",
        "dz",
        "p (Holm)",
    )
    text = (
        "Within-subject differences between the two sites in change from baseline, at each "
        "post-baseline visit: paired t-test and Wilcoxon signed-rank test; Cohen's dz is "
        "the mean difference over its SD. Holm's correction is applied across visits "
        "within each endpoint (p (Holm), from the t-tests)."
    )
    return Section("paired", title, (Text(text), Table("Paired tests", columns, tuple(rows))))


def subgroup_section(subgroups: Any, *, config: Any, coding: ArmCoding) -> Section:
    """Forest plot of the diameter effect below and above the miniaturisation index."""
    title = "Subgroups by baseline shaft diameter"
    if subgroups is None or subgroups.effects is None or subgroups.effects.empty:
        return Section("subgroups", title, (Text(_NOT_AVAILABLE + " (needs follicle tracks)"),))
    effects = coding.directed(subgroups.effects)
    interaction = coding.directed(subgroups.interaction)
    level = _ci_percent(config)
    png = figures.forest_figure(
        effects=effects, interaction=interaction, difference=coding.difference, ci_percent=level
    )
    rows = tuple(
        (
            str(r.level),
            str(int(r.visit_day)),
            fmt_ci(r.estimate, r.ci_low, r.ci_high, 2),
            fmt_p(r.p_interaction),
        )
        for r in iter_rows(interaction.sort_values(["level", "visit_day"]))
    )
    index = f"{float(config.index_um):g}"
    text = (
        f"Between-arm difference ({coding.difference}) in change of shaft diameter (µm) for "
        f"follicles (tracked across visits) and hairs whose baseline diameter was below or "
        f"at/above {index} µm, per visit; p_int is the test of the subgroup-by-arm "
        "interaction."
    )
    return Section(
        "subgroups",
        title,
        (
            Text(text),
            Figure("forest", f"Subgroup forest plot (< {index} µm vs ≥ {index} µm).", png),
            Table(
                f"Subgroup × arm interaction (difference between subgroups in {coding.difference})",
                ("Level", "Day", f"Difference ({level:g} % CI), µm", "p (interaction)"),
                rows,
            ),
        ),
    )


def responder_day(site_visits: pd.DataFrame, config: Any) -> int | None:
    """Return the responder visit: the configured day, else the first after baseline."""
    if config.responder_day is not None:
        return int(config.responder_day)
    later = sorted(int(d) for d in site_visits["visit_day"].unique() if d > config.baseline_day)
    return later[0] if later else None


def waterfall_section(analysis: Any, *, coding: ArmCoding) -> Section:
    """Per-subject waterfall of the responder endpoint, responders coloured."""
    config = analysis.config
    title = "Per-subject response"
    result = analysis.responders
    if result is None or result.responders is None or result.responders.empty:
        return Section("waterfall", title, (Text(_NOT_AVAILABLE),))
    endpoint = config.responder_endpoint
    name, unit = endpoint_label(endpoint)
    day = responder_day(analysis.site_visits, config)
    table = coding.directed(result.responders, value="change")
    threshold = coding.sign * float(config.responder_min_change)
    png = figures.waterfall_figure(
        responders=table,
        threshold=threshold,
        difference=coding.difference,
        endpoint=name,
        unit=unit,
        day=day,
    )
    n_resp = int(table["responder"].fillna(False).astype(bool).sum())
    text = (
        f"For each subject, the difference between the sites ({coding.difference}) in change "
        f"of {name} from baseline to day {day}. A responder is a subject whose difference "
        f"exceeds the pre-specified {float(config.responder_min_change):g}{unit} in the "
        f"direction of benefit (dashed line); {n_resp} of {len(table)} subjects responded."
    )
    return Section(
        "waterfall", title, (Text(text), Figure("waterfall", f"Waterfall of {name}.", png))
    )


def roc_section(analysis: Any) -> Section:
    """ROC curves of baseline predictors of response."""
    title = "Prediction of response (ROC)"
    result = analysis.responders
    if result is None or result.roc is None or result.roc.empty:
        return Section("roc", title, (Text(_NOT_AVAILABLE),))
    names = {str(p): predictor_label(str(p)) for p in result.roc["predictor"]}
    png = figures.roc_figure(roc=result.roc, curves=result.curves or {}, names=names)
    rows = tuple(
        (
            names[str(r.predictor)],
            fmt(r.n, 0),
            fmt_ci(r.auc, r.auc_ci_low, r.auc_ci_high, 2),
            fmt(r.youden_cutoff, 3),
            fmt(r.sensitivity, 2),
            fmt(r.specificity, 2),
            str(r.direction),
        )
        for r in iter_rows(result.roc)
    )
    level = _ci_percent(analysis.config)
    text = (
        "How well each baseline characteristic predicts response: area under the ROC curve "
        f"(AUC) with its {level:g} % bootstrap confidence interval, and the cut-off that "
        "maximises Youden's J (sensitivity + specificity − 1)."
    )
    return Section(
        "roc",
        title,
        (
            Text(text),
            Figure("roc", "ROC curves of baseline predictors of response.", png),
            Table(
                "ROC analysis",
                (
                    "Predictor",
                    "n",
                    f"AUC ({level:g} % CI)",
                    "Youden cut-off",
                    "Sensitivity",
                    "Specificity",
                    "Direction",
                ),
                rows,
            ),
        ),
    )
