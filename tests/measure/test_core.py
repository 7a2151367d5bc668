"""measure_image against hairs drawn with known geometry (independent of the simulator)."""

import json

import cv2
import numpy as np
import pytest

from hairtrial._validate import InputError
from hairtrial.measure import ImageMeasurement, MeasureConfig, measure_image
from tests.measure import _draw as draw

JSON_KEYS = {
    "image",
    "um_per_px",
    "area_cm2",
    "hair_count",
    "density_per_cm2",
    "mean_diameter_um",
    "terminal_fraction",
    "cumulative_thickness_mm_per_cm2",
    "hairs",
}
HAIR_KEYS = {
    "id",
    "exit_px",
    "tip_px",
    "centerline_px",
    "diameter_um",
    "length_um",
    "class",
    "confidence",
}


def _one_hair(d_um, um, *, blur=1.0, seed=1, angle=10.0, with_root=True):
    img = draw.skin((300, 420), seed=seed)
    length = 220.0
    exit_xy = (90.0, 150.0)
    pts = draw.straight(*exit_xy, angle, length)
    if with_root:
        root = draw.straight(*exit_xy, angle + 180.0, 60.0)
        draw.draw_subsurface(img, root, diameter_px=d_um / um)
    draw.draw_hair(img, pts, diameter_px=d_um / um, absorb=1.5)
    return draw.finish(img, blur_px=blur, seed=seed), np.array(exit_xy) + 0.5, pts


def test_blank_image_gives_zero_hairs():
    img = draw.finish(draw.skin((200, 260), seed=3), blur_px=1.0)
    res = measure_image(img, um_per_px=5.0)
    assert res.hair_count == 0
    assert res.hairs == ()
    out = res.to_json("blank.png")
    assert set(out) == JSON_KEYS
    assert out["mean_diameter_um"] is None and out["terminal_fraction"] is None
    assert out["density_per_cm2"] == 0


def test_uniform_image_gives_zero_hairs():
    res = measure_image(np.full((64, 80), 128, np.uint8), um_per_px=5.0)
    assert res.hair_count == 0


@pytest.mark.parametrize("um", [4.0, 6.0])
@pytest.mark.parametrize("d_um", [20.0, 40.0, 60.0, 90.0, 120.0])
def test_single_hair_count_exit_and_diameter(d_um, um):
    img, exit_xy, _ = _one_hair(d_um, um)
    res = measure_image(img, um_per_px=um)
    assert res.hair_count == 1
    hair = res.hairs[0]
    assert abs(hair.diameter_um - d_um) <= max(5.0, 0.1 * d_um)
    assert hair.exit_px is not None
    assert np.hypot(*(np.array(hair.exit_px) - exit_xy)) <= max(8.0, d_um / um)
    assert abs(hair.length_um - 220 * um) <= 0.1 * 220 * um
    assert hair.hair_class == MeasureConfig().classes.classify(hair.diameter_um)
    assert 0 < hair.confidence <= 1


@pytest.mark.parametrize("d_um", [40.0, 80.0])
def test_diameter_does_not_grow_with_blur(d_um):
    um = 5.0
    sharp = measure_image(_one_hair(d_um, um, blur=0.7)[0], um_per_px=um)
    blurred = measure_image(_one_hair(d_um, um, blur=2.0)[0], um_per_px=um)
    assert sharp.hair_count == blurred.hair_count == 1
    a, b = sharp.hairs[0].diameter_um, blurred.hairs[0].diameter_um
    assert abs(a - b) <= max(4.0, 0.08 * d_um)
    assert abs(b - d_um) <= max(5.0, 0.1 * d_um)
    assert blurred.psf_sigma_um > sharp.psf_sigma_um


def test_curved_hair_is_one_hair_with_its_length():
    um = 5.0
    img = draw.skin((400, 420), seed=5)
    pts = draw.curved(60, 300, -30, 300, 90)
    draw.draw_hair(img, pts, diameter_px=12, absorb=1.5)
    res = measure_image(draw.finish(img, blur_px=1.0), um_per_px=um)
    assert res.hair_count == 1
    assert abs(res.hairs[0].diameter_um - 60) <= 6
    assert abs(res.hairs[0].length_um - 300 * um) <= 0.1 * 300 * um


@pytest.mark.parametrize("angle", [45.0, 60.0, 90.0])
def test_crossing_hairs_are_two(angle):
    img = draw.skin((400, 400), seed=3)
    draw.draw_hair(img, draw.straight(60, 200, 0, 280), diameter_px=15, absorb=1.5)
    start = (200 - 130 * np.cos(np.deg2rad(angle)), 200 - 130 * np.sin(np.deg2rad(angle)))
    draw.draw_hair(img, draw.straight(*start, angle, 260), diameter_px=15, absorb=1.5)
    res = measure_image(draw.finish(img, blur_px=1.0), um_per_px=5.0)
    assert res.hair_count == 2
    assert all(h.length_um > 0.8 * 260 * 5 for h in res.hairs)


def test_follicular_unit_of_three_is_three_hairs():
    img = draw.skin((400, 400), seed=4)
    for a in (-20.0, 0.0, 20.0):
        draw.draw_hair(img, draw.straight(100, 200, a, 200), diameter_px=14, absorb=1.5)
    res = measure_image(draw.finish(img, blur_px=1.0), um_per_px=5.0)
    assert res.hair_count == 3
    for h in res.hairs:
        assert h.exit_px is not None
        assert np.hypot(h.exit_px[0] - 100.5, h.exit_px[1] - 200.5) <= 35


