"""Annotation files that ``hairtrial validate`` scores against, in the formats clinics have.

Three formats, told apart by their content:

* **hairtrial JSON** (``{"hairs": [...]}``): the simulator's truth, a measurement, or the
  simple hand format of :func:`hairtrial.measure.metrics.truth_from_json`.
* **Pascal VOC XML** (``<annotation>``, as LabelImg, CVAT and most detection datasets
  write it): one ``<object>`` per hair with a ``<bndbox>`` (``xmin, ymin, xmax, ymax``,
  px, as written) around the hair near its exit, its label in ``<name>`` (or
  ``<class>``). Boxes with swapped corners are put right. Boxes carry no diameter: they
  score detection and count (:func:`score_boxes`).
* **Polylines with a width** (a JSON list ``[{"joints": [[x, y], ...], "width": W}, ...]``,
  x = column, pixel indices; the format of a public hair-labelling tool): centrelines
  with a shaft width in pixels, the diameter being ``W × um_per_px``.

Coordinates follow DESIGN.md (origin at the top-left pixel's corner): polyline points
given as pixel indices are moved to the pixel centres (+0.5 px).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from hairtrial._validate import InputError
from hairtrial.measure.metrics import (
    DetectionScore,
    ErrorBreakdown,
    _resample,
    detection_score,
    match_boxes,
    truth_from_json,
)
from hairtrial.records import DEFAULT_CLASSES, HairClasses, HairRecord

Format = Literal["hairtrial", "voc", "polylines"]


@dataclass(frozen=True)
class Annotations:
    """The annotated hairs of one image.

    Attributes
    ----------
    path : Path
        File read.
    format : {'hairtrial', 'voc', 'polylines'}
        Format found.
    hairs : list of HairRecord
        Annotated hairs (empty for box annotations).
    boxes : (M, 4) ndarray, px
        Boxes ``(xmin, ymin, xmax, ymax)`` with ``xmin <= xmax``, ``ymin <= ymax``
        (no rows unless the format is ``'voc'``).
    labels : tuple of str
        Each box's label (``''`` where none is given); empty for the other formats.
    """

    path: Path
    format: Format
    hairs: list[HairRecord] = field(default_factory=list)
    boxes: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 4)))
    labels: tuple[str, ...] = ()

    @property
    def n_annotated(self) -> int:
        """Number of annotated hairs (boxes or hairs)."""
        return len(self.boxes) if self.format == "voc" else len(self.hairs)


@dataclass(frozen=True)
class BoxScore:
    """Detection scored against boxes.

    Attributes
    ----------
    detection : DetectionScore
        Counts, precision, recall, F1 and count error of counted hairs against boxes.
    matches : list of (int, int)
        ``(index among the counted detected hairs, box index)`` pairs.
    """

    detection: DetectionScore
    matches: list[tuple[int, int]]


def read_annotations(
    path: str | Path,
    *,
    um_per_px: float | None = None,
    classes: HairClasses = DEFAULT_CLASSES,
) -> Annotations:
    """Read an annotation file in any of the three formats (see the module docstring).

    Parameters
    ----------
    path : str or Path
        ``.xml`` (Pascal VOC) or ``.json`` (hairtrial JSON, or polylines with a width).
    um_per_px : float, optional, µm/px
        Calibration for widths given in pixels (a hairtrial JSON file may carry its own).
    classes : HairClasses
        Class limits for annotated hairs whose class is not given.

    Returns
    -------
    Annotations

    Raises
    ------
    InputError
        Unreadable file, malformed content or an unknown format, naming the file.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the annotation file ({exc})") from None
    stripped = text.lstrip()
    if stripped.startswith("<"):
        boxes, labels = _voc_boxes(path, text)
        return Annotations(path=path, format="voc", boxes=boxes, labels=labels)
    try:
        obj = json.loads(text)
    except ValueError as exc:
        raise InputError(f"{path}: neither Pascal VOC XML nor JSON ({exc})") from None
    if isinstance(obj, list):
        hand = {"hairs": [_polyline_hair(path, i, h) for i, h in enumerate(obj)]}
        fmt: Format = "polylines"
    elif isinstance(obj, dict):
        hand, fmt = obj, "hairtrial"
    else:
        raise InputError(f"{path}: expected a JSON object with a 'hairs' list, or a list")
    try:
        hairs = truth_from_json(hand, um_per_px=um_per_px, classes=classes)
    except (InputError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: {exc}") from None
    return Annotations(path=path, format=fmt, hairs=hairs)


def _voc_boxes(path: Path, text: str) -> tuple[NDArray[np.float64], tuple[str, ...]]:
    """Boxes and labels of a Pascal VOC annotation."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise InputError(f"{path}: not well-formed XML ({exc})") from None
    if root.tag != "annotation":
        raise InputError(f"{path}: not a Pascal VOC annotation (root element <{root.tag}>)")
    boxes: list[tuple[float, float, float, float]] = []
    labels: list[str] = []
    for i, obj in enumerate(root.iter("object")):
        bb = obj.find("bndbox")
        try:
            if bb is None:
                raise ValueError("no <bndbox>")
            x0, y0, x1, y1 = (
                float(bb.findtext(k) or "nan") for k in ("xmin", "ymin", "xmax", "ymax")
            )
        except ValueError as exc:
            raise InputError(f"{path}: object {i + 1}: {exc}") from None
        if not all(np.isfinite([x0, y0, x1, y1])):
            raise InputError(
                f"{path}: object {i + 1}: <bndbox> needs numeric xmin, ymin, xmax and ymax"
            )
        boxes.append((min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
        labels.append((obj.findtext("name") or obj.findtext("class") or "").strip())
    return np.array(boxes, dtype=np.float64).reshape(-1, 4), tuple(labels)


def _polyline_hair(path: Path, i: int, h: Any) -> dict[str, Any]:
    """One hair of the polyline format as a hand-format hair (pixel centres)."""
    joints = h.get("joints") if isinstance(h, dict) else None
    try:
        pts = np.asarray(joints, dtype=np.float64)
    except (TypeError, ValueError):
        pts = np.zeros((0,))
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) == 0 or not np.isfinite(pts).all():
        raise InputError(f"{path}: hair {i + 1}: expected 'joints' as a list of [x, y] points")
    hair: dict[str, Any] = {"centerline_px": (pts + 0.5).tolist()}
    if h.get("width") is not None:
        try:
            hair["width_px"] = float(h["width"])
        except (TypeError, ValueError):
            raise InputError(f"{path}: hair {i + 1}: 'width' is not a number") from None
    return hair


def score_boxes(
    detected: Sequence[HairRecord],
    boxes: NDArray[np.float64],
    *,
    max_distance_px: float,
    by: Literal["exit", "centreline"] = "centreline",
) -> BoxScore:
    """Score counted hairs against annotation boxes, one to one.

    A hair's point (the middle point of its centreline with ``by='centreline'``, its exit
    with ``by='exit'``) may match a box when it lies inside it or within
    `max_distance_px` of its centre (:func:`hairtrial.measure.metrics.match_boxes`). Only
    counted hairs (exit inside the image) take part, as in
    :func:`hairtrial.measure.metrics.score_hairs`.

    Parameters
    ----------
    detected : sequence of HairRecord
        Measured hairs.
    boxes : (M, 4) ndarray, px
        Annotation boxes.
    max_distance_px : float, px
        Distance to a box's centre that always allows a match.
    by : {'centreline', 'exit'}
        Which point of a hair is matched.

    Returns
    -------
    BoxScore
    """
    if by not in ("exit", "centreline"):
        raise InputError(f"by: {by!r} is not one of {{exit, centreline}}")
    counted = [h for h in detected if h.exit_px is not None]
    points: list[tuple[float, float]] = []
    for h in counted:
        line = h.centerline_px
        exit_px = h.exit_px if h.exit_px is not None else (float("nan"), float("nan"))
        points.append(exit_px if by == "exit" or not line else line[len(line) // 2])
    matches = (
        match_boxes(points, boxes, centre_tolerance=max_distance_px)
        if points and len(boxes)
        else []
    )
    return BoxScore(detection_score(len(counted), len(boxes), len(matches)), matches)


#: Why an annotation box was missed, in the order the reasons are tried
#: (:func:`explain_box_errors`).
BOX_MISSED_REASONS = ("beside_found_hair", "point_outside", "not_counted", "at_border",
                      "not_found")  # fmt: skip
#: Why a detection matched no box (:func:`explain_box_errors`).
BOX_FALSE_REASONS = ("on_missed_box", "on_found_box", "on_no_box")


def _points_in_boxes(line: NDArray[np.float64], boxes: NDArray[np.float64]) -> NDArray[np.intp]:
    """How many of `line`'s points lie in each box."""
    if not len(line) or not len(boxes):
        return np.zeros(len(boxes), dtype=np.intp)
    x, y = line[:, 0, None], line[:, 1, None]
    inside = (x >= boxes[:, 0]) & (x <= boxes[:, 2]) & (y >= boxes[:, 1]) & (y <= boxes[:, 3])
    return np.asarray(inside.sum(axis=0), dtype=np.intp)


