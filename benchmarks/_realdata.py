"""Loaders for the annotated real image sets in ``../shared/realdata`` (never copied here).

- Huashan 70x trichoscopy: Pascal VOC XML with ``<class>`` tags and boxes around each hair
  near its exit; some boxes have swapped corners (fixed here).
- Skin-microscope hair widths: JSON polylines (``joints``, x = column) with a shaft
  ``width`` in pixels per hair.

The root is ``$HAIRTRIAL_REALDATA`` or ``<repo>/../shared/realdata``. Both loaders return
empty lists when the data are absent, so nothing here fails on a machine without them.
"""

from __future__ import annotations

import hashlib
import json
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray


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
    """A widths-set image and its annotated hairs: polylines (x, y) px and widths px."""

    name: str
    path: Path
    lines: tuple[NDArray[np.float64], ...]
    widths_px: NDArray[np.float64]


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
        tree = ET.parse(xml_path)
        boxes = []
        classes = []
        for obj in tree.getroot().iter("object"):
            bb = obj.find("bndbox")
            if bb is None:
                continue
            vals = [float(bb.findtext(k, "nan")) for k in ("xmin", "ymin", "xmax", "ymax")]
            x0, x1 = sorted((vals[0], vals[2]))
            y0, y1 = sorted((vals[1], vals[3]))
            boxes.append((x0, y0, x1, y1))
            classes.append((obj.findtext("class") or obj.findtext("name") or "").strip())
        out.append(
            BoxedImage(
                name=xml_path.stem,
                path=image,
                boxes=np.array(boxes, dtype=float).reshape(-1, 4),
                classes=tuple(classes),
            )
        )
    return out


def load_widths(root: Path | None = None) -> list[PolylineImage]:
    """All widths-set images with their polylines and widths (empty when absent)."""
    base = (root or realdata_root()) / "skin-microscope-hair-widths"
    out: list[PolylineImage] = []
    if not base.is_dir():
        return out
    for ann in sorted((base / "annotations").glob("*.json")):
        image = base / "images" / ann.name.removesuffix(".json")
        if not image.exists():
            continue
        hairs = json.loads(ann.read_text(encoding="utf-8"))
        lines = tuple(np.asarray(h["joints"], dtype=float).reshape(-1, 2) for h in hairs)
        widths = np.array([float(h["width"]) for h in hairs])
        out.append(PolylineImage(name=image.stem, path=image, lines=lines, widths_px=widths))
    return out
