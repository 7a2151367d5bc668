"""Sub-pixel rasterisation of hair shafts and round skin features (private).

Everything here works on flat lists of (item, pixel) candidate pairs built from small
bounding boxes, so the cost grows with the area the objects cover, never with the image size
times the number of objects. Results are accumulated with :func:`numpy.bincount`, which adds
overlapping contributions exactly (hairs crossing each other multiply their transmissions,
i.e. add their optical densities).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

#: LUT samples per pixel of distance from the shaft axis.
LUT_PER_PX = 8
#: Sub-samples of the 1-px box filter across the shaft used to build the LUT.
_SUBSAMPLES = 16
#: Largest number of candidate pairs handled at once (bounds the memory used).
_MAX_CANDIDATES = 1 << 21
#: Optical densities are clipped here before exponentiation.
_OD_CAP = 30.0


def _batches(counts: I64, limit: int) -> Iterator[slice]:
    """Split items into consecutive groups whose counts sum to about `limit`."""
    cum = np.cumsum(counts)
    start, done, n = 0, 0, len(counts)
    while start < n:
        stop = int(np.searchsorted(cum, done + limit, side="right"))
        stop = max(stop, start + 1)
        yield slice(start, stop)
        done = int(cum[stop - 1])
        start = stop


def expand_runs(lo: I64, hi: I64) -> tuple[I64, I64]:
    """Expand inclusive integer ranges ``lo[i]..hi[i]`` into (range index, value) pairs.

    Parameters
    ----------
    lo, hi : (n,) ndarray of int64
        Inclusive bounds; a range with ``hi < lo`` is empty.

    Returns
    -------
    item, value : (m,) ndarray of int64
    """
    counts = np.maximum(hi - lo + 1, 0)
    item = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    offset = np.cumsum(counts) - counts - lo
    value = np.arange(item.size, dtype=np.int64) - np.repeat(offset, counts)
    return item, value


def rect_candidates(x0: I64, x1: I64, y0: I64, y1: I64) -> tuple[I64, I64, I64]:
    """Enumerate the pixels of many inclusive integer rectangles at once.

    Parameters
    ----------
    x0, x1, y0, y1 : (n,) ndarray of int64
        Inclusive column and row ranges; empty where ``x1 < x0`` or ``y1 < y0``.

    Returns
    -------
    item, col, row : (m,) ndarray of int64
        For every pixel of every rectangle: the rectangle index, the column and the row.
    """
    item_r, row = expand_runs(y0, y1)
    k, col = expand_runs(x0[item_r], x1[item_r])
    return item_r[k], col, row[k]


def pixel_range(lo: F64, hi: F64, size: int) -> tuple[I64, I64]:
    """Inclusive index range of pixels whose centres ``i + 0.5`` lie in [lo, hi]."""
    first = np.clip(np.ceil(lo - 0.5), 0, size).astype(np.int64)
    last = np.clip(np.floor(hi - 0.5), -1, size - 1).astype(np.int64)
    return first, last


def accumulate(buf: F32, flat: I64, weights: F64 | F32) -> None:
    """Add `weights` (C, m) at flat pixel indices into `buf` (C, H*W), in place.

    Repeated indices add up (unbuffered :func:`numpy.add.at`).
    """
    if flat.size == 0:
        return
    for c in range(buf.shape[0]):
        np.add.at(buf[c], flat, np.asarray(weights[c], dtype=np.float32))


# --------------------------------------------------------------------------- hair shafts


@dataclass(frozen=True)
class ShaftOptics:
    """Per-hair optical and geometric parameters (pixels; one entry per rendered hair)."""

    r0_px: F64  # nominal radius
    length_px: F64  # projected arc length, exit to tip
    fade_px: F64  # emergence length behind the exit: r / sin(elevation), capped
    cap_sin: F64  # sin(elevation): the cut face's semi-axis along the shaft, in radii
    taper_px: F64  # natural-tip taper length (0: blunt cut end)
    path_gain: F64  # 1 / cos(elevation), capped: extra optical path of a tilted shaft
    path_decay_px: F64  # long hairs drape onto the skin: the path gain fades over this
    twist_k: F64  # rad/px
    twist_phase: F64
    ellipticity: F64
    streak_phase: F64
    cut_tan: F64  # tilt of the cut face across the shaft (0: square or natural tip)
    lut: F32  # (6, n_hairs * lut_rows): OD (r, g, b) and scatter (r, g, b) vs distance
    lut_rows: int


@dataclass(frozen=True)
class ShaftSegments:
    """Render segments of all hairs (pixels)."""

    hair: I64
    v0x: F64
    v0y: F64
    v1x: F64
    v1y: F64
    tx: F64
    ty: F64
    s0: F64  # arc length at v0, from the exit
    b0x: F64  # ownership bisector at v0 (unit)
    b0y: F64
    b1x: F64
    b1y: F64
    ext_lo: F64  # allowed reach behind v0 (exit fade) and beyond v1 (tip cap)
    ext_hi: F64
    half_width: F64
    spec_off: F64  # highlight offset across the shaft, in radii (signed, normal direction)
    spec_gain: F64

    def take(self, part: slice) -> ShaftSegments:
        """Return the segments in `part`."""
        return ShaftSegments(
            **{f.name: getattr(self, f.name)[part] for f in dataclasses.fields(self)}
        )


def build_shaft_luts(
    r0_px: F64, mu_abs: F64, sigma_sc: float, albedo: float, um_per_px: float
) -> tuple[F32, int]:
    """Tabulate pixel-averaged optical density and backscatter against axis distance.

    A cylinder of radius r has chord ``2 sqrt(r^2 - d^2)`` at distance d from its axis.
    Each table row is the 1-px box-filtered average over that chord profile of the
    Beer-Lambert transmission ``exp(-(mu + sigma) * chord)`` (stored as optical density
    ``-log`` of the average, so the integrated darkness of a thin hair is exact) and of the
    light the keratin scatters back, ``albedo * (1 - exp(-sigma chord)) * exp(-0.7 mu chord)``.

    Parameters
    ----------
    r0_px : (n,) ndarray, px
        Shaft radii.
    mu_abs : (n, 3) ndarray, 1/µm
        Pigment absorption per colour channel (double pass).
    sigma_sc : float, 1/µm
        Keratin scattering coefficient.
    albedo : float
        Backscatter albedo of keratin.
    um_per_px : float, µm/px
        Effective image scale (pose scale included).

    Returns
    -------
    lut : (6, n * rows) ndarray of float32
        Optical density (R, G, B) then backscatter (R, G, B); entry ``h * rows + i`` holds
        hair h at distance ``i / LUT_PER_PX`` px.
    rows : int
        Rows per hair.
    """
    n = len(r0_px)
    rows = int(np.ceil((float(np.max(r0_px, initial=0.0)) + 1.5) * LUT_PER_PX)) + 2
    d = np.arange(rows, dtype=np.float64) / LUT_PER_PX
    sub = (np.arange(_SUBSAMPLES) + 0.5) / _SUBSAMPLES - 0.5
    x = np.abs(d[:, None] + sub[None, :])  # (rows, sub)
    r = np.asarray(r0_px, dtype=np.float64)[:, None, None]
    chord = 2.0 * np.sqrt(np.maximum(r * r - x[None] ** 2, 0.0)) * um_per_px  # (n, rows, sub)
    tau_sc = sigma_sc * chord
    back = albedo * -np.expm1(-tau_sc)
    lut = np.empty((6, n, rows), dtype=np.float32)
    for c in range(3):
        tau_abs = np.minimum(mu_abs[:, c, None, None] * chord, 60.0)
        trans = np.exp(-np.minimum(tau_abs + tau_sc, 60.0)).mean(axis=2)
        lut[c] = -np.log(np.maximum(trans, 1e-13))
        lut[3 + c] = (back * np.exp(-0.7 * tau_abs)).mean(axis=2)
    return lut.reshape(6, n * rows), rows


def _smoothstep(x: F64) -> F64:
    t = np.clip(x, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def band_candidates(segs: ShaftSegments, shape: tuple[int, int]) -> tuple[I64, I64, I64]:
    """Enumerate, row by row, the pixels near each segment's band.

    For every segment and image row the columns whose centres fall inside the segment's
    rotated rectangle (half-width ``half_width``, extended along the axis by the end reaches
    and by the slack of the bisector ownership at bends) are found analytically, so the
    candidates cover little more than the band itself whatever the segment's orientation.

    Returns
    -------
    item, col, row : (m,) ndarray of int64
        Segment index, column and row of every candidate pixel.
    """
    height, width = shape
    tx, ty = segs.tx, segs.ty
    seg_len = (segs.v1x - segs.v0x) * tx + (segs.v1y - segs.v0y) * ty
    rad = segs.half_width
    # Slack of bisector ownership beyond a segment's ends: R tan(theta / 2) at a bend.
    cos0 = np.clip(segs.b0x * tx + segs.b0y * ty, 0.2, 1.0)
    cos1 = np.clip(segs.b1x * tx + segs.b1y * ty, 0.2, 1.0)
    slack0 = rad * np.sqrt(1.0 - cos0**2) / cos0 + 1.0
    slack1 = rad * np.sqrt(1.0 - cos1**2) / cos1 + 1.0
    u_lo = -segs.ext_lo - slack0
    u_hi = seg_len + segs.ext_hi + slack1
    ends_y = (segs.v0y + ty * u_lo, segs.v0y + ty * u_hi)
    spread_y = np.abs(tx) * rad
    y0, y1 = pixel_range(np.minimum(*ends_y) - spread_y, np.maximum(*ends_y) + spread_y, height)
    item, row = expand_runs(y0, y1)
    yy = row + 0.5 - segs.v0y[item]
    txi, tyi, ri = tx[item], ty[item], rad[item]
    big = 1e9
    with np.errstate(divide="ignore", invalid="ignore"):
        # |Y tx - X ty| <= R  ->  X between (Y tx -/+ R) / ty
        a = (yy * txi - ri) / tyi
        b = (yy * txi + ri) / tyi
        flat_t = np.abs(tyi) < 1e-9
        inside_t = np.abs(yy * txi) <= ri
        lo1 = np.where(flat_t, np.where(inside_t, -big, big), np.minimum(a, b))
        hi1 = np.where(flat_t, np.where(inside_t, big, -big), np.maximum(a, b))
        # u_lo <= X tx + Y ty <= u_hi
        c = (u_lo[item] - yy * tyi) / txi
        d = (u_hi[item] - yy * tyi) / txi
        flat_u = np.abs(txi) < 1e-9
        inside_u = (yy * tyi >= u_lo[item]) & (yy * tyi <= u_hi[item])
        lo2 = np.where(flat_u, np.where(inside_u, -big, big), np.minimum(c, d))
        hi2 = np.where(flat_u, np.where(inside_u, big, -big), np.maximum(c, d))
    xs = segs.v0x[item]
    lo = np.clip(np.maximum(lo1, lo2) + xs, -2.0, width + 2.0)
    hi = np.clip(np.minimum(hi1, hi2) + xs, -2.0, width + 2.0)
    x0, x1 = pixel_range(lo, hi, width)
    sub, col = expand_runs(x0, x1)
    return item[sub], col, row[sub]


def rasterise_shafts(
    segs: ShaftSegments,
    optics: ShaftOptics,
    spec_rgb: F64,
    shape: tuple[int, int],
) -> tuple[F32, F32]:
    """Render hair shafts into optical density and scattered-light buffers.

    Each pixel is owned by one segment of a hair (the one between the bisectors of its end
    vertices), so a polyline is drawn without seams or double counting; its signed distance to
    the segment line and its arc length along the hair select the tabulated cross-section.
    Where hairs cross, the light one hair scatters back is attenuated by the hairs above
    it. Pixels do not record which hair lies on top, so the composite averages the two
    extreme orders: ``I = exp(-OD) * skin + (S + exp(-OD) * Q) / 2`` with
    ``S = sum_i S_i`` (nothing above) and ``Q = sum_i S_i exp(OD_i)`` (all others above),
    exact for a single hair and for either order of two crossing hairs on average.

    Parameters
    ----------
    segs : ShaftSegments
        Segments of all hairs.
    optics : ShaftOptics
        Per-hair parameters and tables.
    spec_rgb : (3,) ndarray
        Colour and strength of the specular highlight (linear light).
    shape : (H, W)
        Image size in pixels.

    Returns
    -------
    od : (3, H*W) ndarray of float32
        Summed optical density.
    q : (6, H*W) ndarray of float32
        Q (rows 0-2) and S (rows 3-5) of the scattered light, see above.
    """
    height, width = shape
    od = np.zeros((3, height * width), dtype=np.float32)
    q = np.zeros((6, height * width), dtype=np.float32)
    if segs.hair.size == 0:
        return od, q
    seg_len = (segs.v1x - segs.v0x) * segs.tx + (segs.v1y - segs.v0y) * segs.ty
    estimate = (seg_len + segs.ext_lo + segs.ext_hi + 4.0) * (2.0 * segs.half_width + 3.0)
    for part in _batches(estimate.astype(np.int64) + 1, _MAX_CANDIDATES):
        sub = segs.take(part)
        seg, c, r = band_candidates(sub, shape)
        if seg.size == 0:
            continue
        cx = c + 0.5 - sub.v0x[seg]
        cy = r + 0.5 - sub.v0y[seg]
        tx, ty = sub.tx[seg], sub.ty[seg]
        ds = cy * tx - cx * ty
        keep = np.abs(ds) < sub.half_width[seg]
        keep &= cx * sub.b0x[seg] + cy * sub.b0y[seg] >= -sub.ext_lo[seg]
        ex = c + 0.5 - sub.v1x[seg]
        ey = r + 0.5 - sub.v1y[seg]
        keep &= ex * sub.b1x[seg] + ey * sub.b1y[seg] < sub.ext_hi[seg]
        idx = np.flatnonzero(keep)
        if idx.size == 0:
            continue
        seg, ds = seg[idx], ds[idx]
        s = sub.s0[seg] + cx[idx] * tx[idx] + cy[idx] * ty[idx]
        flat = r[idx] * width + c[idx]
        _shade(seg, ds, s, flat, sub, optics, spec_rgb, od, q)
    return od, q


def _shade(
    seg: I64,
    ds: F64,
    s: F64,
    flat: I64,
    segs: ShaftSegments,
    optics: ShaftOptics,
    spec_rgb: F64,
    od: F32,
    q: F32,
) -> None:
    """Evaluate the shaft cross-section at the kept candidate pixels and accumulate."""
    f32 = np.float32
    h = segs.hair[seg]
    ds = ds.astype(f32)
    s = s.astype(f32)
    r0 = optics.r0_px.astype(f32)[h]
    length = optics.length_px.astype(f32)[h]
    twist = optics.twist_k.astype(f32)[h] * s + optics.twist_phase.astype(f32)[h]
    r_s = r0 * (1.0 + optics.ellipticity.astype(f32)[h] * np.cos(2.0 * twist))
    taper = optics.taper_px.astype(f32)[h]
    tapered = taper > 0.0
    if tapered.any():
        frac = np.clip((length - s) / np.where(tapered, taper, f32(1.0)), 0.0, 1.0)
        r_s = np.where(tapered, r_s * (0.12 + 0.88 * frac), r_s)
    beyond = s - length - optics.cut_tan.astype(f32)[h] * ds
    d_rel = np.abs(ds) / r_s
    # Behind the exit only the top of the shaft is above the skin: the skin line is the
    # ellipse where the cylinder meets the skin plane (semi-axis r / sin(e) along the shaft),
    # and the sliver above it thins towards its far end, the faster the shallower the shaft.
    sin_e = optics.cap_sin.astype(f32)[h]
    emerge = optics.fade_px.astype(f32)[h] * (r_s / r0)
    behind = np.maximum(-s, 0.0) / emerge
    d_rel = np.where(behind > 0.0, np.hypot(d_rel, behind), d_rel)
    fade = np.clip(1.0 - behind, 0.0, 1.0) ** (1.0 - sin_e)
    past_tip = beyond > 0.0
    if past_tip.any():
        # Blunt cut end: the cut face projects to a half-ellipse of semi-axis r sin(e);
        # a natural tip ends in a small round cap.
        cap = np.maximum(np.where(tapered, r_s, r_s * optics.cap_sin.astype(f32)[h]), 0.5)
        d_rel = np.where(past_tip, np.hypot(d_rel, np.maximum(beyond, 0.0) / cap), d_rel)
    x = np.minimum(d_rel * r0 * f32(LUT_PER_PX), f32(optics.lut_rows - 1))
    i0 = x.astype(np.int64)
    w = x - i0.astype(f32)
    base = h * optics.lut_rows
    i1 = base + np.minimum(i0 + 1, optics.lut_rows - 1)
    i0 += base
    thick = r_s / r0
    decay = optics.path_decay_px.astype(f32)[h]
    gain = optics.path_gain.astype(f32)[h]
    path = 1.0 + (gain - 1.0) * np.exp(-np.maximum(s, 0.0) / decay)
    # Pigment is laid down in streaks along the cortex and varies along the shaft.
    phase = optics.streak_phase.astype(f32)[h]
    streak = (
        1.0
        + 0.05 * np.sin(0.5 * twist + phase)
        + 0.04 * np.sin(9.0 * twist + 2.0 * phase)
        + 0.05 * np.cos(8.2 * ds / r_s + 3.0 * phase)
    )
    m_od = thick * path * streak
    m_sc = fade * thick
    # The emerging sliver is thin and wet with epidermis: its contrast, not its optical
    # density, ramps up.
    partial = np.flatnonzero(fade < 1.0)
    vis = fade[partial]
    width = 0.12 * r_s + 0.3
    spec = (
        segs.spec_gain.astype(f32)[seg]
        * fade
        * np.exp(-0.5 * ((ds - segs.spec_off.astype(f32)[seg] * r_s) / width) ** 2)
        * (0.7 + 0.3 * np.cos(3.0 * twist))
        * np.clip(1.0 - beyond, 0.0, 1.0)
    )
    lut = optics.lut
    for c in range(3):
        dens = (np.take(lut[c], i0) * (1.0 - w) + np.take(lut[c], i1) * w) * m_od
        scat = (np.take(lut[3 + c], i0) * (1.0 - w) + np.take(lut[3 + c], i1) * w) * m_sc
        if partial.size:
            trans = np.exp(-np.minimum(dens[partial], f32(_OD_CAP)))
            dens[partial] = -np.log(1.0 - vis * (1.0 - trans))
        scat += spec * f32(spec_rgb[c])
        np.add.at(od[c], flat, dens)
        np.add.at(q[c], flat, scat * np.exp(np.minimum(dens, f32(_OD_CAP))))
        np.add.at(q[3 + c], flat, scat)


# --------------------------------------------------------------------------- round features


def disc_candidates(
    cx: F64, cy: F64, reach: F64, shape: tuple[int, int]
) -> tuple[I64, I64, F64, F64]:
    """Pixels within `reach` of each centre.

    Parameters
    ----------
    cx, cy : (n,) ndarray, px
        Centres (corner-origin pixel coordinates).
    reach : (n,) ndarray, px
        Radius of the neighbourhood to enumerate.
    shape : (H, W)
        Image size.

    Returns
    -------
    item, flat : (m,) ndarray of int64
        Feature index and flat pixel index (``row * W + col``).
    dx, dy : (m,) ndarray of float64, px
        Pixel centre minus feature centre.
    """
    height, width = shape
    y0, y1 = pixel_range(cy - reach, cy + reach, height)
    item, row = expand_runs(y0, y1)
    dy_row = row + 0.5 - cy[item]
    half = np.sqrt(np.maximum(reach[item] ** 2 - dy_row**2, 0.0))
    x0, x1 = pixel_range(cx[item] - half, cx[item] + half, width)
    sub, col = expand_runs(x0, x1)
    item, row, dy = item[sub], row[sub], dy_row[sub]
    return item, row * width + col, col + 0.5 - cx[item], dy


def irregular_radius(item: I64, dx: F64, dy: F64, amp: F64, phase: F64) -> F64:
    """Relative outline radius ``1 + sum_k w_k a_k cos(k theta + p_k)`` for k = 2, 3, 5.

    Parameters
    ----------
    item : (m,) ndarray of int64
        Feature index of each pixel.
    dx, dy : (m,) ndarray, px
        Offsets from the feature centre.
    amp, phase : (n, 3) ndarray
        Harmonic amplitudes and phases per feature.

    Returns
    -------
    (m,) ndarray
        Outline radius in units of the nominal radius, in the pixel's direction.
    """
    # cos(k theta + p) = cos(p) Re(z^k) - sin(p) Im(z^k) with z the unit direction,
    # powers by complex multiplication (no trigonometry per pixel).
    rho = np.maximum(np.hypot(dx, dy), 1e-9)
    c1, s1 = dx / rho, dy / rho
    c2, s2 = c1 * c1 - s1 * s1, 2.0 * c1 * s1
    c3, s3 = c2 * c1 - s2 * s1, s2 * c1 + c2 * s1
    c5, s5 = c3 * c2 - s3 * s2, s3 * c2 + c3 * s2
    # Higher harmonics are damped so that outlines stay blob-like, not star-like.
    damp = np.array([1.0, 0.6, 0.3])
    wc, ws = amp * damp * np.cos(phase), amp * damp * np.sin(phase)
    out = np.ones_like(rho)
    for j, (ck, sk) in enumerate(((c2, s2), (c3, s3), (c5, s5))):
        out += wc[item, j] * ck - ws[item, j] * sk
    return np.maximum(out, 0.3)
