"""Overlays a person can check: every hair drawn and coloured by class, over the image.

Each counted hair is drawn along its centreline in its class colour, its exit marked with a
ring and its id written beside the exit; hairs entering from outside the field (not
counted) are drawn thin and grey. A scale bar of a round length in µm and a legend with the
class counts sit in the bottom-left corner. Colours are from the Okabe–Ito palette, which
stays distinguishable with the common colour-vision deficiencies.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hairtrial._validate import check_image, check_um_per_px
from hairtrial.records import DEFAULT_CLASSES, HairClasses, HairRecord

#: Class colours (RGB): vellus sky blue, intermediate orange, terminal bluish green.
CLASS_COLOURS: dict[str, tuple[int, int, int]] = {
    "vellus": (86, 180, 233),
    "intermediate": (230, 159, 0),
    "terminal": (0, 158, 115),
}
_NOT_COUNTED = (170, 170, 170)
_NICE_LENGTHS_UM = (50, 100, 200, 250, 500, 1000, 2000, 5000, 10000)


def _as_rgb8(image: NDArray[Any]) -> NDArray[np.uint8]:
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        top = float(np.iinfo(arr.dtype).max) if arr.dtype.kind in "ui" else 1.0
        arr = np.clip(np.asarray(arr, dtype=np.float64) / top * 255.0 + 0.5, 0, 255)
        arr = arr.astype(np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    return np.ascontiguousarray(arr).copy()


def scale_bar_um(width_px: int, um_per_px: float) -> float:
    """Pick a round scale-bar length (µm) close to 15 % of the image width.

    Parameters
    ----------
    width_px : int
        Image width in pixels.
    um_per_px : float, µm/px
        Calibration.

    Returns
    -------
    float, µm
    """
    target = 0.15 * width_px * um_per_px
    return float(min(_NICE_LENGTHS_UM, key=lambda v: abs(math.log(v / target))))


def draw_overlay(
    image: NDArray[Any],
    hairs: Sequence[HairRecord],
    *,
    um_per_px: float,
    classes: HairClasses = DEFAULT_CLASSES,
    show_ids: bool = True,
    legend_below: bool = False,
) -> NDArray[np.uint8]:
    """Draw hairs over a copy of `image`.

    Parameters
    ----------
    image : (M, N) or (M, N, 3) ndarray
        The measured image; not modified.
    hairs : sequence of HairRecord
        Hairs to draw (measured or truth), pixel coordinates with the origin at the top-left
        pixel's corner.
    um_per_px : float, µm/px
        Calibration, for the scale bar.
    classes : HairClasses
        Class limits, shown in the legend.
    show_ids : bool
        Write each counted hair's id beside its exit.
    legend_below : bool
        Put the legend and scale bar in a dark strip under the image instead of over its
        bottom-left corner: on a small image (a report tile) the box hid a third of it.

    Returns
    -------
    (M, N, 3) or (M + strip, N, 3) ndarray of uint8
        The overlay (taller by the legend strip with `legend_below`).
    """
    import cv2

    out = _as_rgb8(check_image(image))
    um = check_um_per_px(um_per_px)
    m, n = out.shape[:2]
    scale = max(1.0, min(m, n) / 700.0)  # line widths and text grow with the image
    thick = max(1, round(scale))
    shift = 4  # sub-pixel drawing: coordinates in 1/16 px
    counts = {"vellus": 0, "intermediate": 0, "terminal": 0}

    def fixed(points: NDArray[np.float64]) -> NDArray[np.int32]:
        # Pixel centres sit at +0.5 in our convention; OpenCV draws at integer centres.
        return np.round((points - 0.5) * (1 << shift)).astype(np.int32)

    for hair in hairs:
        line = np.asarray(hair.centerline_px, dtype=np.float64).reshape(-1, 2)
        if len(line) == 0:
            continue
        if hair.exit_px is None:  # entering from outside the field: not counted
            cv2.polylines(out, [fixed(line)], False, _NOT_COUNTED, max(1, thick // 2),
                          cv2.LINE_AA, shift)  # fmt: skip
            continue
        colour = CLASS_COLOURS.get(hair.hair_class, _NOT_COUNTED)
        cv2.polylines(out, [fixed(line)], False, colour, thick, cv2.LINE_AA, shift)
        counts[hair.hair_class] = counts.get(hair.hair_class, 0) + 1
        ex = fixed(np.asarray([hair.exit_px], dtype=np.float64))[0]
        cv2.circle(out, (int(ex[0]), int(ex[1])), int(4 * scale) << shift, (255, 255, 255),
                   max(1, thick // 2), cv2.LINE_AA, shift)  # fmt: skip
        if show_ids:
            x, y = hair.exit_px
            org = (int(x + 5 * scale), int(y - 5 * scale))
            _text(out, str(hair.id), org, 0.4 * scale, colour)
    if legend_below:
        _, pad = _legend_spacing(scale)
        strip = np.zeros((_legend_height(scale) + 2 * pad, n, 3), dtype=np.uint8)
        _legend(strip, counts, classes=classes, um_per_px=um, scale=scale)
        return np.concatenate([out, strip], axis=0)
    _legend(out, counts, classes=classes, um_per_px=um, scale=scale)
    return out


def _legend_spacing(scale: float) -> tuple[int, int]:
    """Row height and margin (px) of the legend at `scale`."""
    return int(20 * scale), int(8 * scale)


def _legend_height(scale: float) -> int:
    """Height (px) of the legend box at `scale`: three class rows, the bar, margins."""
    row, pad = _legend_spacing(scale)
    return row * 5 + pad


def _text(
    out: NDArray[np.uint8],
    text: str,
    org: tuple[int, int],
    size: float,
    colour: tuple[int, int, int],
) -> None:
    """Write `text` in `colour` with a black outline, so that it reads on any skin.

    The outline is the same text drawn at the same stroke weight, moved a pixel in each
    of eight directions: a heavier stroke would not do, since OpenCV advances each glyph
    by its stroke weight and a bolder copy drifts off the text along the line.
    """
    import cv2

    weight = max(1, round(size * 2))
    x, y = org
    for dx, dy in itertools.product((-1, 0, 1), repeat=2):
        if dx or dy:
            cv2.putText(out, text, (x + dx, y + dy), cv2.FONT_HERSHEY_SIMPLEX, size, (0, 0, 0),
                        weight, cv2.LINE_AA)  # fmt: skip
    cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, size, colour, weight, cv2.LINE_AA)


def _legend(
    out: NDArray[np.uint8],
    counts: dict[str, int],
    *,
    classes: HairClasses,
    um_per_px: float,
    scale: float,
) -> None:
    """Scale bar and class legend in a dark box at the bottom-left corner."""
    import cv2

    m, n = out.shape[:2]
    bar_um = scale_bar_um(n, um_per_px)
    bar_px = bar_um / um_per_px
    labels = [
        ("vellus", f"vellus <= {classes.vellus_max_um:g} um: {counts['vellus']}"),
        ("intermediate", f"intermediate: {counts['intermediate']}"),
        ("terminal", f"terminal >= {classes.terminal_min_um:g} um: {counts['terminal']}"),
    ]
    size = 0.45 * scale
    row, pad = _legend_spacing(scale)
    box_w = int(max(bar_px, 230 * scale)) + 2 * pad
    box_h = _legend_height(scale)
    x0, y0 = pad, m - pad - box_h
    if x0 + box_w > n or y0 < 0:
        return  # image too small for a legend; the hairs are still drawn
    region = out[y0 : y0 + box_h, x0 : x0 + box_w]
    region[:] = (region.astype(np.float32) * 0.35).astype(np.uint8)
    for i, (name, label) in enumerate(labels):
        y = y0 + pad + row * (i + 1)
        cv2.line(out, (x0 + pad, y - row // 3), (x0 + pad + int(18 * scale), y - row // 3),
                 CLASS_COLOURS[name], max(2, int(3 * scale)), cv2.LINE_AA)  # fmt: skip
        _text(out, label, (x0 + pad + int(26 * scale), y), size, (255, 255, 255))
    y = y0 + pad + row * (len(labels) + 1)
    cv2.line(out, (x0 + pad, y), (x0 + pad + round(bar_px), y), (255, 255, 255),
             max(2, int(3 * scale)))  # fmt: skip
    label = f"{bar_um / 1000:g} mm" if bar_um >= 1000 else f"{bar_um:g} um"
    _text(out, label, (x0 + pad, y - int(6 * scale)), size, (255, 255, 255))


def save_overlay(
    path: str | Path,
    image: NDArray[Any],
    hairs: Sequence[HairRecord],
    *,
    um_per_px: float,
    classes: HairClasses = DEFAULT_CLASSES,
) -> Path:
    """Draw an overlay and write it as PNG.

    Parameters
    ----------
    path : str or Path
        Destination (``.png``).
    image : (M, N) or (M, N, 3) ndarray
        The measured image.
    hairs : sequence of HairRecord
        Hairs to draw.
    um_per_px : float, µm/px
        Calibration.
    classes : HairClasses
        Class limits.

    Returns
    -------
    Path
        The file written.
    """
    from hairtrial.io.image import write_image

    overlay = draw_overlay(image, hairs, um_per_px=um_per_px, classes=classes)
    return write_image(Path(path), overlay)