def test_mixed_field_summary_and_histogram():
    um = 5.0
    img = draw.skin((420, 520), seed=8)
    truth = [
        (30.0, (60, 60, 20)),
        (70.0, (60, 200, 5)),
        (90.0, (250, 120, 35)),
        (50.0, (260, 330, -15)),
    ]
    for d_um, (x, y, a) in truth:
        draw.draw_hair(img, draw.straight(x, y, a, 180), diameter_px=d_um / um, absorb=1.5)
    res = measure_image(draw.finish(img, blur_px=1.0), um_per_px=um)
    assert res.hair_count == 4
    found = sorted(h.diameter_um for h in res.hairs)
    assert np.allclose(found, sorted(d for d, _ in truth), atol=6)
    assert sum(res.histogram_counts) == 4
    assert len(res.histogram_edges_um) == len(res.histogram_counts) + 1
    assert res.summary["terminal_fraction"] == pytest.approx(0.5)
    area = 420 * 520 * um * um * 1e-8
    assert res.area_cm2 == pytest.approx(area)
    assert res.summary["density_per_cm2"] == pytest.approx(4 / area)
    out = json.loads(json.dumps(res.to_json("field.png")))
    assert set(out) == JSON_KEYS
    assert out["image"] == "field.png" and out["hair_count"] == 4
    for h, sure in zip(out["hairs"], res.exit_confidence, strict=True):
        # the contract's keys, and how sure the exit end is (an addition)
        assert set(h) == HAIR_KEYS | {"exit_confidence"}
        assert h["exit_confidence"] == pytest.approx(sure, abs=5e-4)
        assert 0.5 <= h["exit_confidence"] <= 1.0
        assert h["class"] in {"vellus", "intermediate", "terminal"}
        assert all(len(p) == 2 for p in h["centerline_px"])


def test_hair_entering_from_outside_is_not_counted():
    um = 5.0
    img = draw.skin((300, 400), seed=9)
    # exit outside the field, to the left; the shaft runs into the image
    draw.draw_hair(img, draw.straight(-80, 150, 0, 260), diameter_px=14, absorb=1.5)
    res = measure_image(draw.finish(img, blur_px=1.0), um_per_px=um)
    assert len(res.hairs) == 1
    assert res.hairs[0].exit_px is None
    assert res.hair_count == 0


def test_caller_array_is_not_modified_and_result_is_deterministic():
    img, _, _ = _one_hair(60.0, 5.0)
    before = img.copy()
    first = measure_image(img, um_per_px=5.0)
    np.testing.assert_array_equal(img, before)
    second = measure_image(img, um_per_px=5.0)
    assert first.to_json("a") == second.to_json("a")
    as_float = img.astype(np.float64) / 255.0
    before_f = as_float.copy()
    measure_image(as_float, um_per_px=5.0)
    np.testing.assert_array_equal(as_float, before_f)


def test_greyscale_and_uint16_are_measured():
    img, _, _ = _one_hair(60.0, 5.0)
    grey = img.mean(axis=2).astype(np.uint8)
    assert measure_image(grey, um_per_px=5.0).hair_count == 1
    wide = img.astype(np.uint16) * 257
    assert measure_image(wide, um_per_px=5.0).hair_count == 1


@pytest.mark.parametrize(
    "image",
    [
        np.full((40, 40, 3), np.nan),
        np.zeros((4, 40, 40, 3)),
        np.zeros((40, 40, 4)),
        np.zeros(40),
        np.zeros((40, 40), dtype=bool),
    ],
    ids=["nan", "4d", "rgba", "1d", "bool"],
)
def test_bad_image_is_input_error(image):
    with pytest.raises(InputError, match="image"):
        measure_image(image, um_per_px=5.0)


@pytest.mark.parametrize("um", [0.0, -1.0, float("nan"), None, "x"])
def test_bad_calibration_is_input_error(um):
    with pytest.raises(InputError, match="um_per_px"):
        measure_image(np.zeros((40, 40), np.uint8), um_per_px=um)


def test_result_is_frozen():
    res = measure_image(np.zeros((40, 40), np.uint8), um_per_px=5.0)
    assert isinstance(res, ImageMeasurement)
    with pytest.raises(AttributeError):
        res.um_per_px = 3.0  # type: ignore[misc]


def test_light_hair_on_dark_skin_needs_light_pass():
    um = 5.0
    img = draw.skin((300, 400), seed=11, tone=(0.35, 0.22, 0.15))
    pts = draw.straight(90, 150, 15, 220)
    # a grey shaft scatters light back: brighter than dark skin (draw as negative absorption)
    draw.draw_hair(img, pts, diameter_px=14, absorb=-0.35)
    img = np.clip(img, 0, 1)
    u8 = draw.finish(img, blur_px=1.0)
    assert measure_image(u8, um_per_px=um).hair_count == 0
    res = measure_image(u8, um_per_px=um, config=MeasureConfig(light_hairs=True))
    assert res.hair_count == 1
    # a bright (scattering) shaft is not a Beer-Lambert absorber: the width is approximate
    assert abs(res.hairs[0].diameter_um - 70) <= 0.25 * 70


