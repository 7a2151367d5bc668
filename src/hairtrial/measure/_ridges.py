"""Multi-scale ridge detection and tracing of hair centrelines.

A shaft of diameter ``d`` seen in optical density is a ridge; the scale-normalised Hessian
(``σ² λ``) at ``σ ≈ 0.35 d`` responds to it in proportion to its contrast whatever its
width, so one threshold in OD units serves vellus and terminal hairs. The centreline is the
non-maximum-suppressed crest across the ridge, refined to sub-pixel by a parabola; pieces are
cut at junctions and re-linked by direction continuity, so two hairs that cross are traced
through the crossing instead of merging, and hairs that leave one opening at different
angles stay separate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np
from numpy.typing import NDArray

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]

#: σ of the ridge filter per unit shaft diameter (about 1/(2√3), the best match of a
#: Gaussian second derivative to a bar).
SIGMA_PER_DIAMETER = 0.35
#: Scale-normalised response of a blurred chord profile of unit OD contrast at that σ; the
#: ridge strength is divided by it so that thresholds read as OD contrast.
_UNIT_RESPONSE = 0.4
#: A crest at one scale is kept where its strength is at least this share of the best.
_NEAR_BEST = 0.8
#: Weight of the scale-normalised slope subtracted from the ridge strength.
_EDGE_PENALTY = 1.0
#: Share of the fainter piece's absorptance a linking bridge must keep all along.
_BRIDGE_SHARE = 0.5
#: Longest bridge, in shaft diameters, across a crossing (``1 / sin 10°`` ≈ 5.8).
_CROSSING_WIDTHS = 6.0
#: Link cost per shaft width of bridge (0.01 per px for a 5-px shaft, as before).
_GAP_COST = 0.01
#: Share of the darker piece's absorptance a bridge longer than the ordinary link gap
#: must keep all along (two shafts stacked absorb more than either alone).
_CROSSING_SHARE = 0.9
#: Link cost per unit of log ratio between the two pieces' widths.
_WIDTH_COST = 0.5
#: Smallest angle (degrees) at which a crest piece lying across a bridge counts as a
#: crossing shaft that lengthens the reach.
_CROSSED_MIN_DEG = 10.0
#: Shortest crossing crest piece, in its own widths (shorter ones are stubs of crest).
_CROSSED_MIN_WIDTHS = 3.0
#: Largest turn (degrees) across a bridge lengthened by a crossing.
_CROSSED_MAX_TURN_DEG = 15.0
#: How far (px) from a bridge a crossing crest may lie.
_CROSSED_REACH_PX = 2
#: Two traces whose hairs may have swapped come within this many of the wider one's widths.
_SWAP_TOUCH_WIDTHS = 1.0
#: Each arm is measured from this many widths past where the two traces come closest: two
#: shafts crossing at 20° or more share their dark patch (and a confused crest) over less.
_SWAP_SKIP_WIDTHS = 1.5
#: Length, in widths, of the chord that gives an arm's direction.
_SWAP_ARM_WIDTHS = 2.0
#: Largest turn (degrees) of a hair through a crossing; a trace turning more is bent there.
_SWAP_STRAIGHT_DEG = 8.0
#: Largest distance, in widths, of each re-paired arm's first point from the other's line.
_SWAP_OFFSET_WIDTHS = 1.0


@dataclass(frozen=True)
class RidgeMap:
    """Ridge strength and crest at the working resolution.

    Parameters
    ----------
    strength : (M, N) ndarray of float32, contrast
        Best scale-normalised ridge strength over scales, in absorptance-contrast units.
    diameter_px : (M, N) ndarray of float32, px
        Shaft diameter of the best-responding scale.
    crest : (M, N) ndarray of bool
        Crest pixels: maxima across the ridge at a scale within reach of the best one.
    dx, dy : (M, N) ndarray of float32, px
        Sub-pixel offset of the crest from each crest pixel's centre.
    """

    strength: F32
    diameter_px: F32
    crest: NDArray[np.bool_]
    dx: F32
    dy: F32


def _f32(array: object) -> F32:
    """View an OpenCV result as a float32 ndarray (no copy when it already is one)."""
    return np.asarray(array, dtype=np.float32)


class _Buffers:
    """Full-size float32 work arrays reused across scales.

    A fresh 48-MB temporary per operation on a 12-Mpx image costs as much in page faults
    as the arithmetic itself; these are allocated once per ridge map.
    """

    def __init__(self, shape: tuple[int, int]) -> None:
        def make() -> F32:
            return np.empty(shape, dtype=np.float32)

        self.blurred, self.hxx, self.hyy, self.hxy2 = make(), make(), make(), make()
        self.grad, self.strength = make(), make()
        self.mask = np.empty(shape, dtype=bool)


def _hessian_at(od: F32, sigma: float, gain: float, out: _Buffers) -> None:
    """Scale-normalised Hessian and gradient magnitude of `od` at scale `sigma` (px).

    Fills ``out.hxx``, ``out.hyy``, ``out.hxy2`` (2·hxy) and ``out.grad`` (|∇|), each
    multiplied by `gain` (the normalisation and gain are folded into the derivative
    kernels). Large scales are computed on a reduced copy (the response is smooth there)
    and brought back to full size. At full size the two gradient components are made in
    ``out.strength`` and ``out.grad`` and their magnitude in ``out.blurred``, which then
    trades places with ``out.grad``: no full-size array beyond the buffers is made.
    """
    m, n = od.shape
    factor = max(1, int(sigma // 3.0))
    if factor > 1:
        small = cv2.resize(
            od, (max(2, n // factor), max(2, m // factor)), interpolation=cv2.INTER_AREA
        )
        s_small = math.sqrt(max(sigma**2 - (factor**2 - 1) / 12.0, 0.25)) / factor
        blurred = cv2.GaussianBlur(small, (0, 0), s_small, borderType=cv2.BORDER_REFLECT)
        targets = [np.empty_like(blurred) for _ in range(5)]
    else:
        s_small = sigma
        blurred = cv2.GaussianBlur(
            od, (0, 0), s_small, dst=out.blurred, borderType=cv2.BORDER_REFLECT
        )
        targets = [out.hxx, out.hyy, out.hxy2, out.strength, out.grad]
    norm = gain * s_small**2
    kxx = np.array([[1.0, -2.0, 1.0]], dtype=np.float32) * np.float32(norm)
    kxy = np.array([[0.5, 0.0, -0.5], [0.0, 0.0, 0.0], [-0.5, 0.0, 0.5]], dtype=np.float32)
    kxy *= np.float32(norm)
    kx = np.array([[-0.5, 0.0, 0.5]], dtype=np.float32) * np.float32(gain * s_small)
    hxx, hyy, hxy2, gx, gy = targets
    for kernel, dst in ((kxx, hxx), (kxx.T, hyy), (kxy, hxy2), (kx, gx), (kx.T, gy)):
        cv2.filter2D(blurred, -1, kernel, dst=dst, borderType=cv2.BORDER_REFLECT)
    if factor > 1:
        grad = cv2.magnitude(gx, gy)
        for src, dst in ((hxx, out.hxx), (hyy, out.hyy), (hxy2, out.hxy2), (grad, out.grad)):
            cv2.resize(src, (n, m), dst=dst, interpolation=cv2.INTER_LINEAR)
    else:
        # the blur is spent: the magnitude goes there, and that buffer becomes the gradient
        cv2.magnitude(gx, gy, magnitude=out.blurred)
        out.grad, out.blurred = out.blurred, out.grad


def _bilinear(img: F32, x: NDArray[np.floating], y: NDArray[np.floating]) -> F32:
    """Bilinear samples of `img` at (x, y) pixel-centre coordinates, edges replicated."""
    m, n = img.shape
    # new arrays (clip copies), floating so that the fractions can be made in them
    x = np.clip(x, 0, n - 1)
    y = np.clip(y, 0, m - 1)
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    if y.dtype.kind != "f":
        y = y.astype(np.float64)
    # the corner as a float (exact): the fraction x - x0 is then the same subtraction
    x0 = np.floor(x)
    np.minimum(x0, n - 2 if n > 1 else 0, out=x0)
    y0 = np.floor(y)
    np.minimum(y0, m - 2 if m > 1 else 0, out=y0)
    fx = np.subtract(x, x0, out=x).astype(np.float32)
    fy = np.subtract(y, y0, out=y).astype(np.float32)
    # flat indices: one gather per corner is much cheaper than 2-D fancy indexing
    flat = img.reshape(-1)
    i00 = y0.astype(np.intp)
    i00 *= n
    i00 += x0.astype(np.intp)
    del x0, y0
    right = 1 if n > 1 else 0
    down = n if m > 1 else 0
    # a·(1 − f) + b·f per row of corners, with as few full-length temporaries as can be
    gx = 1 - fx
    top = flat.take(i00)
    top *= gx
    i00 += right
    top += flat.take(i00) * fx
    i00 += down
    bottom = flat.take(i00)
    bottom *= fx
    i00 -= right
    bottom += flat.take(i00) * gx
    top *= 1 - fy
    top += bottom * fy
    return np.asarray(top, dtype=np.float32)


def remap_points(
    img: F32, x: F64, y: F64, border: int = cv2.BORDER_CONSTANT, fill: float = 0.0
) -> F32:
    """Bilinear samples of `img` at pixel-centre points ``(x, y)`` with one ``cv2.remap``.

    The points are laid out as rows of a map (OpenCV limits a map's side to 32767), so
    any number of samples costs one call per 2²⁴ points; outside the image the border
    mode applies (`fill` with the default constant border).
    """
    size = int(x.size)
    if size == 0:
        return np.zeros(0, dtype=np.float32)
    cols = 512
    out = np.empty(size, dtype=np.float32)
    chunk = cols * 32000
    for lo in range(0, size, chunk):
        hi = min(size, lo + chunk)
        rows = -(-(hi - lo) // cols)
        mx = np.zeros(rows * cols, dtype=np.float32)
        my = np.zeros(rows * cols, dtype=np.float32)
        mx[: hi - lo] = x[lo:hi]
        my[: hi - lo] = y[lo:hi]
        vals = cv2.remap(
            img,
            mx.reshape(rows, cols),
            my.reshape(rows, cols),
            cv2.INTER_LINEAR,
            borderMode=border,
            borderValue=fill,
        )
        out[lo:hi] = np.asarray(vals, np.float32).ravel()[: hi - lo]
    return out


def ridge_map(od: F32, diameters_px: F64, *, low: float) -> RidgeMap:
    """Multi-scale ridge strength and crest of the absorptance image.

    Non-maximum suppression is done at each scale along that scale's own normal, and a
    crest pixel is kept where its scale responds nearly as well as the best one: taking
    the maximum over scales first would make the crest of a wide, flat-topped shaft hop
    between scales and break up.

    Parameters
    ----------
    od : (M, N) ndarray of float32
        Absorptance (hairs positive).
    diameters_px : (S,) ndarray, px
        Shaft diameters the scales are matched to.
    low : float
        Smallest strength worth keeping as a crest.

    Returns
    -------
    RidgeMap
    """
    m, n = od.shape
    best = np.zeros(od.shape, dtype=np.float32)
    which = np.zeros(od.shape, dtype=np.uint8)  # 1-based number of the best scale, 0: none
    found: list[tuple[NDArray[np.intp], F32, F32, F32]] = []
    if len(diameters_px) > 254:
        raise ValueError("at most 254 scales")
    buf = _Buffers((m, n))
    for number, d in enumerate(diameters_px, start=1):
        sigma = max(0.6, SIGMA_PER_DIAMETER * float(d))
        # strength in OD-contrast units: the 1 / _UNIT_RESPONSE gain is in the kernels
        _hessian_at(od, sigma, 1.0 / _UNIT_RESPONSE, buf)
        hxx, hyy, hxy2, strength = buf.hxx, buf.hyy, buf.hxy2, buf.strength
        # eigenvalues lam1 <= lam2 of the Hessian: -lam1 - |lam2| is -(hxx + hyy) where
        # lam2 >= 0 and lam2 - lam1 (= 2·root) elsewhere, i.e. the smaller of the two.
        # The crest of a symmetric shaft profile has no slope across it; the shoulders of
        # a wide opaque shaft curve as much at a small scale but sit on a steep edge.
        np.add(hxx, hyy, out=strength)
        np.negative(strength, out=strength)
        two_root = np.subtract(hxx, hyy, out=buf.blurred)  # the blur is spent by now
        cv2.magnitude(two_root, hxy2, magnitude=two_root)
        np.minimum(strength, two_root, out=strength)
        if _EDGE_PENALTY != 1.0:
            buf.grad *= np.float32(_EDGE_PENALTY)
        strength -= buf.grad
        # scales come in increasing order: where this one is the best so far, its
        # (1-based) number is the largest yet
        better = np.greater(strength, best, out=buf.mask)
        np.maximum(best, strength, out=best)
        np.copyto(which, np.uint8(number), where=better)
        flat = strength.ravel()
        # a crest is kept only within reach of the best scale (below), and the best can
        # only grow with the scales still to come: leave out what already falls short
        idx = np.flatnonzero(np.greater(strength, np.float32(low), out=buf.mask))
        idx = idx[flat[idx] >= np.float32(_NEAR_BEST) * best.ravel()[idx]]
        # eigenvector of lam1 at the candidates: (hxy, lam1 - hxx) or (lam1 - hyy, hxy)
        a_, c_ = hxx.ravel()[idx], hyy.ravel()[idx]
        b_ = hxy2.ravel()[idx] * np.float32(0.5)
        half_tr = (a_ + c_) * np.float32(0.5)
        half_diff = (a_ - c_) * np.float32(0.5)
        l1 = half_tr - np.sqrt(half_diff * half_diff + b_ * b_)
        use_second = np.abs(a_ - l1) < np.abs(c_ - l1)
        ex = np.where(use_second, l1 - c_, b_)
        ey = np.where(use_second, b_, l1 - a_)
        norm = np.sqrt(ex * ex + ey * ey) + np.float32(1e-12)
        ex /= norm
        ey /= norm
        rows, cols = np.divmod(idx, n)
        s0 = flat[idx]
        sp = _bilinear(strength, cols + ex, rows + ey)
        sm = _bilinear(strength, cols - ex, rows - ey)
        keep = (s0 >= sp) & (s0 > sm)
        idx, s0, sp, sm, ex, ey = idx[keep], s0[keep], sp[keep], sm[keep], ex[keep], ey[keep]
        curv = sp - 2 * s0 + sm
        with np.errstate(divide="ignore", invalid="ignore"):
            off = np.where(curv < 0, 0.5 * (sm - sp) / curv, 0.0)
        off = np.clip(np.nan_to_num(off), -0.5, 0.5).astype(np.float32)
        found.append((idx, s0, off * ex, off * ey))
    del buf
    crest = np.zeros(m * n, dtype=bool)
    dx = np.zeros(m * n, dtype=np.float32)
    dy = np.zeros(m * n, dtype=np.float32)
    flat_best = best.ravel()
    for idx, s0, ox, oy in found:
        keep = s0 >= np.float32(_NEAR_BEST) * flat_best[idx]
        idx = idx[keep]
        crest[idx] = True
        dx[idx] = ox[keep]
        dy[idx] = oy[keep]
    table = np.zeros(256, dtype=np.float32)
    table[1 : len(diameters_px) + 1] = diameters_px
    return RidgeMap(
        strength=best,
        diameter_px=table[which],
        crest=crest.reshape(m, n),
        dx=dx.reshape(m, n),
        dy=dy.reshape(m, n),
    )


def hysteresis(
    ridges: RidgeMap, *, high: float, exclude: NDArray[np.bool_] | None = None
) -> NDArray[np.bool_]:
    """Keep crest pieces that reach `high` somewhere (8-connected after bridging).

    Parameters
    ----------
    ridges : RidgeMap
        Output of :func:`ridge_map`.
    high : float
        Strength one pixel of a kept piece must reach.
    exclude : (M, N) ndarray of bool, optional
        Pixels never part of a ridge (device overlays).

    Returns
    -------
    (M, N) ndarray of bool
        Crest pixels kept (bridged over one-pixel breaks, not yet thinned).
    """
    crest = ridges.crest if exclude is None else ridges.crest & ~exclude
    # bridge the one-pixel breaks NMS leaves on broad crests
    closed = cv2.dilate(crest.astype(np.uint8), np.ones((3, 3), np.uint8))
    count, labels = cv2.connectedComponents(closed, connectivity=8)
    strong = np.zeros(count, dtype=bool)
    strong[np.unique(labels[crest & (ridges.strength > high)])] = True
    strong[0] = False
    return strong[labels]


def _ring_offsets(width: int) -> NDArray[np.intp]:
    """Flat-index offsets of the 8 neighbours (P2..P9 clockwise from north).

    `width` is the row length of the padded image the offsets index into.
    """
    return np.array(
        [-width, -width + 1, 1, width + 1, width, width - 1, -1, -width - 1], dtype=np.intp
    )


def _codes_at(
    flat: NDArray[np.uint8], idx: NDArray[np.intp], offsets: NDArray[np.intp]
) -> NDArray[np.uint8]:
    """8-bit neighbour codes (bit k: neighbour k of :func:`_ring_offsets`) at `idx`."""
    code = np.zeros(idx.size, dtype=np.uint8)
    for bit, off in enumerate(offsets):
        code |= flat[idx + off] << np.uint8(bit)
    return code


def _zhang_suen_tables(
    fewest: int = 2,
) -> tuple[NDArray[np.bool_], NDArray[np.bool_], NDArray[np.uint8]]:
    """Build the deletion tables of the two Zhang-Suen sub-iterations and crossing numbers.

    A pixel may go when it has `fewest` to 6 neighbours: 2 is Zhang and Suen's rule, 3
    is Lü and Wang's, which keeps a diagonal line two pixels thick (Zhang and Suen's
    deletes it from one end).
    """
    first = np.zeros(256, dtype=bool)
    second = np.zeros(256, dtype=bool)
    crossings = np.zeros(256, dtype=np.uint8)
    for code in range(256):
        p = [(code >> k) & 1 for k in range(8)]  # p2, p3, ..., p9
        p2, _, p4, _, p6, _, p8, _ = p
        b = sum(p)
        a = sum(1 for k in range(8) if p[k] == 0 and p[(k + 1) % 8] == 1)
        crossings[code] = a
        if fewest <= b <= 6 and a == 1:
            first[code] = p2 * p4 * p6 == 0 and p4 * p6 * p8 == 0
            second[code] = p2 * p4 * p8 == 0 and p2 * p6 * p8 == 0
    return first, second, crossings


_ZS_FIRST, _ZS_SECOND, _CROSSINGS = _zhang_suen_tables()
_LW_FIRST, _LW_SECOND, _ = _zhang_suen_tables(fewest=3)
#: A crest whose Zhang-Suen skeleton keeps less than this share of its Lü-Wang one was
#: eaten from one end (a band along a diagonal): its Lü-Wang skeleton stands instead.
_ERODED_SHARE = 0.75


def _thin(mask: NDArray[np.bool_], lu_wang: bool = False) -> NDArray[np.bool_]:
    """Zhang-Suen thinning to a one-pixel-wide 8-connected skeleton (table driven).

    Each sub-iteration only looks at the pixels it could delete now: at the start, the
    foreground pixels next to the background (an interior pixel, all eight neighbours
    set, is never deleted); later, the foreground neighbours of pixels just deleted (a
    pixel whose neighbourhood has not changed since the same sub-iteration kept it is
    kept again). The result is that of the plain algorithm, at a cost that follows what
    changes, not the image area or the ridge's area. Neighbour codes are gathered
    through flat-index offsets. With `lu_wang`, Lü and Wang's deletion rule (see
    :func:`_zhang_suen_tables`).
    """
    img = np.pad(mask.astype(np.uint8), 1)
    flat = img.ravel()
    offsets = _ring_offsets(mask.shape[1] + 2)
    idx = np.flatnonzero(flat)
    edge = idx[_codes_at(flat, idx, offsets) != 255]
    # per sub-iteration: the pixels to look at, and a flag against listing one twice
    pending = [edge, edge]
    listed = [np.zeros(flat.size, dtype=bool), np.zeros(flat.size, dtype=bool)]
    listed[0][edge] = listed[1][edge] = True
    stamp = np.zeros(flat.size, dtype=np.intp)
    tables = (_LW_FIRST, _LW_SECOND) if lu_wang else (_ZS_FIRST, _ZS_SECOND)
    while pending[0].size or pending[1].size:
        for step, table in enumerate(tables):
            look = pending[step]
            listed[step][look] = False
            pending[step] = look[:0]
            look = look[flat[look] == 1]
            if not look.size:
                continue
            gone = look[table[_codes_at(flat, look, offsets)]]
            if not gone.size:
                continue
            flat[gone] = 0
            near = (gone[:, None] + offsets[None, :]).ravel()
            near = near[flat[near] == 1]
            # one copy of each (without sorting): keep where a pixel's last stamp is its own
            order = np.arange(near.size)
            stamp[near] = order
            near = near[stamp[near] == order]
            for other in (0, 1):
                add = near[~listed[other][near]]
                listed[other][add] = True
                pending[other] = np.concatenate([pending[other], add])
    return img[1:-1, 1:-1].astype(bool)


def _fill_small_holes(mask: NDArray[np.bool_], max_area: int = 40) -> NDArray[np.bool_]:
    """Fill holes up to `max_area` px (left between parallel crest traces)."""
    _count, labels, stats, _ = cv2.connectedComponentsWithStats(
        (~mask).astype(np.uint8), connectivity=4
    )
    small = stats[:, cv2.CC_STAT_AREA] <= max_area
    small[0] = False
    out = mask.copy()
    # each hole is small: fill it within its own box, not by a lookup over the image
    for c in np.flatnonzero(small):
        x, y, w, h = stats[c, :4]
        box = (slice(y, y + h), slice(x, x + w))
        out[box] |= labels[box] == c
    return out


def _junctions(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Pixels of `mask` with 3 or more 0→1 transitions around their 8-neighbourhood."""
    img = np.pad(mask.astype(np.uint8), 1)
    flat = img.ravel()
    idx = np.flatnonzero(flat)
    out = np.zeros(flat.size, dtype=bool)
    out[idx[_CROSSINGS[_codes_at(flat, idx, _ring_offsets(mask.shape[1] + 2))] >= 3]] = True
    return out.reshape(img.shape)[1:-1, 1:-1]


