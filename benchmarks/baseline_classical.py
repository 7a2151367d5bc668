"""The classical open-source hair counter, as the peer baseline.

Black-hat (morphological closing minus image) on the grey image with a disk a little wider
than the widest shaft, Otsu threshold, a small opening, connected components with an area
floor, and per component the skeleton length (length) and area / length (mean width). This
is the recipe of the usual open-source hair counters and of the "top-hat + threshold"
method that published comparisons report at ~45 % count error on clipped 70x scalp images.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray
from skimage.morphology import skeletonize


@dataclass(frozen=True)
class BaselineHair:
    """One component: centroid and an end point (x, y, px), length and width (px)."""

    centroid_px: tuple[float, float]
    end_px: tuple[float, float]
    length_px: float
    width_px: float
    skeleton_px: NDArray[np.float64]


def classical_count(
    image: NDArray[np.generic],
    *,
    um_per_px: float,
    max_diameter_um: float = 150.0,
    min_length_um: float = 150.0,
) -> list[BaselineHair]:
    """Count hairs the classical way.

    Parameters
    ----------
    image : (M, N[, 3]) ndarray
        Greyscale or RGB image (uint8 or uint16).
    um_per_px : float, µm/px
        Calibration (sets the structuring element and the size floor).
    max_diameter_um : float, µm
        Widest shaft; the black-hat disk is 1.5 times wider.
    min_length_um : float, µm
        Components shorter than this (skeleton length) are dropped.

    Returns
    -------
    list of BaselineHair
    """
    grey = (
        image if image.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    )
    if grey.dtype != np.uint8:
        grey = (grey.astype(np.float64) / np.iinfo(grey.dtype).max * 255).astype(np.uint8)
    size = round(1.5 * max_diameter_um / um_per_px) | 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    blackhat = cv2.morphologyEx(grey, cv2.MORPH_BLACKHAT, kernel)
    _, mask = cv2.threshold(blackhat, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    count, labels, stats, centroids = cv2.connectedComponentsWithStats(mask, connectivity=8)
    skel = skeletonize(mask > 0)
    out = []
    min_len = min_length_um / um_per_px
    for k in range(1, count):
        x, y, w, h, area = (int(v) for v in stats[k])
        sub = skel[y : y + h, x : x + w] & (labels[y : y + h, x : x + w] == k)
        rr, cc = np.nonzero(sub)
        length = float(len(rr))
        if length < min_len:
            continue
        pts = np.column_stack([cc + x + 0.5, rr + y + 0.5]).astype(float)
        # an end: the skeleton point furthest from the centroid
        cxy = centroids[k]
        far = int(np.argmax(np.hypot(pts[:, 0] - cxy[0], pts[:, 1] - cxy[1])))
        out.append(
            BaselineHair(
                centroid_px=(float(cxy[0]), float(cxy[1])),
                end_px=(float(pts[far, 0]), float(pts[far, 1])),
                length_px=length,
                width_px=float(area) / max(length, 1.0),
                skeleton_px=pts,
            )
        )
    return out
