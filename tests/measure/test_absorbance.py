"""Device-overlay masking: flat label boxes and status bars at the top or bottom."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from hairtrial.measure import _absorbance


def _plain_overlay_mask(channels: np.ndarray) -> np.ndarray:
    """The rule on the whole image at once (the oracle for the slab-wise version).

    Its status bars are masked edge to edge: the bars of the tests using it are solid,
    which step across the whole width (labels with skin beside them: tested apart).
    """
    m, n = channels.shape[:2]
    grey = np.asarray(cv2.cvtColor(channels, cv2.COLOR_RGB2GRAY), np.float32)
    mean = cv2.blur(grey, (7, 7))
    var = cv2.blur(grey * grey, (7, 7)) - mean * mean
    flat = (var < (0.6 / 255.0) ** 2).astype(np.uint8)
    mask = np.zeros((m, n), dtype=bool)
    band = max(4, round(0.08 * m))
    edge_rows = (np.abs(np.diff(grey, axis=0)) > 20.0 / 255.0).mean(axis=1) >= 0.33
    top = np.nonzero(edge_rows[:band])[0]
    if top.size:
        mask[: int(top.max()) + 3] = True
    bottom = np.nonzero(edge_rows[m - 1 - band :])[0]
    if bottom.size:
        mask[max(0, m - 1 - band + int(bottom.min()) - 2) :] = True
    count, _, stats, _ = cv2.connectedComponentsWithStats(flat, connectivity=8)
    for label in range(1, count):
        x, y, w, h, area = (int(v) for v in stats[label])
        if area >= 150 and (y <= band or y + h >= m - band) and h <= 0.2 * m and w >= 12:
            mask[max(0, y - 4) : y + h + 4, max(0, x - 4) : x + w + 4] = True
    return mask


def _skin(shape: tuple[int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.array([0.78, 0.62, 0.55], np.float32)
    return np.clip(base + rng.normal(0, 0.02, (*shape, 3)), 0, 1).astype(np.float32)


# the flat patch of a uniform box is the box less 3 px on each side (7×7 window)
@pytest.mark.parametrize(
    ("box", "masked"),
    [
        ((5, 3, 60, 20), True),  # a label at the top
        ((300, 380, 80, 15), True),  # at the bottom
        ((150, 180, 60, 30), False),  # in the middle: skin-like backgrounds stay
        ((40, 20, 50, 70), True),  # reaches down into the field, still short
        ((40, 29, 50, 86), True),  # patch rows 32-111: the longest kept (0.2 × 400 rows)
        ((40, 29, 50, 87), False),  # one row more: reaches the search's last row
        ((200, 2, 8, 40), False),  # too narrow
    ],
)
def test_overlay_boxes_match_the_whole_image_rule(
    box: tuple[int, int, int, int], masked: bool
) -> None:
    image = _skin((400, 500), seed=sum(box))
    x, y, w, h = box
    image[y : y + h, x : x + w] = (0.1, 0.3, 0.9)
    got = _absorbance.overlay_mask(image)
    assert np.array_equal(got, _plain_overlay_mask(image))
    assert got[y + h // 2, x + w // 2] == masked
    if masked:  # the whole box and the pixel past its edge, not only its flat patch
        assert got[max(0, y - 1) : y + h + 1, max(0, x - 1) : x + w + 1].all()


def test_status_bar_edge_masks_the_rows_above_it() -> None:
    image = _skin((300, 400), seed=1)
    image[:14] = 0.05  # a dark bar with text-free flat fill ending in a straight edge
    got = _absorbance.overlay_mask(image)
    assert got[:14].all() and not got[40:].any()
    assert np.array_equal(got, _plain_overlay_mask(image))


def test_small_images_search_the_whole_field() -> None:
    image = _skin((60, 80), seed=2)
    image[20:35, 10:50] = 0.5
    assert np.array_equal(_absorbance.overlay_mask(image), _plain_overlay_mask(image))


@pytest.mark.parametrize("bar", [0.97, 0.05])
def test_skin_beside_a_status_bar_reads_as_bare_skin(bar: float) -> None:
    # a light grey bar left in the background estimate raised it over the skin above
    # the bar: the skin there read as absorbing (~0.1), and its edge as a dark shaft
    from hairtrial.measure import absorptance_image

    image = _skin((400, 520), seed=3)
    image[370:] = bar
    u8 = np.round(image * 255).astype(np.uint8)
    assert _absorbance.overlay_mask(image)[372:].all()
    od = absorptance_image(u8, um_per_px=5.0)
    assert abs(float(np.median(od[330:368]))) < 0.03
    assert abs(float(np.median(od[100:200]))) < 0.03


def test_background_left_as_it_is_when_the_overlay_is_most_of_the_image() -> None:
    # nothing to fill a mostly covered field from: the estimate is made as before
    image = _skin((120, 160), seed=4)
    exclude = np.zeros((120, 160), dtype=bool)
    exclude[:100] = True
    plain = _absorbance.skin_background(image, size_px=60.0, hair_px=30.0)
    got = _absorbance.skin_background(image, size_px=60.0, hair_px=30.0, exclude=exclude)
    assert np.array_equal(plain, got)
    part = exclude.copy()
    part[30:] = False
    assert not np.array_equal(
        plain, _absorbance.skin_background(image, size_px=60.0, hair_px=30.0, exclude=part)
    )


def _patches(skin, *colours):
    """One row of 8×8 patches: skin, then each colour, on a (8, 8·k) image and its skin."""
    k = 1 + len(colours)
    img = np.empty((8, 8 * k, 3), np.float32)
    for i, c in enumerate((skin, *colours)):
        img[:, 8 * i : 8 * (i + 1)] = c
    return img, np.broadcast_to(np.asarray(skin, np.float32), img.shape).copy()


def test_neutral_contrast_sees_a_grey_shaft_on_pink_skin_and_not_ink_flakes_or_pigment():
    pink = (0.75, 0.59, 0.56)
    grey, white = (0.62, 0.61, 0.60), (0.9, 0.9, 0.9)
    blue_ink, brown = (0.3, 0.35, 0.6), (0.2, 0.13, 0.1)
    img, bg = _patches(pink, grey, white, blue_ink, brown)
    out = _absorbance.neutral_contrast(
        img, bg, min_skin_chroma=0.15, max_chroma_share=0.5, min_darkening=0.02
    )
    per_patch = out.reshape(8, 5, 8).mean(axis=(0, 2))
    skin_chroma = float(np.linalg.norm(_absorbance.log_chroma(np.asarray(pink))))
    assert per_patch[0] == 0.0  # bare skin
    # a near-neutral patch moves the colour (nearly) all the way from the skin's to neutral
    assert per_patch[1] == pytest.approx(skin_chroma, abs=0.03)
    # the smallest-channel absorptance misses that shaft: it is brighter than skin in blue
    assert _absorbance.absorptance(img, bg)[:, 8:16].max() == 0.0
    # white flake (brighter in every channel), blue ink (coloured), brown pigment (darker
    # in every channel: the absorptance's to see)
    assert per_patch[2] == per_patch[3] == per_patch[4] == 0.0


def test_neutral_contrast_off_over_near_neutral_skin_and_for_greyscale():
    pale = (0.62, 0.6, 0.55)  # log chromaticity ~0.08: colour alone cannot reach 0.15
    img, bg = _patches(pale, (0.5, 0.5, 0.5))
    out = _absorbance.neutral_contrast(
        img, bg, min_skin_chroma=0.15, max_chroma_share=0.5, min_darkening=0.02
    )
    assert not out.any()
    grey1 = img[:, :, :1].copy()
    out1 = _absorbance.neutral_contrast(
        grey1, bg[:, :, :1].copy(), min_skin_chroma=0.0, max_chroma_share=0.5, min_darkening=0.02
    )
    assert out1.shape == (8, 16) and not out1.any()


def test_neutral_contrast_is_the_same_in_blocks():
    rng = np.random.default_rng(3)
    bg = np.broadcast_to(np.float32([0.75, 0.59, 0.56]), (600, 40, 3)).copy()
    img = np.clip(bg * rng.uniform(0.7, 1.1, size=bg.shape), 0.01, 1).astype(np.float32)
    kw = dict(min_skin_chroma=0.15, max_chroma_share=0.5, min_darkening=0.02)
    whole = _absorbance.neutral_contrast(img, bg, **kw)
    rows = [_absorbance.neutral_contrast(img[i : i + 1], bg[i : i + 1], **kw) for i in range(600)]
    np.testing.assert_allclose(whole, np.vstack(rows), atol=1e-6)


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (slice(0, 14), (16, 0)),  # the bar and the blurred row past its edge (mask rule)
        (slice(286, 300), (0, 17)),  # at the bottom (the mask takes a row more there)
        (slice(0, 0), (0, 0)),  # no bar
    ],
)
def test_overlay_bands_count_the_rows_a_status_bar_hides(
    rows: slice, expected: tuple[int, int]
) -> None:
    image = _skin((300, 400), seed=5)
    image[rows] = 0.05
    assert _absorbance.overlay_bands(image) == expected
    # an 8-bit image as read from a file gives the same rows
    u8 = np.round(image * 255).astype(np.uint8)
    assert _absorbance.overlay_bands(u8) == expected


def _labelled_bar(shape: tuple[int, int], seed: int) -> np.ndarray:
    """Skin under a status bar of three label boxes with lines of text, on the left."""
    image = _skin(shape, seed=seed)
    for x0, x1 in ((4, 70), (80, 170), (180, 250)):
        image[2:24, x0:x1] = 0.3
        for x in range(x0 + 6, x1 - 6, 7):
            image[7:19, x : x + 3] = 0.95
    return image


def test_status_bar_masks_its_labels_and_keeps_the_skin_beside_them() -> None:
    image = _labelled_bar((300, 420), seed=8)
    got = _absorbance.overlay_mask(image)
    # the labels, the gaps between them and a little past their ends
    assert got[:26, :255].all()
    # the skin beside them is imaged: a hair there is seen up to the image's edge
    assert not got[:, 262:].any()
    assert not got[30:].any()
    # the rows stay hidden for tracking: exits under the labels cannot be seen
    assert _absorbance.overlay_bands(image) == (26, 0)


def test_label_outlined_on_the_pixel_grid_is_masked_whatever_its_fill() -> None:
    # a scale bar's "1.0 mm" label above the bottom band: its fill shows text and noise
    # (not flat), its sides are sharp straight edges along pixel rows and columns
    image = _skin((400, 560), seed=9)
    rng = np.random.default_rng(9)
    image[330:356, 120:230] = np.clip(0.27 + rng.normal(0, 0.01, (26, 110, 3)), 0, 1)
    for x in range(128, 222, 9):
        image[335:351, x : x + 3] = 0.9
    got = _absorbance.overlay_mask(image)
    assert got[330:356, 120:230].all()
    assert not got[:320].any() and not got[362:].any()
    assert not got[:, :112].any() and not got[:, 238:].any()
    # a label is not a bar: the rows beside it are measured
    assert _absorbance.overlay_bands(image) == (0, 0)


def test_overlay_bands_leave_out_label_boxes() -> None:
    # a label box hides skin only under itself: other exits in its rows are seen
    image = _skin((400, 500), seed=6)
    image[3:23, 5:65] = (0.1, 0.3, 0.9)
    assert _absorbance.overlay_mask(image)[10, 30]
    assert _absorbance.overlay_bands(image) == (0, 0)


@pytest.mark.parametrize("channels", [3, 1])
def test_blue_shift_made_with_the_absorptance_is_red_less_blue_absorptance(channels: int) -> None:
    rng = np.random.default_rng(4)
    pixels = rng.uniform(0.0, 1.0, (40, 50, channels)).astype(np.float32)
    # a background darker than some pixels: unclipped ratios on both sides of 1
    background = rng.uniform(0.2, 1.0, (40, 50, channels)).astype(np.float32)
    blue = np.zeros((40, 50), dtype=np.float32)
    od = _absorbance.absorptance(pixels, background, blue_out=blue)
    np.testing.assert_array_equal(od, _absorbance.absorptance(pixels, background))
    if channels == 3:
        red_abs = 1.0 - pixels[:, :, 0] / background[:, :, 0]
        blue_abs = 1.0 - pixels[:, :, 2] / background[:, :, 2]
        np.testing.assert_array_equal(blue, red_abs - blue_abs)
        assert (blue < 0).any() and (blue > 0).any()
    else:
        np.testing.assert_array_equal(blue, 0.0)  # greyscale: left as given


def _field(shape=(300, 400), radius=170.0, seed=5):
    """Textured skin inside a round field of view, black (with sensor noise) outside."""
    rng = np.random.default_rng(seed)
    m, n = shape
    img = np.empty((m, n, 3), np.float32)
    img[:] = (0.8, 0.62, 0.5)
    img *= (1.0 + 0.03 * rng.standard_normal((m, n, 1))).astype(np.float32)
    yy, xx = np.mgrid[0:m, 0:n]
    inside = np.hypot(xx - n / 2, yy - m / 2) <= radius
    img[~inside] = 0.01 + 0.005 * rng.random((int((~inside).sum()), 3))
    img = cv2.GaussianBlur(img, (0, 0), 1.5)
    return np.clip(img, 0, 1).astype(np.float32), inside


def test_outside_field_masks_the_frame_round_a_round_field():
    img, inside = _field()
    out, imaged = _absorbance.outside_field(img, hair_px=30.0)
    assert imaged == pytest.approx(inside.sum(), rel=0.02)
    assert out[0, 0] and out[-1, -1] and out[0, -1] and out[-1, 0]
    assert out[~inside].all()  # the whole frame ...
    yy, xx = np.mgrid[0:300, 0:400]
    deep = np.hypot(xx - 200, yy - 150) <= 170 - 0.02 * 300 - 3
    assert not out[deep].any()  # ... grown over the rim only
    # a field that fills the image has no frame
    full, _ = _field(radius=1000.0)
    out, imaged = _absorbance.outside_field(full, hair_px=30.0)
    assert not out.any() and imaged == 300 * 400


def test_outside_field_leaves_a_black_shaft_in_a_corner_alone():
    img, _ = _field(radius=1000.0)
    # an opaque 24-px shaft from the top-left corner, 250 px long
    cv2.line(img, (0, 0), (200, 150), (0.01, 0.01, 0.01), thickness=24)
    assert not _absorbance.outside_field(img, hair_px=30.0)[0].any()


def test_outside_field_of_a_stop_wider_than_the_image_masks_its_corners():
    img, inside = _field(radius=225.0)  # only the corners lie outside the stop
    out, imaged = _absorbance.outside_field(img, hair_px=30.0)
    assert out[0, 0] and out[-1, -1] and not out[150, 5] and not out[5, 200]
    assert imaged == pytest.approx(inside.sum(), rel=0.03)


def test_outside_field_leaves_dark_corners_alone_when_their_edge_is_no_circle():
    img, _ = _field(radius=1000.0)
    # two opaque shafts, each lying in a corner of its own: flat and dark, no stop
    cv2.line(img, (0, 0), (140, 105), (0.01, 0.01, 0.01), thickness=24)
    cv2.line(img, (399, 299), (260, 195), (0.01, 0.01, 0.01), thickness=24)
    out, imaged = _absorbance.outside_field(img, hair_px=30.0)
    assert not out.any() and imaged == 300 * 400
