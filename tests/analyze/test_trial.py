import json

import pandas as pd
import pytest

from hairtrial.analyze import AnalysisConfig, analyze_trial


@pytest.fixture(scope="module")
def analysis(sim_trial):
    config = AnalysisConfig(bootstrap=200, endpoints=("terminal_fraction", "mean_diameter_um",
                            "density_per_cm2"))  # fmt: skip
    return analyze_trial(
        sim_trial.endpoints, follicles=sim_trial.follicles, subjects=sim_trial.subjects,
        config=config,
    )  # fmt: skip


def test_truth_trial_shows_the_published_course(analysis):
    paired = analysis.paired.set_index(["endpoint", "visit_day"])
    assert paired.loc[("mean_diameter_um", 30), "ci_low"] > 0  # up at month 1
    assert paired.loc[("mean_diameter_um", 30), "p_holm"] < 0.05
    eff = analysis.mixed["mean_diameter_um"].effects.set_index("visit_day")["estimate"]
    # on complete balanced data the model's contrasts are differences of arm means, so the
    # day-30 contrast minus the baseline one is the paired mean difference of the changes
    assert eff[30] - eff[0] == pytest.approx(paired.loc[("mean_diameter_um", 30), "mean_diff"])
    assert analysis.config.treated_arm == "cells" and any("cells" in n for n in analysis.notes)
    assert analysis.flow["subjects"] == 12 and analysis.flow["missing_visits"]["30"] == 0


def test_headline_methods_and_json(analysis, tmp_path):
    text = analysis.headline()
    assert "terminal-hair fraction" in text and "Holm p" in text and "< 60 µm" in text
    n_resp = int(analysis.responders.responders["responder"].sum())
    assert f"{n_resp} of 12 subjects responded" in text
    assert ("AUC" in text) == (0 < n_resp < 12)
    methods = analysis.methods_text()
    assert "Holm" in methods and "random intercept per subject" in methods
    data = json.loads(analysis.to_json())  # strict JSON: NaN would fail allow_nan=False
    assert data["config"]["treated_arm"] == "cells"
    assert {"paired", "mixed", "subgroups", "responders", "flow", "headline"} <= set(data)
    paths = analysis.write(tmp_path / "out")
    assert json.loads(paths["analysis"].read_text())["config_hash"] == data["config_hash"]
    assert len(pd.read_csv(paths["paired_tests"])) == len(analysis.paired)


def test_without_follicles_or_subjects_it_degrades(sim_trial):
    result = analyze_trial(
        sim_trial.endpoints,
        config=AnalysisConfig(endpoints=("terminal_fraction", "mean_diameter_um"), bootstrap=0),
    )
    assert result.subgroups is None and result.responders is not None
    assert "age" not in set(result.responders.roc["predictor"])
    assert "< 60 µm" not in result.headline()


def test_follicle_snapshots_between_visits_are_ignored(sim_trial):
    config = AnalysisConfig(endpoints=("mean_diameter_um",), primary=("mean_diameter_um",),
                            bootstrap=0)  # fmt: skip
    extra = sim_trial.follicles[sim_trial.follicles["visit_day"] == 30].assign(visit_day=33)
    follicles = pd.concat([sim_trial.follicles, extra], ignore_index=True)
    result = analyze_trial(sim_trial.endpoints, follicles=follicles, config=config)
    assert 33 not in set(result.subgroups.effects["visit_day"])