# 4-neighbours first, so a staircase is walked step by step rather than cut diagonally
_WALK = ((-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1))


def _paths_through(
    nbr: NDArray[np.integer], lo: NDArray[np.intp], hi: NDArray[np.intp], start: NDArray[np.intp]
) -> list[NDArray[np.intp]]:
    """Pixels of thin pieces in order along each, from walks begun at `start`, all at once.

    Piece ``p`` is the pixels ``lo[p]`` to ``hi[p]`` (pieces apart: no pixel of one is a
    neighbour of another's); `nbr` lists each pixel's neighbours on its piece in
    :data:`_WALK` order (4-neighbours first, so a staircase is walked step by step
    rather than cut diagonally), then -1. At each step a walk takes its first neighbour
    not yet walked. Thinning leaves one-pixel spurs (where a junction's neighbourhood
    was cut away, at the corner of a staircase): where two or more neighbours are free,
    the first one that leads on (has a free neighbour itself) is taken, so the walk does
    not end in a spur half-way along the line. A walk ends where no neighbour is free.

    Where the walk leaves out more than :data:`_SPUR_PIXELS` pixels, the start may lie
    part-way along (where both ends are cut square no pixel looks like an end): the
    piece is walked again from where the first walk ended, which is an end, and that
    walk is kept if it covers more than :data:`_SPUR_PIXELS` pixels more.

    All walks take their steps together (the pieces are apart, so one walk's progress
    never changes another's choices); the steps are as many as the longest walk.

    Returns
    -------
    list of (Q_p,) ndarray of intp
        Per piece, its pixels (indices into `nbr`) in walk order.
    """
    total = len(nbr)
    width = nbr.shape[1]
    # the neighbour table with a sentinel row: "no neighbour" is pixel `total`, walked
    table = np.full((total + 1, width), total, dtype=np.intp)
    table[:total] = np.where(nbr >= 0, nbr, total)
    walked = np.zeros(total + 1, dtype=bool)
    walked[total] = True
    first, first_len = _walks(table, walked, np.asarray(start, dtype=np.intp), lo)
    size = np.asarray(hi) - np.asarray(lo)
    again = np.flatnonzero(first_len < size - _SPUR_PIXELS)
    out = [first[lo[p] : lo[p] + first_len[p]] for p in range(len(lo))]
    if again.size:
        for p in again.tolist():
            walked[lo[p] : hi[p]] = False
        ends = first[lo[again] + first_len[again] - 1]
        second, second_len = _walks(table, walked, ends, lo[again])
        for q, p in enumerate(again.tolist()):
            if second_len[q] > first_len[p] + _SPUR_PIXELS:
                out[p] = second[lo[p] : lo[p] + second_len[q]]
    return out


