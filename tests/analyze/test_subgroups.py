import numpy as np
import pandas as pd
import pytest

from hairtrial._validate import InputError
from hairtrial.analyze import AnalysisConfig, subgroup_effects

CONFIG = AnalysisConfig(treated_arm="cells", control_arm="saline")


def _follicles(n_subjects=6, *, gain_thin=8.0, gain_thick=1.0, seed=0):
    """Follicles with a known diameter gain at day 30 on the treated side."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_subjects):
        for arm in ("cells", "saline"):
            site = f"S{i}-{arm}"
            for f in range(40):
                base = 40.0 if f % 2 == 0 else 80.0
                gain = (gain_thin if base < 60 else gain_thick) if arm == "cells" else 0.0
                for day, d in ((0, base), (30, base + gain + rng.normal(0, 0.5))):
                    rows.append({"subject": f"S{i}", "site": site, "arm": arm,
                                 "visit_day": day, "follicle_id": f, "present": True,
                                 "diameter_um": d})  # fmt: skip
    return pd.DataFrame(rows)


def test_follicle_level_recovers_known_gains_and_interaction():
    result = subgroup_effects(_follicles(), config=CONFIG)
    eff = result.effects.set_index(["level", "subgroup"])
    thin = eff.loc[("follicle", "< 60 µm")]
    thick = eff.loc[("follicle", "≥ 60 µm")]
    assert thin["estimate"] == pytest.approx(8.0, abs=0.3)
    assert thick["estimate"] == pytest.approx(1.0, abs=0.3)
    assert thin["n"] == 6 and thin["n_units"] == 6 * 2 * 20
    inter = result.interaction.set_index("level").loc["follicle"]
    assert inter["estimate"] == pytest.approx(7.0, abs=0.3) and inter["p_interaction"] < 1e-4


def test_absent_follicles_drop_out_and_hair_level_uses_quantile_bands():
    data = _follicles()
    data.loc[(data["follicle_id"] == 0) & (data["visit_day"] == 30), "present"] = False
    result = subgroup_effects(data, config=CONFIG)
    thin = result.effects.set_index(["level", "subgroup"]).loc[("follicle", "< 60 µm")]
    assert thin["n_units"] == 6 * 2 * 20 - 12
    # half the hairs are below 60 µm at baseline, so the lower band is the thinner half
    hair = result.effects.set_index(["level", "subgroup"]).loc[("hair", "< 60 µm")]
    assert hair["estimate"] == pytest.approx(8.0, abs=1.0)


def test_hand_worked_hair_bands():
    # treated site: baseline 40, 50, 70, 80 (half below) -> day 30: 45, 58, 70, 80
    # lower band 45.0+58 /2 = 51.5 vs 45 -> +6.5; upper band 75 vs 75 -> 0. Control: no change.
    rows = []
    for arm, later in (("cells", [45, 58, 70, 80]), ("saline", [40, 50, 70, 80])):
        for day, ds in ((0, [40, 50, 70, 80]), (30, later)):
            for k, d in enumerate(ds):
                rows.append({"subject": "S1", "site": f"S1-{arm}", "arm": arm, "visit_day": day,
                             "image_id": day, "hair_id": k, "diameter_um": float(d),
                             "counted": True})  # fmt: skip
    hairs = pd.DataFrame(rows)
    result = subgroup_effects(None, config=CONFIG, hairs=hairs)
    eff = result.effects.set_index("subgroup")
    assert eff.loc["< 60 µm", "estimate"] == pytest.approx(6.5)
    assert eff.loc["≥ 60 µm", "estimate"] == pytest.approx(0.0)
    assert result.interaction["estimate"].iloc[0] == pytest.approx(6.5)


def test_inputs_are_checked():
    with pytest.raises(InputError, match="follicle_trajectories: missing column"):
        subgroup_effects(_follicles().drop(columns=["follicle_id"]), config=CONFIG)
    with pytest.raises(InputError, match="give follicle"):
        subgroup_effects(None, config=CONFIG)


def test_simulated_truth_shows_larger_gain_below_index(sim_trial):
    result = subgroup_effects(sim_trial.follicles, config=AnalysisConfig())
    at30 = result.effects[
        (result.effects["visit_day"] == 30) & (result.effects["level"] == "follicle")
    ]
    by = at30.set_index("subgroup")["estimate"]
    assert by["< 60 µm"] > by["≥ 60 µm"] + 2