def test_end_strips_all_at_once_match_one_by_one():
    """The batched strip means past shaft ends equal the mean of each strip's samples."""
    import cv2

    from hairtrial.measure import core

    rng = np.random.default_rng(3)
    od = rng.random((80, 120)).astype(np.float32)
    count = 25
    origin = np.column_stack([rng.uniform(-5, 125, count), rng.uniform(-5, 85, count)])
    angle = rng.uniform(0, 2 * np.pi, count)
    direction = np.column_stack([np.cos(angle), np.sin(angle)])
    diameter = rng.uniform(1, 12, count)
    reach = rng.uniform(5, 40, count)
    side = rng.uniform(-10, 10, count)
    got = core._strip_means(od, origin, direction, diameter, reach, side)
    for i in range(count):
        normal = np.array([-direction[i, 1], direction[i, 0]])
        start = 0.5 * diameter[i] + 1.5
        along = np.linspace(start, start + reach[i], 8)
        across = np.linspace(-0.5, 0.5, 5) * max(diameter[i], 2.0) + side[i]
        px = origin[i, 0] + along[:, None] * direction[i, 0] + across[None, :] * normal[0]
        py = origin[i, 1] + along[:, None] * direction[i, 1] + across[None, :] * normal[1]
        inside = (px >= 0) & (px <= 119) & (py >= 0) & (py <= 79)
        if inside.mean() < 0.5:
            assert np.isnan(got[i])
            continue
        vals = cv2.remap(od, px.astype(np.float32), py.astype(np.float32), cv2.INTER_LINEAR)
        assert got[i] == pytest.approx(float(np.mean(vals[inside])), abs=1e-6)
    assert np.isnan(got).any() and np.isfinite(got).any()


def test_float_pixels_above_one_are_judged_like_the_integer_image():
    """A 0–255 float image gives the uint8 image's hairs: the ink check (is a trace dark in
    every channel?) scales the trace's pixels by the image's maximum, not by their own."""
    img = draw.skin((260, 360), seed=4)
    draw.draw_hair(img, draw.straight(60, 60, 20, 220), diameter_px=14)
    # a red pen line: absorbs green and blue, hardly red
    draw.draw_hair(img, draw.straight(40, 200, -10, 260), diameter_px=6, color=(0.02, 1.0, 1.0))
    as_uint8 = draw.finish(img, seed=4)
    as_float = as_uint8.astype(np.float64)  # 0..255 floats
    a = measure_image(as_uint8, um_per_px=5.0)
    b = measure_image(as_float, um_per_px=5.0)
    assert a.hair_count == 1
    assert len(b.hairs) == len(a.hairs)
    for h, g in zip(a.hairs, b.hairs, strict=True):
        assert g.diameter_um == pytest.approx(h.diameter_um, abs=0.1)
        assert g.exit_px == pytest.approx(h.exit_px, abs=0.5)


def test_burned_in_scale_bar_is_not_a_hair():
    """A thin L-shaped scale bar drawn on the pixel grid after imaging is not counted."""
    img, _, _ = _one_hair(60.0, 5.0)
    with_bar = img.copy()
    with_bar[200:270, 30] = 20  # vertical arm, 1 px (5 µm) wide, exactly along a column
    with_bar[269, 30:130] = 20  # horizontal arm along a row
    res = measure_image(with_bar, um_per_px=5.0)
    assert res.hair_count == measure_image(img, um_per_px=5.0).hair_count == 1
    assert all(h.exit_px is None or h.diameter_um >= 10.0 for h in res.hairs)


def test_scale_bar_among_translucent_hairs_is_not_a_hair():
    """A ruler drawn on a blurred image stays out where the hairs give a pigment prior.

    Six translucent 75 µm hairs (k = 0.6) under a 3 px blur measure the image's pigment;
    fitted with it, the 2 px (5 µm) lines of a sharp L-shaped ruler would read as wide
    as a hair of that pigment (~20 µm). The graphics test takes the width the line's own
    profile gives.
    """
    img, ruled = _ruled_field(absorb=0.6, blur_px=3.0, stroke_px=2, darkness=0.35)
    res = measure_image(ruled, um_per_px=2.5)
    assert res.hair_count == measure_image(img, um_per_px=2.5).hair_count == 6
    assert all(h.exit_px is None or h.exit_px[0] > 150 for h in res.hairs)


def _ruled_field(
    *, absorb: float, blur_px: float, stroke_px: int, darkness: float
) -> tuple[np.ndarray, np.ndarray]:
    """Six 75 µm hairs at 2.5 µm/px, and the same field with an L-shaped ruler drawn on it.

    The ruler's strokes (`stroke_px` wide, multiplying the pixels by `darkness`) are
    drawn after the blur, on the pixel grid, as a device draws them.
    """
    img = draw.skin((400, 560), seed=4)
    for i in range(6):
        exit_xy = (170.0 + 60.0 * i, 60.0)
        draw.draw_subsurface(img, draw.straight(*exit_xy, 260.0, 50.0), diameter_px=30.0)
        draw.draw_hair(img, draw.straight(*exit_xy, 80.0, 250.0), diameter_px=30.0, absorb=absorb)
    plain = draw.finish(img, blur_px=blur_px, seed=4, noise=0.02)
    ruled = plain.astype(np.float64)
    ruled[40:380, 30 : 30 + stroke_px] *= darkness
    ruled[380 - stroke_px : 380, 30:150] *= darkness
    return plain, ruled.astype(np.uint8)