def _walks(
    table: NDArray[np.intp],
    walked: NDArray[np.bool_],
    start: NDArray[np.intp],
    base: NDArray[np.intp],
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Walk the pieces of :func:`_paths_through` from `start`, one step of each at a time.

    `table` holds each pixel's neighbours (the sentinel row last), `walked` the pixels
    already walked (updated). Walk ``w`` is written from ``base[w]`` on into the
    returned array (a piece's walk never leaves its own pixels); its length is returned
    too.
    """
    out = np.empty(len(table) - 1, dtype=np.intp)
    length = np.ones(len(start), dtype=np.intp)
    out[base] = start
    walked[start] = True
    live = np.arange(len(start))
    cur = start.copy()
    while live.size:
        around = table[cur]
        free = ~walked[around]
        count = free.sum(axis=1)
        going = count > 0
        if not going.all():
            live, cur, around, free, count = (
                live[going],
                cur[going],
                around[going],
                free[going],
                count[going],
            )
            if not live.size:
                break
        step = around[np.arange(live.size), free.argmax(axis=1)]
        fork = np.flatnonzero(count >= 2)
        if fork.size:
            # take the first free neighbour that leads on, if any does
            ahead = around[fork]
            leads = free[fork] & (~walked[table[ahead]]).any(axis=2)
            some = leads.any(axis=1)
            step[fork[some]] = ahead[some, leads[some].argmax(axis=1)]
        out[base[live] + length[live]] = step
        length[live] += 1
        walked[step] = True
        cur = step
    return out, length


#: pixels a walk along a thin piece may leave out as spurs (:func:`_paths_through`)
_SPUR_PIXELS = 2


def crest_segments(crest: NDArray[np.bool_], dx: F32, dy: F32, *, min_pixels: int = 3) -> list[F64]:
    """Cut the crest at junctions into simple pieces, each an ordered sub-pixel polyline.

    Parameters
    ----------
    crest : (M, N) ndarray of bool
        Crest pixels.
    dx, dy : (M, N) ndarray of float32, px
        Sub-pixel offsets from :func:`ridge_map`.
    min_pixels : int
        Shortest piece kept.

    Returns
    -------
    list of (P, 2) ndarray, px
        Ordered (x, y) points, pixel centres at integer coordinates.
    """
    skel = _skeleton(_fill_small_holes(crest))
    out, tangled = _walk_pieces(skel & ~_near(_junctions(skel)), dx, dy, min_pixels)
    if tangled.any():
        # where thinning leaves a junction two pixels thick, no pixel of it has three
        # crossings: the piece forks unseen and no single walk covers it (a V of two
        # hairs from one opening was lost whole). Such pieces are cut where a pixel has
        # three or more neighbours, and walked again.
        count = cv2.filter2D(tangled.astype(np.uint8), -1, np.ones((3, 3), np.float32))
        forks = tangled & (np.asarray(count) >= 4)
        more, _ = _walk_pieces(tangled & ~_near(forks), dx, dy, min_pixels)
        out.extend(more)
    return out


def _skeleton(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Zhang-Suen skeleton of `mask`, with Lü-Wang's where Zhang-Suen's eats a crest away.

    Zhang and Suen's rule deletes a diagonal line two pixels thick from one end, and
    thinning a band a few pixels wide along a diagonal passes through that shape: of a
    shaft 45 px long, 15 px of skeleton were left. Lü and Wang's rule keeps such lines,
    but changes the skeleton's forks elsewhere; it stands only for the crests (8-connected
    pieces of `mask`) where Zhang-Suen's skeleton has less than :data:`_ERODED_SHARE` of
    its pixels. Only crests whose skeleton is shorter than that share of their bounding
    box's longer side are thinned again (a second thinning of the whole mask cost ~25 ms
    on a 2-Mpx image).
    """
    skel = _thin(mask)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        mask.astype(np.uint8), connectivity=8
    )
    if count <= 1:
        return skel
    zs = np.bincount(labels[skel], minlength=count)
    # an 8-connected line has at least as many pixels as its bounding box's longer side:
    # only a crest whose skeleton falls well short of that can have been eaten
    extent = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT])
    for c in np.flatnonzero(zs < _ERODED_SHARE * extent):
        if c == 0:
            continue
        x, y, w, h = stats[c, :4]
        box = (slice(y, y + h), slice(x, x + w))
        own = labels[box] == c
        kept = _thin(own, lu_wang=True)
        if zs[c] < _ERODED_SHARE * int(kept.sum()):
            skel[box][own] = kept[own]
    return skel


def _near(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """`mask` grown by one pixel (3×3)."""
    grown = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8))
    return np.asarray(grown, dtype=bool)


def _walk_pieces(
    pieces: NDArray[np.bool_], dx: F32, dy: F32, min_pixels: int
) -> tuple[list[F64], NDArray[np.bool_]]:
    """Order the pixels of each 8-connected piece of a thin mask into a polyline.

    Returns the polylines and the mask of the pieces no single walk covers (at least
    1/5 of their pixels left out: a fork, loop or blob).
    """
    count, labels = cv2.connectedComponents(pieces.astype(np.uint8), connectivity=8)
    ones = np.ones((3, 3), np.float32)
    nb = np.asarray(
        cv2.filter2D(pieces.astype(np.uint8), -1, ones, borderType=cv2.BORDER_CONSTANT), np.uint8
    )
    # row-major like np.nonzero, at a fraction of its cost on a large sparse mask
    flat = np.flatnonzero(pieces)
    rr, cc = np.divmod(flat, pieces.shape[1])
    lab = labels.reshape(-1)[flat]
    order = np.argsort(lab, kind="stable")
    rr, cc, lab = rr[order], cc[order], lab[order]
    bounds = np.searchsorted(lab, np.arange(1, count + 1))
    # each pixel's neighbours on its piece (8-connected: the same piece) in walk order
    index = np.full((pieces.shape[0] + 2, pieces.shape[1] + 2), -1, dtype=np.int32)
    index[rr + 1, cc + 1] = np.arange(rr.size, dtype=np.int32)
    nbr = np.column_stack([index[rr + 1 + dr, cc + 1 + dc] for dr, dc in _WALK])
    del index
    # the neighbours first (walk order kept), then as few sentinel columns as needed
    nbr = np.take_along_axis(nbr, np.argsort(nbr < 0, axis=1, kind="stable"), axis=1)
    nbr = nbr[:, : max(1, int((nbr >= 0).sum(axis=1).max(initial=0)))]
    degree = nb[rr, cc]
    out: list[F64] = []
    tangled = np.zeros(pieces.shape, dtype=bool)
    sizes = np.diff(bounds)
    kept = np.flatnonzero(sizes >= min_pixels)
    if not kept.size:
        return out, tangled
    lo, size = bounds[kept], sizes[kept]
    hi = lo + size
    # each walk starts at its piece's first pixel of least degree (an end, if it has one)
    span = np.flatnonzero(np.repeat(sizes >= min_pixels, sizes))
    owner = np.repeat(np.arange(len(kept)), size)
    fewest = np.minimum.reduceat(degree[span], np.r_[0, np.cumsum(size)[:-1]])
    least = degree[span] == fewest[owner]
    _, first = np.unique(owner[least], return_index=True)
    walks = _paths_through(nbr, lo, hi, span[least][first])
    shafts = []
    for a, b, seq in zip(lo.tolist(), hi.tolist(), walks, strict=True):
        if len(seq) < 0.8 * (b - a):
            tangled[rr[a:b], cc[a:b]] = True  # a fork, loop or blob, not one shaft
        else:
            shafts.append(seq)
    if not shafts:
        return out, tangled
    # all the shafts' points at once, then smoothed piece by piece as one array
    seq = np.concatenate(shafts)
    r, c = rr[seq], cc[seq]
    pts = np.column_stack([c + dx[r, c], r + dy[r, c]]).astype(np.float64)
    cuts = np.cumsum([len(w) for w in shafts])[:-1]
    return np.split(_smooth_pieces(pts, cuts, passes=4), cuts), tangled


