"""Physically motivated trichoscopy renderer with exact ground truth.

:func:`render_field` images one site's follicles (a table, one row per follicle) through a
camera pose and returns an 8-bit RGB image with the truth for every hair shaft in the field,
in the hair-record contract of DESIGN.md.

Model
-----
* **Shafts** are cylinders along sub-pixel centrelines. A clipped hair is a short, nearly
  straight stub; a long uncut hair curves smoothly (curvature profile drawn from its
  follicle id), leaves the field and crosses others. Per pixel the chord through the
  cylinder gives Beer-Lambert transmission ``exp(-mu_rgb * chord)`` with pigment-specific
  absorption, averaged over the pixel across the shaft (so a 1.5 px vellus hair has the right
  integrated darkness); crossing hairs multiply their transmissions; keratin scatters light
  back (white hair is brighter than dark skin); a specular line sits where the cylinder
  mirrors the light. A tilted shaft has a longer optical path (``1 / cos(elevation)``), a
  cut end shows its elliptical face, and the shaft emerges from the skin along the
  ellipse where it meets the skin plane (up to r / sin(elevation) behind the exit).
* **Skin**: tone, low-frequency mottling, a network of fine furrows and grain, wet glints;
  one shared ostium per follicular unit (a shallow pinkish pit), the intradermal part of
  each shaft seen through the epidermis (blue-grey, blurred by dermal scattering),
  perifollicular pigmentation, yellow dots, empty openings, white scale flakes, marker ink,
  air bubbles in the contact fluid, and an optional burned-in device text bar.
* **Camera**: illumination gradient and vignetting, defocus blur (stronger towards the
  corners), lateral chromatic aberration, signal-dependent sensor noise with demosaicing
  correlation, white-balance drift, sharpening and sRGB encoding. JPEG compression is left
  to the writer (:attr:`RenderStyle.jpeg_quality`, :func:`encode_jpeg_roundtrip`).

Randomness
----------
Per-follicle features (curvature, twist, ellipticity, unpigmented or not, ostium size,
perifollicular halo, yellow dot) come from a counter-based hash of ``follicle_id`` or
``fu_id``, never from the image seed, so a follicle looks the same at every visit. Skin
texture, clutter (extra openings, flakes, ink, bubbles), noise and the text bar come from
`seed`. The truth does not depend on `seed` at all.

Coordinates
-----------
Site coordinates are µm with the origin at the site's top-left corner, x to the right and y
down. Pixel coordinates are (x, y) with the origin at the top-left pixel's corner, so pixel
``(row i, column j)`` has its centre at ``(j + 0.5, i + 0.5)``.
"""

from __future__ import annotations

import dataclasses
import io
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from hairtrial._validate import (
    InputError,
    check_image,
    check_range,
    check_um_per_px,
)
from hairtrial.records import DEFAULT_CLASSES, HairClasses, HairRecord
from hairtrial.simulate._render_features import (
    TYNDALL,
    Layers,
    Openings,
    draw_bubbles,
    draw_flakes,
    draw_halos,
    draw_ink,
    draw_openings,
    draw_yellow_dots,
    group_openings,
    intradermal_od,
)
from hairtrial.simulate._render_geometry import (
    HAIR_STREAM,
    UNIT_STREAM,
    PoseMap,
    hash_uniform,
    resample_polyline,
    shaft_shapes,
    visible_run,
)
from hairtrial.simulate._render_raster import rasterise_shafts
from hairtrial.simulate._render_shafts import (
    HAIR_OD70,
    VISIBLE_DEPTH_UM,
    HairLook,
    ShaftTrace,
    build_render_segments,
    trace_shafts,
)
from hairtrial.simulate._render_skin import (
    SHEEN_RGB,
    camera,
    illumination,
    skin_layers,
    text_bar,
)
from hairtrial.simulate._render_style import (
    HAIR_COLOURS,
    PRESETS,
    RenderStyle,
    random_style,
)
from hairtrial.simulate._render_table import PHASES, REQUIRED_COLUMNS, Follicles, read_follicles

