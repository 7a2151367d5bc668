"""Image calibration from a photograph of a stage micrometer or calibration grid.

Equally spaced ruling lines are a periodic pattern: their spacing in pixels is the inverse
of the spatial frequency of the strongest peak of the image's power spectrum. A Hann
window suppresses the leakage of the image border, zero padding samples the spectrum
finely, and a parabola through the peak and its neighbours gives the frequency to a small
fraction of a bin, so the spacing is measured to well under a pixel over the whole field,
at any rotation of the slide.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hairtrial._validate import InputError, check_image, check_positive


@dataclass(frozen=True)
class Calibration:
    """Result of :func:`calibrate_from_grid`.

    Parameters
    ----------
    um_per_px : float, µm/px
        Calibration of images taken with the same optics and zoom.
    spacing_px : float, px
        Measured line spacing.
    angle_deg : float, degrees
        Direction of the line normal (0 = lines are vertical, spacing along x).
    contrast : float
        Peak power over the median power of the spectrum (how clear the ruling is).
    """

    um_per_px: float
    spacing_px: float
    angle_deg: float
    contrast: float


def calibrate_from_grid(
    image: NDArray[Any], *, spacing_um: float, min_period_px: float = 3.0
) -> Calibration:
    """Measure µm per pixel from an image of equally spaced ruling lines.

    Parameters
    ----------
    image : (M, N) or (M, N, 3) ndarray
        Photograph of a stage micrometer or grid; not modified.
    spacing_um : float, µm
        Distance between neighbouring lines on the slide (e.g. 100 µm or 10 µm).
    min_period_px : float, px
        Shortest line spacing considered (finer periods are noise or JPEG blocks).

    Returns
    -------
    Calibration

    Raises
    ------
    InputError
        If the image is invalid, `spacing_um` is not positive, or no periodic ruling is
        found.
    """
    arr = check_image(image)
    spacing = check_positive(spacing_um, name="spacing_um")
    grey = arr.astype(np.float64)
    if grey.ndim == 3:
        grey = grey.mean(axis=2)
    m, n = grey.shape
    if min(m, n) < 16:
        raise InputError(f"image: too small to find a ruling ({n}x{m} px)")
    grey = grey - grey.mean()
    window = np.outer(np.hanning(m), np.hanning(n))
    pad = 4
    size = (int(2 ** math.ceil(math.log2(m * pad))), int(2 ** math.ceil(math.log2(n * pad))))
    power = np.abs(np.fft.rfft2(grey * window, s=size)) ** 2
    fy = np.fft.fftfreq(size[0])[:, None]
    fx = np.fft.rfftfreq(size[1])[None, :]
    radius = np.hypot(fx, fy)
    lowest = 1.5 / min(m, n)  # at least ~1.5 periods across the field
    valid = (radius >= lowest) & (radius <= 1.0 / min_period_px)
    if not valid.any():
        raise InputError("image: no frequency range to search for a ruling")
    masked = np.where(valid, power, 0.0)
    iy, ix = np.unravel_index(int(np.argmax(masked)), masked.shape)
    peak = float(masked[iy, ix])
    median = float(np.median(power[valid]))
    contrast = peak / median if median > 0 else math.inf
    if not contrast > 25.0:
        raise InputError(
            f"image: no clear periodic ruling found (peak/median power {contrast:.1f})"
        )

    def refine(values: tuple[float, float, float]) -> float:
        a, b, c = (math.log(max(v, 1e-300)) for v in values)
        denom = a - 2 * b + c
        return 0.0 if denom >= 0 else 0.5 * (a - c) / denom

    ny, nx = power.shape
    dy = refine((power[(iy - 1) % ny, ix], power[iy, ix], power[(iy + 1) % ny, ix]))
    dx = 0.0
    if 0 < ix < nx - 1:
        dx = refine((power[iy, ix - 1], power[iy, ix], power[iy, ix + 1]))
    freq_y = float(np.fft.fftfreq(size[0])[iy]) + dy / size[0]
    freq_x = float(np.fft.rfftfreq(size[1])[ix]) + dx / size[1]
    freq = math.hypot(freq_x, freq_y)
    period = 1.0 / freq
    return Calibration(
        um_per_px=spacing / period,
        spacing_px=period,
        angle_deg=math.degrees(math.atan2(freq_y, freq_x)),
        contrast=contrast,
    )