def piece_tangents(pieces: list[F64]) -> tuple[F64, NDArray[np.intp], NDArray[np.intp], F64]:
    """All points of `pieces` in one array, with each point's piece, index and tangent.

    Returns the (P, 2) points, the piece of each, its index within that piece, and its
    unit tangent over ±2 points of its own piece.
    """
    sizes = np.array([len(p) for p in pieces])
    first = np.r_[0, np.cumsum(sizes)[:-1]]
    allpts = np.concatenate(pieces)
    owner = np.repeat(np.arange(len(pieces)), sizes)
    local = np.arange(len(allpts)) - first[owner]
    lo = first[owner] + np.maximum(local - 2, 0)
    hi = first[owner] + np.minimum(local + 2, sizes[owner] - 1)
    tangent = allpts[hi] - allpts[lo]
    tangent /= np.maximum(np.hypot(tangent[:, 0], tangent[:, 1]), 1e-9)[:, None]
    return allpts, owner, local, tangent


def width_profiles(pieces: list[F64], od: F32, half_px: F64, step: int = 2) -> list[F64]:
    """Full width (px) at half the axis absorptance along each piece, every `step` points.

    At every `step`-th point a profile across the piece (±`half_px` of that piece, 1 px
    apart) is sampled; the width is the run of samples, contiguous with the axis, that
    keep at least half the axis level (the largest of the three central samples). All
    pieces are sampled in one gather.

    Parameters
    ----------
    pieces : list of (P, 2) ndarray, px
        Ordered polylines.
    od : (M, N) ndarray of float32
        Absorptance.
    half_px : (len(pieces),) ndarray, px
        Half-length of the profiles per piece (about the shaft's detection-scale width).
    step : int
        Points between profiles.

    Returns
    -------
    list of (Q,) ndarray, px
        Widths at points ``0, step, 2·step, …`` of each piece.
    """
    if not pieces:
        return []
    half = np.maximum(np.ceil(np.asarray(half_px, float)), 2).astype(np.intp)
    reach = int(half.max())
    off = np.arange(-reach, reach + 1, dtype=np.float64)
    mid = reach
    # every `step`-th point of each piece, with its tangent
    allpts, owner, local, tangent = piece_tangents(pieces)
    take = np.flatnonzero(local % step == 0)
    who = owner[take]
    tang = tangent[take]
    centre = allpts[take]
    x = centre[:, 0, None] - off[None, :] * tang[:, 1, None]  # (Q, K)
    y = centre[:, 1, None] + off[None, :] * tang[:, 0, None]
    vals = remap_points(od, x.ravel(), y.ravel(), border=cv2.BORDER_REPLICATE).reshape(x.shape)
    centre = vals[:, mid - 1 : mid + 2].max(axis=1)
    above = (vals >= 0.5 * centre[:, None]) & (np.abs(off)[None, :] <= half[who][:, None])
    right = np.cumprod(above[:, mid + 1 :], axis=1).sum(axis=1)
    left = np.cumprod(above[:, mid - 1 :: -1], axis=1).sum(axis=1)
    width = (1 + left + right).astype(np.float64)
    return list(np.split(width, np.flatnonzero(np.diff(who)) + 1))