__all__ = [
    "HAIR_COLOURS",
    "PHASES",
    "PRESETS",
    "REQUIRED_COLUMNS",
    "CameraPose",
    "PoseMap",
    "RenderStyle",
    "RenderedImage",
    "encode_jpeg_roundtrip",
    "random_style",
    "render_field",
]

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
B = NDArray[np.bool_]

#: Spacing of truth centreline points, px.
CENTRELINE_SPACING_PX = 2.0
_MAX_SIDE = 1 << 15


# --------------------------------------------------------------------------- camera pose


@dataclass(frozen=True)
class CameraPose:
    """Similarity transform from site coordinates (µm) to image pixels.

    The site point ``(centre_x_um, centre_y_um)`` is imaged at the image centre; the site's
    +x axis appears rotated by `rotation_deg` counter-clockwise on screen; `scale` is the
    magnification relative to the nominal calibration, so one site µm spans
    ``scale / um_per_px`` pixels.

    Parameters
    ----------
    centre_x_um, centre_y_um : float, µm
        Site point imaged at the image centre.
    rotation_deg : float, degrees
        Counter-clockwise rotation of the field as seen in the image.
    scale : float
        Magnification relative to nominal (1.1 = 10 % larger), > 0.
    """

    centre_x_um: float
    centre_y_um: float
    rotation_deg: float = 0.0
    scale: float = 1.0

    def __post_init__(self) -> None:
        for name in ("centre_x_um", "centre_y_um", "rotation_deg", "scale"):
            value = getattr(self, name)
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise InputError(f"CameraPose.{name}: expected a number, got {value!r}") from None
            if not math.isfinite(number):
                raise InputError(f"CameraPose.{name}: expected a finite number, got {value!r}")
            object.__setattr__(self, name, number)
        if self.scale <= 0:
            raise InputError(f"CameraPose.scale: expected a number > 0, got {self.scale!r}")

    def pose_map(self, *, um_per_px: float, shape: tuple[int, int]) -> PoseMap:
        """Return the site-to-pixel mapping for one calibration and image size.

        Parameters
        ----------
        um_per_px : float, µm/px
            Nominal image calibration.
        shape : (H, W)
            Image size in pixels.

        Returns
        -------
        PoseMap
            Callable ``(x_um, y_um) -> (x_px, y_px)`` with an ``inverse`` method.
        """
        um = check_um_per_px(um_per_px)
        height, width = _check_shape(shape)
        rad = math.radians(self.rotation_deg)
        return PoseMap(
            k=self.scale / um, cos=math.cos(rad), sin=math.sin(rad),
            x0=self.centre_x_um, y0=self.centre_y_um, px0=0.5 * width, py0=0.5 * height,
        )  # fmt: skip

    def site_to_px(
        self, x_um: ArrayLike, y_um: ArrayLike, *, um_per_px: float, shape: tuple[int, int]
    ) -> tuple[F64, F64]:
        """Map site coordinates to pixel coordinates.

        ``x_px = W/2 + c u + s v``, ``y_px = H/2 - s u + c v`` with
        ``u = k (x - centre_x)``, ``v = k (y - centre_y)``, ``k = scale / um_per_px`` and c, s
        the cosine and sine of the rotation.

        Parameters
        ----------
        x_um, y_um : array_like, µm
            Site coordinates (broadcast together).
        um_per_px : float, µm/px
            Nominal image calibration.
        shape : (H, W)
            Image size in pixels.

        Returns
        -------
        x_px, y_px : ndarray of float64, px
            Corner-origin pixel coordinates.
        """
        return self.pose_map(um_per_px=um_per_px, shape=shape)(x_um, y_um)

    def px_to_site(
        self, x_px: ArrayLike, y_px: ArrayLike, *, um_per_px: float, shape: tuple[int, int]
    ) -> tuple[F64, F64]:
        """Map pixel coordinates back to site coordinates (inverse of :meth:`site_to_px`).

        Parameters
        ----------
        x_px, y_px : array_like, px
            Corner-origin pixel coordinates.
        um_per_px : float, µm/px
            Nominal image calibration.
        shape : (H, W)
            Image size in pixels.

        Returns
        -------
        x_um, y_um : ndarray of float64, µm
            Site coordinates.
        """
        return self.pose_map(um_per_px=um_per_px, shape=shape).inverse(x_px, y_px)


