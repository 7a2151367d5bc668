"""build_report on a small simulated trial: files, self-containment, sections, blinding,
reproducibility and numbers checked against the store's own tables."""

from __future__ import annotations

import base64
import io
import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from hairtrial._validate import InputError
from hairtrial.report import ReportFiles, build_report
from hairtrial.report.blinding import arm_coding
from tests.report._pdf import page_count, pdf_text

ARMS = ("cells", "saline")
SECTIONS = {
    "summary": "Summary",
    "flow": "Participant flow",
    "baseline": "Baseline characteristics",
    "time-course": "Time course of each endpoint",
    "paired": "Paired tests",
    "subgroups": "Subgroups by baseline shaft diameter",
    "waterfall": "Per-subject response",
    "roc": "Prediction of response (ROC)",
    "panels": "Before/after trichoscopy",
    "qc": "Measurement quality checks",
    "methods": "Methods",
}
FIGURES = {
    "forest",
    "waterfall",
    "roc",
    "panel_1",
    "panel_2",
    *(
        f"time_course_{e}"
        for e in (
            "terminal_fraction",
            "mean_diameter_um",
            "density_per_cm2",
            "hair_count",
            "cumulative_thickness_mm_per_cm2",
            "fraction_below_index",
        )
    ),
}


def _words(text: str, word: str) -> list[str]:
    return re.findall(rf"(?<![A-Za-z0-9]){re.escape(word)}(?![A-Za-z0-9])", text, re.I)


def _without_timestamp(html: str) -> str:
    return re.sub(r'<span class="generated-at">[^<]*</span>', "", html)


def test_writes_html_pdf_and_figures(blinded_reports):
    files = blinded_reports[0]
    assert isinstance(files, ReportFiles)
    assert files.html.name == "report.html" and files.pdf.name == "report.pdf"
    assert set(files.figures) == FIGURES
    for key, path in files.figures.items():
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" or data[:3] == b"\xff\xd8\xff", key
    pdf = files.pdf.read_bytes()
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert page_count(pdf) >= 5
    assert files.html.stat().st_size < 5_000_000  # panels downscaled: a few MB at most


def test_html_is_self_contained(blinded_reports):
    html = blinded_reports[0].html.read_text("utf-8")
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html.lower() and "<link" not in html.lower()
    sources = re.findall(r"<img[^>]*\ssrc=\"([^\"]*)\"", html)
    assert len(sources) == len(FIGURES)
    for src in sources:
        assert re.fullmatch(r"data:image/(png|jpeg);base64,[A-Za-z0-9+/=]+", src)
    # the embedded images are the figure files, byte for byte
    embedded = {base64.b64decode(src.split(",", 1)[1]) for src in sources}
    assert embedded == {p.read_bytes() for p in blinded_reports[0].figures.values()}


def test_every_section_in_html_and_pdf(blinded_reports):
    files = blinded_reports[0]
    html = files.html.read_text("utf-8")
    text = pdf_text(files.pdf.read_bytes())
    for number, (section_id, title) in enumerate(SECTIONS.items(), start=1):
        assert f'<section id="{section_id}">' in html
        assert f"{number}. {title}" in html.replace("&amp;", "&")
        assert f"{number}. {title}" in text


def test_blinded_report_never_names_an_arm(blinded_reports):
    files = blinded_reports[0]
    html = files.html.read_text("utf-8")
    text = pdf_text(files.pdf.read_bytes())
    for arm in ARMS:
        assert not _words(html, arm), arm
        assert not _words(text, arm), arm
        assert arm.encode() not in files.pdf.read_bytes()
    for where in (html, text):
        assert "BLINDED REPORT" in where and "UNBLINDED" not in where
        assert "Arm A" in where and "Arm B" in where


def test_unblinded_report_names_the_arms(unblinded_report):
    html = unblinded_report.html.read_text("utf-8")
    text = pdf_text(unblinded_report.pdf.read_bytes())
    for where in (html, text):
        assert "UNBLINDED REPORT" in where
        assert "Arm A" not in where
        for arm in ARMS:
            assert _words(where, arm), arm
    assert "cells − saline" in html  # differences read treated minus control


def test_same_inputs_same_report(blinded_reports):
    first, second = blinded_reports
    html1, html2 = (f.html.read_text("utf-8") for f in (first, second))
    assert html1 != html2 or 'class="generated-at"' in html1
    assert _without_timestamp(html1) == _without_timestamp(html2)
    assert first.pdf.read_bytes() == second.pdf.read_bytes()
    for key in FIGURES:
        assert first.figures[key].read_bytes() == second.figures[key].read_bytes(), key


def _paired_row(html: str, endpoint_name: str, day: int) -> list[str]:
    table = html.split('<section id="paired">', 1)[1].split("</section>", 1)[0]
    for row in re.findall(r"<tr>(.*?)</tr>", table, re.S):
        cells = re.findall(r"<td>(.*?)</td>", row)
        if cells[:2] == [endpoint_name, str(day)]:
            return cells
    raise AssertionError(f"no paired row for {endpoint_name} day {day}")