def _median(values: F64) -> float:
    """``np.median`` of a short 1-D array without NaN, without its per-call overhead."""
    ordered = np.sort(values)
    n = len(ordered)
    return float((ordered[(n - 1) // 2] + ordered[n // 2]) / 2)


def split_at_width_steps(
    pts: F64, widths: F64, *, step: int, min_ratio: float, min_widths: float
) -> list[F64]:
    """Cut a crest piece where the shaft under it changes width for good.

    A hair's diameter hardly changes over a millimetre, while the crest of a thin hair
    can run on into a thick one that it touches end to end or meets at a shallow angle.
    The cut is where the mean log width before and after differ most; it is made when
    the median widths of the two parts differ by `min_ratio` or more and each part is at
    least `min_widths` of its own median width long (a crossing, where the width rises
    and falls again, leaves both medians alike). The parts are tested again.

    Parameters
    ----------
    pts : (P, 2) ndarray, px
        Ordered polyline.
    widths : (Q,) ndarray, px
        Widths at points ``0, step, …`` (:func:`width_profiles`).
    step : int
        Points between width samples.
    min_ratio : float
        Smallest ratio of the two parts' median widths that cuts.
    min_widths : float
        Shortest part, in its own median widths.

    Returns
    -------
    list of (P_i, 2) ndarray, px
        The parts, in order (the input alone when nothing is cut).
    """
    q = len(widths)
    if q < 4:
        return [pts]
    low, high = float(widths.min()), float(widths.max())
    if high < min_ratio * max(low, 1.0):
        return [pts]  # no two parts can differ enough
    logw = np.log(np.maximum(widths, 1.0))
    total = np.cumsum(logw)
    k = np.arange(1, q)
    before = total[:-1] / k
    after = (total[-1] - total[:-1]) / (q - k)
    # the largest difference of mean log width, weighted towards balanced parts
    score = np.abs(before - after) * np.sqrt(k * (q - k) / q)
    for j in np.argsort(score)[::-1][:3]:
        cut = int(k[j])
        w0, w1 = _median(widths[:cut]), _median(widths[cut:])
        if max(w0, w1) < min_ratio * min(w0, w1):
            break
        at = cut * step
        if at < min_widths * w0 or (len(pts) - at) < min_widths * w1:
            continue  # one side is a stub, not a shaft
        head = split_at_width_steps(
            pts[: at + 1], widths[:cut], step=step, min_ratio=min_ratio, min_widths=min_widths
        )
        tail = split_at_width_steps(
            pts[at:], widths[cut:], step=step, min_ratio=min_ratio, min_widths=min_widths
        )
        return head + tail
    return [pts]


def _smooth_pieces(pts: F64, cuts: NDArray[np.intp], passes: int) -> F64:
    """:func:`_smooth` of each piece of `pts` (split at `cuts`), all in one array.

    Each inner point takes the same weighted sum of its own piece's neighbours as
    :func:`_smooth` gives it; the first and last point of every piece are kept.
    """
    out = pts.copy()
    if len(out) < 3:
        return out
    inner = np.ones(len(out), dtype=bool)
    inner[0] = inner[-1] = False
    inner[cuts] = inner[cuts - 1] = False
    inner = inner[1:-1]
    for _ in range(passes):
        smoothed = 0.25 * out[:-2] + 0.5 * out[1:-1] + 0.25 * out[2:]
        out[1:-1][inner] = smoothed[inner]
    return out


def _smooth(pts: F64, passes: int = 2) -> F64:
    """Light [1, 2, 1] smoothing of a polyline, end points kept."""
    out = pts.copy()
    for _ in range(passes):
        if len(out) < 3:
            break
        out[1:-1] = 0.25 * out[:-2] + 0.5 * out[1:-1] + 0.25 * out[2:]
    return out


def end_direction(pts: F64, at_start: bool, span: float, skip: float = 0.0) -> F64:
    """Outward unit tangent at one end: chord from `skip` to `skip + span` px inwards.

    Skipping the last few pixels ignores the bend a crest takes where it runs into a
    crossing or an opening.
    """
    seq = pts if at_start else pts[::-1]
    # only the first stretch matters: try a prefix long enough whenever the points are at
    # least 1/4 px apart (crest and resampled traces are); the answer is the whole line's
    # as long as the chord ends inside the prefix, else the whole line is measured
    head = math.ceil(4.0 * (skip + span)) + 3
    for part in (seq[:head], seq) if head < len(seq) else (seq,):
        dist = arc_lengths(part)
        i0 = min(int(np.searchsorted(dist, skip)), len(seq) - 2)
        if i0 >= len(part) - 1 or dist[i0] + span > dist[-1]:
            continue  # the chord leaves the prefix
        break
    k = int(np.searchsorted(dist, dist[i0] + span))
    k = min(max(k, i0 + 1), len(seq) - 1)
    v = seq[i0] - seq[k]
    norm = float(np.hypot(*v))
    return v / norm if norm > 0 else np.array([1.0, 0.0])


def end_directions(lines: list[F64], span: F64, skip: F64) -> F64:
    """:func:`end_direction` at both ends of every line, the same values in a few passes.

    Parameters
    ----------
    lines : list of (P, 2) ndarray, px
        Polylines of at least 2 points.
    span, skip : (L,) ndarray, px
        Chord length and the stretch left out at the end, per line (both ends alike).

    Returns
    -------
    (2 L, 2) ndarray
        Outward unit tangents: line ``i``'s start in row ``2 i``, its end in ``2 i + 1``.

    Notes
    -----
    Each end's chord is found on the first points from that end only (as
    :func:`end_direction` tries first), every end's prefix padded into one array whose
    row-wise cumulative sum is the per-line one; the few ends whose chord runs past a
    prefix shorter than their line are measured one by one.
    """
    count = len(lines)
    out = np.zeros((2 * count, 2))
    if count == 0:
        return out
    span = np.asarray(span, dtype=float)
    skip = np.asarray(skip, dtype=float)
    sizes = np.array([len(p) for p in lines], dtype=np.intp)
    head = np.minimum(np.ceil(4.0 * (skip + span)).astype(np.intp) + 3, sizes)
    width = int(head.max())
    # (2 L, width, 2) prefixes from each end, the end first; padding repeats the last point
    pre = np.empty((2 * count, width, 2))
    for i, (pts, h) in enumerate(zip(lines, head.tolist(), strict=True)):
        pre[2 * i, :h] = pts[:h]
        pre[2 * i + 1, :h] = pts[: -h - 1 : -1]
        pre[2 * i, h:] = pts[h - 1]
        pre[2 * i + 1, h:] = pts[-h]
    used = np.repeat(head, 2)
    sk = np.repeat(skip, 2)
    sp = np.repeat(span, 2)
    whole = np.repeat(sizes, 2)
    step = pre[:, 1:] - pre[:, :-1]
    dist = np.zeros((2 * count, width))
    np.cumsum(np.hypot(step[..., 0], step[..., 1]), axis=1, out=dist[:, 1:])
    cols = np.arange(width)
    valid = cols[None, :] < used[:, None]
    dist = np.where(valid, dist, np.inf)
    rows = np.arange(2 * count)
    last = dist[rows, used - 1]
    i0 = np.minimum((dist < sk[:, None]).sum(axis=1), whole - 2)
    at = dist[rows, np.minimum(i0, width - 1)]
    # a prefix that is the whole line is what end_direction measures, chord fitting or not
    fits = ((used == whole) | ((i0 < used - 1) & (at + sp <= last))) & (whole >= 2)
    k = (dist < (at + sp)[:, None]).sum(axis=1)
    k = np.minimum(np.maximum(k, i0 + 1), whole - 1)
    k_in = np.minimum(k, width - 1)
    v = pre[rows, np.minimum(i0, width - 1)] - pre[rows, k_in]
    norm = np.hypot(v[:, 0], v[:, 1])
    good = fits & (norm > 0)
    out[good] = v[good] / norm[good, None]
    out[fits & ~good] = (1.0, 0.0)
    for e in np.flatnonzero(~fits):
        out[e] = end_direction(lines[e // 2], e % 2 == 0, float(sp[e]), float(sk[e]))
    return out


def _bridges_ok(
    od: F32,
    pts: F64,
    ia: NDArray[np.intp],
    ib: NDArray[np.intp],
    level: F64,
    max_gap: float,
    crossed: NDArray[np.bool_] | None = None,
) -> tuple[NDArray[np.bool_], F64]:
    """Whether each bridge between ends ``ia`` and ``ib`` stays dark enough to be one shaft.

    Up to `max_gap` a bridge must keep half the fainter piece's absorptance (`level` per
    piece: end ``e`` belongs to piece ``e // 2``) all along (3-sample running mean); a
    longer one (across a shallow crossing) must be at least :data:`_CROSSING_SHARE` as
    dark as the darker piece: there two shafts lie on top of each other. A bridge that
    crosses another shaft (`crossed`) is held to the first rule whatever its length: the
    crossing shaft, not a gap, is why the crest was lost. Bridges up to 2 px always pass.
    All bridges are sampled in one pass. Also returns, per bridge, its darkest window
    over what it must keep (inf for those up to 2 px).
    """
    pa, pb = pts[ia], pts[ib]
    gap = np.hypot(pb[:, 0] - pa[:, 0], pb[:, 1] - pa[:, 1])
    ok = gap <= 2.0
    margin = np.full(len(ia), np.inf)
    test = np.flatnonzero(~ok)
    if test.size == 0:
        return ok, margin
    count = np.maximum(3, np.ceil(gap[test]).astype(np.intp) + 1)
    starts = np.r_[0, np.cumsum(count)[:-1]]
    total = int(count.sum())
    owner = np.repeat(np.arange(test.size), count)
    step = np.arange(total) - starts[owner]
    t = step / (count[owner] - 1.0)
    a_, b_ = pa[test][owner], pb[test][owner]
    vals = _bilinear(od, a_[:, 0] + t * (b_[:, 0] - a_[:, 0]), a_[:, 1] + t * (b_[:, 1] - a_[:, 1]))
    vals = vals.astype(np.float64)
    window = (vals[:-2] + vals[1:-1] + vals[2:]) / 3.0
    # a window is within one bridge when its last sample is
    window[owner[2:] != owner[:-2]] = np.inf
    low = np.minimum.reduceat(window, starts)
    la, lb = level[ia[test] // 2], level[ib[test] // 2]
    short = gap[test] <= max_gap
    if crossed is not None:
        short |= crossed[test]
    need = np.where(short, _BRIDGE_SHARE * np.minimum(la, lb), _CROSSING_SHARE * np.maximum(la, lb))
    ok[test] = low >= need
    margin[test] = low / np.maximum(need, 1e-12)
    return ok, margin


def _crossed_reach(
    segments: list[F64],
    widths: F64,
    shape: tuple[int, int],
    pa: F64,
    pb: F64,
    own: NDArray[np.intp],
    lengths: F64,
) -> F64:
    """How much longer each bridge may be because it crosses another shaft, px.

    A shaft of width `W` crossed at an angle `θ` hides a crest along ``W / sin θ`` of the
    crossing hair, on top of what either crest loses on its approach. Each bridge from
    ``pa`` to ``pb`` is sampled every half pixel over its middle four fifths; a crest
    piece other than the bridge's own two (`own`, (B, 2)) found within
    :data:`_CROSSED_REACH_PX` of a sample (a crest is cut a few pixels short of a
    junction), lying at :data:`_CROSSED_MIN_DEG` or more to the bridge with the two
    ends on either side of it and clear of its half width, and at least
    :data:`_CROSSED_MIN_WIDTHS` of its widths long (a shaft, not a stub of crest),
    lengthens it by its ``W / sin θ`` (the largest such). 0 where nothing is crossed.
    `lengths` are the pieces' lengths (px).
    """
    count = len(pa)
    out = np.zeros(count)
    if count == 0 or not segments:
        return out
    m, n = shape
    allpts, owner, _local, tangent = piece_tangents(segments)
    # which crest point lies on each pixel; 32 bits halve a 12-Mpx image's map to 48 MB
    index = np.full((m, n), -1, dtype=np.int32)
    ip = np.round(allpts).astype(np.intp)
    inside = (ip[:, 0] >= 0) & (ip[:, 0] < n) & (ip[:, 1] >= 0) & (ip[:, 1] < m)
    index[ip[inside, 1], ip[inside, 0]] = np.flatnonzero(inside)
    vec = pb - pa
    gap = np.hypot(vec[:, 0], vec[:, 1])
    unit = vec / np.maximum(gap, 1e-9)[:, None]
    samples = np.maximum(2, np.ceil(1.6 * gap).astype(np.intp))
    bridge = np.repeat(np.arange(count), samples)
    first = np.r_[0, np.cumsum(samples)[:-1]]
    t = 0.1 + 0.8 * (np.arange(int(samples.sum())) - first[bridge]) / (samples[bridge] - 1.0)
    sx = pa[bridge, 0] + t * vec[bridge, 0]
    sy = pa[bridge, 1] + t * vec[bridge, 1]
    sin_min = math.sin(math.radians(_CROSSED_MIN_DEG))
    row0 = np.rint(sy).astype(np.intp)  # np.round's values
    col0 = np.rint(sx).astype(np.intp)
    flat_index = index.reshape(-1)
    for dy in range(-_CROSSED_REACH_PX, _CROSSED_REACH_PX + 1):
        r = np.minimum(np.maximum(row0 + dy, 0), m - 1) * n
        for dx in range(-_CROSSED_REACH_PX, _CROSSED_REACH_PX + 1):
            hit = flat_index.take(r + np.minimum(np.maximum(col0 + dx, 0), n - 1))
            ok = hit >= 0
            b_, h_ = bridge[ok], hit[ok]
            piece = owner[h_]
            ok2 = (piece != own[b_, 0]) & (piece != own[b_, 1])
            b_, h_, piece = b_[ok2], h_[ok2], piece[ok2]
            sin = np.abs(unit[b_, 0] * tangent[h_, 1] - unit[b_, 1] * tangent[h_, 0])
            # the crossing shaft lies between the two ends, neither end on it
            tx, ty, hp = tangent[h_, 0], tangent[h_, 1], allpts[h_]
            side_a = tx * (pa[b_, 1] - hp[:, 1]) - ty * (pa[b_, 0] - hp[:, 0])
            side_b = tx * (pb[b_, 1] - hp[:, 1]) - ty * (pb[b_, 0] - hp[:, 0])
            clear = 0.5 * widths[piece]
            # ... and is a shaft, not a stub of crest
            good = (
                (sin >= sin_min)
                & (side_a * side_b < 0)
                & (np.minimum(np.abs(side_a), np.abs(side_b)) >= clear)
                & (lengths[piece] >= _CROSSED_MIN_WIDTHS * widths[piece])
            )
            np.maximum.at(out, b_[good], widths[piece[good]] / sin[good])
    return out


@dataclass(frozen=True)
class LinkCandidates:
    """The joins :func:`link_segments` may make, each passing every hard test.

    Ends are numbered ``2 i`` (start of piece ``i``) and ``2 i + 1`` (its end); each
    candidate joins end ``ia[k]`` to end ``ib[k]``. The other fields describe each join,
    for its cost and for any scorer of it.

    Attributes
    ----------
    ia, ib : (K,) ndarray of int
        The two ends.
    cost : (K,) ndarray
        The hand-set cost (lower is better): turn, offset from the line, bridge length
        per shaft width and width ratio.
    turn : (K,) ndarray
        Cosine of the direction change across the join (1 = straight on).
    gap : (K,) ndarray, px
        Bridge length.
    per_width : (K,) ndarray
        Bridge length in the narrower piece's widths.
    offset : (K,) ndarray
        Larger of the two ends' distances from the other's line, in the narrower
        piece's widths.
    log_width_ratio : (K,) ndarray
        ``|log|`` of the ratio of the two pieces' widths.
    crossed : (K,) ndarray of bool
        Whether the bridge is lengthened by a shaft it crosses.
    bridge : (K,) ndarray
        Darkest 3-sample mean along the bridge over what it must keep (NaN without `od`;
        inf for a bridge of 2 px or less).
    """

    ia: NDArray[np.intp]
    ib: NDArray[np.intp]
    cost: F64
    turn: F64
    gap: F64
    per_width: F64
    offset: F64
    log_width_ratio: F64
    crossed: NDArray[np.bool_]
    bridge: F64

    def take(self, which: NDArray[np.bool_]) -> LinkCandidates:
        """Keep the candidates where `which` holds."""
        return LinkCandidates(**{k: getattr(self, k)[which] for k in self.__dataclass_fields__})


def _no_candidates() -> LinkCandidates:
    e = np.zeros(0)
    i = np.zeros(0, dtype=np.intp)
    return LinkCandidates(i, i.copy(), e, e, e, e, e, e, np.zeros(0, dtype=bool), e)


def link_candidates(
    segments: list[F64],
    *,
    max_gap: float,
    max_angle_deg: float,
    od: F32 | None = None,
    widths: F64 | None = None,
    half_widths: F64 | None = None,
    apart: NDArray[np.intp] | None = None,
    fresh: NDArray[np.intp] | None = None,
) -> LinkCandidates:
    """Every join between piece ends that passes the hard tests of :func:`link_segments`.

    The parameters are those of :func:`link_segments` (which see); each end may appear in
    several candidates, of which that function takes the best first.

    Returns
    -------
    LinkCandidates
    """
    n = len(segments)
    if n < 2:
        return _no_candidates()
    lengths = np.array([polyline_length(seg) for seg in segments])
    # each end's outward direction, skipping the bend a crest takes into a crossing
    dirs = end_directions(
        segments, np.minimum(np.maximum(4.0, 0.4 * lengths), 20.0), np.minimum(0.15 * lengths, 6.0)
    )
    pts = np.array([p for seg in segments for p in (seg[0], seg[-1])])
    widths_end = (
        np.repeat(np.maximum(np.asarray(widths, float), 1.0), 2)
        if widths is not None
        else np.full(len(pts), 5.0)
    )
    cos_max = math.cos(math.radians(max_angle_deg))
    from scipy.spatial import cKDTree

    reach = np.full(len(pts), float(max_gap))
    crossing = od is not None and widths is not None
    if crossing:
        reach = np.maximum(reach, _CROSSING_WIDTHS * np.repeat(np.asarray(widths, float), 2))
    # a bridge across another shaft may be longer by what that shaft hides (at most
    # one more ordinary gap)
    extra = float(max_gap) if crossing else 0.0
    pairs = cKDTree(pts).query_pairs(float(reach.max()) + extra, output_type="ndarray")
    if len(pairs):
        ia, ib = pairs[:, 0], pairs[:, 1]
        keep = (ia // 2) != (ib // 2)  # not the two ends of one piece
        if apart is not None and len(apart):
            lo, hi = np.minimum(ia, ib), np.maximum(ia, ib)
            cut = np.sort(np.asarray(apart, dtype=np.int64).reshape(-1, 2), axis=1)
            code = lo.astype(np.int64) * len(pts) + hi
            keep &= ~np.isin(code, cut[:, 0] * len(pts) + cut[:, 1])
        if fresh is not None:
            keep &= np.isin(ia, fresh) | np.isin(ib, fresh)
        gap = np.hypot(*(pts[ib] - pts[ia]).T)
        base = np.minimum(reach[ia], reach[ib])
        keep &= gap <= base + extra
        ia, ib, gap, base = ia[keep], ib[keep], gap[keep], base[keep]
        da, db = dirs[ia], dirs[ib]
        vec = pts[ib] - pts[ia]  # from end a to end b
        d = np.hypot(vec[:, 0], vec[:, 1])
        # directions must be opposite (a continues into b)
        turn = -np.sum(da * db, axis=1)
        # b must lie ahead of a, near the line a continues along (and vice versa)
        ahead_a = np.sum(da * vec, axis=1)
        ahead_b = -np.sum(db * vec, axis=1)
        side_a = np.abs(da[:, 0] * vec[:, 1] - da[:, 1] * vec[:, 0])
        side_b = np.abs(db[:, 0] * vec[:, 1] - db[:, 1] * vec[:, 0])
        slack = np.maximum(3.0, 0.5 * d)
        far = d > 1.5
        ok = (turn >= cos_max) & (
            ~far | ((np.minimum(ahead_a, ahead_b) >= -2.0) & (np.maximum(side_a, side_b) <= slack))
        )
        crossed = np.zeros(len(ia), dtype=bool)
        # a hair goes straight through a crossing: a longer bridge must hardly turn
        longer = ok & (gap > base) & (turn >= math.cos(math.radians(_CROSSED_MAX_TURN_DEG)))
        if longer.any() and od is not None and widths is not None:
            idx = np.flatnonzero(longer)
            more = _crossed_reach(
                segments,
                np.asarray(widths if half_widths is None else half_widths, float),
                od.shape,
                pts[ia[idx]],
                pts[ib[idx]],
                np.stack([ia[idx] // 2, ib[idx] // 2], axis=1),
                lengths,
            )
            crossed[idx] = (more > 0) & (gap[idx] <= base[idx] + np.minimum(more, extra))
        ok &= (gap <= base) | crossed
        # a longer bridge costs more only per shaft width: jumping a crossing straight
        # through is cheaper than turning into the crest the two shafts share there
        per_width = d / np.minimum(widths_end[ia], widths_end[ib])
        cost = 3.0 * (1.0 - turn) + np.where(
            far, (side_a + side_b) / (4.0 * slack) + _GAP_COST * per_width, 0.0
        )
        width_ratio = np.zeros(len(ia))
        if half_widths is not None:
            # one hair keeps its width: a thin crest running on into a thick one is not it
            hw = np.repeat(np.maximum(np.asarray(half_widths, float), 1.0), 2)
            width_ratio = np.abs(np.log(hw[ia] / hw[ib]))
            cost += _WIDTH_COST * width_ratio
        found = LinkCandidates(
            ia=ia[ok],
            ib=ib[ok],
            cost=cost[ok],
            turn=turn[ok],
            gap=gap[ok],
            per_width=per_width[ok],
            offset=np.maximum(side_a, side_b)[ok] / np.minimum(widths_end[ia], widths_end[ib])[ok],
            log_width_ratio=width_ratio[ok],
            crossed=crossed[ok],
            bridge=np.full(int(ok.sum()), np.nan),
        )
        if od is not None and len(found.ia):
            level = np.zeros(n)
            used_pieces = np.unique(np.r_[found.ia, found.ib] // 2)
            level[used_pieces] = _shaft_levels(od, [segments[k] for k in used_pieces])
            passed, margin = _bridges_ok(
                od, pts, found.ia, found.ib, level, float(max_gap), found.crossed
            )
            found = replace(found, bridge=margin).take(passed)
        return found
    return _no_candidates()


def link_segments(
    segments: list[F64],
    *,
    max_gap: float,
    max_angle_deg: float,
    od: F32 | None = None,
    widths: F64 | None = None,
    half_widths: F64 | None = None,
    apart: NDArray[np.intp] | None = None,
    fresh: NDArray[np.intp] | None = None,
    keep_unjoined: bool = False,
) -> list[F64]:
    """Join pieces end to end where the direction continues (crossings, gaps).

    Each end is joined at most once; candidate joins are taken best first, the cost being
    the change of direction across the join. With `od`, a join must also be dark along
    its whole bridge: where one hair crosses another the gap is covered by the crossing
    shaft, while between two separate hairs lying end to end (common in clipped hair)
    there is bare skin.

    Parameters
    ----------
    segments : list of (P, 2) ndarray, px
        Ordered polylines.
    max_gap : float, px
        Largest distance bridged between two ends.
    max_angle_deg : float, degrees
        Largest direction change accepted.
    od : (M, N) ndarray of float32, optional
        Absorptance; when given, every bridge longer than 2 px must stay dark.
    widths : (len(segments),) ndarray, px, optional
        Shaft diameter per piece. Two shafts of diameter `d` crossing at an angle `θ`
        share a dark patch about ``d / sin θ`` long, over which the crest of either is
        lost: with `od` given, a bridge may be up to :data:`_CROSSING_WIDTHS` diameters
        long (crossings down to ~10°), still only where it stays dark all along.
    half_widths : (len(segments),) ndarray, px, optional
        Full width of each piece's shaft at half its axis absorptance (default `widths`).
        With `od` and `widths` given, a bridge that crosses another piece's shaft at
        10° or more, its ends on either side of it, may be longer than the reach above
        by that shaft's ``half_width / sin θ`` (at most `max_gap` more): a thin hair
        crossing a thick one loses its crest over the thick shaft and its approach.
        Given, a join also costs :data:`_WIDTH_COST` per unit of log ratio between the
        two pieces' widths: one hair keeps its width, and the crest of a thin hair
        meeting a thick one must not run on into it when its own continuation is there.
    apart : (K, 2) ndarray of int, optional
        Pairs of ends never to join, each end numbered ``2 i`` (start of piece ``i``) or
        ``2 i + 1`` (its end): pieces cut apart on purpose.
    fresh : ndarray of int, optional
        Ends numbered as in `apart`; when given, every join takes at least one of them.
    keep_unjoined : bool
        Return pieces that join nothing as they came (the same arrays, not smoothed
        again), for a second pass that must leave them alone.

    Returns
    -------
    list of (P, 2) ndarray, px
        Linked polylines.
    """
    n = len(segments)
    if n < 2:
        return [s.copy() for s in segments]
    found = link_candidates(
        segments,
        max_gap=max_gap,
        max_angle_deg=max_angle_deg,
        od=od,
        widths=widths,
        half_widths=half_widths,
        apart=apart,
        fresh=fresh,
    )
    order = np.lexsort((found.ib, found.ia, found.cost))
    partner = [-1] * (2 * n)
    for k in order:
        a, b = int(found.ia[k]), int(found.ib[k])
        if partner[a] < 0 and partner[b] < 0:
            partner[a], partner[b] = b, a
    # walk chains: end index 2i = start of segment i, 2i+1 = its end
    used = [False] * n
    chains: list[F64] = []

    def walk(first_seg: int, entry_end: int) -> F64:
        parts = []
        seg, entry = first_seg, entry_end
        while True:
            used[seg] = True
            poly = segments[seg] if entry == 2 * seg else segments[seg][::-1]
            parts.append(poly)
            exit_end = 2 * seg + 1 if entry == 2 * seg else 2 * seg
            nxt = partner[exit_end]
            if nxt < 0 or used[nxt // 2]:
                break
            seg, entry = nxt // 2, nxt
        if keep_unjoined and len(parts) == 1:
            return parts[0]
        return _smooth(np.vstack(parts), passes=3)

    for i in range(n):
        if used[i]:
            continue
        if partner[2 * i] < 0:
            chains.append(walk(i, 2 * i))
        elif partner[2 * i + 1] < 0:
            chains.append(walk(i, 2 * i + 1))
    for i in range(n):  # closed loops
        if not used[i]:
            chains.append(walk(i, 2 * i))
    return chains


def split_at_corners(pts: F64, *, chord: float, max_turn_deg: float) -> list[F64]:
    """Cut a traced polyline where it turns sharply (a corner between two hairs).

    A hair shaft is stiff: over a few tens of µm it bends by a few degrees at most, so
    a turn larger than `max_turn_deg` between the chords `chord` px before and after a
    point is where the crest ran from one hair into another that touches it (a clipped
    hair's end against a neighbour, two hairs leaving one opening).

    Parameters
    ----------
    pts : (P, 2) ndarray, px
        Ordered polyline.
    chord : float, px
        Length of the chords compared on each side of a point.
    max_turn_deg : float, degrees
        Largest turn kept within one hair.

    Returns
    -------
    list of (P, 2) ndarray, px
        The pieces (the input alone when it has no corner).
    """
    return _corners_of(pts, resample(pts, 1.0), chord=chord, max_turn_deg=max_turn_deg)


def _corners_of(pts: F64, line: F64, *, chord: float, max_turn_deg: float) -> list[F64]:
    """:func:`split_at_corners` of `pts`, given `line`, its resampling at 1 px."""
    k = max(2, round(chord))
    if len(line) < 2 * k + 1:
        return [pts]
    cos = _chord_cos(line, k, k)
    sharp = cos < math.cos(math.radians(max_turn_deg))
    if not sharp.any():
        return [pts]
    return _cut_runs(line, sharp, -cos, k)


def _chord_cos(line: F64, margin: int, span: int) -> F64:
    """Cosine of the turn between the chords `span` points before and after each point.

    For the points of `line` from `margin` to ``len(line) - margin`` (``span <= margin``).
    """
    n = len(line)
    centre = line[margin : n - margin]
    before = centre - line[margin - span : n - margin - span]
    after = line[margin + span : n - margin + span] - centre
    return np.asarray(
        (before * after).sum(axis=1)
        / (np.hypot(before[:, 0], before[:, 1]) * np.hypot(after[:, 0], after[:, 1]) + 1e-12),
        dtype=np.float64,
    )


def _cut_runs(line: F64, flagged: NDArray[np.bool_], key: F64, offset: int) -> list[F64]:
    """Cut `line` once per run of `flagged` points, where `key` is largest in the run.

    `flagged` and `key` index the points of `line` from `offset` on.
    """
    idx = np.flatnonzero(flagged)
    runs = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)
    out = []
    lo = 0
    for run in runs:
        cut = int(run[np.argmax(key[run])]) + offset
        out.append(line[lo : cut + 1])
        lo = cut
    out.append(line[lo:])
    return [p for p in out if len(p) >= 2]


def split_at_kinks(pts: F64, *, chord: float, min_turn_deg: float, spread: float) -> list[F64]:
    """Cut a trace at a kink: a turn made at one point, with straight shaft either side.

    A hair bends smoothly: between chords twice as long, the turn across a point of a
    bent shaft doubles. Where two hairs meet end to end at an angle, it stays the same.
    A point is a kink when the turn between the chords `chord` px before and after it
    is at least `min_turn_deg` and the turn between chords ``2 · chord`` long is less
    than `spread` times that; both chords of ``2 · chord`` must fit on the trace, so a
    hooked crest at a cut end is never a kink.

    Parameters
    ----------
    pts : (P, 2) ndarray, px
        Ordered polyline.
    chord : float, px
        Length of the short chords.
    min_turn_deg : float, degrees
        Smallest turn that can be a kink.
    spread : float
        Largest ratio of the long chords' turn to the short chords' turn at a kink.

    Returns
    -------
    list of (P, 2) ndarray, px
        The pieces (the input alone when it has no kink).
    """
    return _kinks_of(pts, resample(pts, 1.0), chord=chord, min_turn_deg=min_turn_deg, spread=spread)


def _kinks_of(
    pts: F64, line: F64, *, chord: float, min_turn_deg: float, spread: float
) -> list[F64]:
    """:func:`split_at_kinks` of `pts`, given `line`, its resampling at 1 px."""
    k = max(2, round(chord))
    if len(line) <= 4 * k:
        return [pts]  # no room for the long chords

    def turn(span: int) -> F64:
        return np.degrees(np.arccos(np.clip(_chord_cos(line, 2 * k, span), -1.0, 1.0)))

    short, long = turn(k), turn(2 * k)
    kink = (short >= min_turn_deg) & (long < spread * short)
    if not kink.any():
        return [pts]
    return _cut_runs(line, kink, short, 2 * k)


def split_at_corners_and_kinks(
    pts: F64,
    *,
    chord: float,
    max_turn_deg: float,
    min_turn_deg: float,
    spread: float,
    bend_chord: float | None = None,
    bend_turn_deg: float = 180.0,
) -> list[F64]:
    """:func:`split_at_corners`, then :func:`split_at_kinks` on each part (same chords).

    With `bend_chord`, each piece is then cut again as :func:`split_at_corners` would with
    chords `bend_chord` long and `bend_turn_deg` (a bend too tight for any shaft). A trace
    or part left whole by one test is resampled once for the next.
    """
    line = resample(pts, 1.0)
    out: list[F64] = []
    for part in _corners_of(pts, line, chord=chord, max_turn_deg=max_turn_deg):
        part_line = line if part is pts else resample(part, 1.0)
        for kinked in _kinks_of(
            part, part_line, chord=chord, min_turn_deg=min_turn_deg, spread=spread
        ):
            if bend_chord is None:
                out.append(kinked)
                continue
            kinked_line = part_line if kinked is part else resample(kinked, 1.0)
            out.extend(
                _corners_of(kinked, kinked_line, chord=bend_chord, max_turn_deg=bend_turn_deg)
            )
    return out


def split_at_gaps(traces: list[F64], od: F32, *, share: float) -> list[list[F64]]:
    """Cut each trace where the absorptance along it falls to bare skin.

    A shaft absorbs all along its length; the large detection scales can carry a crest
    across a short stretch of bare skin between two hairs lying in line, which this
    undoes. A stretch is bare where the absorptance (3-sample running mean) stays below
    `share` of the trace's median; it is removed and the trace cut there. The samples of
    all traces are one gather and their medians one sort (:func:`group_medians`).

    Parameters
    ----------
    traces : list of (P, 2) ndarray, px
        Ordered polylines at the resolution of `od`.
    od : (M, N) ndarray of float32
        Absorptance.
    share : float
        Share of a trace's median absorptance below which a sample is bare skin.

    Returns
    -------
    list of list of (P, 2) ndarray, px
        Per trace, its pieces with at least two points (the trace alone when it has no
        gap).
    """
    # crest traces are chains of neighbouring pixels: about one sample per pixel already
    lines = [
        pts if len(pts) >= 2 * polyline_length(pts) / 3 else resample(pts, 1.0) for pts in traces
    ]
    out = [[pts] for pts in traces]
    judged = [i for i, line in enumerate(lines) if len(line) >= 5]
    if not judged:
        return out
    xy = np.concatenate([lines[i] for i in judged])
    raw = _bilinear(od, xy[:, 0], xy[:, 1]).astype(np.float64)
    sizes = np.array([len(lines[i]) for i in judged], dtype=np.intp)
    bounds = np.cumsum(sizes)[:-1]
    smooth = np.ones(3) / 3.0
    means = [
        np.convolve(np.pad(v, 1, mode="edge"), smooth, mode="valid") for v in np.split(raw, bounds)
    ]
    refs = group_medians(np.concatenate(means), sizes)
    for i, vals, ref in zip(judged, means, refs.tolist(), strict=True):
        bare = vals < share * ref
        if ref <= 0 or not bare[1:-1].any():
            continue
        # cut only at interior stretches; a faint end is left to the end trimming
        idx = np.flatnonzero(~bare)
        if idx.size < 2:
            continue
        runs = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)
        if len(runs) == 1:
            continue
        out[i] = [lines[i][r[0] : r[-1] + 1] for r in runs if len(r) >= 2]
    return out


def _shaft_levels(od: F32, segs: list[F64]) -> F64:
    """Median absorptance along each crest piece (one bilinear pass for all)."""
    if not segs:
        return np.zeros(0)
    xy = np.concatenate(segs)
    vals = _bilinear(od, xy[:, 0], xy[:, 1])
    return group_medians(vals, np.array([len(p) for p in segs]))


def group_medians(values: NDArray[np.floating], counts: NDArray[np.intp]) -> F64:
    """Median of consecutive groups of `values` (`counts` long each, all > 0), as np.median.

    One sort for all groups instead of one ``np.median`` call per group; an even-sized
    group takes the mean of its two middle values in the values' own dtype, as
    ``np.median`` does. Float32 values are sorted as one 64-bit integer key each (group
    number above, the value's bits made order-preserving below), which is exact and
    about twice as fast as sorting on two keys.
    """
    counts = np.asarray(counts)
    if values.dtype == np.float32:
        owner = np.repeat(np.arange(len(counts), dtype=np.uint64), counts)
        low = np.uint64(0xFFFFFFFF)
        bits = values.view(np.uint32).astype(np.uint64)
        # negative floats: all bits flipped; others: the sign bit set (IEEE order)
        bits = np.where(bits >> np.uint64(31) == 1, ~bits & low, bits | np.uint64(1 << 31))
        key = np.sort((owner << np.uint64(32)) | bits) & low
        key = np.where(key >> np.uint64(31) == 0, ~key & low, key & np.uint64(0x7FFFFFFF))
        ordered = key.astype(np.uint32).view(np.float32)
    else:
        owner = np.repeat(np.arange(len(counts)), counts)
        ordered = values[np.lexsort((values, owner))]
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    upper = ordered[starts + counts // 2]
    lower = ordered[starts + (counts - 1) // 2]
    return np.asarray((lower + upper) / 2 if values.dtype.kind == "f" else lower, np.float64)


def arc_lengths(pts: F64) -> F64:
    """Cumulative arc length at each vertex of a polyline (px), starting at 0."""
    step = pts[1:] - pts[:-1]
    out = np.empty(len(pts))
    out[0] = 0.0
    # the method, not np.cumsum: called per trace, the wrapper costs as much as the sum
    np.hypot(step[:, 0], step[:, 1]).cumsum(out=out[1:])
    return out


def polyline_length(pts: F64) -> float:
    """Length of a polyline in its own units (px)."""
    if len(pts) < 2:
        return 0.0
    step = pts[1:] - pts[:-1]
    return float(np.hypot(step[:, 0], step[:, 1]).sum())


def linspace(start: float, stop: float, count: int) -> F64:
    """``np.linspace(start, stop, count)``, the same values, without its per-call overhead.

    For the per-trace stations of :func:`resample` and the profile stations, made
    thousands of times per image.
    """
    out = np.arange(count, dtype=np.float64) * ((stop - start) / max(count - 1, 1))
    out += start
    if count > 1:
        out[-1] = stop
    return out


def resample(pts: F64, step: float) -> F64:
    """Resample a polyline at equal arc-length `step` (px), keeping both ends."""
    if len(pts) < 2:
        return pts.copy()
    dist = arc_lengths(pts)
    total = float(dist[-1])
    if total <= 0:
        return pts[:1].copy()
    count = max(2, math.ceil(total / step) + 1)
    s = linspace(0.0, total, count)
    out = np.empty((count, 2))
    out[:, 0] = np.interp(s, dist, pts[:, 0])
    out[:, 1] = np.interp(s, dist, pts[:, 1])
    return out


def _arm(line: F64, skip: int, span: int, least: int) -> tuple[F64, F64] | None:
    """One arm (points from the junction outwards) cut `skip` px from it, and its direction.

    None when the arm is shorter than ``skip + least`` points. The direction is the unit
    chord from the arm's first kept point to the one `span` px on (or its last).
    """
    if len(line) < skip + least:
        return None
    far = min(len(line) - 1, skip + span)
    chord = line[far] - line[skip]
    norm = float(np.hypot(chord[0], chord[1]))
    if norm <= 0:
        return None
    return line[skip:], chord / norm


def _bent(
    allpts: F64,
    owner: NDArray[np.intp],
    local: NDArray[np.intp],
    sizes: NDArray[np.intp],
    skip: NDArray[np.intp],
    span: NDArray[np.intp],
    cos_straight: float,
) -> NDArray[np.bool_]:
    """Per line, whether the arms either side of some point turn by more than straight.

    The lines' points are concatenated in `allpts` (`owner`: the line of each point,
    `local`: its index on that line, `sizes`: points per line); each line's arms are
    `span` points long and start `skip` points from the point.
    """
    sk, sp = skip[owner], span[owner]
    g = np.flatnonzero((local >= sk + sp) & (local < sizes[owner] - sk - sp))
    sk, sp = sk[g], sp[g]
    before = allpts[g - sk] - allpts[g - sk - sp]
    after = allpts[g + sk + sp] - allpts[g + sk]
    dot = (before * after).sum(axis=1)
    norm = np.hypot(before[:, 0], before[:, 1]) * np.hypot(after[:, 0], after[:, 1])
    return np.bincount(owner[g[dot < cos_straight * norm]], minlength=len(sizes)) > 0


def swap_crossed_arms(traces: list[F64], widths: F64, od: F32) -> list[F64]:
    """Re-pair the arms of traces that turned into each other's hair at a shallow crossing.

    Where two shafts cross at a shallow angle they share a dark patch several widths long
    whose crest follows neither: the linking may take each hair's arm on into the other
    hair's, so that both traces bend there and neither matches a hair (the issue's
    "trace through crossings by direction continuity"). For two traces that come within
    :data:`_SWAP_TOUCH_WIDTHS` of each other, at least one of them bent (its arms turning
    by more than :data:`_SWAP_STRAIGHT_DEG`), each is cut where they come closest into
    two arms, measured from :data:`_SWAP_SKIP_WIDTHS` past that point over
    :data:`_SWAP_ARM_WIDTHS` (an arm too short to measure is left out). The arms are
    then paired again the other way when that makes more of them go straight on (each pair
    turning by at most :data:`_SWAP_STRAIGHT_DEG`, each arm's first point within
    :data:`_SWAP_OFFSET_WIDTHS` of the other's line, the straight bridge between them
    keeping half the fainter trace's absorptance); a straight pair is joined by that
    bridge, and an arm left unpaired keeps its stretch up to the closest point. A trace
    takes part in one such change, the largest gains first.

    Parameters
    ----------
    traces : list of (P, 2) ndarray, px
        Traced centrelines.
    widths : (len(traces),) ndarray, px
        Shaft width per trace.
    od : (M, N) ndarray of float32
        Absorptance the traces were found in.

    Returns
    -------
    list of (P, 2) ndarray, px
        The traces, the re-paired ones first (resampled at 1 px), then the others as they
        came.
    """
    count = len(traces)
    if count < 2:
        return traces
    w = np.maximum(np.asarray(widths, dtype=np.float64), 2.0)
    lines = [resample(t, 1.0) for t in traces]
    skip = np.maximum(2, np.round(_SWAP_SKIP_WIDTHS * w)).astype(np.intp)
    span = np.maximum(3, np.round(_SWAP_ARM_WIDTHS * w)).astype(np.intp)
    cos_straight = math.cos(math.radians(_SWAP_STRAIGHT_DEG))
    sizes = np.array([len(x) for x in lines], dtype=np.intp)
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    allpts = np.concatenate(lines)
    owner = np.repeat(np.arange(count), sizes)
    local = np.arange(len(allpts)) - starts[owner]
    bent = _bent(allpts, owner, local, sizes, skip, span, cos_straight)
    if not bent.any():
        return traces
    from scipy.spatial import cKDTree

    # where each pair of traces comes closest: first on every 8th point (within 4 px of
    # any), then on the points around the closest pair found
    stride = 8
    pick = np.flatnonzero((local % stride == 0) | (local == sizes[owner] - 1))
    from_bent = pick[bent[owner[pick]]]
    near = cKDTree(allpts[from_bent]).sparse_distance_matrix(
        cKDTree(allpts[pick]), _SWAP_TOUCH_WIDTHS * float(w.max()) + stride, output_type="ndarray"
    )
    if not len(near):
        return traces
    pa, pb, dist = from_bent[near["i"]], pick[near["j"]], near["v"]
    ia, ib = owner[pa], owner[pb]
    keep = (ia != ib) & (dist <= _SWAP_TOUCH_WIDTHS * np.maximum(w[ia], w[ib]) + stride)
    pa, pb, ia, ib, dist = pa[keep], pb[keep], ia[keep], ib[keep], dist[keep]
    if not len(pa):
        return traces
    # one closest approach per unordered pair of traces, the first trace the lower index
    flip = ia > ib
    pa, pb = np.where(flip, pb, pa), np.where(flip, pa, pb)
    ia, ib = owner[pa], owner[pb]
    key = ia.astype(np.int64) * count + ib
    order = np.lexsort((dist, key))
    first = order[np.r_[True, key[order][1:] != key[order][:-1]]]
    # refined on the points within `stride` of the two found, all pairs at once
    fi, fj = ia[first], ib[first]
    reach = np.arange(-stride, stride + 1)
    ki = np.minimum(np.maximum(local[pa[first], None] + reach, 0), sizes[fi, None] - 1)
    kj = np.minimum(np.maximum(local[pb[first], None] + reach, 0), sizes[fj, None] - 1)
    diff = allpts[starts[fi, None] + ki][:, :, None, :] - allpts[starts[fj, None] + kj][:, None]
    d2 = (diff**2).sum(axis=3).reshape(len(first), -1)
    at = d2.argmin(axis=1)
    u, v = np.divmod(at, len(reach))
    rows = np.arange(len(first))
    close = d2[rows, at] <= (_SWAP_TOUCH_WIDTHS * np.maximum(w[fi], w[fj])) ** 2
    pairs = list(
        zip(
            fi[close].tolist(),
            fj[close].tolist(),
            ki[rows, u][close].tolist(),
            kj[rows, v][close].tolist(),
            strict=True,
        )
    )
    if not pairs:
        return traces
    levels = _shaft_levels(od, lines)
    options = []
    for i, j, ki, kj in pairs:
        level = float(min(levels[i], levels[j]))
        found = _repairing(lines[i], ki, lines[j], kj, float(max(w[i], w[j])), od, level)
        if found is not None:
            options.append((found, i, j, ki, kj))
    # the largest gain first, then the straighter
    options.sort(key=lambda o: (-o[0].gain, o[0].turn))
    used: set[int] = set()
    out: list[F64] = []
    for found, i, j, ki, kj in options:
        if i in used or j in used:
            continue
        used.update((i, j))
        paired = {x for pair in found.pairs for x in pair}
        for x, y in found.pairs:
            out.append(np.vstack([found.arms[x][::-1], found.arms[y]]))
        # an arm left alone keeps its stretch up to the closest point
        for x, (line, k) in enumerate(((lines[i], ki), (lines[j], kj))):
            for side in (0, 1):
                arm = 2 * x + side
                if found.present[arm] and arm not in paired:
                    out.append(line[: k + 1].copy() if side == 0 else line[k:].copy())
    return out + [t for k, t in enumerate(traces) if k not in used]


#: one bridge from end 0 to end 1 of piece 0, for :func:`_bridges_ok`
_BRIDGE_END = (np.array([0]), np.array([1]))


@dataclass(frozen=True)
class _Repairing:
    """A better pairing of the four arms of two traces (see :func:`swap_crossed_arms`)."""

    gain: int  # straight pairs gained
    turn: float  # summed turn of the new pairs, degrees
    pairs: list[tuple[int, int]]  # arms joined, each from its first point outwards
    arms: list[F64]  # arms 0, 1 (trace i back and on), 2, 3 (trace j), cut past the junction
    present: list[bool]  # whether each arm was long enough to measure


def _repairing(
    line_i: F64, ki: int, line_j: F64, kj: int, wide: float, od: F32, level: float
) -> _Repairing | None:
    """Find a pairing of two traces' arms, cut where they come closest, that goes straighter.

    None when the traces already go straight on (or nothing better is found). A new
    pair's bridge is held to :func:`_bridges_ok`'s rule for a short bridge against
    `level`, the fainter trace's absorptance.
    """
    skip = max(2, round(_SWAP_SKIP_WIDTHS * wide))
    span = max(3, round(_SWAP_ARM_WIDTHS * wide))
    least = max(3, round(wide))
    measured = [
        _arm(part, skip, span, least)
        for line, k in ((line_i, ki), (line_j, kj))
        for part in (line[k::-1], line[k:])
    ]
    present = [m is not None for m in measured]
    start = [m[0] if m is not None else np.zeros((0, 2)) for m in measured]
    way = [m[1] if m is not None else np.zeros(2) for m in measured]

    levels = np.array([level])

    def dark(x: int, y: int) -> bool:
        ends = np.stack([start[x][0], start[y][0]])
        return bool(_bridges_ok(od, ends, _BRIDGE_END[0], _BRIDGE_END[1], levels, math.inf)[0][0])

    def turn_offset(x: int, y: int) -> tuple[float, float]:
        dx, dy = way[x], way[y]
        turn = math.degrees(math.acos(max(-1.0, min(1.0, -float(dx @ dy)))))
        v = start[y][0] - start[x][0]
        off = max(abs(dx[0] * v[1] - dx[1] * v[0]), abs(dy[0] * v[1] - dy[1] * v[0]))
        return turn, off / wide

    now = [
        turn_offset(x, x + 1)[0] <= _SWAP_STRAIGHT_DEG
        for x in (0, 2)
        if present[x] and present[x + 1]
    ]
    if all(now):
        return None  # each goes straight on already (or has one arm only)
    best: _Repairing | None = None
    for pairing in (((0, 3), (2, 1)), ((0, 2), (1, 3))):
        straight: list[tuple[int, int]] = []
        total = 0.0
        for x, y in pairing:
            if not (present[x] and present[y]):
                continue
            turn, off = turn_offset(x, y)
            if turn > _SWAP_STRAIGHT_DEG or off > _SWAP_OFFSET_WIDTHS or not dark(x, y):
                straight = []
                break
            straight.append((x, y))
            total += turn
        gain = len(straight) - sum(now)
        if gain > 0 and (best is None or (gain, -total) > (best.gain, -best.turn)):
            best = _Repairing(gain, total, straight, start, present)
    return best
