import json

import numpy as np
import pytest
import tifffile
from PIL import Image

from hairtrial._validate import InputError
from hairtrial.io import read_image, write_image
from hairtrial.io.image import calibration_sidecar


@pytest.fixture
def rgb():
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, size=(32, 48, 3), dtype=np.uint8)


@pytest.mark.parametrize("suffix", [".png", ".tif", ".bmp"])
def test_lossless_round_trip(tmp_path, rgb, suffix):
    path = write_image(tmp_path / f"a{suffix}", rgb)
    data = read_image(path)
    np.testing.assert_array_equal(data.pixels, rgb)
    assert data.um_per_px is None


def test_jpeg_round_trip_is_close_and_deterministic(tmp_path):
    smooth = np.zeros((64, 64, 3), np.uint8) + np.arange(64, dtype=np.uint8)[None, :, None] * 3
    a = write_image(tmp_path / "a.jpg", smooth, jpeg_quality=95)
    b = write_image(tmp_path / "b.jpg", smooth, jpeg_quality=95)
    assert a.read_bytes() == b.read_bytes()
    assert np.abs(read_image(a).pixels.astype(int) - smooth).mean() < 2


def test_calibration_from_sidecar_and_tiff_tags(tmp_path, rgb):
    png = write_image(tmp_path / "a.png", rgb, um_per_px=4.25)
    assert json.loads(calibration_sidecar(png).read_text())["um_per_px"] == 4.25
    assert read_image(png).um_per_px == pytest.approx(4.25)
    tif = write_image(tmp_path / "a.tif", rgb, um_per_px=5.0)
    assert read_image(tif).um_per_px == pytest.approx(5.0, rel=1e-6)


def test_greyscale_16bit_rgba_cmyk(tmp_path):
    grey16 = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 13).astype(np.uint16)
    Image.fromarray(grey16).save(tmp_path / "g16.png")
    data = read_image(tmp_path / "g16.png")
    assert data.pixels.dtype == np.uint16 and data.pixels.shape == (64, 64)
    np.testing.assert_array_equal(data.pixels, grey16)

    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 0  # fully transparent: composited on white
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    assert read_image(tmp_path / "a.png").pixels.shape == (8, 8, 3)
    assert (read_image(tmp_path / "a.png").pixels == 255).all()

    Image.new("CMYK", (10, 12), (0, 255, 255, 0)).save(tmp_path / "c.jpg")
    px = read_image(tmp_path / "c.jpg").pixels
    assert px.shape == (12, 10, 3)
    assert px[..., 0].mean() > 200 and px[..., 1].mean() < 60  # red


def test_multipage_tiff(tmp_path):
    stack = np.stack([np.full((16, 16), i * 40, np.uint8) for i in range(3)])
    tifffile.imwrite(tmp_path / "s.tif", stack, photometric="minisblack")
    data = read_image(tmp_path / "s.tif", page=2)
    assert data.n_pages == 3 and data.pixels.mean() == 80
    with pytest.raises(InputError, match="page 5"):
        read_image(tmp_path / "s.tif", page=5)


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (None, "missing.png", "no such file"),
        (b"", "empty.png", "empty"),
        (b"not an image at all", "junk.png", "not a readable image"),
        (b"GIF89a", "a.gif", "unsupported image format"),
    ],
)
def test_bad_files_name_the_file(tmp_path, content, name, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=message) as info:
        read_image(path)
    assert name in str(info.value)


def test_truncated_jpeg(tmp_path, rgb):
    path = write_image(tmp_path / "t.jpg", np.repeat(np.repeat(rgb, 8, 0), 8, 1))
    path.write_bytes(path.read_bytes()[:400])
    with pytest.raises(InputError, match="t.jpg"):
        read_image(path)


def test_bad_sidecar(tmp_path, rgb):
    png = write_image(tmp_path / "a.png", rgb)
    calibration_sidecar(png).write_text('{"um_per_px": -3}')
    with pytest.raises(InputError, match="calibration.json"):
        read_image(png)


def test_write_refuses_bad_arrays(tmp_path):
    with pytest.raises(InputError, match="expected uint8"):
        write_image(tmp_path / "a.jpg", np.zeros((4, 4, 3), np.float64))
    with pytest.raises(InputError, match="colour channels"):
        write_image(tmp_path / "a.png", np.zeros((4, 4, 5), np.uint8))