@pytest.mark.parametrize("which", ["blinded", "unblinded"])
def test_paired_difference_matches_a_direct_computation(
    which, blinded_reports, unblinded_report, tables
):
    # Independent reference: per subject, (cells − saline) change in mean diameter
    # from day 0 to day 30, straight from the endpoints table.
    ep = tables["endpoints"]
    ep = ep[ep["kind"] == "clipped"].set_index(["subject", "arm", "visit_day"])
    value = ep["mean_diameter_um"]
    change = value.xs(30, level="visit_day") - value.xs(0, level="visit_day")
    per_subject = change.unstack("arm").dropna()
    diff = float((per_subject["cells"] - per_subject["saline"]).mean())
    files = blinded_reports[0] if which == "blinded" else unblinded_report
    coding = arm_coding(
        trial="report-test",
        arms=ARMS,
        treated="cells",
        control="saline",
        unblind=which == "unblinded",
    )
    cells = _paired_row(files.html.read_text("utf-8"), "mean shaft diameter", 30)
    assert cells[2] == str(len(per_subject))
    shown = float(cells[5].split(" ")[0])
    assert shown == pytest.approx(coding.sign * diff, abs=0.01)
    first_arm = coding.first if which == "blinded" else "cells"
    first_real = next(a for a in ARMS if coding.label(a) == first_arm)
    assert float(cells[3]) == pytest.approx(per_subject[first_real].mean(), abs=0.01)


def test_flow_baseline_and_qc_content(blinded_reports, tables, report_trial_dir):
    html = blinded_reports[0].html.read_text("utf-8")
    runs = tables["runs"]
    failed = runs[runs["status"] == "failed"].iloc[0]
    # the failed image is a missing visit in the flow and a failed run in QC
    flow = html.split('<section id="flow">', 1)[1].split("</section>", 1)[0]
    assert f"<td>{failed['site']}</td><td>{failed['visit_day']}</td>" in flow
    assert "image too blurred to measure" in flow
    qc = html.split('<section id="qc">', 1)[1].split("</section>", 1)[0]
    assert "image too blurred to measure" in qc and "Corrections made: none." in qc
    baseline = html.split('<section id="baseline">', 1)[1].split("</section>", 1)[0]
    assert "<td>Sites (n)</td><td>6</td><td>6</td><td>12</td>" in baseline
    ages = pd.read_csv(report_trial_dir / "subjects.csv")["age"]
    assert "<td>Age, years: mean (SD)</td>" in baseline
    assert f"<td>{ages.mean():.1f} ({ages.std(ddof=1):.1f})</td></tr>" in baseline  # All column


def test_without_subjects_age_is_not_available(unblinded_report):
    html = unblinded_report.html.read_text("utf-8")
    baseline = html.split('<section id="baseline">', 1)[1].split("</section>", 1)[0]
    assert "Age, years" not in baseline and "not available (no subjects table given)" in baseline


def test_methods_name_versions_and_hashes(blinded_reports, analysis_config):
    html = blinded_reports[0].html.read_text("utf-8")
    methods = html.split('<section id="methods">', 1)[1].split("</section>", 1)[0]
    assert "measure-truth" in methods and "track-truth" in methods
    # the hash of the options as analysed (the default arm names resolved to the data's)
    resolved = replace(analysis_config, treated_arm="cells", control_arm="saline")
    assert resolved.config_hash() in methods
    for library in ("numpy", "scipy", "statsmodels"):
        assert f"<td>{library}</td>" in methods
    assert "mixed model" in methods.lower()


def test_panels_are_small_jpegs_of_one_subjects_two_sites(blinded_reports):
    files = blinded_reports[0]
    html = files.html.read_text("utf-8")
    for key in ("panel_1", "panel_2"):
        with Image.open(io.BytesIO(files.figures[key].read_bytes())) as img:
            assert img.format == "JPEG" and img.width == 800
            pixels = np.asarray(img)
        assert pixels.std() > 10  # a real picture, not a blank canvas
    captions = re.findall(r"<figcaption>Site (\S+) \((Arm [AB])\)", html)
    assert [c[0] for c in captions] == ["S001-L", "S001-R"]
    assert {c[1] for c in captions} == {"Arm A", "Arm B"}


def test_chosen_sites_and_bad_site(report_store, tmp_path, analysis_config, tables):
    from hairtrial.analyze import analyze_trial

    analysis = analyze_trial(tables["endpoints"], config=analysis_config)
    files = build_report(
        store=report_store, out_dir=tmp_path / "r", sites=["S003-R"], analysis=analysis
    )
    assert "<figcaption>Site S003-R (" in files.html.read_text("utf-8")
    assert {"panel_1"} == {k for k in files.figures if k.startswith("panel")}
    assert "needs follicle tracks" in files.html.read_text("utf-8")  # no follicles given
    with pytest.raises(InputError, match="S999-L"):
        build_report(
            store=report_store, out_dir=tmp_path / "bad", sites=["S999-L"], analysis=analysis
        )


def test_bad_inputs(report_store, tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        build_report(store=report_store, out_dir=tmp_path / "file")
    with pytest.raises(InputError, match="subject"):
        (tmp_path / "s.csv").write_text("id,age\n1,30\n")
        build_report(store=report_store, out_dir=tmp_path / "o", subjects=tmp_path / "s.csv")
    with pytest.raises(InputError, match="no trial"):
        build_report(store=report_store, out_dir=tmp_path / "o", trial="other")


def test_empty_database_is_a_clear_error(tmp_path):
    from hairtrial.store import open_store

    with open_store(f"sqlite:///{tmp_path / 'e.db'}") as store:
        with pytest.raises(InputError, match="no images"):
            build_report(store=store, out_dir=tmp_path / "o")
