"""Figures from small hand-made tables shaped like the analysis contract."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from hairtrial.records import HairRecord
from hairtrial.report import figures
from hairtrial.report.blinding import arm_coding
from hairtrial.report.efficacy import arm_means, mean_ci
from hairtrial.report.panels import hair_records, overlay_panel

PNG = b"\x89PNG\r\n\x1a\n"


def _png(data: bytes) -> Image.Image:
    assert data.startswith(PNG)
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def _means() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "arm": ["Arm A"] * 3 + ["Arm B"] * 3,
            "visit_day": [0, 30, 90] * 2,
            "n": [6] * 6,
            "mean": [0, 4.0, 2.0, 0, 1.0, 0.5],
            "ci_low": [0, 1.0, -1.0, 0, -1.0, -1.5],
            "ci_high": [0, 7.0, 5.0, 0, 3.0, 2.5],
        }
    )


def test_time_course_is_deterministic_png_without_metadata():
    effects = pd.DataFrame(
        {
            "visit_day": [0, 30, 90],
            "estimate": [0.1, 3.0, 1.5],
            "ci_low": [-2, 0.5, -1],
            "ci_high": [2, 5.5, 4],
            "p": [0.9, 0.02, 0.3],
        }
    )
    args = dict(
        title="mean shaft diameter",
        unit=" µm",
        arm_means=_means(),
        arm_order=["Arm A", "Arm B"],
        effects=effects,
        difference="Arm A − Arm B",
    )
    first = figures.time_course_figure(**args)
    assert first == figures.time_course_figure(**args)
    img = _png(first)
    assert img.size == (880, 363)  # 8 × 3.3 in at 110 dpi
    assert "Software" not in img.info
    # not blank: the arms' colours are drawn
    rgb = np.asarray(img.convert("RGB")).reshape(-1, 3)
    assert (np.abs(rgb - [0, 114, 178]).sum(axis=1) < 30).any()
    assert (np.abs(rgb - [230, 159, 0]).sum(axis=1) < 30).any()


def test_figures_without_data_still_render():
    empty = pd.DataFrame(columns=["arm", "visit_day", "n", "mean", "ci_low", "ci_high"])
    _png(
        figures.time_course_figure(
            title="x", unit="", arm_means=empty, arm_order=[], effects=None, difference="A − B"
        )
    )
    _png(figures.roc_figure(roc=pd.DataFrame(columns=["predictor"]), curves={}))
    _png(
        figures.waterfall_figure(
            responders=pd.DataFrame(columns=["subject", "change", "responder"]),
            threshold=2.0,
            difference="A − B",
            endpoint="d",
            unit="",
            day=30,
        )
    )


def test_forest_waterfall_and_roc():
    effects = pd.DataFrame(
        {
            "level": ["follicle"] * 4,
            "subgroup": ["< 60 µm", "≥ 60 µm"] * 2,
            "visit_day": [30, 30, 90, 90],
            "n": [5, 5, 4, 4],
            "estimate": [8.0, 0.5, 4.0, 0.2],
            "ci_low": [3.0, -2.0, -1.0, -2.0],
            "ci_high": [13.0, 3.0, 9.0, 2.4],
            "p": [0.01, 0.6, 0.1, 0.8],
        }
    )
    interaction = pd.DataFrame(
        {"level": ["follicle"] * 2, "visit_day": [30, 90], "p_interaction": [0.02, 0.3]}
    )
    forest = _png(
        figures.forest_figure(effects=effects, interaction=interaction, difference="Arm A − Arm B")
    )
    assert forest.width == 880 and forest.height > 150
    responders = pd.DataFrame(
        {
            "subject": ["S1", "S2", "S3"],
            "change": [5.0, -1.0, 3.0],
            "responder": [True, False, True],
        }
    )
    _png(
        figures.waterfall_figure(
            responders=responders,
            threshold=2.0,
            difference="A − B",
            endpoint="mean shaft diameter",
            unit=" µm",
            day=30,
        )
    )
    roc = pd.DataFrame(
        {
            "predictor": ["mean_diameter_um"],
            "n": [6],
            "auc": [0.8],
            "auc_ci_low": [0.5],
            "auc_ci_high": [1.0],
            "youden_cutoff": [50.0],
            "sensitivity": [1.0],
            "specificity": [0.67],
            "direction": ["lower"],
        }
    )
    curve = pd.DataFrame(
        {"fpr": [0, 0, 0.33, 1], "tpr": [0, 0.67, 1, 1], "threshold": [np.inf, 40, 50, 70]}
    )
    _png(figures.roc_figure(roc=roc, curves={"mean_diameter_um": curve}))


def test_mean_ci_matches_a_textbook_value():
    # mean 3, SD 1.5811 (n = 5): 95 % t interval 3 ± 2.7764 × 1.5811 / √5 = 3 ± 1.9632
    n, mean, low, high = mean_ci(pd.Series([1.0, 2.0, 3.0, 4.0, 5.0, np.nan]), alpha=0.05)
    assert n == 5 and mean == 3.0
    assert low == pytest.approx(1.0368, abs=1e-3) and high == pytest.approx(4.9632, abs=1e-3)


def test_arm_means_uses_coded_labels():
    coding = arm_coding(
        trial="t", arms=["cells", "saline"], treated="cells", control="saline", unblind=False
    )
    table = pd.DataFrame(
        {
            "arm": ["cells", "cells", "saline", "saline"],
            "visit_day": [30] * 4,
            "mean_diameter_um_change": [1.0, 3.0, 0.0, np.nan],
        }
    )
    out = arm_means(table, endpoint="mean_diameter_um", coding=coding, alpha=0.05)
    row = out[out["arm"] == coding.labels["cells"]].iloc[0]
    assert (row["n"], row["mean"]) == (2, 2.0)
    assert set(out["arm"]) == {"Arm A", "Arm B"}


def test_overlay_panel_is_a_jpeg_of_fixed_width():
    image = np.full((600, 800, 3), 150, dtype=np.uint8)  # scaled down 2× into the panel
    before = image.copy()
    hair = HairRecord(
        id=1,
        exit_px=(100.0, 100.0),
        tip_px=(300.0, 240.0),
        centerline_px=((100.0, 100.0), (200.0, 170.0), (300.0, 240.0)),
        diameter_um=70.0,
        length_um=600.0,
        hair_class="terminal",
        confidence=0.9,
    )
    data = overlay_panel([(image, [hair], 5.0), (image, [], 5.0)], width_px=800)
    np.testing.assert_array_equal(image, before)
    img = Image.open(io.BytesIO(data))
    # 600 × 396/800 px of image, then the legend strip under it (124 px at that size)
    assert img.format == "JPEG" and img.width == 800 and img.height == 297 + 124
    # the terminal hair (bluish green) is drawn on the left tile only (above the legend)
    rgb = np.asarray(img.convert("RGB")).astype(int)[:150]
    green = (rgb[..., 1] - rgb[..., 0] > 40) & (rgb[..., 1] > rgb[..., 2])
    assert green[:, :396].sum() > 50 and green[:, 404:].sum() == 0
    rows, cols = np.nonzero(green[:, :396])
    # drawn where the hair is, at half its pixel coordinates (50, 50) to (150, 120)
    assert 40 <= cols.min() and cols.max() <= 160 and 40 <= rows.min() and rows.max() <= 130


def test_hair_records_from_table_rows():
    rows = pd.DataFrame(
        {
            "hair_id": [2, 1],
            "exit_x_px": [np.nan, 5.0],
            "exit_y_px": [np.nan, 6.0],
            "tip_x_px": [9.0, 7.0],
            "tip_y_px": [9.0, 8.0],
            "diameter_um": [20.0, 70.0],
            "length_um": [100.0, 200.0],
            "hair_class": ["vellus", "terminal"],
            "confidence": [0.5, 0.9],
            "centerline_px": ["[[0, 0], [9, 9]]", "[[5, 6], [7, 8]]"],
        }
    )
    records = hair_records(rows)
    assert [r.id for r in records] == [1, 2]
    assert records[0].exit_px == (5.0, 6.0) and records[1].exit_px is None
    assert records[1].centerline_px == ((0.0, 0.0), (9.0, 9.0))
