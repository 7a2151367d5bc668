"""Hair shafts: centreline tracing, optics and render segments (private)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from hairtrial.simulate._render_geometry import PoseMap, ShaftShapes, centreline_site, runs_inside
from hairtrial.simulate._render_raster import (
    ShaftOptics,
    ShaftSegments,
    build_shaft_luts,
)

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
B = NDArray[np.bool_]

#: Optical density (double pass, R, G, B) through a 70 µm chord of shaft, per pigment.
#: Melanin absorbs more and more towards blue, so brown and blond hair look warm;
#: unpigmented ("white") keratin barely absorbs and mostly scatters.
HAIR_OD70: dict[str, tuple[float, float, float]] = {
    "black": (5.0, 5.4, 5.8),
    "dark_brown": (3.0, 4.0, 5.2),
    "brown": (1.8, 2.8, 4.2),
    "blond": (0.7, 1.15, 1.9),
    "grey": (0.50, 0.52, 0.58),
    "white": (0.07, 0.09, 0.13),
}
#: Keratin scattering coefficient (1/µm) and backscatter albedo.
SCATTER_PER_UM = 1.4 / 70.0
KERATIN_ALBEDO = 0.62
#: Shafts longer than this (µm) are taken as uncut, with a natural tapered tip, unless the
#: follicle table says otherwise in its optional ``clipped`` column.
UNCUT_MIN_UM = 3000.0
#: Depth (µm) of the intradermal shaft still visible through the epidermis, by phase: a
#: telogen club hair sits high and its root is unpigmented.
VISIBLE_DEPTH_UM = {"anagen": 250.0, "catagen": 170.0, "telogen": 90.0, "kenogen": 0.0}


@dataclass(frozen=True)
class ShaftTrace:
    """One shaft's centreline in pixels (exit first, tip last) and its follicle row."""

    row: int
    x: F64
    y: F64
    step_px: float
    length_px: float


def distance_to_box(x: F64, y: F64, width: float, height: float) -> F64:
    """Euclidean distance from points to the rectangle [0, width] x [0, height]."""
    dx = np.maximum(np.maximum(-x, x - width), 0.0)
    dy = np.maximum(np.maximum(-y, y - height), 0.0)
    return np.asarray(np.hypot(dx, dy), dtype=np.float64)


def trace_shafts(
    rows: I64,
    x_um: F64,
    y_um: F64,
    azimuth_deg: F64,
    proj_length_um: F64,
    shapes: ShaftShapes,
    to_px: PoseMap,
    px_per_um: float,
    shape: tuple[int, int],
    margin_px: float,
) -> list[ShaftTrace]:
    """Trace the shafts that may reach the field.

    Parameters
    ----------
    rows : (n,) ndarray of int64
        Follicle rows with a visible shaft, in table order.
    x_um, y_um, azimuth_deg, proj_length_um : (N,) ndarray
        Follicle table columns (indexed by row); projected length in µm.
    shapes : ShaftShapes
        Per-follicle shape parameters (indexed by row).
    to_px : callable
        Site µm to image px mapping (the camera pose).
    px_per_um : float
        Image scale.
    shape : (H, W)
        Image size.
    margin_px : float
        Shafts ending this close outside the field are traced too (they may show a rim).

    Returns
    -------
    list of ShaftTrace
        In table order.
    """
    height, width = shape
    ex, ey = to_px(x_um[rows], y_um[rows])
    reach = proj_length_um[rows] * px_per_um + margin_px
    near = distance_to_box(ex, ey, width, height) <= reach
    step_um = 1.0 / px_per_um
    out: list[ShaftTrace] = []
    for row in rows[near]:
        length_um = float(proj_length_um[row])
        xs, ys = centreline_site(
            float(x_um[row]),
            float(y_um[row]),
            math.radians(float(azimuth_deg[row])),
            length_um,
            step_um,
            shapes,
            int(row),
        )
        xp, yp = to_px(xs, ys)
        n_steps = len(xs) - 1
        out.append(
            ShaftTrace(
                row=int(row),
                x=xp,
                y=yp,
                step_px=length_um * px_per_um / n_steps,
                length_px=length_um * px_per_um,
            )
        )
    return out


