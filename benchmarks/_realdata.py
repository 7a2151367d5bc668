"""Loaders for the annotated real image sets in ``../shared/realdata`` (never copied here).

- Huashan 70x trichoscopy: Pascal VOC XML with ``<class>`` tags and boxes around each hair
  near its exit; some boxes have swapped corners (fixed here).
- Skin-microscope hair widths: JSON polylines (``joints``, x = column, pixel indices) with
  a shaft ``width`` in pixels per hair; read with their points at the pixel centres.

Both are read by :func:`hairtrial.measure.annotations.read_annotations`, as
``hairtrial validate`` reads them.

The root is ``$HAIRTRIAL_REALDATA`` or ``<repo>/../shared/realdata``. Both loaders return
empty lists when the data are absent, so nothing here fails on a machine without them.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from hairtrial.measure.annotations import read_annotations
from hairtrial.records import HairRecord


def realdata_root() -> Path:
    """Folder holding the real sets."""
    env = os.environ.get("HAIRTRIAL_REALDATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "realdata"


@dataclass(frozen=True)
class BoxedImage:
    """A Huashan image and its hair boxes (x0, y0, x1, y1 with x0 <= x1, y0 <= y1), px."""

    name: str
    path: Path
    boxes: NDArray[np.float64]
    classes: tuple[str, ...]


@dataclass(frozen=True)
class PolylineImage:
    """A widths-set image and its annotated hairs: polylines (x, y) px and widths px.

    Polyline points are at pixel centres (the annotation's pixel indices + 0.5). ``hairs``
    are the same hairs as ``hairtrial validate`` reads them (a width in px read as a
    diameter at 1 µm/px), for the counted-only scoring and its errors by reason.
    """

    name: str
    path: Path
    lines: tuple[NDArray[np.float64], ...]
    widths_px: NDArray[np.float64]
    hairs: tuple[HairRecord, ...] = ()


def is_tuning_half(name: str) -> bool:
    """Deterministic half split by name (sha1 parity): True for the tuning half."""
    return hashlib.sha1(name.encode("utf-8")).digest()[0] % 2 == 0


def load_huashan(root: Path | None = None) -> list[BoxedImage]:
    """All Huashan images with their boxes, sorted by name (empty when absent)."""
    base = (root or realdata_root()) / "huashan-trichoscopy-70x"
    out: list[BoxedImage] = []
    if not base.is_dir():
        return out
    for xml_path in sorted((base / "annotations").glob("*.xml")):
        image = base / "images" / (xml_path.stem + ".jpg")
        if not image.exists():
            continue
        ann = read_annotations(xml_path)
        out.append(BoxedImage(name=xml_path.stem, path=image, boxes=ann.boxes, classes=ann.labels))
    return out


def load_widths(root: Path | None = None) -> list[PolylineImage]:
    """All widths-set images with their polylines and widths (empty when absent)."""
    base = (root or realdata_root()) / "skin-microscope-hair-widths"
    out: list[PolylineImage] = []
    if not base.is_dir():
        return out
    for path in sorted((base / "annotations").glob("*.json")):
        image = base / "images" / path.name.removesuffix(".json")
        if not image.exists():
            continue
        # a width in px, read as a diameter at 1 µm/px
        hairs = read_annotations(path, um_per_px=1.0).hairs
        lines = tuple(np.asarray(h.centerline_px, dtype=float).reshape(-1, 2) for h in hairs)
        widths = np.array([h.diameter_um for h in hairs])
        out.append(
            PolylineImage(
                name=image.stem, path=image, lines=lines, widths_px=widths, hairs=tuple(hairs)
            )
        )
    return out
