"""measure, validate, calibrate, phototrichogram and track through the command line."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from hairtrial.cli.main import app
from hairtrial.io import write_image
from hairtrial.io.image import calibration_sidecar
from hairtrial.simulate.trial import write_trial
from tests.factories import small_preset

runner = CliRunner()
CONTRACT = {
    "image", "um_per_px", "area_cm2", "hair_count", "density_per_cm2", "mean_diameter_um",
    "terminal_fraction", "cumulative_thickness_mm_per_cm2", "hairs",
}  # fmt: skip


@pytest.fixture(scope="module")
def trial(tmp_path_factory):
    out = tmp_path_factory.mktemp("trial")
    write_trial(
        small_preset(subjects=1, visit_days=(0, 30), field_cm2=0.06), out, seed=5,
        phototrichogram=True,
    )  # fmt: skip
    return out / "images"


def test_measure_json_lines_and_a_bad_file_does_not_stop_the_others(trial, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    good = sorted(trial.glob("*_d000.jpg"))[0]
    result = runner.invoke(app, ["measure", str(bad), str(good), "--um-per-px", "5"])
    assert result.exit_code == 1
    assert "broken.jpg" in result.output
    lines = [json.loads(x) for x in result.stdout.splitlines() if x.startswith("{")]
    assert len(lines) == 1 and CONTRACT <= set(lines[0])
    assert lines[0]["image"] == good.name


def test_measure_csv_overlay_and_table(trial, tmp_path):
    image = sorted(trial.glob("*_d030.jpg"))[0]
    out = tmp_path / "hairs.csv"
    overlays = tmp_path / "overlays"
    result = runner.invoke(
        app, ["measure", str(image), "--um-per-px", "5", "--format", "csv", "--out", str(out),
              "--overlay", str(overlays)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    header, *rows = out.read_text().splitlines()
    assert header.startswith("image,hair_id,exit_x_px") and header.endswith(",exit_confidence")
    assert rows and all(0.5 <= float(r.rsplit(",", 1)[1]) <= 1.0 for r in rows)
    assert (overlays / f"{image.stem}.overlay.png").stat().st_size > 0
    table = runner.invoke(app, ["measure", str(image), "--um-per-px", "5", "--format", "table"])
    assert table.exit_code == 0 and image.name in table.output


def test_measure_without_calibration_names_the_file(trial):
    image = sorted(trial.glob("*_d000.jpg"))[0]
    result = runner.invoke(app, ["measure", str(image)])
    assert result.exit_code == 1
    assert image.name in result.output and "calibration" in result.output


def test_bad_config_file(trial, tmp_path):
    config = tmp_path / "c.json"
    config.write_text('{"no_such_parameter": 3}')
    image = sorted(trial.glob("*_d000.jpg"))[0]
    result = runner.invoke(
        app, ["measure", str(image), "--um-per-px", "5", "--config", str(config)]
    )
    assert result.exit_code == 2 and "c.json" in result.output


def test_validate_against_truth_beside_the_images(trial):
    images = [str(p) for p in sorted(trial.glob("*_d0[03]0.jpg"))]
    result = runner.invoke(app, ["validate", *images, "--um-per-px", "5"])
    assert result.exit_code == 0, result.output
    assert "all" in result.output and "precision" in result.output
    assert "missed " in result.output and "false " in result.output
    assert "exit end right" in result.output and "by stated exit confidence" in result.output


def test_validate_json_feeds_the_power_tool(trial, tmp_path):
    from hairtrial.analyze import MeasurementError

    images = sorted(trial.glob("*_d0[03]0.jpg"))
    result = runner.invoke(
        app, ["validate", *map(str, images), "--um-per-px", "5", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert [x["image"] for x in lines] == [p.name for p in images] + ["all"]
    for line in lines[:-1]:
        assert line["count_error"] == pytest.approx(
            (line["n_detected"] - line["n_true"]) / line["n_true"], abs=1e-4
        )
        assert {"mean_diameter_error_um", "terminal_fraction_error"} <= set(line)
        # the simulator's truth states exits: the exit end is scored, by stated confidence
        bins = line["exit_confidence_bins"]
        assert line["exit_ends_scored"] == sum(b["n"] for b in bins) == line["n_matched"]
        assert 0.5 < line["exit_end_right"] <= 1.0
        assert [b["from"] for b in bins] == [0.5, 0.7, 0.9, 0.95, 0.99]
        # every error has one reason
        assert sum(line["missed_reasons"].values()) == line["n_true"] - line["n_matched"]
        assert sum(line["false_reasons"].values()) == line["n_detected"] - line["n_matched"]
    pooled = lines[-1]
    assert pooled["n_true"] == sum(x["n_true"] for x in lines[:-1])
    assert pooled["exit_ends_scored"] == sum(x["exit_ends_scored"] for x in lines[:-1])
    path = tmp_path / "validation.jsonl"
    path.write_text(result.stdout)
    error = MeasurementError.from_validation(path)
    counts = [x["count_error"] for x in lines[:-1]]
    assert error.count_rel_sd == pytest.approx(np.std(counts, ddof=1), rel=1e-3)


def test_calibrate_a_ruling(tmp_path):
    x = np.arange(400)
    ruling = (128 + 100 * np.cos(2 * np.pi * x / 20.0))[None, :].repeat(300, axis=0)
    slide = write_image(tmp_path / "slide.png", ruling.astype(np.uint8))
    target = tmp_path / "field.jpg"
    result = runner.invoke(
        app, ["calibrate", str(slide), "--spacing-um", "100", "--sidecar", str(target)]
    )
    assert result.exit_code == 0, result.output
    assert float(result.output.split()[0]) == pytest.approx(5.0, rel=0.01)
    assert json.loads(calibration_sidecar(target).read_text())["um_per_px"] == pytest.approx(
        5.0, rel=0.01
    )


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """A phototrichogram pair with enough hairs to register (the small trial has ~9)."""
    out = tmp_path_factory.mktemp("pair")
    write_trial(
        small_preset(subjects=1, visit_days=(0,), field_cm2=0.25), out, seed=8,
        phototrichogram=True,
    )  # fmt: skip
    first = sorted((out / "images").glob("*-L_d000.jpg"))[0]
    return first, first.with_name(first.stem.replace("_d000", "_d003_regrowth") + ".jpg")


def test_phototrichogram_pair(pair, tmp_path):
    first, second = pair
    result = runner.invoke(
        app, ["phototrichogram", str(first), str(second), "--days", "3", "--um-per-px", "5",
              "--format", "json", "--overlay", str(tmp_path / "phases")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (tmp_path / "phases" / f"{first.stem}.phototrichogram.png").stat().st_size > 0
    payload = json.loads(result.stdout)
    assert payload["registered"] and payload["registration"]["score"] > 0.5
    assert payload["n_anagen"] + payload["n_telogen"] == len(payload["hairs"]) > 10
    assert 0.0 < payload["anagen_fraction"] < 1.0
    # anagen hairs grew; telogen hairs did not
    growth = {h["phase"]: h["growth_um_per_day"] for h in payload["hairs"]}
    assert growth.get("anagen", 100.0) >= 100.0 > growth.get("telogen", 0.0)


def test_phototrichogram_refuses_unrelated_fields(pair, trial):
    other = sorted(trial.glob("*_d000.jpg"))[0]
    result = runner.invoke(
        app, ["phototrichogram", str(pair[0]), str(other), "--days", "3", "--um-per-px", "5"]
    )
    assert result.exit_code == 1
    assert "could not register" in result.output


def test_track_two_visits(trial, tmp_path):
    paths = sorted(trial.glob("*-L_d0[03]0.jpg"))
    images = [str(p) for p in paths]
    overlays = tmp_path / "tracked"
    result = runner.invoke(
        app, ["track", *images, "--um-per-px", "5", "--days", "0,30", "--overlay", str(overlays)]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert len(payload["images"]) == 2 and "follicles" in payload
    assert sorted(p.name for p in overlays.iterdir()) == [f"{p.stem}.track.png" for p in paths]
    mismatch = runner.invoke(app, ["track", *images, "--um-per-px", "5", "--days", "0"])
    assert mismatch.exit_code == 2 and "1 day(s) for 2 image(s)" in mismatch.output


@pytest.mark.parametrize(
    ("flag", "tone", "shaft"),
    [
        ("--light-hairs", (0.85, 0.7, 0.6), 0.9),  # a white hair on fair skin
        ("--grey-hairs", (0.75, 0.59, 0.56), 0.62),  # a grey hair on pink skin: colour only
    ],
)
def test_measure_hair_colour_options_find_a_hair_the_default_misses(tmp_path, flag, tone, shaft):
    from tests.measure import _draw as draw

    img = draw.skin((320, 460), seed=24, tone=tone)
    layer = np.ones_like(img)
    draw.draw_hair(layer, draw.straight(60, 250, -10, 200), diameter_px=14, absorb=2.0)
    path = write_image(tmp_path / "hair.png", draw.finish(img * layer + shaft * (1 - layer)))
    counts = {}
    for extra in ([], [flag]):
        result = runner.invoke(app, ["measure", str(path), "--um-per-px", "5", *extra])
        assert result.exit_code == 0, result.output
        counts[bool(extra)] = json.loads(result.stdout.splitlines()[0])["hair_count"]
    assert counts == {False: 0, True: 1}


def test_validate_overlay_and_each_error_listed(trial, tmp_path):
    """Every error has a place and a reason in the JSON; an overlay PNG per image."""
    from hairtrial.io import read_image
    from hairtrial.measure.metrics import FALSE_REASONS, MISSED_REASONS

    images = sorted(trial.glob("*_d0[03]0.jpg"))
    overlays = tmp_path / "checked"
    result = runner.invoke(
        app, ["validate", *map(str, images), "--um-per-px", "5", "--format", "json",
              "--overlay", str(overlays)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    for path, line in zip(images, lines, strict=False):
        errors = line["errors"]
        missed = [e for e in errors if e["kind"] == "missed"]
        false = [e for e in errors if e["kind"] == "false"]
        assert len(missed) == line["n_true"] - line["n_matched"]
        assert len(false) == line["n_detected"] - line["n_matched"]
        assert {e["reason"] for e in missed} <= set(MISSED_REASONS)
        assert {e["reason"] for e in false} <= set(FALSE_REASONS)
        assert all(isinstance(e["hair_id"], int) for e in false)
        # matched hairs measured with the exit at the cut end are listed too
        wrong = [e for e in errors if e["kind"] == "wrong_end"]
        # the share is rounded to 4 decimals in the JSON
        right = line["exit_end_right"] * line["exit_ends_scored"]
        tolerance = 5e-5 * line["exit_ends_scored"] + 1e-9
        assert len(wrong) == pytest.approx(line["exit_ends_scored"] - right, abs=tolerance)
        assert len(missed) + len(false) + len(wrong) == len(errors)
        png = read_image(overlays / f"{path.stem}.validation.png").pixels
        original = read_image(path).pixels
        assert png.shape[1] == original.shape[1] and png.shape[0] > original.shape[0]
    assert "errors" not in lines[-1]  # the pooled line holds the counts only


def _counted_truth(image):
    from hairtrial.measure.metrics import truth_from_json

    obj = json.loads(image.with_suffix(".truth.json").read_text())
    return [h for h in truth_from_json(obj) if h.exit_px is not None]


def test_validate_against_pascal_voc_boxes(trial, tmp_path):
    """Boxes score detection and count, and say why each error happened; no diameter."""
    from hairtrial.measure.annotations import BOX_FALSE_REASONS, BOX_MISSED_REASONS

    image = sorted(trial.glob("*_d000.jpg"))[0]
    hairs = _counted_truth(image)
    objects = "".join(
        "<object><name>hair</name><bndbox><xmin>{:.0f}</xmin><ymin>{:.0f}</ymin>"
        "<xmax>{:.0f}</xmax><ymax>{:.0f}</ymax></bndbox></object>".format(
            *(np.min(h.centerline_px, axis=0) - 5), *(np.max(h.centerline_px, axis=0) + 5)
        )
        for h in hairs
    )
    (tmp_path / f"{image.stem}.xml").write_text(f"<annotation>{objects}</annotation>")
    args = ["validate", str(image), "--um-per-px", "5", "--truth", str(tmp_path)]
    result = runner.invoke(app, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    first, pooled = (json.loads(x) for x in result.stdout.splitlines())
    assert first["annotation"] == "boxes" and first["n_true"] == len(hairs)
    assert first["recall"] > 0.6 and first["precision"] > 0.6
    assert "diameter_mae_um" not in first and "exit_end_right" not in first
    assert set(first["missed_reasons"]) == set(BOX_MISSED_REASONS)
    assert set(first["false_reasons"]) == set(BOX_FALSE_REASONS)
    assert sum(first["missed_reasons"].values()) == first["n_true"] - first["n_matched"]
    assert sum(first["false_reasons"].values()) == first["n_detected"] - first["n_matched"]
    missed = [e for e in first["errors"] if e["kind"] == "missed"]
    assert len(missed) == first["n_true"] - first["n_matched"]
    assert all(len(e["box"]) == 4 for e in missed)
    assert pooled["missed_reasons"] == first["missed_reasons"]
    table = runner.invoke(app, [*args, "--overlay", str(tmp_path / "checked")])
    assert table.exit_code == 0 and image.name in table.output and "missed " in table.output
    assert (tmp_path / "checked" / f"{image.stem}.validation.png").stat().st_size > 0


def test_validate_against_polylines_with_widths(trial, tmp_path):
    image = sorted(trial.glob("*_d030.jpg"))[0]
    hairs = _counted_truth(image)
    polylines = [
        {"joints": (np.asarray(h.centerline_px) - 0.5).tolist(), "width": h.diameter_um / 5.0}
        for h in hairs
    ]
    truth = tmp_path / f"{image.name}.json"
    truth.write_text(json.dumps(polylines))
    result = runner.invoke(
        app, ["validate", str(image), "--um-per-px", "5", "--truth", str(truth), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    first = json.loads(result.stdout.splitlines()[0])
    # the same hairs as the simulator's truth file gives, the same matches and diameters
    plain = runner.invoke(app, ["validate", str(image), "--um-per-px", "5", "--format", "json"])
    want = json.loads(plain.stdout.splitlines()[0])
    assert first["n_true"] == want["n_true"] == len(hairs)
    assert first["n_matched"] == want["n_matched"] > 0
    assert first["diameter_mae_um"] == pytest.approx(want["diameter_mae_um"], abs=0.01)
    # the tool's polylines do not say which end is the exit: no exit-end score
    assert "exit_end_right" not in first and "exit_end_right" in want


def test_validate_with_a_broken_annotation_names_it_and_goes_on(trial, tmp_path):
    images = sorted(trial.glob("*_d0[03]0.jpg"))
    (tmp_path / f"{images[0].stem}.xml").write_text("<annotation><object>")
    (tmp_path / f"{images[1].stem}.truth.json").write_text(
        images[1].with_suffix(".truth.json").read_text()
    )
    result = runner.invoke(
        app, ["validate", *map(str, images), "--um-per-px", "5", "--truth", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert f"{images[0].stem}.xml" in result.output and "well-formed" in result.output
    assert images[1].name in result.output