# --------------------------------------------------------------------------- result


@dataclass(frozen=True)
class RenderedImage:
    """A rendered field and its exact truth.

    Parameters
    ----------
    image : (H, W, 3) ndarray of uint8
        RGB image (before JPEG compression).
    hairs : tuple of HairRecord
        One record per shaft visible in the field, ids 0..n-1 in follicle-table order.
        ``exit_px`` is the exit point mapped by the pose, or ``None`` when it lies outside
        ``[0, W) x [0, H)`` (a hair entering from outside: not counted); ``centerline_px``
        runs from the exit (or the border) to the tip (or the border) with points about 2 px
        apart, and ``tip_px`` is its last point; ``length_um`` is the projected length of the
        whole shaft, ``length * cos(elevation)``, not cut at the border; ``diameter_um`` is
        the exact shaft diameter; ``extra`` holds ``follicle_id``, ``fu_id`` and ``phase``.
    style : RenderStyle
        The look used.
    pose : CameraPose
        The camera pose used.
    um_per_px : float, µm/px
        Nominal calibration (the effective scale is ``um_per_px / pose.scale``).
    """

    image: NDArray[np.uint8]
    hairs: tuple[HairRecord, ...]
    style: RenderStyle
    pose: CameraPose
    um_per_px: float


# --------------------------------------------------------------------------- input checks


def _check_shape(shape: Any) -> tuple[int, int]:
    try:
        items = tuple(shape)
    except TypeError:
        raise InputError(f"shape: expected (height, width) in pixels, got {shape!r}") from None
    if len(items) != 2:
        raise InputError(f"shape: expected (height, width) in pixels, got {shape!r}")
    out = []
    for name, value in zip(("height", "width"), items, strict=True):
        if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
            raise InputError(f"shape: {name} must be an integer number of pixels, got {value!r}")
        if not 8 <= int(value) <= _MAX_SIDE:
            raise InputError(f"shape: {name} must be between 8 and {_MAX_SIDE} px, got {value!r}")
        out.append(int(value))
    return out[0], out[1]


def _seed_sequence(seed: Any) -> np.random.SeedSequence:
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, bool | np.bool_) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InputError(
            f"seed: expected a non-negative int or numpy.random.SeedSequence, got {seed!r}"
        )
    return np.random.SeedSequence(int(seed))


def _stream(seq: np.random.SeedSequence, key: int) -> np.random.Generator:
    """Return an independent generator for one part of the image (`seq` is not mutated)."""
    child = np.random.SeedSequence(
        entropy=seq.entropy, spawn_key=(*seq.spawn_key, key), pool_size=seq.pool_size
    )
    return np.random.default_rng(child)


# --------------------------------------------------------------------------- rendering


