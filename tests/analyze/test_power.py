import json

import numpy as np
import pandas as pd
import pytest

from hairtrial._validate import InputError
from hairtrial.analyze import (
    AnalysisConfig,
    MeasurementError,
    PowerResult,
    add_measurement_error,
    plot_power,
    power_curve,
    wilson_interval,
)


def test_wilson_interval_against_statsmodels_and_hand_value():
    from statsmodels.stats.proportion import proportion_confint

    for k, n in ((0, 10), (8, 10), (250, 500)):
        assert wilson_interval(k, n) == pytest.approx(proportion_confint(k, n, method="wilson"))
    # 8/10 at z = 1.96: centre (0.8 + 0.19208) / 1.38416, half 0.51311 / 1.38416 ... (textbook)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0
    lo, hi = wilson_interval(8, 10)
    assert (round(lo, 3), round(hi, 3)) == (0.490, 0.943)


def test_measurement_error_defaults_and_validation_file(tmp_path):
    default = MeasurementError()
    assert default.count_rel_sd == pytest.approx(0.09 / 0.6745, abs=1e-3)
    assert default.diameter_sd_um == 3.0
    path = tmp_path / "validate.json"
    images = [{"image": f"i{k}.jpg", "count_error": e, "mean_diameter_error_um": d}
              for k, (e, d) in enumerate([(0.1, 2.0), (-0.1, -2.0), (0.0, 0.0)])]  # fmt: skip
    path.write_text(json.dumps({"images": images, "pooled": {"image": "all", "count_error": 9}}))
    read = MeasurementError.from_validation(path)
    assert read.count_rel_sd == pytest.approx(0.1)
    assert read.diameter_sd_um == pytest.approx(2.0)
    assert read.terminal_fraction_sd == default.terminal_fraction_sd  # not in the file
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(InputError, match="no per-image"):
        MeasurementError.from_validation(bad)
    with pytest.raises(InputError, match="count_rel_sd"):
        MeasurementError(count_rel_sd=-1)


def test_add_measurement_error_keeps_identities(sim_trial):
    rng = np.random.default_rng(0)
    noisy = add_measurement_error(sim_trial.endpoints, MeasurementError(), rng=rng)
    assert (noisy["fraction_below_index"] + noisy["terminal_fraction"]).to_numpy() == (
        pytest.approx(1.0)
    )
    spread = (noisy["mean_diameter_um"] - sim_trial.endpoints["mean_diameter_um"]).std()
    assert 2.0 < spread < 4.0
    exact = add_measurement_error(sim_trial.endpoints, MeasurementError.none(), rng=rng)
    assert exact["hair_count"].to_numpy() == pytest.approx(sim_trial.endpoints["hair_count"])


def test_power_curve_small_and_reproducible(tmp_path):
    kwargs = dict(subjects=[4, 8], sims=3, seed=5)
    one = power_curve("nanfang-2023", **kwargs)
    again = power_curve("nanfang-2023", **kwargs, workers=2)
    pd.testing.assert_frame_equal(one.table, again.table)
    t = one.table
    assert set(t["subjects"]) == {4, 8} and (t["sims"] == 3).all()
    assert set(t["test"]) == {"paired_t", "wilcoxon"}
    assert ((t["ci_low"] <= t["power"]) & (t["power"] <= t["ci_high"])).all()
    assert one.config.treated_arm == "cells" and (t["visit_day"] == 30).all()
    png = plot_power(one, tmp_path / "a.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert plot_power(one, tmp_path / "b.png").read_bytes() == png.read_bytes()
    assert "80 % power" in one.describe()


def test_sample_size_reads_the_table():
    table = pd.DataFrame({
        "endpoint": ["terminal_fraction"] * 3, "test": ["paired_t"] * 3, "visit_day": 30,
        "subjects": [10, 20, 40], "sims": 100, "successes": [50, 85, 95],
        "power": [0.5, 0.85, 0.95], "ci_low": 0.0, "ci_high": 1.0,
    })  # fmt: skip
    result = PowerResult(table=table, preset="x", config=AnalysisConfig())
    assert result.sample_size(0.8) == 20 and result.sample_size(0.9) == 40
    assert result.sample_size(0.99) is None


def test_power_inputs_are_checked():
    with pytest.raises(InputError, match="subjects"):
        power_curve("nanfang-2023", subjects=[1], sims=2)
    with pytest.raises(InputError, match="sims"):
        power_curve("nanfang-2023", subjects=[4], sims=0)