@pytest.mark.parametrize("stroke_px", [2, 3])
def test_scale_bar_sharper_than_the_blur_is_not_a_hair(stroke_px):
    """A ruler's stroke drawn on a strongly blurred image is sharper than any imaged shaft.

    Under a 5 px blur its free fit reads a little over the thinnest hair (on Huashan's
    scale bars, 10–11 µm for a 2 px stroke); its width at half absorptance (2–3 px) is
    far under the blur's own (~12 px), which no shaft imaged through the optics can be.
    """
    img, ruled = _ruled_field(absorb=1.5, blur_px=5.0, stroke_px=stroke_px, darkness=0.37)
    res = measure_image(ruled, um_per_px=2.5)
    assert res.hair_count == measure_image(img, um_per_px=2.5).hair_count == 6
    assert all(h.exit_px is None or h.exit_px[0] > 150 for h in res.hairs)


def test_characters_of_a_label_are_not_hairs():
    """The strokes of a burned-in label ("1.0 mm") outlined by a box are not traced."""
    img = draw.skin((400, 560), seed=12)
    draw.draw_subsurface(img, draw.straight(300.0, 80.0, 260.0, 50.0), diameter_px=24.0)
    draw.draw_hair(img, draw.straight(300.0, 80.0, 80.0, 200.0), diameter_px=24.0, absorb=1.5)
    u8 = draw.finish(img, blur_px=2.0, seed=12)
    rng = np.random.default_rng(12)
    u8[330:356, 120:230] = np.clip(70 + rng.normal(0, 2.5, (26, 110, 3)), 0, 255).astype(np.uint8)
    for x in range(128, 222, 9):
        u8[335:351, x : x + 3] = 230  # the characters' strokes
    u8[342:345, 150:200] = 230
    res = measure_image(u8, um_per_px=2.5)
    assert res.hair_count == 1
    (hair,) = [h for h in res.hairs if h.exit_px is not None]
    assert hair.exit_px[1] < 120


@pytest.mark.parametrize("angle", [0.0, 90.0])
def test_thin_hair_along_a_pixel_row_or_column_is_kept(angle):
    """A vellus hair lying exactly along the grid is still a hair: it is not thinner than one."""
    img = draw.skin((260, 300), seed=5)
    exit_xy = (60.0, 40.0) if angle == 90.0 else (40.0, 120.0)
    draw.draw_subsurface(img, draw.straight(*exit_xy, angle + 180.0, 40.0), diameter_px=4.0)
    draw.draw_hair(img, draw.straight(*exit_xy, angle, 160.0), diameter_px=4.0, absorb=1.5)
    res = measure_image(draw.finish(img, blur_px=0.8, seed=5), um_per_px=5.0)
    assert res.hair_count == 1
    assert res.hairs[0].diameter_um >= 10.0


@pytest.mark.parametrize("level", [250, 5])
def test_device_bar_at_the_bottom_leaves_no_shaft_along_its_edge(level):
    """A flat white (or black) status bar is masked and its edge is not traced as a hair."""
    img, _, _ = _one_hair(60.0, 5.0)
    barred = img.copy()
    barred[-24:] = level
    res = measure_image(barred, um_per_px=5.0)
    assert res.hair_count == 1
    assert all(max(y for _, y in h.centerline_px) < 300 - 30 for h in res.hairs)
    # the rows it hides edge to edge, for tracking (the JSON contract is unchanged)
    assert res.hidden_rows == (0, 27)
    assert measure_image(img, um_per_px=5.0).hidden_rows == (0, 0)
    assert set(res.to_json("barred.png")) == JSON_KEYS


def test_hair_entering_beside_a_status_bars_labels_is_not_counted():
    """A status bar hides skin under its labels only: a hair entering the field from
    above, beside them, is seen crossing the image's edge and is not counted (with the
    bar's rows masked edge to edge its end at the bar read as its exit). A hair leaving
    the skin in the field is counted, and the bar's rows stay hidden for tracking."""
    img = draw.skin((300, 420), seed=11)
    draw.draw_hair(img, draw.straight(330.0, -5.0, 100.0, 180.0), diameter_px=14.0, absorb=1.5)
    draw.draw_subsurface(img, draw.straight(120.0, 150.0, 280.0, 50.0), diameter_px=14.0)
    draw.draw_hair(img, draw.straight(120.0, 150.0, 100.0, 120.0), diameter_px=14.0, absorb=1.5)
    u8 = draw.finish(img, blur_px=1.0, seed=11)
    for x0, x1 in ((4, 70), (80, 170), (180, 250)):  # label boxes with lines of text
        u8[2:24, x0:x1] = (70, 70, 72)
        for x in range(x0 + 6, x1 - 6, 7):
            u8[7:19, x : x + 3] = 235
    res = measure_image(u8, um_per_px=5.0)
    assert res.hidden_rows == (26, 0)
    assert res.hair_count == 1
    (counted,) = [h for h in res.hairs if h.exit_px is not None]
    assert np.hypot(counted.exit_px[0] - 120.5, counted.exit_px[1] - 150.5) < 8.0
    entering = [h for h in res.hairs if h.exit_px is None]
    assert len(entering) == 1 and min(y for _, y in entering[0].centerline_px) < 5.0


@pytest.mark.parametrize("col", [7.0, 404.0])
def test_hair_along_the_image_border_is_measured(col):
    """A 60 µm shaft lying along the left or right edge keeps its diameter.

    Every profile across it (about 22 px each side) runs out of the image on one side;
    the samples inside still measure it. (Before, such a shaft took 22.7 µm, the fit of
    a flat profile.)
    """
    img = draw.skin((300, 420), seed=6)
    draw.draw_hair(img, draw.straight(col, 20.0, 90.0, 260.0), diameter_px=12.0, absorb=1.5)
    res = measure_image(draw.finish(img, blur_px=1.0, seed=6), um_per_px=5.0)
    assert len(res.hairs) == 1
    assert res.hairs[0].diameter_um == pytest.approx(60.0, rel=0.05)