def render_field(
    follicles: pd.DataFrame,
    *,
    um_per_px: float,
    shape: tuple[int, int],
    pose: CameraPose,
    style: RenderStyle,
    seed: int | np.random.SeedSequence,
    classes: HairClasses = DEFAULT_CLASSES,
) -> RenderedImage:
    """Render one trichoscopy field of a site and return it with its exact truth.

    Parameters
    ----------
    follicles : pandas.DataFrame
        One row per follicle of the site at one moment, with columns ``follicle_id`` (int,
        unique), ``fu_id`` (int, follicular unit), ``x_um``, ``y_um`` (exit point, site µm),
        ``phase`` ({'anagen', 'catagen', 'telogen', 'kenogen'}), ``has_shaft`` (bool),
        ``diameter_um`` (µm; NaN without shaft), ``length_um`` (shaft length above the skin
        along the shaft, µm, already clipped by the caller; NaN without shaft),
        ``azimuth_deg`` (shaft direction in the site plane, 0 = +x, 90 = +y, degrees) and
        ``elevation_deg`` (angle to the skin surface, [0, 90] degrees). Optional:
        ``pigment`` (0..1, multiplies the pigment absorption; about 0.05 for a grey hair) and
        ``clipped`` (bool: blunt cut end; default: ``length_um <= 3000``, longer shafts end
        in a natural tapered tip). Follicles without shaft are drawn as empty openings. The
        frame is not modified.
    um_per_px : float, µm/px
        Nominal calibration of the image.
    shape : (H, W) tuple of int
        Image size in pixels.
    pose : CameraPose
        Where the camera looks (site point at the image centre, rotation, scale).
    style : RenderStyle
        Every look parameter (see :func:`random_style`).
    seed : int or numpy.random.SeedSequence
        Per-image randomness (skin texture, clutter, noise, text bar). The truth does not
        depend on it.
    classes : HairClasses
        Diameter limits for the truth's ``hair_class``.

    Returns
    -------
    RenderedImage
        The image and one :class:`~hairtrial.records.HairRecord` per visible shaft.

    Raises
    ------
    InputError
        If the table lacks a column or holds invalid values, or `um_per_px`, `shape`,
        `pose`, `style`, `seed` or `classes` is invalid.

    Notes
    -----
    Deterministic: the same inputs give the same image bytes. The projected shaft length is
    ``length_um * cos(elevation)``, laid along the curved centreline. If a long curving
    shaft leaves the field and comes back, the truth centreline covers its first visible
    run. Lateral chromatic aberration (``style.chromatic_aberration_px``) displaces the red
    and blue channels slightly; the truth refers to the green channel.
    """
    um = check_um_per_px(um_per_px)
    height, width = _check_shape(shape)
    shape = (height, width)
    for name, value, kind in (
        ("pose", pose, CameraPose),
        ("style", style, RenderStyle),
        ("classes", classes, HairClasses),
    ):
        if not isinstance(value, kind):
            raise InputError(f"{name}: expected a {kind.__name__}, got {type(value).__name__}")
    seq = _seed_sequence(seed)
    fol = read_follicles(follicles)

    px_per_um = pose.scale / um
    to_px = pose.pose_map(um_per_px=um, shape=shape)
    ex, ey = to_px(fol.x_um, fol.y_um)
    shapes = shaft_shapes(fol.follicle_id, fol.diameter_um)
    elev = np.radians(fol.elevation_deg)
    proj_um = np.where(fol.has_shaft, np.nan_to_num(fol.length_um) * np.cos(elev), 0.0)
    proj_um = np.where(proj_um < 1e-6, 0.0, proj_um)
    visible = fol.has_shaft & (np.nan_to_num(fol.length_um) > 0)
    r_px = np.where(fol.has_shaft, 0.5 * np.nan_to_num(fol.diameter_um) * px_per_um, 0.0)
    margin = float(np.max(r_px, initial=0.0)) + 8.0
    traces = trace_shafts(
        np.flatnonzero(visible), fol.x_um, fol.y_um, fol.azimuth_deg, proj_um, shapes,
        to_px, px_per_um, shape, margin,
    )  # fmt: skip
    hairs = _truth(traces, fol, ex, ey, proj_um, shape, classes)

    # Absorption per shaft: pigment colour, unpigmented (white) hairs, per-hair jitter.
    od70 = np.array(HAIR_OD70[style.hair_colour])
    white = shapes.unpigmented_u < style.grey_fraction
    mu = np.where(white[:, None], np.array(HAIR_OD70["white"]), od70) / 70.0
    mu = mu * (fol.pigment * shapes.pigment_jitter)[:, None]

    rng_skin, rng_clutter = _stream(seq, 0), _stream(seq, 1)
    rng_noise, rng_text = _stream(seq, 2), _stream(seq, 3)
    log_albedo, sheen, texture = skin_layers(rng_skin, shape, 1.0 / px_per_um, style)
    texture = texture.reshape(-1)
    layers = Layers.empty(shape)
    _draw_follicle_features(layers, fol, ex, ey, r_px, px_per_um, style, texture, shape)
    _draw_clutter(layers, rng_clutter, fol, ex, ey, px_per_um, style, texture, shape)
    dermal = _intradermal(fol, ex, ey, r_px, elev, mu, pose, px_per_um, style, shape)

    rows = np.array([tr.row for tr in traces], dtype=np.int64)
    look = _hair_look(rows, fol, r_px, elev, shapes, pose, px_per_um)
    light = _light_vector(style)
    segs, optics = build_render_segments(
        traces, _look_with_mu(look, mu[rows]), light, shape, 1.0 / px_per_um
    )
    od, q = rasterise_shafts(segs, optics, _spec_rgb(style), shape)

    radiance = _composite(log_albedo, sheen, dermal, layers, od, q, illumination(shape, style))
    image = camera(radiance.reshape(3, height, width), rng_noise, style)
    if style.text_overlay:
        text_bar(image, rng_text)
    return RenderedImage(image=image, hairs=hairs, style=style, pose=pose, um_per_px=um)


