import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hairtrial._validate import InputError
from hairtrial.io import read_image, read_manifest
from hairtrial.simulate.trial import (
    draw_subjects,
    simulate_trial,
    site_endpoints,
    with_overrides,
    write_trial,
)
from tests.factories import small_preset


def digest(folder):
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_subjects_and_sites_follow_the_design():
    preset = small_preset(subjects=40)
    subjects, sites = draw_subjects(preset, seed=3)
    assert len(subjects) == 40 and len(sites) == 80
    lo, hi = preset.trial.age_range
    assert subjects["age"].between(lo, hi).all()
    per_subject = sites.groupby("subject")["arm"].apply(sorted)
    assert all(arms == ["cells", "saline"] for arms in per_subject)
    treated = sites[sites["arm"] == "cells"]["location"].value_counts()
    assert set(treated.index) == {"left", "right"}  # side is randomised
    assert sites["site"].is_unique


def test_truth_endpoints_are_recomputable_from_follicles():
    trial = simulate_trial(small_preset(subjects=3), seed=5)
    f = trial.follicles
    assert {"subject", "site", "arm", "visit_day", "follicle_id", "diameter_um"} <= set(f)
    row = trial.endpoints.iloc[0]
    sel = f[(f["site"] == row["site"]) & (f["visit_day"] == row["visit_day"]) & f["has_shaft"]]
    assert row["hair_count"] == len(sel)
    assert row["mean_diameter_um"] == pytest.approx(sel["diameter_um"].mean())
    assert row["terminal_fraction"] == pytest.approx((sel["diameter_um"] >= 60).mean())
    assert row["cumulative_thickness_mm_per_cm2"] == pytest.approx(sel["diameter_um"].sum() / 1e3)
    assert set(trial.endpoints["visit_day"]) == set(trial.preset.trial.visit_days)
    arms = trial.endpoints.groupby("site")["arm"].nunique()
    assert (arms == 1).all()


def test_site_endpoints_by_hand():
    follicles = pd.DataFrame(
        {
            "site": ["A"] * 4,
            "visit_day": [0] * 4,
            "has_shaft": [True, True, True, False],
            "diameter_um": [20.0, 50.0, 80.0, np.nan],
            "phase": ["anagen", "telogen", "anagen", "kenogen"],
        }
    )
    e = site_endpoints(follicles, area_cm2=0.5, count_area_cm2=0.25).iloc[0]
    assert e["hair_count"] == 3 and e["follicle_count"] == 4
    assert e["density_per_cm2"] == 6.0 and e["count_per_area"] == 1.5
    assert e["terminal_fraction"] == pytest.approx(1 / 3)
    assert e["mean_diameter_um"] == pytest.approx(50.0)
    assert (e["vellus_count"], e["intermediate_count"], e["terminal_count"]) == (1, 1, 1)
    assert e["anagen_fraction"] == pytest.approx(2 / 3)


@pytest.mark.slow
def test_same_seed_gives_byte_identical_outputs(tmp_path):
    preset = small_preset(visit_days=(0, 30))
    write_trial(preset, tmp_path / "a", seed=11)
    write_trial(preset, tmp_path / "b", seed=11, workers=2)
    a, b = digest(tmp_path / "a"), digest(tmp_path / "b")
    assert a == b
    assert any(k.endswith(".jpg") for k in a)
    write_trial(preset, tmp_path / "c", seed=12)
    assert digest(tmp_path / "c")["follicles.parquet"] != a["follicles.parquet"]


def test_written_trial_is_consistent(tmp_path):
    preset = small_preset(subjects=1, visit_days=(0, 90))
    out = write_trial(preset, tmp_path, seed=2)
    manifest = read_manifest(out.manifest)
    assert len(manifest) == 2 * 2  # 2 sites x 2 visits
    assert set(manifest["kind"]) == {"clipped"}
    truth_days = pd.read_parquet(out.follicles)["visit_day"].unique()
    assert sorted(truth_days) == [0, 90]
    h, w = preset.imaging.shape_px()
    for row in manifest.itertuples():
        image = read_image(row.image)
        assert image.pixels.shape == (h, w, 3)
        truth = json.loads(Path(row.image.replace(".jpg", ".truth.json")).read_text())
        assert truth["um_per_px"] == pytest.approx(row.um_per_px, rel=1e-5)
        counted = [x for x in truth["hairs"] if x["exit_px"] is not None]
        assert truth["hair_count"] == len(counted)
        for hair in counted:
            x, y = hair["exit_px"]
            assert 0 <= x < w and 0 <= y < h
        for key in ("image", "area_cm2", "density_per_cm2", "mean_diameter_um",
                    "terminal_fraction", "cumulative_thickness_mm_per_cm2"):  # fmt: skip
            assert key in truth
        ids = [x["follicle_id"] for x in truth["hairs"]]
        assert len(ids) == len(set(ids))
    summary = json.loads((tmp_path / "trial.json").read_text())
    assert summary["n_images"] == 4 and summary["seed"] == 2
    # the truth of each imaged field, recomputed from its hairs
    fields = pd.read_csv(out.image_endpoints)
    assert len(fields) == 4 and set(fields["arm"]) == set(manifest["arm"])
    for row in fields.itertuples():
        truth = json.loads((tmp_path / row.image).with_suffix(".truth.json").read_text())
        counted = [x["diameter_um"] for x in truth["hairs"] if x["exit_px"] is not None]
        assert row.hair_count == len(counted)
        assert row.mean_diameter_um == pytest.approx(np.mean(counted), abs=0.01)  # JSON rounding
        assert row.terminal_fraction == pytest.approx(np.mean(np.array(counted) >= 60), rel=1e-5)