@pytest.mark.parametrize("col", [2.0, 6.0])
def test_band_cut_by_the_border_is_not_split_into_a_bundle(col):
    """A 200 µm dark band running out of the image is not measured from its inner half.

    Its far edge lies beyond the border, so its width is unknown and it is never split
    into several touching hairs: at most one trace is reported.
    """
    img = draw.skin((300, 420), seed=7)
    draw.draw_hair(img, draw.straight(col, 20.0, 90.0, 260.0), diameter_px=40.0, absorb=1.5)
    res = measure_image(draw.finish(img, blur_px=1.0, seed=7), um_per_px=5.0)
    assert len(res.hairs) <= 1


@pytest.mark.parametrize("sep", [17.0, 19.0])
def test_touching_pair_traced_twice_is_not_also_split(sep):
    """Two ~90 µm hairs lying side by side, touching, each with its own crest.

    Each trace's profile spans both shafts and reads wider than any hair, but the other
    hair of that band is traced already: the field holds 5 hairs, not 7.
    """
    img = draw.skin((360, 300), seed=34)
    draw.draw_hair(img, draw.straight(140, 60, 88, 240), diameter_px=sep, absorb=1.5)
    draw.draw_hair(img, draw.straight(140 + sep, 60, 88, 240), diameter_px=sep, absorb=1.5)
    for x in (40, 70, 250):
        draw.draw_hair(img, draw.straight(x, 40, 95, 250), diameter_px=16, absorb=1.5)
    res = measure_image(draw.finish(img, blur_px=1.0, seed=34), um_per_px=5.0)
    assert res.hair_count == 5
    assert all(60.0 < h.diameter_um < 110.0 for h in res.hairs)


@pytest.mark.parametrize("sep", [14.0, 16.0])
def test_thin_hair_touching_a_thick_one_is_measured_on_its_own(sep):
    """A 40 µm hair lying against a 100 µm one: each profile of the thin hair spans the
    thick shaft on one side. Those samples lie on the other trace's shaft and are left
    out of the fit, so each hair keeps its own diameter."""
    img = draw.skin((260, 400), seed=3)
    draw.draw_hair(img, draw.straight(40, 110, 0, 320), diameter_px=8, absorb=1.2)
    draw.draw_hair(img, draw.straight(40, 110 + sep, 0, 320), diameter_px=20, absorb=1.5)
    res = measure_image(draw.finish(img, blur_px=1.0, seed=4), um_per_px=5.0)
    thin, thick = sorted(h.diameter_um for h in res.hairs)
    assert 35.0 < thin < 45.0
    assert 92.0 < thick < 108.0


@pytest.mark.parametrize("angle", [20.0, 25.0])
def test_two_hairs_meeting_end_to_end_at_an_angle_are_two(angle):
    """Two clipped 80 µm hairs, the cut end of one touching the other's, at 20–25°.

    The crest runs on from one into the other and the turn is under the corner test's
    30°, but it is made at one point with straight shaft either side: a kink, not a bend.
    """
    img = draw.skin((360, 460), seed=35)
    draw.draw_hair(img, draw.straight(40, 120, 0, 200), diameter_px=16, absorb=1.5)
    draw.draw_hair(img, draw.straight(238, 120, angle, 200), diameter_px=16, absorb=1.5)
    res = measure_image(draw.finish(img, blur_px=1.0, seed=35), um_per_px=5.0)
    assert len(res.hairs) == 2
    assert all(abs(h.length_um - 1000.0) < 100.0 for h in res.hairs)


@pytest.mark.parametrize("faint", [True, False])
def test_wide_band_is_split_into_hairs_only_where_it_is_as_dark_as_they_are(faint):
    """A band three hairs wide is split into side-by-side hairs only if it is dark.

    Beside four opaque 80 µm hairs, a faint 200 µm band (a pigment blotch's edge, its
    absorptance a fifth of theirs) is one trace, not two hairs; two opaque hairs lying
    side by side, traced as one band, are still two.
    """
    seed = 21 if faint else 22
    img = draw.skin((420, 560), seed=seed)
    for k in range(4):
        draw.draw_hair(
            img, draw.straight(300.0 + 60 * k, 60.0, 80.0, 250.0), diameter_px=16.0, absorb=1.5
        )
    if faint:
        draw.draw_hair(img, draw.straight(80.0, 60.0, 85.0, 280.0), diameter_px=40.0, absorb=0.2)
    else:
        for dx in (-8.5, 8.5):
            draw.draw_hair(
                img, draw.straight(80.0 + dx, 60.0, 90.0, 280.0), diameter_px=17.0, absorb=1.5
            )
    res = measure_image(draw.finish(img, blur_px=1.0, seed=seed), um_per_px=5.0)
    band = [h for h in res.hairs if np.asarray(h.centerline_px)[:, 0].mean() < 200]
    assert len(band) == (1 if faint else 2)
    assert res.hair_count == 4 + len(band)