def _composite(
    log_albedo: NDArray[np.float32],
    sheen: NDArray[np.float32],
    dermal: NDArray[np.float32],
    layers: Layers,
    od: NDArray[np.float32],
    q: NDArray[np.float32],
    light: NDArray[np.float32],
) -> NDArray[np.float32]:
    """Combine the layers into scene radiance (3, H*W), linear light; buffers are reused.

    ``skin = albedo * (1 - a) + over + sheen * (1 - a)`` with albedo the skin reflectance
    darkened by ostia, halos and the intradermal shafts, and ``a`` the coverage of surface
    material (yellow dots, scale, ink); then ``I = E * ((exp(-OD) * (skin + Q / 2) + S / 2)
    * T_fluid + R_fluid)`` with OD, Q and S from the shafts (see
    :func:`~hairtrial.simulate._render_raster.rasterise_shafts`) and the contact-fluid
    layer (bubbles) on top.
    Works through the image in cache-sized chunks.
    """
    f32 = np.float32
    n = sheen.size
    rad = log_albedo.reshape(3, n)
    sheen, dermal, light = sheen.reshape(n), dermal.reshape(n), light.reshape(n)
    glare_rgb = np.asarray(SHEEN_RGB, dtype=f32)[:, None]
    over, top = layers.used("over"), layers.used("top")
    step = 1 << 15
    for lo in range(0, n, step):
        sl = slice(lo, min(lo + step, n))
        r = rad[:, sl]
        r += layers.log_albedo[:, sl]
        r -= TYNDALL[:, None] * dermal[None, sl]
        np.exp(r, out=r)
        glare = glare_rgb * sheen[None, sl]
        if over:
            cover = np.minimum(layers.over_alpha[:, sl], f32(1.0))
            np.subtract(f32(1.0), cover, out=cover)
            r *= cover
            glare *= cover
            r += layers.over_colour[:, sl] / np.maximum(layers.over_alpha[:, sl], f32(1.0))
        r += glare
        r += f32(0.5) * q[:3, sl]
        t = np.negative(od[:, sl])
        np.exp(t, out=t)
        r *= t
        r += f32(0.5) * q[3:, sl]
        if top:
            r *= np.exp(layers.top_log[:, sl])
            r += layers.top_add[:, sl]
        r *= light[None, sl]
    return rad


