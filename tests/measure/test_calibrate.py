import numpy as np
import pytest
from scipy import ndimage

from hairtrial._validate import InputError
from hairtrial.measure.calibrate import calibrate_from_grid


def _ruling(period, angle_deg, shape=(300, 400), grid=False, seed=0):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    a = np.deg2rad(angle_deg)
    u = xx * np.cos(a) + yy * np.sin(a)
    img = 200 - 150 * (np.abs(((u / period) + 0.5) % 1 - 0.5) * period < 1.2)
    if grid:
        v = -xx * np.sin(a) + yy * np.cos(a)
        img = np.minimum(img, 200 - 150 * (np.abs(((v / period) + 0.5) % 1 - 0.5) * period < 1.2))
    img = ndimage.gaussian_filter(img.astype(float), 1.0)
    img += np.random.default_rng(seed).normal(scale=4, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    ("period", "angle"), [(23.7, 0.0), (23.7, 7.0), (41.3, -33.0), (12.2, 90.0)]
)
def test_line_spacing_is_recovered_to_a_fraction_of_a_percent(period, angle):
    cal = calibrate_from_grid(_ruling(period, angle), spacing_um=100.0)
    assert cal.spacing_px == pytest.approx(period, rel=0.005)
    assert cal.um_per_px == pytest.approx(100.0 / period, rel=0.005)


def test_grid_works_and_input_is_not_modified():
    img = _ruling(30.0, 12.0, grid=True)
    before = img.copy()
    cal = calibrate_from_grid(img, spacing_um=50.0)
    assert cal.spacing_px == pytest.approx(30.0, rel=0.005)
    np.testing.assert_array_equal(img, before)


def test_no_ruling_and_bad_spacing_are_errors():
    noise = np.random.default_rng(1).integers(0, 255, size=(200, 200), dtype=np.uint8)
    with pytest.raises(InputError, match="ruling"):
        calibrate_from_grid(noise, spacing_um=100.0)
    with pytest.raises(InputError, match="spacing_um"):
        calibrate_from_grid(_ruling(20.0, 0.0), spacing_um=0)
