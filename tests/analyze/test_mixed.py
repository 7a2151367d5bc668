import math

import numpy as np
import pandas as pd
import pytest

from hairtrial.analyze import AnalysisConfig, mixed_model

CONFIG = AnalysisConfig(treated_arm="cells", control_arm="saline")
DAYS = (0, 30, 90)


def _data(n, *, effect, seed, noise=1.0, subject_sd=3.0, site_sd=1.0):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        u = rng.normal(0, subject_sd)
        for arm in ("cells", "saline"):
            w = rng.normal(0, site_sd)
            for day in DAYS:
                bump = effect.get(day, 0.0) if arm == "cells" else 0.0
                rows.append({"subject": f"S{i:02d}", "site": f"S{i:02d}-{arm}", "arm": arm,
                             "visit_day": day,
                             "mean_diameter_um": 60 + 0.01 * day + u + w + bump
                             + rng.normal(0, noise)})  # fmt: skip
    return pd.DataFrame(rows)


def test_balanced_contrast_equals_difference_of_arm_means():
    data = _data(8, effect={30: 4.0}, seed=1)
    result = mixed_model(data, endpoint="mean_diameter_um", config=CONFIG)
    means = data.groupby(["visit_day", "arm"])["mean_diameter_um"].mean().unstack()
    closed_form = (means["cells"] - means["saline"]).to_numpy()
    assert result.effects["visit_day"].tolist() == list(DAYS)
    assert result.effects["estimate"].to_numpy() == pytest.approx(closed_form, abs=1e-6)
    assert result.n_obs == 48 and result.n_subjects == 8
    assert "C(arm, Treatment('saline')) * C(visit_day)" in result.formula
    assert "subject" in result.random_effects
    assert (result.effects["ci_low"] < result.effects["estimate"]).all()


def test_confidence_interval_covers_the_known_effect():
    data = _data(30, effect={30: 5.0, 90: 2.0}, seed=7)
    result = mixed_model(data, endpoint="mean_diameter_um", config=CONFIG)
    eff = result.effects.set_index("visit_day")
    for day, truth in ((0, 0.0), (30, 5.0), (90, 2.0)):
        assert eff.loc[day, "ci_low"] < truth < eff.loc[day, "ci_high"]
    assert eff.loc[30, "p"] < 1e-6
    assert result.converged


def test_missing_visits_are_kept_not_imputed():
    data = _data(10, effect={30: 4.0}, seed=2)
    dropped = data.drop(index=data.index[(data["subject"] == "S00") & (data["visit_day"] == 90)])
    result = mixed_model(dropped, endpoint="mean_diameter_um", config=CONFIG)
    assert result.n_obs == len(data) - 2 and result.n_subjects == 10


def test_no_warning_escapes_and_notes_are_honest():
    # no subject or site variance at all: REML puts the variances on the boundary
    data = _data(6, effect={}, seed=3, subject_sd=0.0, site_sd=0.0)
    result = mixed_model(data, endpoint="mean_diameter_um", config=CONFIG)  # warnings = errors
    assert np.isfinite(result.effects["estimate"]).all()
    assert isinstance(result.converged, bool)
    assert all(isinstance(n, str) for n in result.notes)
    assert result.endpoint in result.summary() and "restricted maximum likelihood" in (
        result.methods_text()
    )


def test_one_subject_is_not_fitted():
    data = _data(1, effect={}, seed=4)
    result = mixed_model(data, endpoint="mean_diameter_um", config=CONFIG)
    assert not result.converged and math.isnan(result.effects["estimate"].iloc[0])
    assert any("too few" in n for n in result.notes)