def _truth(
    traces: list[ShaftTrace],
    fol: Follicles,
    ex: F64,
    ey: F64,
    proj_um: F64,
    shape: tuple[int, int],
    classes: HairClasses,
) -> tuple[HairRecord, ...]:
    height, width = shape
    out: list[HairRecord] = []
    for tr in traces:
        run = visible_run(tr.x, tr.y, width, height)
        if run is None:
            continue
        row = tr.row
        x0, y0 = float(ex[row]), float(ey[row])
        inside = 0.0 <= x0 < width and 0.0 <= y0 < height
        line = resample_polyline(run, CENTRELINE_SPACING_PX)
        centreline = tuple(map(tuple, line.tolist()))
        if inside:
            centreline = ((x0, y0), *centreline[1:])
        diameter = float(fol.diameter_um[row])
        out.append(
            HairRecord(
                id=len(out),
                exit_px=(x0, y0) if inside else None,
                tip_px=centreline[-1],
                centerline_px=centreline,
                diameter_um=diameter,
                length_um=float(proj_um[row]),
                hair_class=classes.classify(diameter),
                confidence=1.0,
                extra={
                    "follicle_id": int(fol.follicle_id[row]),
                    "fu_id": int(fol.fu_id[row]),
                    "phase": str(fol.phase[row]),
                },
            )
        )
    return tuple(out)


def _light_vector(style: RenderStyle) -> tuple[float, float, float]:
    az, el = math.radians(style.light_azimuth_deg), math.radians(style.light_elevation_deg)
    return math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)


def _spec_rgb(style: RenderStyle) -> F64:
    return style.specular_strength * np.array([0.15, 0.165, 0.18])


def _hair_look(
    rows: I64,
    fol: Follicles,
    r_px: F64,
    elev: F64,
    shapes: Any,
    pose: CameraPose,
    px_per_um: float,
) -> HairLook:
    diam = fol.diameter_um[rows]
    e = elev[rows]
    # The skin meets the shaft on an ellipse reaching r / sin(e) behind the exit; shallow
    # shafts emerge over up to 60 µm (longer slivers are hidden in the skin's relief).
    radius = 0.5 * diam
    emerge_um = np.minimum(radius / np.maximum(np.sin(e), 1e-3), np.maximum(60.0, radius))
    length = fol.length_um[rows] * np.cos(e)
    taper_um = np.where(fol.clipped[rows], 0.0, np.minimum(0.1 * length, 600.0))
    decay_um = np.where(fol.clipped[rows], 1e12, 800.0)
    ang = np.radians(fol.azimuth_deg[rows] - pose.rotation_deg)
    return HairLook(
        r0_px=r_px[rows],
        mu_abs=np.zeros((len(rows), 3)),
        elevation_rad=e,
        direction=np.stack([np.cos(ang), np.sin(ang)], axis=1),
        fade_px=np.maximum(emerge_um * px_per_um, 0.5),
        taper_px=taper_um * px_per_um,
        path_decay_px=decay_um * px_per_um,
        twist_k=2.0 * np.pi / (shapes.twist_um[rows] * px_per_um),
        twist_phase=shapes.twist_phase[rows],
        ellipticity=shapes.ellipticity[rows],
        streak_phase=shapes.streak_phase[rows],
        cut_tan=np.where(fol.clipped[rows], shapes.cut_tan[rows], 0.0),
    )


def _look_with_mu(look: HairLook, mu: F64) -> HairLook:
    return dataclasses.replace(look, mu_abs=mu)


