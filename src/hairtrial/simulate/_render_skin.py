"""Skin texture, illumination, camera optics and the device text bar (private).

All radiometry here is in linear light, channel-planar ``(3, H, W)`` float32 arrays; the
camera model converts to 8-bit sRGB at the very end.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import cv2
import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from hairtrial.simulate._render_style import RenderStyle

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]
U8 = NDArray[np.uint8]


def _blur(img: F32, sigma: float, ksize: int = 0) -> F32:
    out = cv2.GaussianBlur(img, (ksize, ksize), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)
    return np.asarray(out, dtype=np.float32)


def _resize(img: F32, size: tuple[int, int], interpolation: int) -> F32:
    return np.asarray(cv2.resize(img, size, interpolation=interpolation), dtype=np.float32)


def srgb_to_linear(c: F64) -> F64:
    """Convert sRGB values in [0, 1] to linear light."""
    c = np.asarray(c, dtype=np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _srgb_lut() -> U8:
    x = np.linspace(0.0, 1.0, 65536)
    y = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1.0 / 2.4) - 0.055)
    return np.clip(np.rint(y * 255.0), 0, 255).astype(np.uint8)


_SRGB_LUT = _srgb_lut()


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], grid_px: float) -> F32:
    """Zero-mean, unit-variance random field with correlation length about `grid_px`.

    Coarse fields are drawn on a grid of that spacing and upsampled bicubically (cheap for
    any image size); fields finer than two pixels are blurred white noise (uniform draws,
    made near-Gaussian by the blur).

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    shape : (H, W)
        Output size in pixels.
    grid_px : float, px
        Correlation length.

    Returns
    -------
    (H, W) ndarray of float32
    """
    height, width = shape
    if grid_px < 2.0:
        z = rng.random((height, width), dtype=np.float32)
        sigma = max(0.5 * grid_px, 0.5)
        z = _blur(z, sigma)
    else:
        gh = math.ceil(height / grid_px) + 3
        gw = math.ceil(width / grid_px) + 3
        coarse = rng.standard_normal((gh, gw), dtype=np.float32)
        off = round(grid_px)
        size = (max(round(gw * grid_px), width + off), max(round(gh * grid_px), height + off))
        z = _resize(coarse, size, cv2.INTER_CUBIC)[off : off + height, off : off + width]
    sample = z[:: max(1, height // 256), :: max(1, width // 256)]
    z = z - np.float32(sample.mean())
    z *= np.float32(1.0 / max(float(sample.std()), 1e-6))
    return np.ascontiguousarray(z, dtype=np.float32)


def skin_layers(
    rng: np.random.Generator, shape: tuple[int, int], um_per_px: float, style: RenderStyle
) -> tuple[F32, F32, F32]:
    """Skin reflectance (log, per channel), the sheen of its moist surface, a fine texture.

    The skin surface is a random height field: a network of furrows (the zero set of a
    band-limited random field, faded in and out) on fine relief. Lit obliquely from
    ``light_azimuth_deg`` its slopes shade it, and where a facet mirrors the light into the
    objective the wet stratum corneum glints. Low-frequency mottling and redness vary the
    reflectance. Texture is synthesised at half resolution (finer detail is lost in the
    optics anyway) and upsampled.

    Parameters
    ----------
    rng : numpy.random.Generator
        Per-image randomness.
    shape : (H, W)
        Image size in pixels.
    um_per_px : float, µm/px
        Effective scale (pose included).
    style : RenderStyle
        Look parameters.

    Returns
    -------
    log_albedo : (3, H, W) ndarray of float32
        Natural log of the skin reflectance (linear light) per channel.
    sheen : (H, W) ndarray of float32
        Additive specular reflection of the skin surface (linear light, relative to the
        illumination; colour :data:`SHEEN_RGB`).
    texture : (H, W) ndarray of float32
        Zero-mean fine random texture (unit-ish variance) that surface material such as
        scale and keratin plugs borrows.
    """
    height, width = shape
    f = 2 if min(height, width) >= 64 else 1
    small = ((height + f - 1) // f, (width + f - 1) // f)
    um = um_per_px * f
    tex = float(style.skin_texture)

    def field(grid_um: float) -> F32:
        return smooth_noise(rng, small, grid_um / um)

    lum = 0.07 * field(450.0) + 0.05 * field(1600.0)
    red = field(700.0)
    furrow = field(110.0)
    fine = field(40.0)
    fade = np.clip(0.6 + 0.6 * field(600.0), 0.0, 1.0)
    lines = np.exp(-((furrow / 0.2) ** 2)) * fade + 0.45 * np.exp(-((fine / 0.18) ** 2))
    relief_h = 0.8 * field(18.0) + 0.6 * field(9.0) - 2.0 * lines
    ang = math.radians(style.light_azimuth_deg)
    gx = cv2.Sobel(relief_h, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(relief_h, cv2.CV_32F, 0, 1, ksize=3)
    slope = gx * np.float32(math.cos(ang)) + gy * np.float32(math.sin(ang))
    slope *= np.float32(1.0 / max(float(slope[::4, ::4].std()), 1e-6))
    grazing = 1.0 - math.sin(math.radians(style.light_elevation_deg))
    shade = tex * (lum - 0.10 * lines + (0.03 + 0.05 * grazing) * slope)
    base = np.log(np.maximum(srgb_to_linear(np.asarray(style.skin_rgb)), 1e-4))
    tint = (0.30, -0.30, -0.25)
    # Wet, flaky stratum corneum reflects in patches: blotches of bluish-white speckle.
    mask = np.clip(0.25 + 0.6 * field(350.0), 0.0, 1.0) ** 1.5
    speckle = np.maximum(field(40.0) + 0.5 * field(14.0) - 0.2, 0.0)
    glint = np.maximum(slope - 1.4, 0.0)
    planes = [base[c] + shade * (1.0 + 0.15 * c) + (0.05 * tex * tint[c]) * red for c in range(3)]
    planes.append(
        float(style.skin_sheen) * (0.02 + mask * (0.05 + 0.10 * speckle + 0.10 * glint * glint))
    )
    planes.append(0.8 * field(25.0) + 0.6 * field(10.0))
    out = np.empty((5, height, width), dtype=np.float32)
    for c, plane in enumerate(planes):
        if f > 1:
            plane = _resize(
                plane.astype(np.float32), (small[1] * f, small[0] * f), cv2.INTER_LINEAR
            )
        out[c] = plane[:height, :width]
    return out[:3], out[3], out[4]


#: Colour of the light reflected by the skin surface (the illuminant, slightly blue LEDs).
SHEEN_RGB = (0.82, 0.90, 1.0)


def illumination(shape: tuple[int, int], style: RenderStyle) -> F32:
    """Relative illumination and lens fall-off over the field.

    ``E = exposure * (1 - vignetting * rho^2) * (1 + gradient * ramp)`` with rho the
    distance from the centre relative to the half diagonal and ramp a linear ramp in
    [-0.5, 0.5] along ``illumination_angle_deg``.

    Parameters
    ----------
    shape : (H, W)
        Image size in pixels.
    style : RenderStyle
        Look parameters.

    Returns
    -------
    (H, W) ndarray of float32
    """
    height, width = shape
    y = (np.arange(height, dtype=np.float32) + 0.5 - 0.5 * height)[:, None]
    x = (np.arange(width, dtype=np.float32) + 0.5 - 0.5 * width)[None, :]
    half_diag = 0.5 * math.hypot(height, width)
    rho2 = (x * x + y * y) / (half_diag * half_diag)
    ang = math.radians(style.illumination_angle_deg)
    ca, sa = math.cos(ang), math.sin(ang)
    span = abs(ca) * width + abs(sa) * height
    ramp = (x * ca + y * sa) / max(span, 1.0)
    e = (1.0 - style.vignetting * rho2) * (1.0 + style.illumination_gradient * ramp)
    return (style.exposure * e).astype(np.float32)


def camera(radiance: F32, rng: np.random.Generator, style: RenderStyle) -> U8:
    """Image the scene: defocus, lateral chromatic aberration, noise, colour, sRGB.

    Parameters
    ----------
    radiance : (3, H, W) ndarray of float32
        Linear-light scene radiance (1 = white under the nominal illumination). Modified in
        place.
    rng : numpy.random.Generator
        Per-image randomness (sensor noise).
    style : RenderStyle
        Look parameters.

    Returns
    -------
    (H, W, 3) ndarray of uint8
        sRGB image.
    """
    _, height, width = radiance.shape
    sigma = float(style.blur_sigma_px)
    if sigma > 0.05:
        half_diag2 = 0.25 * (height * height + width * width)
        y = (np.arange(height, dtype=np.float32) + 0.5 - 0.5 * height)[:, None]
        x = (np.arange(width, dtype=np.float32) + 0.5 - 0.5 * width)[None, :]
        edge = (x * x + y * y) / half_diag2 if style.blur_edge_gain > 0 else None
        half = ((width + 1) // 2, (height + 1) // 2)
        for c in range(3):
            sharp = _blur(radiance[c], sigma)
            if edge is not None:
                # Field curvature: the corners are blurred more. The extra blur is smooth,
                # so it is computed at half resolution.
                soft_sigma = 0.5 * sigma * (1.0 + style.blur_edge_gain)
                soft = _blur(_resize(radiance[c], half, cv2.INTER_AREA), soft_sigma)
                soft = _resize(soft, (width, height), cv2.INTER_LINEAR)
                soft -= sharp
                soft *= edge
                sharp += soft
            radiance[c] = sharp
    ca = float(style.chromatic_aberration_px)
    if ca > 0.0:
        half_diag = 0.5 * math.hypot(height, width)
        for c, sign in ((0, 1.0), (2, -1.0)):
            k = 1.0 + sign * ca / half_diag
            mat = np.array(
                [[k, 0.0, 0.5 * (width - 1) * (1 - k)], [0.0, k, 0.5 * (height - 1) * (1 - k)]],
                dtype=np.float64,
            )
            # OpenCV puts pixel centres at integer coordinates: the centre is (W - 1) / 2.
            radiance[c] = cv2.warpAffine(
                radiance[c],
                mat,
                (width, height),
                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                borderMode=cv2.BORDER_REFLECT,
            )
    if style.veiling_glare > 0.0:
        # Stray light: a very blurred copy of the image, computed at 1/8 resolution.
        small = (max(1, width // 8), max(1, height // 8))
        for c in range(3):
            low = _blur(_resize(radiance[c], small, cv2.INTER_AREA), max(small) / 6.0)
            low *= np.float32(style.veiling_glare)
            radiance[c] += _resize(low, (width, height), cv2.INTER_LINEAR)
    if style.noise_sigma > 0.0:
        # Signal-dependent sensor noise in linear light: read noise plus shot noise whose
        # variance grows with the signal. The demosaicing blur correlates neighbours and
        # makes the uniform draws Gaussian (central limit over the kernel).
        # Luminance noise is pixel-fine; colour noise is coarser (demosaicing interpolates
        # the sparser red and blue sites).
        base = np.float32(style.noise_sigma / 255.0 * 0.85)
        kernel = cv2.getGaussianKernel(5, 0.6).ravel()
        norm = np.float32(math.sqrt(12.0) / float(np.sum(kernel**2)))
        luma = rng.random((height, width), dtype=np.float32)
        luma -= np.float32(0.5)
        luma = _blur(luma, 0.6, ksize=5)
        luma *= np.float32(0.8)
        half = ((width + 1) // 2, (height + 1) // 2)
        chroma = []
        for _ in range(2):
            z = rng.random((half[1], half[0]), dtype=np.float32)
            z -= np.float32(0.5)
            z = _resize(_blur(z, 0.6, ksize=5), (width, height), cv2.INTER_LINEAR)
            z *= np.float32(0.6)
            chroma.append(z)
        for c in range(3):
            z = luma + (
                chroma[0] if c == 0 else chroma[1] if c == 2 else -0.5 * (chroma[0] + chroma[1])
            )
            amp = np.maximum(radiance[c], 0.0)
            amp *= np.float32(5.0)
            amp += np.float32(0.15)
            np.sqrt(amp, out=amp)
            amp *= z
            amp *= base * norm
            radiance[c] += amp
    if style.sharpen > 0.0:
        for c in range(3):
            soft = _blur(radiance[c], 1.2)
            np.subtract(radiance[c], soft, out=soft)
            soft *= np.float32(style.sharpen)
            radiance[c] += soft
    out = np.empty((height, width, 3), dtype=np.uint8)
    for c in range(3):
        # White balance folded into the quantisation to 16-bit LUT indices.
        chan = radiance[c]
        chan *= np.float32(style.white_balance[c] * 65535.0)
        np.clip(chan, 0.0, 65535.0, out=chan)
        chan += np.float32(0.5)
        out[:, :, c] = _SRGB_LUT[chan.astype(np.uint16)]
    return out


def text_bar(image: U8, rng: np.random.Generator) -> None:
    """Burn a device information bar into the top rows of `image` (in place).

    Mimics trichoscope firmware: dark boxes with a subject code (cyan), the resolution, a
    time stamp, the unit and the magnification.
    """
    height, width = image.shape[:2]
    bar = int(np.clip(round(0.039 * height), 14, 60))
    code = f"{'AB'[int(rng.integers(2))]}{int(rng.integers(1, 999)):03d}"
    stamp = (
        f"20{int(rng.integers(18, 26))}/{int(rng.integers(1, 13)):02d}/"
        f"{int(rng.integers(1, 29)):02d} {int(rng.integers(7, 19)):02d}:"
        f"{int(rng.integers(60)):02d}:{int(rng.integers(60)):02d}"
    )
    labels = [code, f"{width}x{height}", stamp, "Unit: mm", f"{int(rng.integers(20, 80))}x"]
    font = cv2.FONT_HERSHEY_SIMPLEX
    thick = 1 if bar < 30 else 2
    (_, text_h), _ = cv2.getTextSize("Ag", font, 1.0, thick)
    scale = 0.55 * bar / max(text_h, 1)
    x = max(2, bar // 5)
    top, bottom = max(1, bar // 12), bar - max(1, bar // 12)
    for i, label in enumerate(labels):
        (tw, th), _ = cv2.getTextSize(label, font, scale, thick)
        box_w = tw + bar // 2
        if x + box_w > width - 2:
            break
        region = image[top:bottom, x : x + box_w]
        region[:] = (0.2 * region + 0.8 * 62).astype(np.uint8)
        colour = (40, 220, 230) if i == 0 else (235, 235, 235)
        origin = (x + bar // 4, top + (bottom - top + th) // 2)
        cv2.putText(image, label, origin, font, scale, colour, thick, cv2.LINE_AA)
        x += box_w + max(3, bar // 6)