def test_fanning_pair_traced_as_one_is_measured_where_narrowest():
    """Two 80 µm shafts fanning out of one opening at 3° merge into one widening trace.

    The whole trace's median profile is that of both shafts (about 118 µm); the proximal
    section, where they still overlap, gives one shaft's diameter.
    """
    img = draw.skin((360, 460), seed=2)
    for a in (-1.5, 1.5):
        draw.draw_hair(img, draw.straight(80, 180, a, 300), diameter_px=16, absorb=1.5)
    res = measure_image(draw.finish(img, blur_px=1.0, seed=2), um_per_px=5.0)
    assert len(res.hairs) == 1
    assert 70.0 < res.hairs[0].diameter_um < 100.0


def test_second_crest_inside_a_measured_shaft_is_dropped():
    """A trace inside the measured width of a longer one is a second crest of that shaft.

    A 16 px shaft with a second crest 5 px off its axis keeps one trace; a neighbour
    17 px away, outside its width, is kept.
    """
    from hairtrial.measure import core

    x = np.linspace(20.0, 220.0, 201)
    shaft = np.column_stack([x, np.full_like(x, 100.0)])
    second = np.column_stack([x[40:160], np.full(120, 105.0)])
    neighbour = np.column_stack([x[40:160], np.full(120, 117.0)])
    od = np.zeros((200, 260), dtype=np.float32)
    cv2.line(od, (20, 100), (220, 100), 0.8, thickness=16)
    keep = core._outside_wider([second, shaft, neighbour], np.array([6.0, 16.0, 16.0]), od)
    assert keep.tolist() == [False, True, True]


def test_arm_of_a_narrow_v_is_not_a_second_crest():
    """Two 8 px hairs parting at 6° from one opening: the shared stretch widens the
    trunk's measured shaft to 24 px, which holds most of the arm, but skin lies between
    the two wherever they are apart, so the arm is a hair of its own."""
    from hairtrial.measure import core

    x = np.linspace(40.0, 220.0, 181)
    trunk = np.column_stack([np.linspace(40.0, 250.0, 211), np.full(211, 100.0)])
    arm = np.column_stack([x, 100.0 + (x - 40.0) * np.tan(np.radians(6.0))])
    od = np.zeros((200, 280), dtype=np.float32)
    for line in (trunk, arm):
        cv2.polylines(od, [np.round(line).astype(np.int32)], False, 0.8, thickness=8)
    od = cv2.GaussianBlur(od, (0, 0), 1.0)
    assert core._outside_wider([trunk, arm], np.array([24.0, 8.0]), od).tolist() == [True, True]
    # one band 24 px wide holding both crests: the arm is its second crest
    band = np.zeros_like(od)
    cv2.line(band, (40, 104), (250, 104), 0.8, thickness=24)
    assert core._outside_wider([trunk, arm[:120]], np.array([24.0, 8.0]), band).tolist() == [
        True,
        False,
    ]


@pytest.mark.parametrize("d_px", [17.0, 19.0])
def test_vellus_hair_beside_a_terminal_one_is_not_a_second_crest(d_px):
    # a terminal shaft answers best at a detection scale up to ~1.6 x its width: a
    # footprint that wide swallowed a vellus hair lying 4 px off its edge
    um, vellus_px = 5.0, 2.5
    img = draw.skin((300, 420), seed=7)
    draw.draw_hair(img, draw.straight(60, 150, 0, 300), diameter_px=d_px, absorb=1.5)
    y = 150 + d_px / 2 + 4.0 + vellus_px / 2
    draw.draw_hair(img, draw.straight(80, y, 0, 240), diameter_px=vellus_px, absorb=0.8)
    res = measure_image(draw.finish(img, blur_px=1.0, seed=7), um_per_px=um)
    assert res.hair_count == 2
    thin = min(res.hairs, key=lambda h: h.diameter_um)
    assert thin.diameter_um < 30
    assert abs(np.median(np.asarray(thin.centerline_px)[:, 1]) - (y + 0.5)) < 2


def test_short_thick_shaft_is_a_hair_and_a_round_dot_is_not():
    # a 105 µm shaft 200 µm long answers best at the 150 µm detection scale; judged by
    # that scale it was "shorter than 1.5 diameters", a blob
    um = 5.0
    img = draw.skin((200, 200), seed=3)
    draw.draw_hair(img, draw.straight(70, 100, 20, 40), diameter_px=21, absorb=1.5)
    res = measure_image(draw.finish(img, blur_px=1.0, seed=3), um_per_px=um)
    assert res.hair_count == 1
    assert 150 <= res.hairs[0].length_um <= 250
    img = draw.skin((200, 200), seed=3)
    draw.draw_hair(img, draw.straight(95, 100, 20, 10), diameter_px=21, absorb=1.5)
    res = measure_image(draw.finish(img, blur_px=1.0, seed=3), um_per_px=um)
    assert res.hair_count == 0


def test_elongation_and_side_share_of_a_band_and_of_a_patch():
    from hairtrial.measure.core import _elongations, _side_share

    od = np.zeros((120, 200), np.float32)
    od[55:65, 40:160] = 0.5  # a 120 x 10 px band
    yy, xx = np.mgrid[0:120, 0:200]
    patch = np.zeros_like(od)
    patch[np.hypot(xx - 100, yy - 60) <= 35] = 0.5  # a disc ...
    patch[59:62, 80:120] = 0.8  # ... with a brighter streak inside
    band_axis = np.column_stack([np.linspace(45, 155, 50), np.full(50, 59.5)])
    streak = np.column_stack([np.linspace(82, 118, 20), np.full(20, 60.0)])
    el = _elongations(od, [band_axis])
    assert 120 / 10 * 0.8 <= el[0] <= 120 / 10 * 1.2
    assert _elongations(patch, [streak])[0] < 1.5  # the streak's patch is round
    assert _side_share(od, [band_axis], [10.0])[0] < 0.05
    assert _side_share(patch, [streak], [3.0])[0] > 0.5