def _intradermal(
    fol: Follicles,
    ex: F64,
    ey: F64,
    r_px: F64,
    elev: F64,
    mu: F64,
    pose: CameraPose,
    px_per_um: float,
    style: RenderStyle,
    shape: tuple[int, int],
) -> NDArray[np.float32]:
    """Intradermal shaft parts of all follicles with a shaft near the field."""
    height, width = shape
    depth = np.array([VISIBLE_DEPTH_UM[p] for p in fol.phase]) if len(fol.phase) else np.zeros(0)
    tan_e = np.tan(np.clip(elev, math.radians(5.0), math.radians(89.0)))
    length_um = np.minimum(depth / tan_e, 1500.0)
    near = fol.has_shaft & (
        np.hypot(
            np.maximum(np.maximum(-ex, ex - width), 0), np.maximum(np.maximum(-ey, ey - height), 0)
        )
        <= length_um * px_per_um + 60.0 * px_per_um + 10.0
    )
    ang = np.radians(fol.azimuth_deg - pose.rotation_deg)
    pigment_od = np.minimum(mu.mean(axis=1) * np.nan_to_num(fol.diameter_um), 3.5)
    amplitude = np.where(near, 1.0 * style.subsurface_visibility * pigment_od, 0.0)
    amplitude = amplitude * np.clip(depth / VISIBLE_DEPTH_UM["anagen"], 0.0, 1.0) ** 0.5
    return intradermal_od(
        ex, ey, -np.cos(ang), -np.sin(ang), length_um * px_per_um, r_px,
        tan_e / px_per_um, amplitude, px_per_um, shape,
    )  # fmt: skip


def _draw_follicle_features(
    layers: Layers,
    fol: Follicles,
    ex: F64,
    ey: F64,
    r_px: F64,
    px_per_um: float,
    style: RenderStyle,
    texture: NDArray[np.float32],
    shape: tuple[int, int],
) -> None:
    """Ostia, perifollicular halos and yellow dots: looks fixed by the follicle/unit ids."""
    height, width = shape
    reach = 600.0 * px_per_um
    near = (ex > -reach) & (ex < width + reach) & (ey > -reach) & (ey < height + reach)
    if not near.any():
        return
    idx = np.flatnonzero(near)
    ids = fol.follicle_id[idx]
    empty_r = (22.0 + 18.0 * hash_uniform(ids, HAIR_STREAM, 40)) * px_per_um
    radius = np.where(fol.has_shaft[idx], r_px[idx], empty_r)
    openings = group_openings(
        fol.fu_id[idx], ex[idx], ey[idx], radius, fol.has_shaft[idx], px_per_um
    )
    draw_halos(layers, openings, style.perifollicular_pigment, px_per_um, shape)
    draw_openings(layers, openings, style.follicle_opening_strength, style, shape)
    dots = (~fol.has_shaft[idx]) & (hash_uniform(ids, HAIR_STREAM, 41) < style.yellow_dot_fraction)
    if dots.any():
        dot_ids = ids[dots]
        amp = np.stack([0.12 * hash_uniform(dot_ids, UNIT_STREAM, 20 + j) for j in range(3)], 1)
        phase = np.stack([6.283 * hash_uniform(dot_ids, UNIT_STREAM, 23 + j) for j in range(3)], 1)
        rad = (35.0 + 60.0 * hash_uniform(dot_ids, HAIR_STREAM, 42)) * px_per_um
        draw_yellow_dots(layers, ex[idx][dots], ey[idx][dots], rad, amp, phase, texture, shape)


