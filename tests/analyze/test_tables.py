import math

import numpy as np
import pandas as pd
import pytest

from hairtrial._validate import InputError
from hairtrial.analyze import AnalysisConfig, site_visit_table, trial_flow

CONFIG = AnalysisConfig(endpoints=("terminal_fraction", "mean_diameter_um"))


def _rows():
    rows = []
    for subject, site, arm, day, tf, d in [
        ("S1", "S1-L", "treated", 0, 0.5, 60.0),
        ("S1", "S1-L", "treated", 30, 0.7, 66.0),
        ("S1", "S1-R", "control", 0, 0.6, 62.0),
        ("S1", "S1-R", "control", 30, 0.55, 61.0),
        ("S2", "S2-L", "control", 30, 0.4, 50.0),  # baseline missing
        ("S2", "S2-R", "treated", 0, 0.45, 55.0),
    ]:
        rows.append({"subject": subject, "site": site, "arm": arm, "visit_day": day,
                     "kind": "clipped", "image_id": len(rows), "terminal_fraction": tf,
                     "mean_diameter_um": d})  # fmt: skip
    return rows


def test_change_from_baseline_and_missing_stay_missing():
    endpoints = pd.DataFrame(_rows())
    before = endpoints.copy()
    table = site_visit_table(endpoints, config=CONFIG)
    pd.testing.assert_frame_equal(endpoints, before)  # input untouched
    assert len(table) == 6  # no rows invented for missing visits
    row = table[(table["site"] == "S1-L") & (table["visit_day"] == 30)].iloc[0]
    assert row["terminal_fraction_change"] == pytest.approx(0.2)
    assert row["mean_diameter_um_change"] == pytest.approx(6.0)
    orphan = table[table["site"] == "S2-L"].iloc[0]
    assert math.isnan(orphan["terminal_fraction_change"])
    assert (table.loc[table["visit_day"] == 0, "terminal_fraction_change"] == 0).all()


def test_kinds_duplicates_unusable_and_regrowth():
    rows = _rows()
    extra = dict(rows[1], image_id=99, terminal_fraction=0.9, mean_diameter_um=70.0)
    dyed = dict(rows[1], image_id=100, kind="dyed", terminal_fraction=0.0)
    bad = dict(rows[1], image_id=101, terminal_fraction=0.0, unusable=True)
    regrowth = dict(rows[1], image_id=102, kind="clipped-regrowth", visit_day=33,
                    anagen_fraction=0.8)  # fmt: skip
    endpoints = pd.DataFrame([*rows, extra, dyed, bad, regrowth])
    table = site_visit_table(endpoints, config=CONFIG)
    row = table[(table["site"] == "S1-L") & (table["visit_day"] == 30)].iloc[0]
    assert row["n_images"] == 2
    assert row["terminal_fraction"] == pytest.approx(0.8)  # mean of 0.7 and 0.9
    assert row["anagen_fraction"] == pytest.approx(0.8)
    flow = trial_flow(endpoints, table, config=CONFIG)
    assert flow["images_unusable"] == 1 and flow["images_other_kinds"] == 2
    assert flow["missing_visits"] == {"0": 1, "30": 1} and flow["missing_baseline"] == 1


def test_missing_columns_name_the_table():
    endpoints = pd.DataFrame(_rows()).drop(columns=["arm", "mean_diameter_um"])
    with pytest.raises(InputError, match=r"endpoints: missing column\(s\) arm, mean_diameter_um"):
        site_visit_table(endpoints, config=CONFIG)


def test_missing_key_values_are_named():
    rows = _rows()
    rows[0]["arm"] = None
    with pytest.raises(InputError, match="key column.*arm"):
        site_visit_table(pd.DataFrame(rows), config=CONFIG)


def test_two_arms_on_one_site_is_an_error():
    rows = _rows()
    rows[1]["arm"] = "control"
    with pytest.raises(InputError, match="S1-L"):
        site_visit_table(pd.DataFrame(rows), config=CONFIG)


def test_truth_table_runs(sim_trial):
    table = site_visit_table(sim_trial.endpoints)
    assert len(table) == len(sim_trial.endpoints)
    assert "anagen_fraction_change" in table
    assert np.allclose(table.loc[table["visit_day"] == 0, "mean_diameter_um_change"], 0.0)