def explain_box_errors(
    detected: Sequence[HairRecord],
    boxes: NDArray[np.float64],
    matches: Sequence[tuple[int, int]],
    *,
    shape: tuple[int, int],
    margin_px: float = 5.0,
    border_px: float = 3.0,
) -> ErrorBreakdown:
    """Sort the errors of an image scored against boxes by what lies where they are.

    The box counterpart of :func:`hairtrial.measure.metrics.explain_errors`. A trace
    *passes through* a box when at least half the box's shorter side of it (3 px at
    least, sampled every pixel) lies inside the box grown by `margin_px` on every side
    (hand-drawn boxes are tight, some only a few pixels across).

    A missed box is, by the first reason that applies:

    * ``beside_found_hair``: a detection matched to another box passes through it (two
      hairs traced as one, or a partner whose point lies in the other's box);
    * ``point_outside``: an unmatched counted detection passes through it, but its scored
      point (mid-shaft point or exit) lies outside it and away from its centre (the
      trace cut short, run on, or offset);
    * ``not_counted``: a detection whose exit was not placed inside the image passes
      through it;
    * ``at_border``: nothing passes through it and it reaches the image border;
    * ``not_found``: nothing passes through it.

    A counted detection matched to no box passes through a missed box
    (``on_missed_box``), a matched one (``on_found_box``: a duplicate, a fragment, or an
    unannotated partner), or none (``on_no_box``).

    Parameters
    ----------
    detected : sequence of HairRecord
        Every measured hair of the image (uncounted ones tell a hair seen, not counted).
    boxes : (B, 4) ndarray, px
        Annotation boxes ``(xmin, ymin, xmax, ymax)``.
    matches : sequence of (int, int)
        ``(counted detection, box)`` pairs, as :func:`score_boxes` returns them.
    shape : (int, int)
        Image rows and columns (px), for the border.
    margin_px : float, px
        How far outside a box a trace still lies in it.
    border_px : float, px
        How close to the image edge a box reaches the border.

    Returns
    -------
    ErrorBreakdown
        Counts per reason (:data:`BOX_MISSED_REASONS`, :data:`BOX_FALSE_REASONS`) and the
        reason of each missed box and each false detection.
    """
    box_arr = np.asarray(boxes, dtype=float).reshape(-1, 4)
    grown = box_arr + np.array([-margin_px, -margin_px, margin_px, margin_px])
    counted = [h for h in detected if h.exit_px is not None]
    uncounted = [h for h in detected if h.exit_px is None]

    def sampled(h: HairRecord) -> NDArray[np.float64]:
        return _resample(np.asarray(h.centerline_px, dtype=float).reshape(-1, 2), 1.0)

    need = np.maximum(0.5 * np.minimum(box_arr[:, 2] - box_arr[:, 0],
                                       box_arr[:, 3] - box_arr[:, 1]), 3.0)  # fmt: skip
    through = np.array(
        [_points_in_boxes(sampled(h), grown) >= need for h in counted], dtype=bool
    ).reshape(len(counted), len(box_arr))
    seen = np.array(
        [_points_in_boxes(sampled(h), grown) >= need for h in uncounted], dtype=bool
    ).reshape(len(uncounted), len(box_arr))
    det_match = {int(i): int(j) for i, j in matches}
    box_match = set(det_match.values())
    matched_det = np.array([i in det_match for i in range(len(counted))], dtype=bool)
    m, n = shape
    missed: list[tuple[int, str]] = []
    for j, (x0, y0, x1, y1) in enumerate(box_arr):
        if j in box_match:
            continue
        if (through[:, j] & matched_det).any():
            reason = "beside_found_hair"
        elif (through[:, j] & ~matched_det).any():
            reason = "point_outside"
        elif seen[:, j].any():
            reason = "not_counted"
        elif min(x0, y0) <= border_px or x1 >= n - border_px or y1 >= m - border_px:
            reason = "at_border"
        else:
            reason = "not_found"
        missed.append((j, reason))
    missed_boxes = np.zeros(len(box_arr), dtype=bool)
    missed_boxes[[j for j, _ in missed]] = True
    false: list[tuple[int, str]] = []
    for i in range(len(counted)):
        if i in det_match:
            continue
        if (through[i] & missed_boxes).any():
            reason = "on_missed_box"
        elif through[i].any():
            reason = "on_found_box"
        else:
            reason = "on_no_box"
        false.append((i, reason))
    return ErrorBreakdown.from_reasons(
        missed, false, missed_keys=BOX_MISSED_REASONS, false_keys=BOX_FALSE_REASONS
    )


__all__ = [
    "BOX_FALSE_REASONS",
    "BOX_MISSED_REASONS",
    "Annotations",
    "BoxScore",
    "explain_box_errors",
    "read_annotations",
    "score_boxes",
]