@pytest.mark.parametrize("angle", [8.0, 12.0])
def test_both_hairs_of_a_narrow_v_are_traced_through_their_shared_stretch(angle):
    """Two 70 µm hairs leave one opening 8–12° apart and overlap for ~d / sin θ.

    The crest of the shared stretch goes to one of them; the other's crest began where
    they part, and it was measured ~70 px short of its 220 px. It now runs on inside
    the other shaft back to the opening. Where the shared stretch has a crest of its
    own, both hairs run on along it, and it is not counted as a third hair.
    """
    img = draw.skin((300, 480), seed=5)
    draw.draw_hair(img, draw.straight(60, 150, 0.0, 320), diameter_px=14, absorb=1.5)
    draw.draw_hair(img, draw.straight(60, 150, angle, 220), diameter_px=14, absorb=1.5)
    res = measure_image(draw.finish(img, blur_px=1.0, seed=5), um_per_px=5.0)
    lengths = sorted(h.length_um / 5.0 for h in res.hairs)
    # the shared stretch's own crest, which both run along, is not a third hair
    assert len(res.hairs) == 2, lengths
    for true_px in (220.0, 320.0):
        best = min(res.hairs, key=lambda h: abs(h.length_um / 5.0 - true_px))
        assert abs(best.length_um / 5.0 - true_px) < 0.08 * true_px, lengths
        ends = np.asarray(best.centerline_px)[[0, -1]]
        assert np.min(np.hypot(ends[:, 0] - 60.5, ends[:, 1] - 150.5)) < 15.0
        assert 55.0 < best.diameter_um < 85.0


def test_run_on_stops_at_the_partners_end_and_not_beside_it():
    """The run-on follows the other shaft to its end, not out of its side."""
    from hairtrial.measure import core

    od = np.zeros((120, 300), np.float32)
    yy, xx = np.mgrid[0:120, 0:300]
    partner = (np.abs(yy - 60) <= 6) & (xx >= 40) & (xx <= 260)  # 13 px shaft, x 40..260
    od[partner] = 0.7
    # a hair lying 3 px off the partner's axis from x = 150 on, its crest traced from 250
    # back to 150, where it meets the partner's shaft; it really goes on to x = 40
    od[(np.abs(yy - 63) <= 6) & (xx >= 40) & (xx <= 250)] = 0.7
    trace = np.column_stack([np.linspace(250.0, 150.0, 101), np.full(101, 63.0)])
    axis = np.column_stack([np.linspace(40.0, 260.0, 221), np.full(221, 60.0)])
    cands = [
        core._Candidate(points=axis, diameter_px=13.0, strength=0.7),
        core._Candidate(points=trace, diameter_px=13.0, strength=0.7),
    ]
    out = core._run_on_into_partners(cands, np.array([13.0, 13.0]), od)
    run = out[1]
    assert run.core is not None and len(run.core) == 101
    assert run.points[:, 0].min() == pytest.approx(40.0, abs=3.0)  # to the partner's end
    assert out[0].core is None  # the partner's ends lie on no other shaft
    # a hair meeting the partner end to end at 15°: the straight run leaves the
    # partner's side half-way along it, on bare skin; that is where the hair ended
    tilt = np.deg2rad(15.0)
    steps = np.arange(101.0)
    side = np.column_stack([150.0 + steps * np.cos(tilt), 63.0 + steps * np.sin(tilt)])
    od2 = np.zeros_like(od)
    od2[partner] = 0.7
    for x, y in side:
        od2[round(y) - 6 : round(y) + 7, round(x) - 1 : round(x) + 2] = 0.7
    ended = core._Candidate(points=side[::-1].copy(), diameter_px=13.0, strength=0.7)
    out2 = core._run_on_into_partners([cands[0], ended], np.array([13.0, 13.0]), od2)
    assert out2[1].core is None


@pytest.mark.parametrize(("sep", "d_px"), [(14, 18), (12, 18), (13, 14)])
def test_partner_lying_against_a_longer_hair_is_a_second_hair(sep, d_px):
    """A unit partner lying partly over a longer 90 µm hair from the shared opening on.

    One crest runs down the band the two make and on into the longer hair; the width
    at half depth steps from about two shafts to one where the partner's cut end lies.
    The partner is reported over that stretch, on its side of the band, leaving the
    same opening."""
    img = draw.skin((320, 480), seed=5)
    a = np.deg2rad(10.0)
    along, across = np.array([np.cos(a), np.sin(a)]), np.array([-np.sin(a), np.cos(a)])
    exit_xy = np.array([60.0, 120.0])
    root = draw.straight(*(exit_xy + 0.5 * sep * across), 190.0, 60.0)
    draw.draw_subsurface(img, root, diameter_px=18 + sep)
    draw.draw_hair(img, draw.straight(*exit_xy, 10.0, 340), diameter_px=18, absorb=1.5)
    partner = exit_xy + sep * across
    draw.draw_hair(img, draw.straight(*partner, 10.0, 150), diameter_px=d_px, absorb=1.5)
    res = measure_image(draw.finish(img, blur_px=1.0, seed=5), um_per_px=5.0)
    assert res.hair_count == 2
    long_hair, short_hair = sorted(res.hairs, key=lambda h: -h.length_um)
    assert abs(long_hair.length_um - 1700.0) < 100.0
    assert 80.0 < long_hair.diameter_um < 100.0
    # the partner: its stretch, its side of the band, its opening
    assert 550.0 < short_hair.length_um < 800.0
    mid = np.asarray(short_hair.centerline_px).mean(axis=0) - 0.5
    offset = (mid - exit_xy) @ across
    assert abs(offset - sep) < 4.0
    for h in res.hairs:
        assert h.exit_px is not None
        assert (np.asarray(h.exit_px) - 0.5 - exit_xy) @ along < 40.0
    assert short_hair.diameter_um > 0.4 * d_px * 5.0


