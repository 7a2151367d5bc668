"""The whole trial analysis in one call, with its headline, methods and JSON record."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hairtrial import __version__
from hairtrial._validate import InputError
from hairtrial.analyze.config import ENDPOINT_LABELS, AnalysisConfig, resolve_arms
from hairtrial.analyze.mixed import MixedModelResult, mixed_model
from hairtrial.analyze.paired import paired_tests
from hairtrial.analyze.responders import ResponderResult, responder_analysis
from hairtrial.analyze.subgroups import SubgroupResult, subgroup_effects, subgroup_labels
from hairtrial.analyze.tables import require_columns, site_visit_table, trial_flow

_PAIRED_METHODS = (
    "Within each subject the treated site was compared with the control site on the change "
    "from baseline at each post-baseline visit: the mean treated-minus-control difference "
    "with its {ci} % confidence interval from the t distribution, the paired t-test, the "
    "Wilcoxon signed-rank test and the effect size d_z (mean difference / SD of the "
    "differences). Paired t-test p-values were adjusted across visits within each endpoint "
    "by Holm's step-down method."
)
_SUBGROUP_METHODS = (
    "Subgroups were defined by baseline shaft diameter below or at/above {index:g} µm. At "
    "follicle level each tracked follicle's baseline diameter set its subgroup and its "
    "diameter change was taken at each later visit where it was present; at hair level, "
    "without hair identity, the thinnest share of each image's hairs equal to the site's "
    "baseline share below the index formed the lower band (quantile bands, which avoid "
    "reclassifying hairs that cross the threshold). Changes were averaged per subject, "
    "side and visit; treated-minus-control differences and the interaction (effect below "
    "minus effect above the index) were tested across subjects with t-tests."
)


def _fmt(value: float, digits: int = 3) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:+.{digits}g}" if abs(value) < 1 else f"{value:+.{max(digits, 1)}f}"


def _num(value: float, endpoint: str) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    digits = 3 if endpoint.endswith("_fraction") or endpoint == "fraction_below_index" else 2
    # round first so a tiny negative value prints as +0.000, never as -0.000
    return f"{round(value, digits) + 0.0:+.{digits}f}"


def _p(value: float) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return "< 0.001" if value < 0.001 else f"= {value:.3f}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, pd.DataFrame):
        return [_jsonable(r) for r in value.to_dict(orient="records")]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True)
class TrialAnalysis:
    """Everything the report needs: tables, models, subgroups, responders and flow.

    Parameters
    ----------
    config : AnalysisConfig
        Options used (with the arm labels actually analysed).
    site_visits : DataFrame
        :func:`~hairtrial.analyze.tables.site_visit_table`.
    paired : DataFrame
        :func:`~hairtrial.analyze.paired.paired_tests`.
    mixed : dict of str to MixedModelResult
        One mixed model per analysed endpoint.
    subgroups : SubgroupResult or None
        Without follicle trajectories or hairs: None.
    responders : ResponderResult or None
        None when response cannot be defined (no post-baseline visit, one class only is
        still a result).
    flow : dict
        Enrolment and image flow (:func:`~hairtrial.analyze.tables.trial_flow`).
    notes : tuple of str
        Substitutions, things left out, and why.
    """

    config: AnalysisConfig
    site_visits: pd.DataFrame = field(compare=False)
    paired: pd.DataFrame = field(compare=False)
    mixed: dict[str, MixedModelResult] = field(compare=False)
    subgroups: SubgroupResult | None = field(compare=False)
    responders: ResponderResult | None = field(compare=False)
    flow: dict[str, Any] = field(compare=False)
    notes: tuple[str, ...] = ()

    def headline(self) -> str:
        """Return a few plain sentences with the numbers that answer the trial."""
        ci = f"{100 * (1 - self.config.alpha):.0f} %"
        sentences: list[str] = [
            f"{self.flow['subjects']} subjects, {self.flow['sites']} sites "
            f"({self.config.treated_arm} vs {self.config.control_arm}), visits on days "
            f"{', '.join(map(str, self.flow['visit_days']))}."
        ]
        for endpoint in self.config.primary:
            label, unit = ENDPOINT_LABELS.get(endpoint, (endpoint, ""))
            rows = self.paired[self.paired["endpoint"] == endpoint]
            parts = [
                f"day {int(r['visit_day'])} {_num(r['mean_diff'], endpoint)}{unit} ({ci} CI "
                f"{_num(r['ci_low'], endpoint)} to {_num(r['ci_high'], endpoint)}, Holm p "
                f"{_p(r['p_holm'])}, n = {int(r['n'])})"
                for r in rows.to_dict(orient="records")
            ]
            if parts:
                sentences.append(
                    f"Change in {label}, treated minus control site: " + "; ".join(parts) + "."
                )
        if self.subgroups is not None and len(self.subgroups.effects):
            sentences.append(self._subgroup_sentence())
        if self.responders is not None and len(self.responders.responders):
            r = self.responders
            n_resp = int(r.responders["responder"].sum())
            sentence = f"{n_resp} of {len(r.responders)} subjects responded ({r.definition})"
            pre = r.roc[(r.roc["predictor"] == "mean_diameter_um") & r.roc["auc"].notna()]
            if n_resp in (0, len(r.responders)):
                sentence += "; with a single class, predictors of response cannot be assessed"
            elif len(pre):
                top = pre.iloc[0]
                sentence += (
                    f"; baseline mean shaft diameter at the treated site predicted response "
                    f"with AUC {top['auc']:.2f} ({ci} CI {top['auc_ci_low']:.2f} to "
                    f"{top['auc_ci_high']:.2f}; Youden cut-off {top['youden_cutoff']:.1f} µm)"
                )
            sentences.append(sentence + ".")
        return " ".join(sentences)

    def _subgroup_sentence(self) -> str:
        assert self.subgroups is not None
        effects = self.subgroups.effects
        level = "follicle" if (effects["level"] == "follicle").any() else "hair"
        at = effects[effects["level"] == level]
        day = (
            self.config.responder_day
            if self.config.responder_day in set(at["visit_day"])
            else int(at["visit_day"].min())
        )
        below, above = subgroup_labels(self.subgroups.index_um)
        lo = at[(at["visit_day"] == day) & (at["subgroup"] == below)]
        hi = at[(at["visit_day"] == day) & (at["subgroup"] == above)]
        inter = self.subgroups.interaction
        inter = inter[(inter["level"] == level) & (inter["visit_day"] == day)]
        text = f"Shaft diameter change at day {day} ({level} level), treated minus control:"
        for name, row in ((below, lo), (above, hi)):
            if len(row):
                r = row.iloc[0]
                text += (
                    f" {name} at baseline {r['estimate']:+.2f} µm ({r['ci_low']:+.2f} to "
                    f"{r['ci_high']:+.2f}, p {_p(r['p'])});"
                )
        if len(inter):
            i = inter.iloc[0]
            text += f" difference {i['estimate']:+.2f} µm, interaction p {_p(i['p_interaction'])}."
        return text

    def methods_text(self) -> str:
        """Return the statistical methods, one paragraph per analysis."""
        ci = 100 * (1 - self.config.alpha)
        parts = [_PAIRED_METHODS.format(ci=f"{ci:.0f}")]
        parts += [self.mixed[e].methods_text() for e in self.config.primary if e in self.mixed]
        if self.subgroups is not None:
            parts.append(_SUBGROUP_METHODS.format(index=self.config.index_um))
        if self.responders is not None:
            parts.append(
                f"Responders: {self.responders.definition}. Baseline predictors (at the "
                "treated site; age and severity when recorded) were assessed by ROC analysis: "
                "AUC with a percentile bootstrap CI over subjects "
                f"({self.config.bootstrap} resamples) and the Youden cut-off."
            )
        return "\n\n".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """Return the whole analysis as a JSON-ready dict (NaN becomes None)."""
        out: dict[str, Any] = {
            "hairtrial_version": __version__,
            "config": self.config.to_dict(),
            "config_hash": self.config.config_hash(),
            "headline": self.headline(),
            "methods": self.methods_text(),
            "notes": list(self.notes),
            "flow": self.flow,
            "site_visits": self.site_visits,
            "paired": self.paired,
            "mixed": {
                name: {
                    "endpoint": m.endpoint,
                    "formula": m.formula,
                    "effects": m.effects,
                    "n_obs": m.n_obs,
                    "n_subjects": m.n_subjects,
                    "converged": m.converged,
                    "random_effects": m.random_effects,
                    "notes": list(m.notes),
                    "methods": m.methods_text(),
                }
                for name, m in self.mixed.items()
            },
            "subgroups": None,
            "responders": None,
        }
        if self.subgroups is not None:
            out["subgroups"] = {
                "index_um": self.subgroups.index_um,
                "effects": self.subgroups.effects,
                "interaction": self.subgroups.interaction,
                "notes": list(self.subgroups.notes),
            }
        if self.responders is not None:
            out["responders"] = {
                "definition": self.responders.definition,
                "responders": self.responders.responders,
                "roc": self.responders.roc,
                "curves": self.responders.curves,
                "notes": list(self.responders.notes),
            }
        result: dict[str, Any] = _jsonable(out)
        return result

    def to_json(self) -> str:
        """Return :meth:`to_dict` as JSON text (strict: no NaN)."""
        return json.dumps(self.to_dict(), indent=2, allow_nan=False, ensure_ascii=False)

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``analysis.json``, ``methods.txt`` and the tables as CSV to `out_dir`.

        Parameters
        ----------
        out_dir : str or Path
            Folder (created).

        Returns
        -------
        dict of str to Path
            Name → file written.
        """
        out = Path(out_dir)
        if out.exists() and not out.is_dir():
            raise InputError(f"{out}: output path exists and is not a folder")
        out.mkdir(parents=True, exist_ok=True)
        paths: dict[str, Path] = {}

        def put(name: str, frame: pd.DataFrame) -> None:
            path = out / f"{name}.csv"
            frame.to_csv(path, index=False, float_format="%.6g")
            paths[name] = path

        paths["analysis"] = out / "analysis.json"
        paths["analysis"].write_text(self.to_json() + "\n", encoding="utf-8")
        paths["methods"] = out / "methods.txt"
        paths["methods"].write_text(self.methods_text() + "\n", encoding="utf-8")
        put("site_visits", self.site_visits)
        put("paired_tests", self.paired)
        if self.mixed:
            put(
                "mixed_effects",
                pd.concat(
                    [m.effects.assign(endpoint=name) for name, m in self.mixed.items()],
                    ignore_index=True,
                ),
            )
        if self.subgroups is not None:
            put("subgroup_effects", self.subgroups.effects)
            put("subgroup_interaction", self.subgroups.interaction)
        if self.responders is not None:
            put("responders", self.responders.responders)
            put("roc", self.responders.roc)
        return paths


