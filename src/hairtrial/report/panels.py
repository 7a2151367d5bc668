"""Before/after trichoscopy panels: a site's images side by side with hair overlays.

Each image is scaled to its share of a fixed panel width, the stored hairs are scaled with
it and drawn by :func:`hairtrial.measure.overlay.draw_overlay` at that resolution (so lines
and legend stay legible; the legend goes in a strip under each image, where it hides no
hair), and the row of images is encoded as JPEG, so a report with a few panels stays a few
MB.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from hairtrial.records import HairRecord
from hairtrial.report.model import iter_rows

#: Width of a panel in pixels, and the gap between its images.
PANEL_WIDTH_PX = 800
_GAP_PX = 8
_JPEG_QUALITY = 85


def hair_records(hairs: pd.DataFrame) -> list[HairRecord]:
    """Turn rows of the ``hairs`` table (one image) into hair records.

    Parameters
    ----------
    hairs : DataFrame
        Rows of :func:`hairtrial.store.tables.read_tables`' ``hairs`` table.

    Returns
    -------
    list of HairRecord
        In ``hair_id`` order; ``exit_px`` is ``None`` for hairs not counted.
    """
    records = []
    for row in iter_rows(hairs.sort_values("hair_id")):
        exit_px = None if pd.isna(row.exit_x_px) else (float(row.exit_x_px), float(row.exit_y_px))
        line = json.loads(row.centerline_px) if isinstance(row.centerline_px, str) else []
        records.append(
            HairRecord(
                id=int(row.hair_id),
                exit_px=exit_px,
                tip_px=(float(row.tip_x_px), float(row.tip_y_px)),
                centerline_px=tuple((float(x), float(y)) for x, y in line),
                diameter_um=float(row.diameter_um),
                length_um=float(row.length_um),
                hair_class=row.hair_class,
                confidence=float(row.confidence),
            )
        )
    return records


def overlay_panel(
    views: Sequence[tuple[NDArray[Any], Sequence[HairRecord], float]],
    *,
    width_px: int = PANEL_WIDTH_PX,
) -> bytes:
    """Draw each image with its hairs, side by side, scaled to `width_px`; JPEG bytes.

    Parameters
    ----------
    views : sequence of (image, hairs, um_per_px)
        Images (``(M, N[, 3])`` arrays, not modified), their hairs (pixel coordinates of
        that image) and calibration (µm/px, for the scale bar).
    width_px : int, px
        Width of the panel.

    Returns
    -------
    bytes
        JPEG image.
    """
    import cv2
    from PIL import Image

    from hairtrial.measure.overlay import draw_overlay

    if not views:
        raise ValueError("overlay_panel: no images given")
    each = (width_px - _GAP_PX * (len(views) - 1)) // len(views)
    tiles = []
    for image, hairs, um_per_px in views:
        # Scale the image first and the hairs with it, so the overlay's lines and text are
        # drawn at the panel's resolution (crisp) rather than shrunk with the image.
        pixels = np.asarray(image)
        h, w = pixels.shape[:2]
        factor = each / w
        height = max(1, round(h * factor))
        interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
        small = cv2.resize(pixels, (each, height), interpolation=interpolation)
        scaled = [_scaled(hair, factor) for hair in hairs]
        tiles.append(
            draw_overlay(
                small, scaled, um_per_px=um_per_px / factor, show_ids=False, legend_below=True
            )
        )
    height = max(t.shape[0] for t in tiles)
    canvas = np.full((height, width_px, 3), 255, dtype=np.uint8)
    x = 0
    for tile in tiles:
        canvas[: tile.shape[0], x : x + tile.shape[1]] = tile
        x += tile.shape[1] + _GAP_PX
    buf = io.BytesIO()
    Image.fromarray(canvas).save(buf, format="JPEG", quality=_JPEG_QUALITY, optimize=False)
    return buf.getvalue()


def _scaled(hair: HairRecord, factor: float) -> HairRecord:
    """`hair` in the pixel coordinates of its image scaled by `factor` (corner origin)."""

    def pt(p: tuple[float, float]) -> tuple[float, float]:
        return (p[0] * factor, p[1] * factor)

    return replace(
        hair,
        exit_px=None if hair.exit_px is None else pt(hair.exit_px),
        tip_px=pt(hair.tip_px),
        centerline_px=tuple(pt(p) for p in hair.centerline_px),
    )