@dataclass(frozen=True)
class HairLook:
    """Per-trace look parameters (arrays aligned with the trace list)."""

    r0_px: F64
    mu_abs: F64  # (n, 3), 1/µm
    elevation_rad: F64
    direction: F64  # (n, 2) initial image direction (unit)
    fade_px: F64
    taper_px: F64
    path_decay_px: F64
    twist_k: F64
    twist_phase: F64
    ellipticity: F64
    streak_phase: F64
    cut_tan: F64


def build_render_segments(
    traces: list[ShaftTrace],
    look: HairLook,
    light: tuple[float, float, float],
    shape: tuple[int, int],
    um_per_px_eff: float,
) -> tuple[ShaftSegments, ShaftOptics]:
    """Turn traced centrelines into rasteriser segments and per-hair optics.

    The dense centreline (1 px steps) is thinned to vertices whose chords stay within
    ~0.03 px of the curve, cut into runs near the field, and each vertex gets the bisector
    that splits pixel ownership between its two segments.

    Parameters
    ----------
    traces : list of ShaftTrace
        Shafts to draw.
    look : HairLook
        Per-trace look parameters.
    light : (3,) tuple
        Unit vector towards the light (x right, y down, z out of the skin).
    shape : (H, W)
        Image size.
    um_per_px_eff : float, µm/px
        Effective scale (pose scale included).

    Returns
    -------
    ShaftSegments, ShaftOptics
    """
    height, width = shape
    r0 = look.r0_px
    half_width = r0 * (1.0 + look.ellipticity) + 1.0
    cap_sin = np.sin(look.elevation_rad)
    tip_reach = (
        r0 * (np.maximum(cap_sin, 0.12) + np.abs(look.cut_tan)) * (1.0 + look.ellipticity) + 1.5
    )
    lo_reach = look.fade_px * (1.0 + look.ellipticity) + 1.5
    cols: dict[str, list[F64]] = {k: [] for k in ("v0", "v1", "s0", "b0", "b1", "lo", "hi")}
    hair_ids: list[I64] = []
    for h, tr in enumerate(traces):
        margin = half_width[h] + max(tip_reach[h], lo_reach[h]) + 4.0
        inside = (
            (tr.x >= -margin)
            & (tr.x <= width + margin)
            & (tr.y >= -margin)
            & (tr.y <= height + margin)
        )
        pts = np.stack([tr.x, tr.y], axis=1)
        n_pts = len(pts)
        for a, b in runs_inside(inside):
            a2, b2 = max(a - 1, 0), min(b + 1, n_pts)
            idx = _vertices(pts[a2:b2], tr.step_px, r0[h]) + a2
            v = pts[idx]
            t = np.diff(v, axis=0)
            seg_len = np.hypot(t[:, 0], t[:, 1])
            degenerate = seg_len < 1e-9
            t = np.where(
                degenerate[:, None],
                look.direction[h],
                t / np.where(degenerate, 1.0, seg_len)[:, None],
            )
            bis = t[:-1] + t[1:]
            norm = np.hypot(bis[:, 0], bis[:, 1])
            bis = np.where((norm > 1e-6)[:, None], bis / np.maximum(norm, 1e-12)[:, None], t[1:])
            m = len(t)
            lo = np.zeros(m)
            hi = np.zeros(m)
            if a2 == 0:
                lo[0] = lo_reach[h]
            if b2 == n_pts:
                hi[-1] = tip_reach[h]
            cols["v0"].append(v[:-1])
            cols["v1"].append(v[1:])
            cols["s0"].append(idx[:-1].astype(np.float64) * tr.step_px)
            cols["b0"].append(np.vstack([t[:1], bis]))
            cols["b1"].append(np.vstack([bis, t[-1:]]))
            cols["lo"].append(lo)
            cols["hi"].append(hi)
            hair_ids.append(np.full(m, h, dtype=np.int64))
    if hair_ids:
        hair = np.concatenate(hair_ids)
        v0, v1 = np.concatenate(cols["v0"]), np.concatenate(cols["v1"])
        s0 = np.concatenate(cols["s0"]).astype(np.float64)
        b0, b1 = np.concatenate(cols["b0"]), np.concatenate(cols["b1"])
        ext_lo, ext_hi = np.concatenate(cols["lo"]), np.concatenate(cols["hi"])
    else:
        hair = np.zeros(0, dtype=np.int64)
        v0 = v1 = b0 = b1 = np.zeros((0, 2))
        s0 = ext_lo = ext_hi = np.zeros(0)
    d = v1 - v0
    seg_len = np.hypot(d[:, 0], d[:, 1])
    ok = seg_len > 1e-9
    tang = np.where(ok[:, None], d / np.where(ok, seg_len, 1.0)[:, None], look.direction[hair])
    spec_off, spec_gain = _specular(tang, hair, s0, look, light)
    segs = ShaftSegments(
        hair=hair,
        v0x=v0[:, 0], v0y=v0[:, 1], v1x=v1[:, 0], v1y=v1[:, 1],
        tx=tang[:, 0], ty=tang[:, 1], s0=s0,
        b0x=b0[:, 0], b0y=b0[:, 1], b1x=b1[:, 0], b1y=b1[:, 1],
        ext_lo=ext_lo, ext_hi=ext_hi,
        half_width=half_width[hair],
        spec_off=spec_off, spec_gain=spec_gain,
    )  # fmt: skip
    lut, rows = build_shaft_luts(r0, look.mu_abs, SCATTER_PER_UM, KERATIN_ALBEDO, um_per_px_eff)
    optics = ShaftOptics(
        r0_px=r0,
        length_px=np.array([tr.length_px for tr in traces], dtype=np.float64),
        fade_px=look.fade_px,
        cap_sin=cap_sin,
        taper_px=look.taper_px,
        path_gain=np.minimum(1.0 / np.maximum(np.cos(look.elevation_rad), 1e-6), 2.5),
        path_decay_px=look.path_decay_px,
        twist_k=look.twist_k,
        twist_phase=look.twist_phase,
        ellipticity=look.ellipticity,
        streak_phase=look.streak_phase,
        cut_tan=look.cut_tan,
        lut=lut,
        lut_rows=rows,
    )
    return segs, optics


