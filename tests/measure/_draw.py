"""Draw synthetic trichoscopy images with known hairs (independent of the simulator)."""

from __future__ import annotations

import itertools

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage


def skin(
    shape: tuple[int, int], *, seed: int = 0, tone: tuple[float, float, float] = (0.85, 0.7, 0.6)
) -> NDArray[np.float64]:
    """Textured skin with uneven light: (M, N, 3) float in [0, 1]."""
    rng = np.random.default_rng(seed)
    m, n = shape
    tex = ndimage.gaussian_filter(rng.normal(size=(m, n)), 3.0)
    tex = 0.03 * tex / (tex.std() + 1e-12)
    yy, xx = np.mgrid[0:m, 0:n]
    light = 1.0 - 0.25 * (((xx - n / 2) / n) ** 2 + ((yy - m / 2) / m) ** 2)
    img = np.empty((m, n, 3))
    for c, t in enumerate(tone):
        img[:, :, c] = t * light * (1.0 + tex)
    return img


def draw_hair(
    img: NDArray[np.float64],
    points: NDArray[np.float64],
    *,
    diameter_px: float,
    absorb: float = 3.0,
    color: tuple[float, float, float] = (1.0, 1.0, 1.0),
    supersample: int = 4,
) -> None:
    """Multiply `img` by a Beer–Lambert cylinder along polyline `points` (x, y), in place.

    `absorb` is μ·r: the optical density at the shaft centre is 2·absorb·color[c].
    """
    m, n = img.shape[:2]
    r = diameter_px / 2.0
    pts = np.asarray(points, dtype=float)
    x0, y0 = pts.min(axis=0) - r - 2
    x1, y1 = pts.max(axis=0) + r + 2
    c0, c1 = max(0, int(x0)), min(n, int(np.ceil(x1)) + 1)
    r0, r1 = max(0, int(y0)), min(m, int(np.ceil(y1)) + 1)
    if c1 <= c0 or r1 <= r0:
        return
    s = supersample
    ys = r0 + (np.arange((r1 - r0) * s) + 0.5) / s - 0.5
    xs = c0 + (np.arange((c1 - c0) * s) + 0.5) / s - 0.5
    gx, gy = np.meshgrid(xs, ys)
    dist = np.full(gx.shape, np.inf)
    for a, b in itertools.pairwise(pts):
        ab = b - a
        t = np.clip(((gx - a[0]) * ab[0] + (gy - a[1]) * ab[1]) / max(ab @ ab, 1e-12), 0, 1)
        d = np.hypot(gx - (a[0] + t * ab[0]), gy - (a[1] + t * ab[1]))
        dist = np.minimum(dist, d)
    chord = np.sqrt(np.clip(1 - (dist / r) ** 2, 0, None))
    for ch in range(3):
        trans = np.exp(-2 * absorb * color[ch] * chord)
        trans = trans.reshape(r1 - r0, s, c1 - c0, s).mean(axis=(1, 3))
        img[r0:r1, c0:c1, ch] *= trans


def finish(
    img: NDArray[np.float64], *, blur_px: float = 1.0, noise: float = 0.01, seed: int = 0
) -> NDArray[np.uint8]:
    """Blur (Gaussian PSF, σ in px), add noise, quantise to uint8."""
    rng = np.random.default_rng(seed + 1)
    out = ndimage.gaussian_filter(img, (blur_px, blur_px, 0)) if blur_px > 0 else img.copy()
    out = out + rng.normal(scale=noise, size=out.shape)
    return np.clip(np.round(out * 255), 0, 255).astype(np.uint8)


def straight(
    x0: float, y0: float, angle_deg: float, length: float, n: int = 2
) -> NDArray[np.float64]:
    """Points of a straight hair from (x0, y0) along `angle_deg`."""
    a = np.deg2rad(angle_deg)
    t = np.linspace(0, length, n)
    return np.column_stack([x0 + t * np.cos(a), y0 + t * np.sin(a)])


def curved(
    x0: float, y0: float, angle_deg: float, length: float, bend_deg: float
) -> NDArray[np.float64]:
    """Points of an arc-shaped hair turning by `bend_deg` over its length."""
    k = 40
    ang = np.deg2rad(angle_deg + np.linspace(0, bend_deg, k))
    step = length / (k - 1)
    xs = x0 + np.r_[0, np.cumsum(np.cos(ang[:-1]) * step)]
    ys = y0 + np.r_[0, np.cumsum(np.sin(ang[:-1]) * step)]
    return np.column_stack([xs, ys])


def draw_subsurface(
    img: NDArray[np.float64],
    points: NDArray[np.float64],
    *,
    diameter_px: float,
    scatter_px: float = 4.0,
) -> None:
    """Multiply `img` by the blue-grey shadow of a shaft under the skin, in place.

    The pigment is seen through scattering tissue: broad, blurred, absorbing red far more
    than blue (Tyndall effect).
    """
    layer = np.ones(img.shape)
    draw_hair(layer, points, diameter_px=1.5 * diameter_px, absorb=0.35, color=(1.0, 0.55, 0.08))
    layer = ndimage.gaussian_filter(layer, (scatter_px, scatter_px, 0))
    img *= layer
