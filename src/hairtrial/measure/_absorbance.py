"""From raw pixels to an absorptance image in which hairs are ridges.

A hair shaft attenuates the light coming back from the skin; the attenuation, measured as
absorptance ``1 - I / I_skin`` (for faint shafts the optical density) against a local
estimate of bare skin, is the same for a hair on pale or dark skin, in the bright centre or
the dark corner of a vignetted field. Melanin absorbs across the whole visible spectrum, so
the per-channel absorptances are combined by their minimum: a pen mark, a red measuring
circle or blue text absorbs in one or two channels only and drops out, while a brown or
black shaft stays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

F32 = NDArray[np.float32]

#: Smallest background level (sensor floor), avoids division by zero.
_MIN_LEVEL = 1.0 / 512.0
#: Largest share of the image an overlay may cover and still be filled in from the skin.
_MAX_FILL = 0.5
#: Rows and columns added around a flat patch to cover its whole label box (px).
_BOX_GROW = 4
#: A row-to-row luma step this large is an overlay's sharp edge (JPEG blurs it little).
_EDGE_STEP = 20.0 / 255.0
#: Shortest top or bottom edge of a label outlined on the pixel grid (px), and how much
#: larger its step must be than the steps one row before and after it (an optical edge,
#: blurred by σ ≥ 0.85 px, spreads its step over the next rows: less than 2×).
_OUTLINE_MIN_PX = 30
_OUTLINE_SHARPNESS = 2.0
#: A status bar is masked over the columns where its edge rows step (its label boxes and
#: their text): runs of such columns closer than this are one label (px) ...
_BAR_GAP = 41
#: ... and a run narrower than this is a hair's edge crossing the row, not a label (px).
_BAR_MIN_RUN = 12
#: The dark frame round a round field of view (the optics' stop): darker than this share
#: of the skin's level (the 75th percentile of the luma) ...
_FRAME_LEVEL = 0.12
#: ... holding an image corner, at least this share of the image, flat (luma standard
#: deviation below _FRAME_FLAT) and grown by this share of the image's smaller side
#: over its blurred rim.
_FRAME_MIN_SHARE = 0.005
_FRAME_FLAT = 0.03
_FRAME_RIM = 0.02
#: A frame's edge toward the field is a circle (the stop) when this share of its points
#: lies within this many px of the fitted circle.
_CIRCLE_SHARE = 0.7
_CIRCLE_TOLERANCE = 3.0


def to_float_channels(image: NDArray[Any]) -> F32:
    """Return `image` as float32 ``(M, N, C)`` scaled to [0, 1] (a new array).

    Parameters
    ----------
    image : (M, N) or (M, N, 3) ndarray
        Integer or float pixels; floats with a maximum above 1 are scaled by their maximum.

    Returns
    -------
    (M, N, C) ndarray of float32
        C is 1 for greyscale input, 3 for RGB.
    """
    arr = image if image.ndim == 3 else image[:, :, None]
    return to_float_pixels(arr, full_scale(arr))


def full_scale(image: NDArray[Any]) -> float:
    """Pixel value that maps to 1: the dtype's maximum, or a float image's maximum above 1."""
    if image.dtype.kind in "ui":
        return float(np.iinfo(image.dtype).max)
    peak = float(image.max()) if image.size else 1.0
    return peak if peak > 1.0 else 1.0


def to_float_pixels(pixels: NDArray[Any], scale: float) -> F32:
    """Return `pixels` as float32 divided by `scale` and clipped to [0, 1] (a new array)."""
    out = pixels.astype(np.float32, copy=True)
    out *= np.float32(1.0 / scale)
    if pixels.dtype.kind != "u" or scale < float(np.iinfo(pixels.dtype).max):
        np.clip(out, 0.0, 1.0, out=out)  # unsigned integers at full scale stay in [0, 1]
    return out


def overlay_mask(channels: F32, bars: list[StatusBar] | None = None) -> NDArray[np.bool_]:
    """Mask device overlays: status-bar labels and label boxes near the top or bottom.

    Real skin under a microscope is never flat to within JPEG noise over a 7x7 window, an
    on-screen label box is. Only boxes touching the top or bottom band of the image are
    taken, so a smooth synthetic background is not masked. A label outlined by sharp
    straight edges on the pixel grid (:func:`_outlined_boxes`) is taken whatever its fill,
    within the same rows. A status bar (:func:`status_bars`) is masked over the columns of
    its labels: the skin between and beside them is imaged, and a hair crossing it is
    seen up to the image's edge.

    Parameters
    ----------
    channels : (M, N, C) ndarray of float32
        Pixels in [0, 1].
    bars : list of StatusBar, optional
        The image's status bars (:func:`status_bars`), when the caller has found them.

    Returns
    -------
    (M, N) ndarray of bool
        True on status-bar labels and on label boxes (each whole, with one pixel of its
        edge).
    """
    m, n = channels.shape[:2]
    band = _bar_band(m)
    mask = np.zeros((m, n), dtype=bool)
    for bar in status_bars(channels) if bars is None else bars:
        mask[bar.start : bar.stop, _bar_columns(channels, bar)] = True
    # a box touching a band and at most 0.2 m tall lies within `reach` rows of the edge:
    # only those slabs are searched (one more row shows a box that runs on, too tall)
    reach = band + int(0.2 * m) + 1
    if 2 * reach >= m:
        slabs = [(0, m)]
    else:
        slabs = [(0, reach), (m - reach, m)]
    for lo, hi in slabs:
        for x, y, w, h in _flat_boxes(channels, lo, hi):
            touches_band = y <= band or y + h >= m - band
            if touches_band and h <= 0.2 * m:
                # the flat patch is the box less 3 px on each side (7×7 window): the
                # whole box and one pixel of its blurred edge
                grow = _BOX_GROW
                mask[max(0, y - grow) : y + h + grow, max(0, x - grow) : x + w + grow] = True
        # a label drawn as a box with sharp straight sides, whatever its fill: the box
        # and one pixel of its edge, as for a flat box
        for x, y, w, h in _outlined_boxes(channels, lo, hi):
            mask[max(0, y - 1) : y + h + 1, max(0, x - 1) : x + w + 1] = True
    return mask


def _step_runs(steps: NDArray[np.bool_], min_len: int) -> tuple[NDArray[np.intp], ...]:
    """Return the runs of True along each row of `steps`, `min_len` or longer.

    As three arrays: row, first column, column past the last.
    """
    rows, cols = steps.shape
    padded = np.zeros((rows, cols + 2), dtype=np.int8)
    padded[:, 1:-1] = steps
    edge = np.diff(padded, axis=1)
    r0, c0 = np.nonzero(edge == 1)
    _r1, c1 = np.nonzero(edge == -1)
    # starts and stops come in the same order (row-major), one stop per start
    keep = (c1 - c0) >= min_len
    return r0[keep], c0[keep], c1[keep]


def _outlined_boxes(channels: F32, lo: int, hi: int) -> list[tuple[int, int, int, int]]:
    """Boxes (x, y, w, h; image rows) outlined by sharp edges on the pixel grid, rows lo:hi.

    A label burned into the image (a scale bar's "1.0 mm", a status-bar box) ends in
    straight edges along one pixel row or column, where the luma steps by
    :data:`_EDGE_STEP` or more: its top and bottom, at least :data:`_OUTLINE_MIN_PX`
    long and overlapping by 0.8 of the longer, lie 6–80 rows apart, and a column within
    3 px of each end steps over 0.8 of the rows between them. An optical edge is
    blurred over several rows: the top and bottom steps must be :data:`_OUTLINE_SHARPNESS`
    times those one row before and after them. No hair or skin line draws such a
    rectangle. A label's fill may show text or noise too strong for :func:`_flat_boxes`.
    """
    grey = _grey(channels[lo:hi])
    if grey.shape[0] < 3 or grey.shape[1] < _OUTLINE_MIN_PX:
        return []
    step = np.abs(np.diff(grey, axis=0))  # between rows y and y + 1
    across = step > _EDGE_STEP
    # only rows stepping over a stretch that long can hold a top or bottom edge
    rows = np.flatnonzero(across.sum(axis=1) >= _OUTLINE_MIN_PX)
    if len(rows) < 2:
        return []
    ys, starts, stops = _step_runs(across[rows], _OUTLINE_MIN_PX)
    ys = rows[ys]
    # drawn, not imaged: the step lies between two rows, not spread over the next ones
    last = step.shape[0] - 1
    sharp = [
        np.median(step[y, a:b])
        >= _OUTLINE_SHARPNESS
        * np.median(np.maximum(step[max(y - 1, 0), a:b], step[min(y + 1, last), a:b]))
        for y, a, b in zip(ys, starts, stops, strict=True)
    ]
    ys, starts, stops = ys[sharp], starts[sharp], stops[sharp]
    if len(ys) < 2:
        return []
    along = np.abs(np.diff(grey, axis=1)) > _EDGE_STEP  # between columns x and x + 1
    n = grey.shape[1]
    out = []
    for i in range(len(ys)):
        for j in range(i + 1, len(ys)):
            y1, y2 = int(ys[i]), int(ys[j])
            if not 6 <= y2 - y1 <= 80:
                continue
            a, b = max(starts[i], starts[j]), min(stops[i], stops[j])
            longer = max(stops[i] - starts[i], stops[j] - starts[j])
            if b - a < 0.8 * longer:
                continue
            sides = along[y1 + 1 : y2 + 1]
            left = sides[:, max(a - 3, 0) : min(a + 3, n - 1)].mean(axis=0)
            right = sides[:, max(b - 4, 0) : min(b + 2, n - 1)].mean(axis=0)
            if left.size and right.size and left.max() >= 0.8 and right.max() >= 0.8:
                # the steps lie between rows y1, y1 + 1 and y2, y2 + 1: rows y1 + 1 to y2
                out.append((int(a), lo + y1 + 1, int(b - a), y2 - y1))
    return out


@dataclass(frozen=True)
class StatusBar:
    """A status bar burned in along the top or bottom edge of an image.

    Parameters
    ----------
    start, stop : int, px
        Rows it spans (``start`` included, ``stop`` not), from the image's edge.
    edges : (E,) ndarray of int, px
        Rows after which the luma steps sharply across a third of the width or more
        (the labels' edges and their lines of text).
    """

    start: int
    stop: int
    edges: NDArray[np.intp] = field(repr=False)


def _bar_band(m: int) -> int:
    """Rows from the top or bottom edge searched for a status bar (px)."""
    return max(4, round(0.08 * m))


def status_bars(channels: F32) -> list[StatusBar]:
    """Status bars along the top and bottom edges of an image (0, 1 or 2).

    A status bar ends in a straight horizontal edge across a third or more of the width
    (its label boxes): no hair or scale-bar line runs that far along one pixel row.

    Parameters
    ----------
    channels : (M, N, C) ndarray of float32
        Pixels in [0, 1].

    Returns
    -------
    list of StatusBar
    """
    m = channels.shape[0]
    band = _bar_band(m)
    bars = []
    top = np.nonzero(_edge_rows(_grey(channels[: band + 1])))[0]
    if top.size:
        bars.append(StatusBar(0, min(m, int(top.max()) + 3), top))
    bottom = np.nonzero(_edge_rows(_grey(channels[m - 1 - band :])))[0]
    if bottom.size:
        edges = bottom + (m - 1 - band)
        bars.append(StatusBar(max(0, int(edges.min()) - 2), m, edges))
    return bars


def _bar_columns(channels: F32, bar: StatusBar) -> NDArray[np.bool_]:
    """Columns of a status bar that its labels cover: where its edge rows step sharply.

    A label's text steps along its lines even where the box is as bright as the skin
    beside it; steps closer than :data:`_BAR_GAP` are one label, runs narrower than
    :data:`_BAR_MIN_RUN` (a hair's edge crossing the row) are dropped, and each label
    grows by :data:`_BOX_GROW` on either side. A solid bar steps across the whole width.
    """
    grey = _grey(channels[bar.start : bar.stop])
    rows = bar.edges[(bar.edges >= bar.start) & (bar.edges < bar.stop - 1)] - bar.start
    steps = np.abs(grey[rows + 1] - grey[rows]) > _EDGE_STEP
    cols: NDArray[Any] = np.asarray(steps.any(axis=0), np.uint8)[None, :]
    cols = cv2.morphologyEx(cols, cv2.MORPH_CLOSE, np.ones((1, _BAR_GAP), np.uint8))
    cols = cv2.morphologyEx(cols, cv2.MORPH_OPEN, np.ones((1, _BAR_MIN_RUN), np.uint8))
    cols = cv2.dilate(cols, np.ones((1, 2 * _BOX_GROW + 1), np.uint8))
    return np.asarray(cols[0], dtype=bool)


def bar_rows(bars: list[StatusBar], m: int) -> tuple[int, int]:
    """Rows status `bars` of an `m`-row image span from the top and the bottom edge (px)."""
    top = bottom = 0
    for bar in bars:
        if bar.start == 0:
            top = max(top, bar.stop)
        if bar.stop == m:
            bottom = max(bottom, m - bar.start)
    return top, bottom


def outside_field(channels: F32, hair_px: float) -> tuple[NDArray[np.bool_], float]:
    """Mask the dark frame round a round field of view (no skin is imaged there).

    Dermatoscopes with a round stop image a disc of skin inside a black frame that fills
    the image's corners. Its edge, blurred by the optics, is a dark ring that the ridge
    detector would trace as hairs, and hairs reaching it are cut by it as by the image's
    border. The frame is the set of flat regions (luma standard deviation below
    :data:`_FRAME_FLAT`) darker than :data:`_FRAME_LEVEL` of the skin's level that hold
    an image corner, together at least :data:`_FRAME_MIN_SHARE` of the image; a single
    such corner must also be thick (a point of it at least 1.5 `hair_px` from the skin:
    a black shaft lying in a corner is no thicker than itself). The stop is round: the
    frame is what lies outside a circle fitted to the regions' edge toward the field (a
    shaft running on under the frame bulges a region, and its sides are outliers of the
    fit; the edges of a shaft are no circle), its radius moved to where the skin's luma
    falls to half, less :data:`_FRAME_RIM` of the image's smaller side over the blurred
    rim. Dark corners whose edges are no circle are not masked.

    Parameters
    ----------
    channels : (M, N, C) ndarray of float32
        Pixels in [0, 1].
    hair_px : float, px
        Widest shaft.

    Returns
    -------
    frame : (M, N) ndarray of bool
        True outside the field of view and on its rim (all False for a field that fills
        the image).
    imaged_px : float, px²
        Area of the field of view inside the image (``M * N`` without a frame).
    """
    m, n = channels.shape[:2]
    whole = (np.zeros((m, n), dtype=bool), float(m * n))
    if min(m, n) < 16:
        return whole
    # the skin's level from about 128 rows and columns, the corners looked at first
    step = max(1, min(m, n) // 128)
    level = float(np.percentile(_grey(np.ascontiguousarray(channels[::step, ::step])), 75))
    corner_px = np.array([channels[r, c] for r in (0, m - 1) for c in (0, n - 1)], np.float32)
    if level <= 0 or not (_grey(corner_px[None]) < _FRAME_LEVEL * level).any():
        return whole
    grey = _grey(channels)
    dark = (grey < _FRAME_LEVEL * level).astype(np.uint8)
    _, labels = cv2.connectedComponents(dark, connectivity=8)
    corners = {int(labels[r, c]) for r in (0, m - 1) for c in (0, n - 1)} - {0}
    flat = []
    for label in corners:
        region = labels == label
        if float(grey[region].std()) < _FRAME_FLAT:
            flat.append(region)
    if not flat or sum(int(r.sum()) for r in flat) < _FRAME_MIN_SHARE * m * n:
        return whole
    if len(flat) == 1:
        # one dark corner alone might be a black shaft lying in it
        depth = cv2.distanceTransform(flat[0].astype(np.uint8), cv2.DIST_L2, 3)
        if float(depth.max()) < 1.5 * hair_px:
            return whole
    # the stop is round: a circle fitted to the regions' edge toward the field, off the
    # image's own edges (a shaft running on under the frame bulges a region, and its
    # sides are left out of the fit as outliers)
    corner_dark = np.logical_or.reduce(flat)
    eroded = cv2.erode(corner_dark.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    inner = corner_dark & ~eroded
    inner[[0, -1], :] = False
    inner[:, [0, -1]] = False
    rows, cols = np.nonzero(inner)
    circle = _robust_circle(cols.astype(float), rows.astype(float))
    if circle is None or circle[2] < 0.3 * min(m, n):
        return whole
    cx, cy, radius = circle
    radius = _half_level_radius(grey, cx, cy, radius, level)
    rim = _FRAME_RIM * min(m, n)
    yy = (np.arange(m, dtype=np.float32) - np.float32(cy))[:, None]
    xx = (np.arange(n, dtype=np.float32) - np.float32(cx))[None, :]
    dist2 = yy * yy + xx * xx
    frame: NDArray[np.bool_] = dist2 > np.float32(max(radius - rim, 0.0) ** 2)
    imaged = float(np.count_nonzero(dist2 <= np.float32(radius**2)))
    return frame, imaged


def _half_level_radius(grey: F32, cx: float, cy: float, radius: float, level: float) -> float:
    """Radius (px) where the median luma along rays from (cx, cy) falls to half `level`.

    The frame's dark region ends where the blurred rim is already nearly black; the stop's
    edge lies at half the skin's level, a blur width or two further in. Rays that leave
    the image are left out; `radius` is returned when no crossing is found.
    """
    m, n = grey.shape
    angles = np.linspace(0.0, 2.0 * np.pi, 720, endpoint=False)
    radii = np.arange(max(radius - 30.0, 1.0), radius + 5.0, 0.5)
    x = (cx + np.cos(angles)[:, None] * radii[None, :]).astype(np.float32)
    y = (cy + np.sin(angles)[:, None] * radii[None, :]).astype(np.float32)
    seen = ((x >= 0) & (x <= n - 1) & (y >= 0) & (y <= m - 1)).all(axis=1)
    if seen.sum() < 10:
        return radius
    vals = cv2.remap(grey, x[seen], y[seen], cv2.INTER_LINEAR)
    profile = np.median(vals, axis=0)
    below = np.flatnonzero(profile < 0.5 * level)
    if below.size == 0 or below[0] == 0:
        return radius
    k = int(below[0])
    a, b = float(profile[k - 1]), float(profile[k])
    t = (a - 0.5 * level) / (a - b) if a != b else 0.0
    return float(radii[k - 1] + t * (radii[k] - radii[k - 1]))


def _robust_circle(
    x: NDArray[np.float64], y: NDArray[np.float64]
) -> tuple[float, float, float] | None:
    """Circle (cx, cy, r) through points (px), outliers trimmed; None unless most fit it.

    An algebraic least-squares fit, refitted twice to the points within
    :data:`_CIRCLE_TOLERANCE` px (or twice their median residual) of the last circle; the
    circle is returned when :data:`_CIRCLE_SHARE` of all points lie within the tolerance.
    """
    if x.size < 20:
        return None
    keep = np.ones(x.size, dtype=bool)
    cx = cy = radius = 0.0
    for _ in range(3):
        design = np.c_[2.0 * x[keep], 2.0 * y[keep], np.ones(int(keep.sum()))]
        sol, *_ = np.linalg.lstsq(design, x[keep] ** 2 + y[keep] ** 2, rcond=None)
        cx, cy = float(sol[0]), float(sol[1])
        radius = math.sqrt(max(float(sol[2]) + cx * cx + cy * cy, 0.0))
        resid = np.abs(np.hypot(x - cx, y - cy) - radius)
        keep = resid <= max(_CIRCLE_TOLERANCE, 2.0 * float(np.median(resid[keep])))
        if keep.sum() < 20:
            return None
    if float(np.mean(resid <= _CIRCLE_TOLERANCE)) < _CIRCLE_SHARE:
        return None
    return cx, cy, radius


def overlay_bands(image: NDArray[Any]) -> tuple[int, int]:
    """Rows a burned-in status bar hides at the top and at the bottom of an image.

    As :func:`hidden_rows` judges them from the image alone: no hair's exit can be
    judged there (the rows of a bar's labels, and rows an overlay covers edge to edge).

    Parameters
    ----------
    image : (M, N) or (M, N, C) ndarray
        Pixels, any integer dtype or float (see :func:`to_float_channels`).

    Returns
    -------
    top, bottom : int
        Hidden rows at the top and at the bottom (0 when there is no bar).
    """
    channels = to_float_channels(image)
    bars = status_bars(channels)
    return hidden_rows(overlay_mask(channels, bars), bar_rows(bars, channels.shape[0]))


def hidden_rows(mask: NDArray[np.bool_], bars: tuple[int, int] = (0, 0)) -> tuple[int, int]:
    """Rows hidden from the top and bottom: covered edge to edge, or spanned by a bar.

    A status bar's labels hide the skin under them, so its rows are hidden although
    skin shows between and beside its labels: which of its hairs leave the skin under a
    label cannot be told, and a follicle there is seen at one visit and not at another.

    Parameters
    ----------
    mask : (M, N) ndarray of bool
        Overlay mask (:func:`overlay_mask`, with anything else that images no skin).
    bars : (int, int), px
        Rows spanned by status bars from the top and the bottom edge (:func:`bar_rows`).

    Returns
    -------
    top, bottom : int
        Hidden rows counted from the top edge and from the bottom edge (all `M` and 0
        when every row is covered).
    """
    whole: NDArray[np.bool_] = np.asarray(mask.all(axis=1))
    m = len(whole)
    top = m if whole.all() else int(np.argmin(whole))
    bottom = 0 if top == m else int(np.argmin(whole[::-1]))
    if top == m:
        return top, bottom
    top = min(m, max(top, int(bars[0])))
    bottom = min(m - top, max(bottom, int(bars[1])))
    return top, bottom


def _grey(channels: F32) -> F32:
    """Luma of RGB pixels in [0, 1] (the single channel itself for greyscale)."""
    if channels.shape[2] == 3:
        return np.asarray(cv2.cvtColor(channels, cv2.COLOR_RGB2GRAY), np.float32)
    return np.ascontiguousarray(channels[:, :, 0])


def _edge_rows(grey: F32) -> NDArray[np.bool_]:
    """Whether each row-to-row step is a sharp edge across a third of the width or more."""
    return np.asarray((np.abs(np.diff(grey, axis=0)) > _EDGE_STEP).mean(axis=1) >= 0.33)


def _flat_boxes(channels: F32, lo: int, hi: int) -> list[tuple[int, int, int, int]]:
    """Boxes (x, y, w, h; image rows) of flat patches of area ≥ 150 px and width ≥ 12 px.

    Flat: the 7×7 variance of the luma is below JPEG noise. Only rows ``lo:hi`` are
    searched (3 rows more on each side feed the 7×7 window, as in the whole image); a
    patch reaching the slab's inner edge may run on beyond it and is left out unless the
    slab reaches the image's edge there.
    """
    m = channels.shape[0]
    top, bottom = max(0, lo - 3), min(m, hi + 3)
    grey = _grey(channels[top:bottom])
    mean = cv2.blur(grey, (7, 7))
    var = cv2.sqrBoxFilter(grey, -1, (7, 7)) - mean * mean
    flat = (var[lo - top : hi - top] < (0.6 / 255.0) ** 2).astype(np.uint8)
    if not flat.any():
        return []
    count, _, stats, _ = cv2.connectedComponentsWithStats(flat, connectivity=8)
    out = []
    for label in range(1, count):
        x, y, w, h, area = (int(v) for v in stats[label])
        cut = (y == 0 and lo > 0) or (y + h == hi - lo and hi < m)
        if area >= 150 and w >= 12 and not cut:
            out.append((x, y + lo, w, h))
    return out


def skin_background(
    channels: F32,
    *,
    size_px: float,
    hair_px: float,
    dark: bool = True,
    exclude: NDArray[np.bool_] | None = None,
) -> F32:
    """Estimate the bare-skin intensity per channel with a large robust filter.

    The image is reduced so that the widest shaft is ~3 px, a small grey closing removes
    dark shafts (opening for bright ones), a median of `size_px` removes the rest, and the
    result is smoothed and brought back to full size. Pixels under a burned-in overlay
    (`exclude`) are not skin: on the reduced copy they are filled in from the skin around
    them first (a bright status bar left in raised the estimate beside it, and the skin
    along its edge read as a dark shaft).

    Parameters
    ----------
    channels : (M, N, C) ndarray of float32
        Pixels in [0, 1].
    size_px : float, px
        Size of the median filter at full resolution.
    hair_px : float, px
        Widest shaft diameter at full resolution.
    dark : bool
        True to remove dark shafts before the median, False for bright ones.
    exclude : (M, N) ndarray of bool, optional
        Pixels that are not skin (device overlays).

    Returns
    -------
    (M, N, C) ndarray of float32
        Background intensity, at least the sensor floor.
    """
    m, n, c = channels.shape
    factor = max(1.0, hair_px / 3.0)
    sm = max(2, round(m / factor))
    sn = max(2, round(n / factor))
    small = cv2.resize(channels, (sn, sm), interpolation=cv2.INTER_AREA)
    if small.ndim == 2:
        small = small[:, :, None]
    ksize = int(size_px / factor) | 1
    ksize = max(3, min(ksize, (min(sm, sn) - 1) | 1 if min(sm, sn) > 3 else 3))
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (5, 5))
    hole = None
    if exclude is not None and exclude.any():
        # any reduced pixel touched by the overlay; left as it is when the overlay is
        # nearly everything (nothing to fill it from)
        cover = cv2.resize(exclude.astype(np.float32), (sn, sm), interpolation=cv2.INTER_AREA)
        hole = (cover > 0).astype(np.uint8)
        if hole.mean() > _MAX_FILL:
            hole = None
    meds = []
    for ch in range(c):
        plane = np.ascontiguousarray(small[:, :, ch])
        if hole is not None:
            as8 = np.clip(plane * 255.0 + 0.5, 0, 255).astype(np.uint8)
            filled = cv2.inpaint(as8, hole, 3, cv2.INPAINT_TELEA)
            plane = np.where(hole > 0, filled.astype(np.float32) / 255.0, plane)
        if not dark:
            # bare skin for a light shaft has no dark shaft in it either: left in, dark
            # shafts pull the median down and the skin beside them reads as bright
            plane = cv2.morphologyEx(plane, cv2.MORPH_CLOSE, kernel)
        op = cv2.MORPH_CLOSE if dark else cv2.MORPH_OPEN
        plane = cv2.morphologyEx(plane, op, kernel)
        as8 = np.clip(plane * 255.0 + 0.5, 0, 255).astype(np.uint8)
        med = cv2.medianBlur(as8, ksize).astype(np.float32) / 255.0
        meds.append(cv2.GaussianBlur(med, (0, 0), ksize / 4.0))
    # all channels brought back to full size in one pass (channels interpolate apart)
    out = np.asarray(
        cv2.resize(cv2.merge(meds), (n, m), interpolation=cv2.INTER_LINEAR), np.float32
    ).reshape(m, n, c)
    np.maximum(out, _MIN_LEVEL * 4, out=out)
    return out


def absorptance(
    channels: F32, background: F32, *, dark: bool = True, blue_out: F32 | None = None
) -> F32:
    """Return the combined absorptance of hair over skin, ``1 - I / I_skin``, one channel.

    Absorptance is bounded in [0, 1] and, for a faint shaft, equals its optical density;
    unlike the density it does not amplify sensor noise inside an opaque shaft, so crests
    stay single.

    Parameters
    ----------
    channels : (M, N, C) ndarray of float32
        Pixels in [0, 1].
    background : (M, N, C) ndarray of float32
        Bare-skin estimate from :func:`skin_background`.
    dark : bool
        True for shafts darker than skin, False for brighter shafts (``I / I_skin - 1``,
        clipped to [0, 1], averaged over the channels).
    blue_out : (M, N) ndarray of float32, optional
        With `dark` and three channels, filled with the blue shift ``a_red - a_blue``
        (unclipped absorptances; left as given otherwise): positive where something dark
        lies under the skin. Pigment seen through the epidermis and dermis looks
        blue-grey (Tyndall scattering returns blue light before the pigment can absorb
        it), so the shaft's path inside the skin, beyond its exit, absorbs more red than
        blue; a shadow cast on the surface absorbs all channels alike.

    Returns
    -------
    (M, N) ndarray of float32, in [0, 1]
        Smallest per-channel absorptance, the part common to all channels: broadband
        absorbers (melanin) keep most of theirs, narrow-band ink (red circles, blue text)
        and the blue Tyndall shadow of the shaft under the skin drop out. For bright
        shafts (`dark` False), the mean per-channel brightening.
    """
    # per channel, in place on one plane at a time: a 12-Mpx RGB image stays within budget
    out: F32 | None = None
    for ch in range(channels.shape[2]):
        a = channels[:, :, ch] / background[:, :, ch]
        if dark:
            np.subtract(1.0, a, out=a)
        else:
            a -= 1.0
        if blue_out is not None and dark and channels.shape[2] >= 3:
            # the blue shift a_red - a_blue, from the unclipped absorptances
            if ch == 0:
                blue_out[...] = a
            elif ch == 2:
                np.subtract(blue_out, a, out=blue_out)
        np.clip(a, 0.0, 1.0, out=a)
        if dark:
            out = a if out is None else np.minimum(out, a, out=out)
        else:
            out = a if out is None else np.add(out, a, out=out)
    assert out is not None
    if not dark:
        # a white shaft brightens most the channels the skin absorbs most (blue on
        # fair skin), so the smallest-channel rule would lose it: average instead, and
        # let the caller reject coloured (ink) traces by their own colour
        out *= np.float32(1.0 / channels.shape[2])
    return out.astype(np.float32, copy=False)


#: Rows per block of :func:`neutral_contrast` (bounds its temporaries on large images).
_BLOCK_ROWS = 256


def log_chroma(colour: NDArray[np.floating]) -> NDArray[np.floating]:
    """Chromaticity of colours in log space: ``ln c - mean over channels of ln c``.

    Zero for a neutral (grey, white, black) colour whatever its brightness; its length is
    how coloured the colour is (about 0.2 for pink skin, 0.05-0.08 for pale yellowish
    skin).

    Parameters
    ----------
    colour : (..., C) ndarray
        Linear intensities per channel, in (0, 1].

    Returns
    -------
    (..., C) ndarray
        Log chromaticity, same shape.
    """
    log = np.log(np.maximum(colour, _MIN_LEVEL))
    return log - log.mean(axis=-1, keepdims=True)


def neutral_contrast(
    channels: F32,
    background: F32,
    *,
    min_skin_chroma: float,
    max_chroma_share: float,
    min_darkening: float,
) -> F32:
    """Contrast of a colourless shaft over coloured skin: how far a pixel turns neutral.

    An unpigmented (grey) shaft scatters all wavelengths alike; over pink or tanned skin
    it can be darker than the skin in red and *brighter* in blue, so the smallest
    per-channel absorptance (:func:`absorptance`) misses it. Its own colour is neutral
    where the skin's is not: the pixel's log chromaticity moves from the skin's towards
    zero. The contrast is the length of that move along the skin's chromaticity (log
    units, like an optical density; at most the skin's own chromaticity, reached where
    a neutral shaft covers the pixel). It is kept only where the pixel's own
    chromaticity is at most `max_chroma_share` of the skin's (ink and the blue shadow of
    a shaft under the skin are coloured themselves) and the skin's is at least
    `min_skin_chroma` (over near-neutral skin a grey shaft differs in brightness only),
    and where the pixel is darker than the skin by at least `min_darkening` in some
    channel but not in all: a grey shaft's neutral reflectance lies between the skin's
    channels, darker where the skin reflects most (red on pink skin) and as bright or
    brighter where it reflects least. A white scale flake or bubble is brighter in every
    channel; a pixel darker in every channel (a pigmented shaft, or its blurred edge
    blending a blue-black shaft into yellowish skin, which can look neutral) is the
    smallest-channel absorptance's to see.

    Parameters
    ----------
    channels : (M, N, C) ndarray of float32
        Pixels in [0, 1].
    background : (M, N, C) ndarray of float32
        Bare-skin estimate from :func:`skin_background`.
    min_skin_chroma : float, log units
        Least skin chromaticity at which the contrast is measured.
    max_chroma_share : float
        Largest own chromaticity of a shaft pixel, as a share of the skin's.
    min_darkening : float
        Least absorptance ``1 - I / I_skin`` of a shaft pixel in its most absorbing
        channel, and more than it absorbs in its least absorbing one.

    Returns
    -------
    (M, N) ndarray of float32, >= 0
        Neutral contrast (zeros for fewer than 3 channels).
    """
    m, n, c = channels.shape
    out = np.zeros((m, n), dtype=np.float32)
    if c < 3:
        return out
    for lo in range(0, m, _BLOCK_ROWS):
        hi = min(m, lo + _BLOCK_ROWS)
        # per channel plane: log skin, log ratio to skin (float32 throughout)
        bare = [np.maximum(background[lo:hi, :, k], _MIN_LEVEL) for k in range(c)]
        log_skin = [cv2.log(b) for b in bare]
        ratio = [np.maximum(channels[lo:hi, :, k], _MIN_LEVEL) / b for k, b in enumerate(bare)]
        log_ratio = [cv2.log(r) for r in ratio]
        skin_mean = sum(log_skin) / c
        ratio_mean = sum(log_ratio) / c
        skin = [ls - skin_mean for ls in log_skin]
        # the pixel's own chromaticity is the skin's plus that of its ratio to the skin
        own = [sk + lr - ratio_mean for sk, lr in zip(skin, log_ratio, strict=True)]
        norm = np.sqrt(sum(sk * sk for sk in skin))
        toward = -sum(sk * (lr - ratio_mean) for sk, lr in zip(skin, log_ratio, strict=True))
        toward /= np.maximum(norm, 1e-6)
        keep = np.sqrt(sum(o * o for o in own)) <= max_chroma_share * norm
        keep &= norm >= min_skin_chroma
        # darker than the skin in some channel but not in all (see above)
        lightest = np.maximum.reduce(ratio)
        darkest = np.minimum.reduce(ratio)
        keep &= (1.0 - darkest >= min_darkening) & (1.0 - lightest < min_darkening)
        out[lo:hi] = np.where(keep, np.maximum(toward, 0.0), 0.0)
    return out