def _vertices(pts: F64, step_px: float, r0: float) -> I64:
    """Return indices of the vertices kept from a dense run (first and last always kept)."""
    n = len(pts)
    if n <= 2:
        return np.arange(n, dtype=np.int64)
    d = np.diff(pts, axis=0)
    ang = np.unwrap(np.arctan2(d[:, 1], d[:, 0]))
    kappa = float(np.max(np.abs(np.diff(ang)))) / max(step_px, 1e-9) if n > 2 else 0.0
    spacing = math.sqrt(8.0 * 0.03 / kappa) if kappa > 1e-12 else math.inf
    spacing = min(max(spacing, 1.0), max(8.0, 2.5 * r0))
    stride = max(1, int(spacing / max(step_px, 1e-9)))
    idx = np.arange(0, n - 1, stride, dtype=np.int64)
    return np.append(idx, n - 1)


def _specular(
    tang: F64, hair: I64, s0: F64, look: HairLook, light: tuple[float, float, float]
) -> tuple[F64, F64]:
    """Where across each segment the specular line sits, and how strong it is.

    A cylinder reflects specularly where its surface normal is the component of the
    half-vector (between light and viewer) perpendicular to the axis; that normal projects to
    an offset across the shaft of ``n* . n_image`` radii.
    """
    if hair.size == 0:
        return np.zeros(0), np.zeros(0)
    half = np.array([light[0], light[1], light[2] + 1.0])
    half /= np.linalg.norm(half)
    elev = look.elevation_rad[hair] * np.exp(-s0 / look.path_decay_px[hair])
    ce, se = np.cos(elev), np.sin(elev)
    axis = np.stack([ce * tang[:, 0], ce * tang[:, 1], se], axis=1)
    along = axis @ half
    perp = half[None, :] - along[:, None] * axis
    mag = np.linalg.norm(perp, axis=1)
    nstar = perp / np.maximum(mag, 1e-9)[:, None]
    # Image normal of the segment: (-ty, tx).
    offset = -nstar[:, 0] * tang[:, 1] + nstar[:, 1] * tang[:, 0]
    gain = mag**2 * np.clip(nstar[:, 2], 0.0, 1.0)
    return offset, gain
