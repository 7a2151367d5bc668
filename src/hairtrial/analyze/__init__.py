"""Trial statistics on long tables: endpoints, paired tests, mixed models, subgroups, power.

Works on pandas DataFrames (the store's unblinded exports or the simulator's truth) and
never touches the database. SciPy and statsmodels load only when a test or model runs.

The pieces, in the order of :func:`analyze_trial`:

- :func:`site_visit_table`: one row per site × visit with change from baseline;
- :func:`paired_tests`: treated vs control within subject per visit (t, Wilcoxon, Holm);
- :func:`mixed_model`: ``endpoint ~ arm * C(visit_day)`` with subject (and site) random
  effects over all visits;
- :func:`subgroup_effects`: the effect below and above the 60 µm index, with interaction;
- :func:`responder_analysis`: responders, ROC/AUC and Youden cut-offs of baseline predictors;
- :func:`power_curve`: power by simulation of whole trials plus measurement error.
"""

from hairtrial.analyze.config import ENDPOINT_LABELS, KNOWN_ENDPOINTS, AnalysisConfig, resolve_arms
from hairtrial.analyze.mixed import MixedModelResult, mixed_model
from hairtrial.analyze.paired import holm, paired_summary, paired_tests
from hairtrial.analyze.power import (
    MeasurementError,
    PowerResult,
    add_measurement_error,
    plot_power,
    power_curve,
    wilson_interval,
)
from hairtrial.analyze.responders import ResponderResult, responder_analysis, roc_curve
from hairtrial.analyze.subgroups import SubgroupResult, subgroup_effects
from hairtrial.analyze.tables import site_visit_table, trial_flow
from hairtrial.analyze.trial import TrialAnalysis, analyze_trial

__all__ = [
    "ENDPOINT_LABELS",
    "KNOWN_ENDPOINTS",
    "AnalysisConfig",
    "MeasurementError",
    "MixedModelResult",
    "PowerResult",
    "ResponderResult",
    "SubgroupResult",
    "TrialAnalysis",
    "add_measurement_error",
    "analyze_trial",
    "holm",
    "mixed_model",
    "paired_summary",
    "paired_tests",
    "plot_power",
    "power_curve",
    "resolve_arms",
    "responder_analysis",
    "roc_curve",
    "site_visit_table",
    "subgroup_effects",
    "trial_flow",
    "wilson_interval",
]