def test_clipped_lengths_respect_the_clip_range(tmp_path):
    preset = small_preset(subjects=1, visit_days=(0,), clip_length_mm=(0.4, 0.6))
    out = write_trial(preset, tmp_path, seed=4)
    for path in (tmp_path / "images").glob("*.truth.json"):
        for hair in json.loads(path.read_text())["hairs"]:
            assert hair["length_um"] <= 600.0 + 1e-6
    assert out.n_images == 2


def test_phototrichogram_regrowth(tmp_path):
    preset = small_preset(subjects=1, visit_days=(0,), field_cm2=0.05)
    write_trial(preset, tmp_path, seed=9, phototrichogram=True)
    manifest = read_manifest(tmp_path / "manifest.csv")
    assert sorted(manifest["kind"]) == [
        "clipped",
        "clipped",
        "clipped-regrowth",
        "clipped-regrowth",
    ]
    days = preset.imaging.phototrichogram_days
    assert sorted(set(manifest["visit_day"])) == [0, days]
    follicles = pd.read_parquet(tmp_path / "follicles.parquet")
    site = manifest["site"].iloc[0]
    stem = tmp_path / "images" / f"{site}_d000"
    before = {
        h["follicle_id"]: h
        for h in json.loads(stem.with_suffix(".truth.json").read_text())["hairs"]
    }
    after_path = tmp_path / "images" / f"{site}_d{days:03d}_regrowth.truth.json"
    after = {h["follicle_id"]: h for h in json.loads(after_path.read_text())["hairs"]}
    phase = (
        follicles[(follicles["site"] == site) & (follicles["visit_day"] == days)]
        .set_index("follicle_id")["phase"]
        .astype(str)
    )
    grew = [
        after[i]["length_um"] - before[i]["length_um"]
        for i in before.keys() & after.keys()
        if phase[i] == "anagen" and before[i]["exit_px"] and after[i]["exit_px"]
    ]
    still = [
        after[i]["length_um"] - before[i]["length_um"]
        for i in before.keys() & after.keys()
        if phase[i] == "telogen" and before[i]["exit_px"] and after[i]["exit_px"]
    ]
    assert grew and np.median(grew) > 200  # ~0.1-0.35 mm/day x 3 days, projected
    if still:
        assert np.median(np.abs(still)) < 1.0


def test_overrides_are_validated():
    preset = small_preset()
    with pytest.raises(InputError, match="--um-per-px"):
        with_overrides(preset, um_per_px=0)
    with pytest.raises(InputError, match="--subjects"):
        with_overrides(preset, subjects=0)
    with pytest.raises(InputError, match="--style"):
        with_overrides(preset, style="cartoon")
    assert with_overrides(preset, clip=False).imaging.clip is False


def change_from_baseline(endpoints, column):
    base = endpoints[endpoints["visit_day"] == 0].set_index("site")[column]
    return endpoints.assign(change=endpoints[column] - endpoints["site"].map(base))


def test_gentile_hair_count_change_at_58_weeks():
    """Published: about +18 hairs per 0.65 cm² treated vs about -1 control at 58 weeks."""
    from hairtrial.simulate.config import load_preset

    trial = simulate_trial(load_preset("gentile-2020"), seed=0)
    e = change_from_baseline(trial.endpoints, "count_per_area")
    at_58_weeks = e[e["visit_day"] == 406].groupby("arm")["change"].mean()
    assert 14.0 <= at_58_weeks["cells"] <= 22.0
    assert -4.0 <= at_58_weeks["saline"] <= 2.0


def test_nanfang_response_shape_on_truth_tables():
    """Up at month 1, still up at month 3, near baseline by months 7-9, larger below 60 µm."""
    from hairtrial.simulate.config import load_preset

    trial = simulate_trial(load_preset("nanfang-2023"), seed=0)
    effect = {}
    for column in ("terminal_fraction", "mean_diameter_um"):
        e = change_from_baseline(trial.endpoints, column)
        by_arm = e.groupby(["visit_day", "arm"])["change"].mean().unstack("arm")
        effect[column] = by_arm["cells"] - by_arm["saline"]
    tf, dia = effect["terminal_fraction"], effect["mean_diameter_um"]
    assert tf[30] > 0.03 and tf[90] > 0.01
    assert dia[30] > 2.0 and dia[90] > 2.0
    assert abs(tf[210]) < tf[30] / 3 and abs(tf[270]) < tf[30] / 3
    assert abs(dia[270]) < dia[30] / 3

    # Follicle level: a follicle's diameter gain at day 30 by its baseline diameter.
    f = trial.follicles[trial.follicles["has_shaft"]]
    base = f[f["visit_day"] == 0].set_index(["site", "follicle_id"])
    month1 = f[f["visit_day"] == 30].set_index(["site", "follicle_id"])["diameter_um"]
    both = base[["diameter_um", "arm"]].join(month1.rename("diameter_um_m1"), how="inner")
    both["gain"] = both["diameter_um_m1"] - both["diameter_um"]
    both["thin"] = both["diameter_um"] < 60.0
    gain = both.groupby(["arm", "thin"])["gain"].mean()
    thin_effect = gain[("cells", True)] - gain[("saline", True)]
    thick_effect = gain[("cells", False)] - gain[("saline", False)]
    assert thin_effect > 2 * max(thick_effect, 0.5)
