"""Device-overlay masking: flat label boxes and status bars at the top or bottom."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from hairtrial.measure import _absorbance


def _plain_overlay_mask(channels: np.ndarray) -> np.ndarray:
    """The rule on the whole image at once (the oracle for the slab-wise version)."""
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