def _draw_clutter(
    layers: Layers,
    rng: np.random.Generator,
    fol: Follicles,
    ex: F64,
    ey: F64,
    px_per_um: float,
    style: RenderStyle,
    texture: NDArray[np.float32],
    shape: tuple[int, int],
) -> None:
    """Per-image clutter: extra empty openings and yellow dots, scale, ink, bubbles."""
    height, width = shape
    area_mm2 = height * width / (px_per_um * 1000.0) ** 2

    def spots(density: float, pad: float) -> tuple[F64, F64]:
        count = int(rng.poisson(density * area_mm2))
        return (
            rng.uniform(-pad, width + pad, count),
            rng.uniform(-pad, height + pad, count),
        )

    ox, oy = spots(style.empty_opening_density, 20.0)
    if ox.size:
        op = Openings(
            cx=ox, cy=oy, radius=rng.uniform(18.0, 40.0, ox.size) * px_per_um,
            empty=np.ones(ox.size, dtype=bool),
            unit_id=rng.integers(0, 2**62, ox.size, dtype=np.int64),
        )  # fmt: skip
        draw_openings(layers, op, style.follicle_opening_strength, style, shape)
    yx, yy = spots(style.yellow_dot_density, 20.0)
    if yx.size:
        draw_yellow_dots(
            layers, yx, yy, rng.uniform(30.0, 100.0, yx.size) * px_per_um,
            rng.uniform(0.0, 0.12, (yx.size, 3)), rng.uniform(0, 2 * np.pi, (yx.size, 3)),
            texture, shape,
        )  # fmt: skip
    fx, fy = spots(style.scale_flake_density, 60.0)
    if fx.size:
        # Half the flakes cling to hair exits (peripilar casts), the rest lie anywhere.
        in_view = np.flatnonzero(
            fol.has_shaft & (ex >= 0) & (ex < width) & (ey >= 0) & (ey < height)
        )
        at_exit = rng.uniform(size=fx.size) < 0.5
        if in_view.size:
            pick = in_view[rng.integers(0, in_view.size, fx.size)]
            off = rng.normal(0.0, 60.0 * px_per_um, (2, fx.size))
            fx = np.where(at_exit, ex[pick] + off[0], fx)
            fy = np.where(at_exit, ey[pick] + off[1], fy)
        radius = np.exp(rng.uniform(np.log(25.0), np.log(220.0), fx.size)) * px_per_um
        draw_flakes(layers, rng, fx, fy, radius, texture, shape)
    kx, ky = spots(style.ink_dot_density / 6.0, 40.0)
    if kx.size:
        per = rng.integers(3, 13, kx.size)
        cx = np.repeat(kx, per) + rng.normal(0.0, 70.0 * px_per_um, int(per.sum()))
        cy = np.repeat(ky, per) + rng.normal(0.0, 70.0 * px_per_um, int(per.sum()))
        draw_ink(layers, cx, cy, rng.uniform(4.0, 20.0, cx.size) * px_per_um, shape)
    bx, by = spots(style.bubble_density, 100.0)
    if bx.size:
        radius = np.exp(rng.uniform(np.log(50.0), np.log(500.0), bx.size)) * px_per_um
        draw_bubbles(layers, bx, by, np.maximum(radius, 3.0), style, shape)


# --------------------------------------------------------------------------- JPEG


def encode_jpeg_roundtrip(image: ArrayLike, quality: int) -> NDArray[np.uint8]:
    """Compress an RGB image to JPEG in memory and decode it again (Pillow, 4:2:0).

    Parameters
    ----------
    image : (H, W, 3) array_like of uint8
        RGB image.
    quality : int
        JPEG quality in [1, 100] (e.g. ``RenderStyle.jpeg_quality``).

    Returns
    -------
    (H, W, 3) ndarray of uint8
        The decoded image, with the compression artefacts.
    """
    from PIL import Image

    arr = check_image(image)
    if arr.ndim != 3 or arr.dtype != np.uint8:
        raise InputError(
            f"image: expected an (H, W, 3) uint8 RGB array, got {arr.dtype} {arr.shape}"
        )
    if isinstance(quality, bool) or not isinstance(quality, int | np.integer):
        raise InputError(f"quality: expected an integer in [1, 100], got {quality!r}")
    q = int(check_range(quality, name="quality", low=1, high=100))
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr)).save(buf, format="JPEG", quality=q)
    buf.seek(0)
    with Image.open(buf) as decoded:
        return np.asarray(decoded.convert("RGB"), dtype=np.uint8).copy()
