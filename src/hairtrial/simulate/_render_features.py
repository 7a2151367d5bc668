"""Skin features around and between hairs (private).

Follicular openings (ostia), perifollicular pigmentation, yellow dots, scale flakes, marker
ink, contact-fluid bubbles and the intradermal part of each shaft. Features tied to a
follicle or follicular unit draw their look from the unit's id (see
:func:`~hairtrial.simulate._render_geometry.hash_uniform`) so they persist across visits;
clutter between follicles is drawn per image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np
from numpy.typing import NDArray

from hairtrial.simulate._render_geometry import UNIT_STREAM, hash_uniform
from hairtrial.simulate._render_raster import (
    accumulate,
    disc_candidates,
    irregular_radius,
    pixel_range,
    rect_candidates,
)
from hairtrial.simulate._render_skin import srgb_to_linear

if TYPE_CHECKING:
    from hairtrial.simulate._render_style import RenderStyle

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
B = NDArray[np.bool_]

#: Tyndall effect: pigment seen through the epidermis loses less blue than red.
TYNDALL = np.array([1.0, 0.85, 0.5], dtype=np.float32)
_YELLOW = srgb_to_linear(np.array([0.88, 0.76, 0.50]))
_FLAKE = srgb_to_linear(np.array([0.93, 0.93, 0.90]))
_INK = srgb_to_linear(np.array([0.22, 0.32, 0.78]))


@dataclass(frozen=True)
class Layers:
    """Flat accumulation buffers of one image (each ``(C, H*W)`` float32)."""

    log_albedo: F32  # added to the skin's log reflectance (negative darkens)
    over_alpha: F32  # (1, H*W) coverage of opaque surface material (keratin, scale, ink)
    over_colour: F32  # premultiplied reflectance of that material
    top_log: F32  # log transmission of the contact-fluid layer (bubble rims)
    top_add: F32  # light reflected by the fluid layer (bubble rims, glints)
    drawn: set[str]  # which groups ("over", "top") received anything

    @classmethod
    def empty(cls, shape: tuple[int, int]) -> Layers:
        """Zeroed buffers for an image of `shape` (H, W)."""
        n = shape[0] * shape[1]
        return cls(
            log_albedo=np.zeros((3, n), np.float32),
            over_alpha=np.zeros((1, n), np.float32),
            over_colour=np.zeros((3, n), np.float32),
            top_log=np.zeros((3, n), np.float32),
            top_add=np.zeros((3, n), np.float32),
            drawn=set(),
        )

    def used(self, group: str) -> bool:
        """Whether anything was drawn into `group` ({'over', 'top'})."""
        return group in self.drawn


def _smoothstep(x: F64) -> F64:
    t = np.clip(x, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _light_dir(style: RenderStyle) -> tuple[float, float]:
    a = math.radians(style.light_azimuth_deg)
    return math.cos(a), math.sin(a)


@dataclass(frozen=True)
class Openings:
    """Follicular openings (one per follicular unit) in pixels."""

    cx: F64
    cy: F64
    radius: F64
    empty: B  # no shaft leaves this unit
    unit_id: I64


def group_openings(
    fu_id: I64, ex: F64, ey: F64, radius_px: F64, has_shaft: B, px_per_um: float
) -> Openings:
    """One shared ostium per follicular unit, centred on its members' exits.

    Parameters
    ----------
    fu_id : (n,) ndarray of int64
        Unit of each follicle.
    ex, ey : (n,) ndarray, px
        Exit points.
    radius_px : (n,) ndarray, px
        Shaft radius (or a nominal opening radius where there is no shaft).
    has_shaft : (n,) ndarray of bool
        Whether a shaft leaves the follicle.
    px_per_um : float
        Image scale.

    Returns
    -------
    Openings
    """
    units, inverse = np.unique(fu_id, return_inverse=True)
    count = np.bincount(inverse, minlength=len(units)).astype(np.float64)
    cx = np.bincount(inverse, ex, minlength=len(units)) / count
    cy = np.bincount(inverse, ey, minlength=len(units)) / count
    reach = np.hypot(ex - cx[inverse], ey - cy[inverse]) + radius_px
    radius = np.zeros(len(units))
    np.maximum.at(radius, inverse, reach)
    shafts = np.bincount(inverse, has_shaft.astype(np.float64), minlength=len(units))
    u = hash_uniform(units, UNIT_STREAM, 0)
    radius = radius * 1.05 + (8.0 + 16.0 * u) * px_per_um
    return Openings(cx=cx, cy=cy, radius=radius, empty=shafts == 0, unit_id=units)


def draw_openings(
    layers: Layers, op: Openings, strength: float, style: RenderStyle, shape: tuple[int, int]
) -> None:
    """Darken each ostium: a shallow pit, pinkish-grey, shaded by the oblique light."""
    if op.cx.size == 0 or strength <= 0.0:
        return
    lx, ly = _light_dir(style)
    item, flat, dx, dy = disc_candidates(op.cx, op.cy, 1.3 * op.radius + 1.0, shape)
    r = op.radius[item]
    rho = np.hypot(dx, dy) / r
    core = 1.0 - _smoothstep((rho - 0.5) / 0.65)
    wall = -(dx * lx + dy * ly) / r * core  # the wall nearer the light is in shadow
    empty = op.empty[item]
    colour = np.where(empty[:, None], [0.34, 0.44, 0.42], [0.10, 0.16, 0.14])
    jitter = 0.7 + 0.6 * hash_uniform(op.unit_id, UNIT_STREAM, 1)[item]
    dens = strength * jitter[:, None] * (core[:, None] * colour + 0.10 * wall[:, None])
    accumulate(layers.log_albedo, flat, -dens.T)


def draw_halos(
    layers: Layers,
    op: Openings,
    fraction: float,
    px_per_um: float,
    shape: tuple[int, int],
) -> None:
    """Perifollicular pigmentation: an irregular brown halo around some hair-bearing ostia."""
    u = hash_uniform(op.unit_id, UNIT_STREAM, 2)
    pick = np.flatnonzero((u < fraction) & ~op.empty)
    if pick.size == 0:
        return
    ids = op.unit_id[pick]
    halo_r = op.radius[pick] * (2.0 + 1.5 * hash_uniform(ids, UNIT_STREAM, 3)) + 40 * px_per_um
    amp = np.stack([0.18 * hash_uniform(ids, UNIT_STREAM, 4 + j) for j in range(3)], 1)
    phase = np.stack([2 * np.pi * hash_uniform(ids, UNIT_STREAM, 7 + j) for j in range(3)], 1)
    level = 0.35 + 0.45 * hash_uniform(ids, UNIT_STREAM, 10)
    item, flat, dx, dy = disc_candidates(op.cx[pick], op.cy[pick], 1.35 * halo_r, shape)
    rho = np.hypot(dx, dy) / (halo_r[item] * irregular_radius(item, dx, dy, amp, phase))
    prof = level[item] * np.exp(-(((rho - 0.45) / 0.38) ** 2))
    dens = prof[:, None] * np.array([0.28, 0.42, 0.58])[None, :]
    accumulate(layers.log_albedo, flat, -dens.T)


def draw_yellow_dots(
    layers: Layers,
    cx: F64,
    cy: F64,
    radius: F64,
    amp: F64,
    phase: F64,
    texture: F32,
    shape: tuple[int, int],
) -> None:
    """Yellow dots: round-to-polycyclic keratin and sebum plugs in empty openings.

    Translucent yellowish keratin, denser in the middle, with a soft greasy rim.
    """
    if cx.size == 0:
        return
    item, flat, dx, dy = disc_candidates(cx, cy, 1.4 * radius + 1.5, shape)
    r = radius[item]
    rho = np.hypot(dx, dy) / (r * irregular_radius(item, dx, dy, amp, phase))
    soft = 0.25 + 1.0 / np.maximum(r, 1.0)
    body = 1.0 - _smoothstep((rho - 1.0 + soft) / soft)
    grain = np.clip(1.0 + 0.12 * texture[flat], 0.6, 1.4)
    alpha = np.clip(0.55 * body * (0.75 + 0.25 * (1.0 - np.clip(rho, 0.0, 1.0))) * grain, 0, 1)
    shade = 0.85 + 0.15 * (1.0 - np.clip(rho, 0.0, 1.0) ** 2)
    colour = (alpha * shade)[:, None] * _YELLOW[None, :]
    accumulate(layers.over_alpha, flat, alpha[None, :])
    accumulate(layers.over_colour, flat, colour.T)
    layers.drawn.add("over")


def draw_flakes(
    layers: Layers,
    rng: np.random.Generator,
    cx: F64,
    cy: F64,
    radius: F64,
    texture: F32,
    shape: tuple[int, int],
) -> None:
    """White scale flakes: thin, layered, semi-transparent, with brighter lifted edges."""
    n = cx.size
    if n == 0:
        return
    amp = rng.uniform(0.05, 0.25, (n, 3))
    phase = rng.uniform(0, 2 * np.pi, (n, 3))
    opacity = rng.uniform(0.25, 0.7, n)
    item, flat, dx, dy = disc_candidates(cx, cy, 1.6 * radius + 1.5, shape)
    r = radius[item]
    rho = np.hypot(dx, dy) / (r * irregular_radius(item, dx, dy, amp, phase))
    soft = 0.12 + 1.5 / np.maximum(r, 1.0)
    body = 1.0 - _smoothstep((rho - 1.0 + soft) / soft)
    rim = np.exp(-(((rho - 0.9) / 0.08) ** 2))
    layered = np.clip(0.55 + 0.35 * texture[flat], 0.1, 1.0)
    alpha = np.clip(opacity[item] * (body * layered + 0.35 * rim * body), 0.0, 0.9)
    colour = alpha[:, None] * _FLAKE[None, :]
    accumulate(layers.over_alpha, flat, alpha[None, :])
    accumulate(layers.over_colour, flat, colour.T)
    layers.drawn.add("over")


def draw_ink(layers: Layers, cx: F64, cy: F64, radius: F64, shape: tuple[int, int]) -> None:
    """Specks of the blue marker ink used to tattoo or mark the trial site."""
    if cx.size == 0:
        return
    item, flat, dx, dy = disc_candidates(cx, cy, radius + 1.5, shape)
    rho = np.hypot(dx, dy) - radius[item]
    alpha = 0.8 * (1.0 - _smoothstep(rho + 0.5))
    accumulate(layers.over_alpha, flat, alpha[None, :])
    accumulate(layers.over_colour, flat, (alpha[:, None] * _INK[None, :]).T)
    layers.drawn.add("over")


def draw_bubbles(
    layers: Layers, cx: F64, cy: F64, radius: F64, style: RenderStyle, shape: tuple[int, int]
) -> None:
    """Air bubbles in the contact fluid: dark refracting edge, bright rim, a glint."""
    if cx.size == 0:
        return
    lx, ly = _light_dir(style)
    item, flat, dx, dy = disc_candidates(cx, cy, 1.12 * radius + 2.0, shape)
    r = radius[item]
    rho = np.hypot(dx, dy) / r
    w = np.maximum(0.02, 1.2 / r)
    dark = 0.55 * np.exp(-(((rho - 1.0) / (1.8 * w)) ** 2))
    rim = 0.30 * np.exp(-(((rho - 0.975) / w) ** 2))
    inner = 0.025 * (1.0 - _smoothstep((rho - 0.9) / 0.08))
    hx, hy = dx - 0.55 * r * lx, dy - 0.55 * r * ly
    glint = 0.7 * np.exp(-(hx * hx + hy * hy) / (2.0 * (0.07 * r + 1.0) ** 2))
    add = rim + inner + glint
    accumulate(layers.top_log, flat, np.tile(-dark, (3, 1)))
    accumulate(layers.top_add, flat, np.stack([0.95 * add, 0.98 * add, add]))
    layers.drawn.add("top")


def intradermal_od(
    ex: F64,
    ey: F64,
    back_x: F64,
    back_y: F64,
    length_px: F64,
    radius_px: F64,
    depth_per_px: F64,
    amplitude: F64,
    px_per_um: float,
    shape: tuple[int, int],
) -> F32:
    """Optical density of the shafts' intradermal parts, seen through the epidermis.

    Below the exit the shaft runs on into the skin at its elevation angle; seen from above
    it continues behind the exit, fading with depth and blurred by dermal scattering, which
    gives the blue-grey smear at the root of every pigmented hair. Drawn at half resolution,
    blurred at two scales (epidermal and dermal scattering) and upsampled.

    Parameters
    ----------
    ex, ey : (n,) ndarray, px
        Exit points.
    back_x, back_y : (n,) ndarray
        Unit direction pointing from the exit into the skin, projected on the image.
    length_px : (n,) ndarray, px
        Projected length of the intradermal part drawn.
    radius_px : (n,) ndarray, px
        Shaft radius.
    depth_per_px : (n,) ndarray, µm/px
        Depth below the skin gained per projected pixel (tan(elevation) / scale).
    amplitude : (n,) ndarray
        Optical density at the exit (pigment and phase dependent).
    px_per_um : float
        Image scale.
    shape : (H, W)
        Full image size in pixels.

    Returns
    -------
    (H, W) ndarray of float32
    """
    height, width = shape
    h2, w2 = (height + 1) // 2, (width + 1) // 2
    buf = np.zeros((1, h2 * w2), dtype=np.float32)
    keep = amplitude > 0
    if keep.any():
        ex2, ey2 = ex[keep] / 2, ey[keep] / 2
        bx, by = back_x[keep], back_y[keep]
        # Beyond ~300 µm of depth nothing shows through (exp(-300 / 90) < 4 %).
        ln = np.minimum(length_px[keep], 300.0 / np.maximum(depth_per_px[keep], 1e-6)) / 2
        rad = np.maximum(radius_px[keep] / 2, 0.7)
        reach = rad + 1.0
        x0, x1 = pixel_range(
            np.minimum(ex2, ex2 + bx * ln) - reach - 1,
            np.maximum(ex2, ex2 + bx * ln) + reach + 1,
            w2,
        )
        y0, y1 = pixel_range(
            np.minimum(ey2, ey2 + by * ln) - reach - 1,
            np.maximum(ey2, ey2 + by * ln) + reach + 1,
            h2,
        )
        item, col, row = rect_candidates(x0, x1, y0, y1)
        cx = col + 0.5 - ex2[item]
        cy = row + 0.5 - ey2[item]
        u = cx * bx[item] + cy * by[item]
        d = np.abs(cy * bx[item] - cx * by[item])
        r = rad[item]
        prof = np.sqrt(np.clip(1.0 - (d / r) ** 2, 0.0, 1.0))
        along = _smoothstep(u + 1.0) * (1.0 - _smoothstep((u - ln[item]) / 2.0 + 0.5))
        depth_um = np.maximum(u, 0.0) * 2.0 * depth_per_px[keep][item]
        val = amplitude[keep][item] * prof * along * np.exp(-depth_um / 90.0)
        accumulate(buf, row * w2 + col, val[None, :])
    img = buf.reshape(h2, w2)
    s1 = max(0.5 * 30.0 * px_per_um, 0.4)
    s2 = max(0.5 * 80.0 * px_per_um, 0.8)
    near = cv2.GaussianBlur(img, (0, 0), sigmaX=s1, borderType=cv2.BORDER_REFLECT)
    far = cv2.GaussianBlur(img, (0, 0), sigmaX=s2, borderType=cv2.BORDER_REFLECT)
    mix = (0.75 * near + 0.6 * far).astype(np.float32)
    full = cv2.resize(mix, (2 * w2, 2 * h2), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(full[:height, :width])