def _same_images(frame: pd.DataFrame, image_ids: set[Any] | None, days: set[Any]) -> pd.DataFrame:
    """Keep rows of the analysed images (or, without image ids, of the analysed visits).

    Tracking also follows follicles into phototrichogram re-images, and the simulator's
    follicle truth may hold extra snapshot days; neither is a visit of the analysis.
    """
    if image_ids is not None and "image_id" in frame.columns:
        return frame[frame["image_id"].isin(list(image_ids))]
    if "visit_day" in frame.columns:
        return frame[pd.to_numeric(frame["visit_day"], errors="coerce").isin(list(days))]
    return frame


def analyze_trial(
    endpoints: pd.DataFrame,
    *,
    follicles: pd.DataFrame | None = None,
    subjects: pd.DataFrame | None = None,
    config: AnalysisConfig | None = None,
    hairs: pd.DataFrame | None = None,
) -> TrialAnalysis:
    """Analyse a trial from its long tables: endpoints, tests, models, subgroups, response.

    Parameters
    ----------
    endpoints : DataFrame
        Unblinded ``endpoints`` export (or the simulator's truth endpoints).
    follicles : DataFrame, optional
        ``follicle_trajectories`` (or simulator follicle truth) for the subgroups.
    subjects : DataFrame, optional
        ``subject, age, severity``: adds age and severity as predictors of response.
    config : AnalysisConfig, optional
        Options (defaults when omitted). When the endpoints carry an anagen fraction (a
        phototrichogram, or the simulator's truth) that ``config.endpoints`` leaves out,
        it is analysed as one more endpoint at the visits that have it (noted).
    hairs : DataFrame, optional
        Per-hair table for the hair-level subgroups (else taken from `follicles`).

    Returns
    -------
    TrialAnalysis
    """
    config = config or AnalysisConfig()
    require_columns(endpoints, ("arm",), name="endpoints")
    config, note = resolve_arms(endpoints["arm"].dropna().unique(), config)
    notes: list[str] = [note] if note else []
    table = site_visit_table(endpoints, config=config)
    if (
        "anagen_fraction" in table.columns
        and "anagen_fraction" not in config.endpoints
        and bool(table["anagen_fraction"].notna().any())
    ):
        days = sorted(
            int(d) for d in table.loc[table["anagen_fraction"].notna(), "visit_day"].unique()
        )
        config = replace(config, endpoints=(*config.endpoints, "anagen_fraction"))
        notes.append(f"anagen fraction (phototrichogram): analysed at days {days}")
    paired = paired_tests(table, config=config)
    mixed = {e: mixed_model(table, endpoint=e, config=config) for e in config.endpoints}
    subgroups = None
    if follicles is not None or hairs is not None:
        ids = None
        if "image_id" in endpoints.columns and "kind" in endpoints.columns:
            ids = set(endpoints.loc[endpoints["kind"] == config.image_kind, "image_id"])
        if follicles is not None:
            follicles = _same_images(follicles, ids, set(table["visit_day"]))
        subgroups = subgroup_effects(follicles, config=config, hairs=hairs, image_ids=ids)
    else:
        notes.append("subgroups: no follicle trajectories or hairs given")
    responders = None
    try:
        responders = responder_analysis(table, config=config, subjects=subjects)
    except InputError as exc:
        notes.append(f"responders: not analysed ({exc})")
    return TrialAnalysis(
        config=config,
        site_visits=table,
        paired=paired,
        mixed=mixed,
        subgroups=subgroups,
        responders=responders,
        flow=trial_flow(endpoints, table, config=config),
        notes=tuple(notes),
    )