def test_band_edges_of_one_and_two_shafts():
    """Half-depth edges of a flat band and of a band twice as wide; unknown samples next
    to the band, or a band running off the profile, leave the edges unknown."""
    from hairtrial.measure import core

    offsets = np.linspace(-20.0, 20.0, 41)
    one = np.where(np.abs(offsets) <= 4.0, 0.2, 1.0)
    two = np.where((offsets >= -4.0) & (offsets <= 12.0), 0.2, 1.0)
    hidden = one.copy()
    hidden[25] = np.nan  # another traced shaft right beside the band
    wide = np.where(offsets >= -6.0, 0.2, 1.0)  # runs off the profile on one side
    lo, hi = core._band_edges(offsets, np.vstack([one, two, hidden, wide]))
    assert lo[0] == pytest.approx(-4.5) and hi[0] == pytest.approx(4.5)
    assert lo[1] == pytest.approx(-4.5) and hi[1] == pytest.approx(12.5)
    assert np.isnan(lo[2]) and np.isnan(hi[2])
    assert np.isnan(lo[3]) and np.isnan(hi[3])


def test_trim_ends_cuts_back_to_the_visible_shaft_trace_by_trace() -> None:
    """Faint run-on past a shaft's ends is cut, a blue-grey end too; short traces stay."""
    from hairtrial.measure import core

    od = np.zeros((40, 200), np.float32)
    od[18:23, 40:160] = 0.6  # the shaft, x 40-159
    od[18:23, 20:40] = 0.15  # a faint run-on past each end (the blurred shaft end)
    od[18:23, 160:180] = 0.15
    along = np.column_stack([np.arange(20.0, 180.0), np.full(160, 20.0)])
    short = along[:5]
    got = core._trim_ends([along, short], od)
    assert got[1] is short
    assert got[0][0, 0] == pytest.approx(40.0, abs=1.5)
    assert got[0][-1, 0] == pytest.approx(159.0, abs=1.5)
    # as dark as the shaft, but blue-grey over its last 30 px: pigment under the skin
    dark = np.zeros_like(od)
    dark[18:23, 40:160] = 0.6
    blue = np.zeros_like(od)
    blue[18:23, 130:160] = 0.3
    shaft = core._trim_ends([along[20:140]], dark, blue)[0]
    assert shaft[0, 0] == pytest.approx(40.0, abs=1.5)
    assert 125.0 <= shaft[-1, 0] <= 135.0
    assert core._trim_ends([], od, blue) == []


def test_straight_where_grey_drops_curved_traces_seen_by_colour_only():
    # a trace lying mostly where only the grey contrast shows a shaft must run straight;
    # a curved trace the darkness shows is not judged here
    from hairtrial.measure import core

    mask = np.zeros((200, 200), dtype=bool)
    straight = np.column_stack([np.linspace(20, 120, 50), np.full(50, 40.0)])
    ang = np.linspace(0, np.pi, 50)
    arc = np.column_stack([100 + 40 * np.cos(ang), 120 + 40 * np.sin(ang)])
    for pts in (straight, arc):
        mask[np.rint(pts[:, 1]).astype(int), np.rint(pts[:, 0]).astype(int)] = True
    dark_arc = arc + np.array([0.0, -60.0])  # off the mask
    cands = [
        core._Candidate(points=p, diameter_px=6.0, strength=0.3) for p in (straight, arc, dark_arc)
    ]
    np.testing.assert_array_equal(core._straight_where_grey(cands, mask, 1.0), [True, False, True])
    # at half resolution the working points map onto the same full-resolution pixels
    half = [
        core._Candidate(points=(c.points + 0.5) / 2.0 - 0.5, diameter_px=3.0, strength=0.3)
        for c in cands
    ]
    np.testing.assert_array_equal(core._straight_where_grey(half, mask, 2.0), [True, False, True])


def test_detected_shaft_carries_its_width_for_the_profile_window():
    # the detection scales are a factor ~2 apart: a sharp 20 px (100 µm) shaft answers
    # best at the 30 px scale, and its profiles are windowed by its own width instead
    from hairtrial.measure import core

    img = draw.skin((200, 300), seed=4)
    draw.draw_hair(img, draw.straight(40, 100, 0, 220), diameter_px=20.0, absorb=2.0)
    u8 = draw.finish(img, blur_px=0.5, seed=4)
    od = core.absorptance_image(u8, um_per_px=5.0)
    cands = core._detect(od, None, 5.0, MeasureConfig())
    shaft = max(cands, key=lambda c: len(c.points))
    assert shaft.diameter_px > 25.0  # the detection scale
    assert shaft.width_px is not None
    assert 17.0 <= shaft.width_px <= 23.0
    hair = max(measure_image(u8, um_per_px=5.0).hairs, key=lambda h: h.length_um)
    assert hair.diameter_um == pytest.approx(100.0, abs=3.0)
