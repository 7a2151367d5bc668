import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hairtrial.analyze import AnalysisConfig, responder_analysis, roc_curve
from hairtrial.analyze.responders import auc_trapezoid, severity_rank, youden


def test_auc_equals_the_mann_whitney_identity():
    rng = np.random.default_rng(0)
    x = np.round(rng.normal(size=40), 1)  # rounded: ties on purpose
    y = rng.random(40) < 0.4
    auc = auc_trapezoid(roc_curve(x, y))
    u = stats.mannwhitneyu(x[y], x[~y]).statistic
    assert auc == pytest.approx(u / (y.sum() * (~y).sum()))


def test_youden_hand_example():
    # positives 3, 4, 5; negatives 1, 2, 3.5: cut-off 3 gives sens 1, spec 2/3 (J = 2/3);
    # cut-off 4 gives sens 2/3, spec 1 (J = 2/3); the higher (more specific) one wins ties.
    curve = roc_curve([3, 4, 5, 1, 2, 3.5], [True, True, True, False, False, False])
    cut, sens, spec = youden(curve)
    assert (cut, sens, spec) == (4.0, pytest.approx(2 / 3), 1.0)
    assert auc_trapezoid(curve) == pytest.approx(8 / 9)  # 8 of 9 pairs ordered


def test_severity_rank():
    assert [severity_rank(s) for s in ("healthy", "HN-IV", "HN-VII", "Ludwig-II")] == [0, 4, 7, 2]
    assert math.isnan(severity_rank("unknown"))


def _table(changes, baseline_diameter):
    rows = []
    for i, (change, d0) in enumerate(zip(changes, baseline_diameter, strict=True)):
        for arm, delta in (("cells", change), ("saline", 0.0)):
            for day, val in ((0, d0), (30, d0 + delta)):
                rows.append({"subject": f"S{i}", "site": f"S{i}-{arm}", "arm": arm,
                             "visit_day": day, "mean_diameter_um": val,
                             "mean_diameter_um_change": val - d0,
                             "fraction_below_index": 0.5 - (d0 - 60) / 100,
                             "density_per_cm2": 150.0 + i})  # fmt: skip
    return pd.DataFrame(rows)


def test_responders_and_thin_hair_predicts_response():
    # thin hair (d0 < 60) responds with +5 µm, thick hair with +1 µm
    d0 = [45, 50, 55, 58, 62, 66, 70, 75]
    change = [5, 5, 5, 1, 5, 1, 1, 1]
    subjects = pd.DataFrame({"subject": [f"S{i}" for i in range(8)], "age": range(30, 38),
                             "severity": ["HN-IV"] * 4 + ["HN-VI"] * 4})  # fmt: skip
    config = AnalysisConfig(bootstrap=300, seed=1)
    result = responder_analysis(_table(change, d0), config=config, subjects=subjects)
    assert result.responders["responder"].tolist() == [c > 2 for c in change]
    assert result.responders["change"].tolist() == pytest.approx(change)
    roc = result.roc.set_index("predictor")
    diam = roc.loc["mean_diameter_um"]
    assert diam["direction"] == "lower"
    # responders' d0: 45, 50, 55, 62; non-responders: 58, 66, 70, 75 -> 15 of 16 pairs
    assert diam["auc"] == pytest.approx(15 / 16)
    assert diam["auc_ci_low"] <= diam["auc"] <= diam["auc_ci_high"]
    # cut-offs 55 (sens 3/4, spec 1) and 62 (sens 1, spec 3/4) tie at J = 3/4: the more
    # specific one is reported
    assert diam["youden_cutoff"] == 55 and diam["sensitivity"] == 0.75
    assert diam["specificity"] == 1.0
    assert {"age", "severity_rank"} <= set(roc.index)
    assert set(result.curves) == set(roc.index)


def test_without_subjects_age_and_severity_are_not_available():
    result = responder_analysis(
        _table([5, 1, 5, 1], [50, 70, 55, 65]), config=AnalysisConfig(bootstrap=0)
    )
    assert "age" not in set(result.roc["predictor"])
    assert any("not available" in n for n in result.notes)
    assert result.roc["auc_ci_low"].isna().all()  # no bootstrap asked for


def test_one_class_gives_nan_auc():
    result = responder_analysis(
        _table([5, 5, 5], [50, 60, 70]), config=AnalysisConfig(bootstrap=10)
    )
    assert result.roc["auc"].isna().all()
