"""The demo pipeline end to end, at reduced size: images → store → Dask → analysis → report.

The conclusions are checked on what was measured from the rendered images, never on the
simulator's truth: the effect on shaft diameter shows at month 1 and fades by month 9, and
it is larger in follicles under 60 µm at baseline (the trial's predictive index).
"""

import pytest

from hairtrial._validate import InputError
from hairtrial.demo import run_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return run_demo(out_dir=out, subjects=8, seed=2023, workers=2, progress=False)


@pytest.mark.slow
def test_pipeline_measures_tracks_and_reports(demo):
    # 5 visits per site, baseline and month 3 re-imaged for the phototrichogram
    assert demo.batch.measured == demo.n_images == 8 * 2 * (5 + 2)
    assert not demo.batch.failed and demo.batch.tracked_sites == 16
    assert demo.batch.phototrichograms == 8 * 2 * 2 and not demo.batch.phototrichogram_failures
    html = demo.report_html.read_text(encoding="utf-8")
    assert demo.report_pdf.read_bytes().startswith(b"%PDF")
    assert "cells" in html and "saline" in html  # the demo's report is unblinded
    # the analysis is of the measured images: its tables carry the measurement runs
    assert demo.analysis.flow["subjects"] == 8
    assert demo.headline() == demo.analysis.headline()


@pytest.mark.slow
def test_measured_answer_has_the_published_shape(demo):
    # Follicle level (tracked follicles, paired within subject): the effect is there at
    # month 1, still there at month 3, fading by months 7-9, and larger below 60 µm.
    effects = demo.analysis.subgroups.effects
    fol = effects[effects["level"] == "follicle"].set_index(["subgroup", "visit_day"])
    below = next(s for s in fol.index.get_level_values(0) if s.startswith("<"))
    above = next(s for s in fol.index.get_level_values(0) if not s.startswith("<"))
    month1, month3 = fol.loc[(below, 30)], fol.loc[(below, 90)]
    assert month1["ci_low"] > 0 and month3["estimate"] > 0
    assert month1["estimate"] > fol.loc[(above, 30), "estimate"] + 3.0
    late = max(fol.loc[(below, 210), "estimate"], fol.loc[(below, 270), "estimate"])
    assert late < 0.5 * month1["estimate"]
    # Site level: each image's measured endpoints agree with the truth of that field, and
    # the measured month-1 diameter effect stays near what a perfect measurement of the
    # same images gives (small fields make both noisy, so only agreement is checked).
    paired = demo.analysis.paired.set_index(["endpoint", "visit_day"])
    fields = demo.field_truth_analysis.paired.set_index(["endpoint", "visit_day"])
    key = ("mean_diameter_um", 30)
    assert abs(paired.loc[key, "mean_diff"] - fields.loc[key, "mean_diff"]) < 4.0
    joined = demo.analysis.site_visits.merge(
        demo.field_truth_analysis.site_visits, on=["site", "visit_day"], suffixes=("", "_truth")
    )
    assert len(joined) == 8 * 2 * 5  # the visits (re-images are not visits)
    count_error = (joined["hair_count"] / joined["hair_count_truth"] - 1).abs()
    assert count_error.median() < 0.15
    diameter_error = (joined["mean_diameter_um"] - joined["mean_diameter_um_truth"]).abs()
    assert diameter_error.median() < 5.0


@pytest.mark.slow
def test_anagen_fraction_comes_from_the_phototrichogram(demo):
    # measured on the re-imaged visits only, analysed as an endpoint, close to the truth
    # of the whole sites (the re-imaged field is a third of the site)
    visits = demo.analysis.site_visits.set_index(["site", "visit_day"])["anagen_fraction"]
    assert visits.notna().groupby(level="visit_day").all().to_dict() == {
        0: True, 30: False, 90: True, 210: False, 270: False,
    }  # fmt: skip
    truth = demo.truth_analysis.site_visits.set_index(["site", "visit_day"])["anagen_fraction"]
    error = (visits.dropna() - truth.reindex(visits.dropna().index)).abs()
    assert error.median() < 0.1, error.describe()
    paired = demo.analysis.paired
    assert set(paired.loc[paired["endpoint"] == "anagen_fraction", "visit_day"]) >= {90}
    assert "anagen_measured" in demo.shape_table().columns


def test_refuses_a_folder_that_is_not_a_demo(tmp_path):
    (tmp_path / "thesis.docx").write_text("precious")
    with pytest.raises(InputError, match="not an earlier demo"):
        run_demo(out_dir=tmp_path, subjects=2)
    assert (tmp_path / "thesis.docx").read_text() == "precious"
