"""Overlays a person can check: every hair drawn and coloured by class, over the image.

Each counted hair is drawn along its centreline in its class colour, its exit marked with a
ring and its id written beside the exit; hairs entering from outside the field (not
counted) are drawn thin and grey. A scale bar of a round length in µm and a legend with the
class counts sit in the bottom-left corner. Colours are from the Okabe–Ito palette, which
stays distinguishable with the common colour-vision deficiencies.

A validation overlay (:func:`draw_validation`) shows a measurement scored against
annotations instead: hairs matched to an annotation, false detections and missed
annotated hairs (or boxes) in three colours, each error labelled with why it happened
(:func:`hairtrial.measure.metrics.explain_errors`). A tracking overlay
(:func:`draw_tracks`) shows one visit of a tracked site: each hair labelled with its
follicle's id, so that the same follicle can be found on every visit's image, and the
follicles seen at other visits but absent at this one ringed where they should be. A
phototrichogram overlay (:func:`draw_phototrichogram`) shows the day-0 image of a pair with
each hair coloured by the phase its growth gave and labelled with that growth.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hairtrial._validate import check_image, check_um_per_px
from hairtrial.records import DEFAULT_CLASSES, HairClasses, HairRecord

if TYPE_CHECKING:
    from hairtrial.measure.metrics import ErrorBreakdown
    from hairtrial.track.phototrichogram import PhototrichogramResult
    from hairtrial.track.site import SiteTracks

#: Class colours (RGB): vellus sky blue, intermediate orange, terminal bluish green.
CLASS_COLOURS: dict[str, tuple[int, int, int]] = {
    "vellus": (86, 180, 233),
    "intermediate": (230, 159, 0),
    "terminal": (0, 158, 115),
}
_NOT_COUNTED = (170, 170, 170)
RGB = tuple[int, int, int]
#: Validation colours (RGB): matched bluish green, false vermillion, missed yellow, and the
#: annotation a detection matched in white.
VALIDATION_COLOURS: dict[str, RGB] = {
    "matched": (0, 158, 115),
    "false": (213, 94, 0),
    "missed": (240, 228, 66),
    "annotated": (255, 255, 255),
}
#: Tracking colours (RGB): a follicle's hair also seen at another visit bluish green, one
#: seen at this visit only sky blue, a follicle absent here (seen at another visit, inside
#: this field) vermillion.
TRACK_COLOURS: dict[str, RGB] = {
    "followed": (0, 158, 115),
    "only_here": (86, 180, 233),
    "absent": (213, 94, 0),
}
#: Phototrichogram colours (RGB): anagen bluish green, telogen vermillion.
PHASE_COLOURS: dict[str, RGB] = {"anagen": (0, 158, 115), "telogen": (213, 94, 0)}
#: Short labels written beside each error (keys of ``ErrorBreakdown.missed`` / ``.false``).
REASON_LABELS: dict[str, str] = {
    "beside_found_hair": "beside",
    "joined_to_another": "joined",
    "traced_in_part": "in part",
    "not_counted": "not counted",
    "at_border": "border",
    "not_found": "not found",
    "on_missed_hair": "on missed",
    "on_found_hair": "duplicate",
    "on_uncounted_hair": "entering",
    "on_no_hair": "no hair",
    "point_outside": "point outside",
    "on_missed_box": "on missed",
    "on_found_box": "duplicate",
    "on_no_box": "no box",
}
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
    canvas = _Canvas(image)
    um = check_um_per_px(um_per_px)
    counts = {"vellus": 0, "intermediate": 0, "terminal": 0}
    for hair in hairs:
        if not len(hair.centerline_px):
            continue
        if hair.exit_px is None:  # entering from outside the field: not counted
            canvas.line(hair.centerline_px, _NOT_COUNTED, canvas.thin)
            continue
        colour = CLASS_COLOURS.get(hair.hair_class, _NOT_COUNTED)
        canvas.line(hair.centerline_px, colour, canvas.thick)
        counts[hair.hair_class] = counts.get(hair.hair_class, 0) + 1
        canvas.ring(hair.exit_px, (255, 255, 255), canvas.thin)
        if show_ids:
            x, y = hair.exit_px
            org = (int(x + 5 * canvas.scale), int(y - 5 * canvas.scale))
            _text(canvas.out, str(hair.id), org, 0.4 * canvas.scale, colour)
    rows = _class_rows(counts, classes)
    if legend_below:
        return canvas.with_legend(rows, um)
    _legend(canvas.out, rows, um_per_px=um, scale=canvas.scale)
    return canvas.out


def _legend_spacing(scale: float) -> tuple[int, int]:
    """Row height and margin (px) of the legend at `scale`."""
    return int(20 * scale), int(8 * scale)


def _legend_height(scale: float, rows: int = 3) -> int:
    """Height (px) of the legend box at `scale`: `rows` colour rows, the bar, margins."""
    row, pad = _legend_spacing(scale)
    return row * (rows + 2) + pad


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


def _class_rows(counts: dict[str, int], classes: HairClasses) -> list[tuple[RGB, str]]:
    """Legend rows of a measurement overlay: each class's colour, limits and count."""
    return [
        (CLASS_COLOURS["vellus"], f"vellus <= {classes.vellus_max_um:g} um: {counts['vellus']}"),
        (CLASS_COLOURS["intermediate"], f"intermediate: {counts['intermediate']}"),
        (
            CLASS_COLOURS["terminal"],
            f"terminal >= {classes.terminal_min_um:g} um: {counts['terminal']}",
        ),
    ]


def _legend(
    out: NDArray[np.uint8],
    rows: Sequence[tuple[RGB, str]],
    *,
    um_per_px: float,
    scale: float,
) -> None:
    """Scale bar and a legend of coloured rows in a dark box at the bottom-left corner."""
    import cv2

    m, n = out.shape[:2]
    bar_um = scale_bar_um(n, um_per_px)
    bar_px = bar_um / um_per_px
    size = 0.45 * scale
    row, pad = _legend_spacing(scale)
    box_w = int(max(bar_px, 230 * scale)) + 2 * pad
    box_h = _legend_height(scale, len(rows))
    x0, y0 = pad, m - pad - box_h
    if x0 + box_w > n or y0 < 0:
        return  # image too small for a legend; the hairs are still drawn
    region = out[y0 : y0 + box_h, x0 : x0 + box_w]
    region[:] = (region.astype(np.float32) * 0.35).astype(np.uint8)
    for i, (colour, label) in enumerate(rows):
        y = y0 + pad + row * (i + 1)
        cv2.line(out, (x0 + pad, y - row // 3), (x0 + pad + int(18 * scale), y - row // 3),
                 colour, max(2, int(3 * scale)), cv2.LINE_AA)  # fmt: skip
        _text(out, label, (x0 + pad + int(26 * scale), y), size, (255, 255, 255))
    y = y0 + pad + row * (len(rows) + 1)
    cv2.line(out, (x0 + pad, y), (x0 + pad + round(bar_px), y), (255, 255, 255),
             max(2, int(3 * scale)))  # fmt: skip
    label = f"{bar_um / 1000:g} mm" if bar_um >= 1000 else f"{bar_um:g} um"
    _text(out, label, (x0 + pad, y - int(6 * scale)), size, (255, 255, 255))


class _Canvas:
    """A copy of an image to draw on, with line widths and text sizes for its size.

    Coordinates are px with the origin at the top-left pixel's corner (pixel centres at
    +0.5), drawn anti-aliased at 1/16 px.
    """

    _SHIFT = 4

    def __init__(self, image: NDArray[Any]) -> None:
        self.out = _as_rgb8(check_image(image))
        self.m, self.n = self.out.shape[:2]
        # line widths and text grow with the image
        self.scale = max(1.0, min(self.m, self.n) / 700.0)
        self.thick = max(1, round(self.scale))
        self.thin = max(1, self.thick // 2)
        self._labels: list[tuple[float, float, str, RGB, bool]] = []

    def fixed(self, points: ArrayLike) -> NDArray[np.int32]:
        """Return points in OpenCV's fixed-point pixel coordinates (integer centres)."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        return np.round((pts - 0.5) * (1 << self._SHIFT)).astype(np.int32)

    def line(self, points: ArrayLike, colour: RGB, width: int) -> None:
        """Draw a polyline."""
        import cv2

        pts = self.fixed(points)
        if len(pts):
            cv2.polylines(self.out, [pts], False, colour, width, cv2.LINE_AA, self._SHIFT)

    def ring(self, point: ArrayLike, colour: RGB, width: int, radius: float = 4.0) -> None:
        """Draw a circle of `radius` (px at scale 1) round a point; width -1 fills it."""
        import cv2

        c = self.fixed(point)[0]
        cv2.circle(self.out, (int(c[0]), int(c[1])), int(radius * self.scale) << self._SHIFT,
                   colour, width, cv2.LINE_AA, self._SHIFT)  # fmt: skip

    def rectangle(self, box: ArrayLike, colour: RGB, width: int) -> None:
        """Draw a box ``(xmin, ymin, xmax, ymax)``."""
        import cv2

        corners = self.fixed(np.asarray(box, dtype=np.float64).reshape(2, 2))
        cv2.rectangle(self.out, tuple(map(int, corners[0])), tuple(map(int, corners[1])),
                      colour, width, cv2.LINE_AA, self._SHIFT)  # fmt: skip

    def label(self, point: ArrayLike, text: str, colour: RGB, below: bool = False) -> None:
        """Write small text beside a point (above it by preference, or below).

        Labels are written by :meth:`with_legend`, over every line, each where it covers
        no earlier label if one of its places allows (:meth:`_write_labels`).
        """
        x, y = np.asarray(point, dtype=np.float64).reshape(2)
        self._labels.append((float(x), float(y), text, colour, below))

    def _write_labels(self) -> None:
        """Write the queued labels, each beside its point and clear of the others.

        A label tries eight places around its point in turn — right of it above (below
        first with ``below``), the other side of the point, left of it, then a line
        further out — and takes the first that lies inside the image and overlaps no
        label already written; if none is clear, the one overlapping least. So on a
        crowded image (hundreds of errors) the reasons stay readable and a dense cluster
        still shows every label, at worst partly covered.
        """
        import cv2

        size = 0.33 * self.scale
        weight = max(1, round(size * 2))
        gap = 5 * self.scale
        taken = np.empty((len(self._labels), 4))  # boxes written: x0, y0, x1, y1 (px)
        for k, (x, y, text, colour, below) in enumerate(self._labels):
            (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, size, weight)
            above, under = y - gap, y + h + gap + 2 * self.scale  # text baselines
            near, far = [above, under], [above - h - 2 * gap, under + h + 2 * gap]
            if below:
                near.reverse()
                far.reverse()
            places = np.array(
                [(x + dx, row) for rows in (near, far) for dx in (gap, -gap - w) for row in rows]
            )
            ox = np.clip(places[:, 0], 0.0, max(self.n - w - 1.0, 0.0))
            oy = np.minimum(np.maximum(places[:, 1], h + 2.0), self.m - base - 1.0)
            boxes = np.stack([ox - 1, oy - h - 1, ox + w + 1, oy + base + 1], axis=1)
            # area each place shares with the labels written so far; the first place
            # with the least (none, where one is clear) is taken
            done = taken[:k]
            wide = np.minimum(boxes[:, None, 2], done[None, :, 2]) - np.maximum(
                boxes[:, None, 0], done[None, :, 0]
            )
            tall = np.minimum(boxes[:, None, 3], done[None, :, 3]) - np.maximum(
                boxes[:, None, 1], done[None, :, 1]
            )
            overlap = (np.clip(wide, 0, None) * np.clip(tall, 0, None)).sum(axis=1)
            taken[k] = boxes[int(np.argmin(overlap))]
            org = (int(taken[k, 0] + 1), int(taken[k, 1] + h + 1))
            _text(self.out, text, org, size, colour)
        self._labels.clear()

    def with_legend(self, rows: Sequence[tuple[RGB, str]], um_per_px: float) -> NDArray[np.uint8]:
        """Return the drawing, its labels written, with a legend strip (`rows`, bar) under it."""
        self._write_labels()
        _, pad = _legend_spacing(self.scale)
        height = _legend_height(self.scale, len(rows)) + 2 * pad
        strip = np.zeros((height, self.n, 3), dtype=np.uint8)
        _legend(strip, rows, um_per_px=um_per_px, scale=self.scale)
        return np.concatenate([self.out, strip], axis=0)


def draw_validation(
    image: NDArray[Any],
    detected: Sequence[HairRecord],
    *,
    matches: Sequence[tuple[int, int]],
    um_per_px: float,
    truth: Sequence[HairRecord] = (),
    boxes: NDArray[np.floating] | None = None,
    by: Literal["centreline", "exit"] = "centreline",
    errors: ErrorBreakdown | None = None,
    wrong_ends: Sequence[int] | None = None,
) -> NDArray[np.uint8]:
    """Draw a measurement scored against annotations over a copy of `image`.

    Counted detections matched to an annotation are drawn in bluish green over their
    annotation (a thin white line, or a white box); false detections in vermillion;
    missed annotated hairs (or boxes) in yellow. Exits are ringed; against boxes, the
    point of each detection that was matched (its mid-shaft point, or its exit with
    ``by='exit'``) is a dot. With `errors`, each error is labelled with its reason
    (:data:`REASON_LABELS`): a missed hair's above its exit, a false detection's below.
    Detections entering from outside the field (not counted, not scored) are drawn thin
    and grey. The legend and scale bar lie in a strip under the image, so that no error
    is hidden.

    Parameters
    ----------
    image : (M, N) or (M, N, 3) ndarray
        The measured image; not modified.
    detected : sequence of HairRecord
        Every measured hair of the image.
    matches : sequence of (int, int)
        ``(detection, annotation)`` pairs as :func:`hairtrial.measure.metrics.score_hairs`
        or :func:`hairtrial.measure.annotations.score_boxes` return them: indices into
        the counted detections and into the counted annotated hairs, or into `boxes`.
    um_per_px : float, µm/px
        Calibration, for the scale bar.
    truth : sequence of HairRecord
        Annotated hairs (all of them; those entering from outside are not scored).
    boxes : (B, 4) ndarray, px, optional
        Annotation boxes ``(xmin, ymin, xmax, ymax)``, scored instead of `truth`.
    by : {'centreline', 'exit'}
        Which point of a detection was matched to the boxes.
    errors : ErrorBreakdown, optional
        Why each error happened (indices as `matches`): from
        :func:`hairtrial.measure.metrics.explain_errors`, or
        :func:`hairtrial.measure.annotations.explain_box_errors` for boxes.
    wrong_ends : sequence of int, optional
        Where the annotation states exits: the matched hairs whose exit lies at the
        annotated tip end, as indices into the counted detections
        (:attr:`hairtrial.measure.metrics.ExitEndScore.wrong`). Each gets a vermillion
        exit ring and the label ``wrong end``, and the legend counts them; without it
        exit ends are not shown.

    Returns
    -------
    (M + strip, N, 3) ndarray of uint8
        The overlay, with the legend strip under it.
    """
    canvas = _Canvas(image)
    um = check_um_per_px(um_per_px)
    thick, thin = canvas.thick, canvas.thin
    colours = VALIDATION_COLOURS
    counted = [h for h in detected if h.exit_px is not None]
    annotated = [h for h in truth if h.exit_px is not None]
    box_arr = np.zeros((0, 4)) if boxes is None else np.asarray(boxes, float).reshape(-1, 4)
    det_match = {int(i): int(j) for i, j in matches}
    found = set(det_match.values())
    n_targets = len(box_arr) if boxes is not None else len(annotated)
    why_missed = dict(errors.missed_reason) if errors is not None else {}
    why_false = dict(errors.false_reason) if errors is not None else {}
    # annotations under the detections: matched ones thin, missed ones in yellow
    for j in range(n_targets):
        hit = j in found
        colour = colours["annotated"] if hit else colours["missed"]
        if boxes is not None:
            canvas.rectangle(box_arr[j], colour, thin if hit else thick)
            anchor: ArrayLike = box_arr[j, :2]
        else:
            hair = annotated[j]
            canvas.line(hair.centerline_px, colour, thin if hit else thick)
            anchor = hair.exit_px if hair.exit_px is not None else hair.centerline_px[0]
            if not hit:
                canvas.ring(anchor, colour, thin)
        if not hit and j in why_missed:
            canvas.label(anchor, REASON_LABELS.get(why_missed[j], why_missed[j]), colour)
    for hair in detected:
        if hair.exit_px is None:
            canvas.line(hair.centerline_px, _NOT_COUNTED, thin)
    wrong = set(wrong_ends or ())
    for i, hair in enumerate(counted):
        hit = i in det_match
        colour = colours["matched"] if hit else colours["false"]
        canvas.line(hair.centerline_px, colour, thick)
        exit_px = hair.exit_px if hair.exit_px is not None else hair.centerline_px[0]
        if hit and i in wrong:
            canvas.ring(exit_px, colours["false"], thick)
            canvas.label(exit_px, "wrong end", colours["false"], below=True)
        else:
            canvas.ring(exit_px, colour, thin)
        if boxes is not None and by == "centreline" and hair.centerline_px:
            canvas.ring(hair.centerline_px[len(hair.centerline_px) // 2], colour, -1, 2.5)
        if not hit and i in why_false:
            reason = REASON_LABELS.get(why_false[i], why_false[i])
            canvas.label(exit_px, reason, colour, below=True)
    n_match = len(det_match)
    what = "boxes" if boxes is not None else "annotated"
    rows = [
        (colours["matched"], f"matched: {n_match}"),
        (colours["false"], f"false: {len(counted) - n_match}"),
        (colours["missed"], f"missed: {n_targets - len(found)} of {n_targets} {what}"),
    ]
    if wrong_ends is not None:
        rows.append((colours["false"], f"exit at the wrong end: {len(wrong)} of {n_match}"))
    return canvas.with_legend(rows, um)


def draw_tracks(image: NDArray[Any], tracks: SiteTracks, visit: int) -> NDArray[np.uint8]:
    """Draw one visit of a tracked site over a copy of its image.

    Each hair of the visit is drawn with its exit ringed and its follicle's id beside
    the exit: bluish green when the follicle has a hair at another visit too, sky blue
    when this is the only visit it is seen at (new, or a detection the other visits do
    not confirm). A follicle seen at another visit whose place lies inside this visit's
    field but has no hair here is a vermillion ring at that place (mapped through the
    visit's registration), with its id. Hairs entering from outside the field are thin
    and grey. A visit that could not be registered is drawn with its hairs only, and
    the legend says so with the registration's score.

    Parameters
    ----------
    image : (M, N) or (M, N, 3) ndarray
        The visit's image; not modified.
    tracks : SiteTracks
        The site, as :func:`hairtrial.track.track_site` returns it.
    visit : int
        Visit index (0 = first visit).

    Returns
    -------
    (M + strip, N, 3) ndarray of uint8
        The overlay, with the legend strip under it.
    """
    from hairtrial.track._geometry import apply, invert

    if not 0 <= visit < len(tracks.visit_days):
        raise ValueError(f"visit {visit} is not one of the site's {len(tracks.visit_days)}")
    canvas = _Canvas(image)
    um = check_um_per_px(tracks.um_per_px[visit])
    colours = TRACK_COLOURS
    reg = tracks.registrations[visit]
    detected = tracks.hair_index >= 0
    elsewhere = detected.sum(axis=1) - detected[:, visit]
    owner = {int(tracks.hair_index[f, visit]): f for f in np.flatnonzero(detected[:, visit])}
    counts = {"followed": 0, "only_here": 0, "absent": 0}
    for k, hair in enumerate(tracks.hairs[visit]):
        if hair.exit_px is None or k not in owner:
            canvas.line(hair.centerline_px, _NOT_COUNTED, canvas.thin)
            continue
        f = owner[k]
        state = "followed" if elsewhere[f] > 0 else "only_here"
        counts[state] += 1
        canvas.line(hair.centerline_px, colours[state], canvas.thick)
        canvas.ring(hair.exit_px, colours[state], canvas.thin)
        canvas.label(hair.exit_px, str(f), colours[state])
    if reg.ok:
        # in this visit's field, seen at another visit, no hair here
        gone = np.flatnonzero(tracks.in_field[:, visit] & ~detected[:, visit] & (elsewhere > 0))
        if gone.size:
            places = apply(invert(reg.matrix), tracks.position_px[gone])
            for f, place in zip(gone, places, strict=True):
                counts["absent"] += 1
                canvas.ring(place, colours["absent"], canvas.thick)
                canvas.label(place, str(int(f)), colours["absent"])
    day = tracks.visit_days[visit]
    rows: list[tuple[RGB, str]] = [
        (colours["followed"], f"day {day}: seen at other visits too: {counts['followed']}"),
        (colours["only_here"], f"seen at this visit only: {counts['only_here']}"),
        (colours["absent"], f"absent here, seen at others: {counts['absent']}"),
    ]
    if not reg.ok:
        rows[2] = (colours["absent"], f"could not register (score {reg.score:.2f})")
    return canvas.with_legend(rows, um)


def draw_phototrichogram(
    image: NDArray[Any],
    hairs: Sequence[HairRecord],
    result: PhototrichogramResult,
    *,
    um_per_px: float,
) -> NDArray[np.uint8]:
    """Draw the first (day-0) image of a phototrichogram pair with each hair's phase.

    Each counted hair of the first image that was followed into the second is drawn in
    its phase's colour (:data:`PHASE_COLOURS`: anagen, it grew; telogen, it did not),
    its exit ringed and its growth written beside it (µm/day). Counted hairs not
    followed (not found in the second image, growth off the field, or not matched) are
    thin and white; hairs entering from outside the field thin and grey. The legend
    strip under the image gives the counts, the anagen fraction and a scale bar; a pair
    that could not be registered says so, with its score.

    Parameters
    ----------
    image : (M, N) or (M, N, 3) ndarray
        The first image; not modified.
    hairs : sequence of HairRecord
        The first image's measured hairs (ids as in ``result.hairs[k].id_first``).
    result : PhototrichogramResult
        What :func:`hairtrial.track.phototrichogram.phototrichogram` returned.
    um_per_px : float, µm/px
        Calibration of the first image, for the scale bar.

    Returns
    -------
    (M + strip, N, 3) ndarray of uint8
        The overlay, with the legend strip under it.
    """
    canvas = _Canvas(image)
    um = check_um_per_px(um_per_px)
    growth = {g.id_first: g for g in result.hairs}
    followed = 0
    for hair in hairs:
        g = growth.get(hair.id)
        if hair.exit_px is None or g is None:
            colour = _NOT_COUNTED if hair.exit_px is None else (255, 255, 255)
            canvas.line(hair.centerline_px, colour, canvas.thin)
            continue
        followed += 1
        colour = PHASE_COLOURS.get(g.phase, _NOT_COUNTED)
        canvas.line(hair.centerline_px, colour, canvas.thick)
        canvas.ring(hair.exit_px, colour, canvas.thin)
        canvas.label(hair.exit_px, f"{g.growth_um_per_day:.0f}", colour)
    counted = sum(1 for h in hairs if h.exit_px is not None)
    reg = result.registration
    fraction = "" if result.anagen_fraction is None else f", fraction {result.anagen_fraction:.2f}"
    rows: list[tuple[RGB, str]] = [
        (PHASE_COLOURS["anagen"], f"anagen (grew): {result.n_anagen}{fraction}"),
        (PHASE_COLOURS["telogen"], f"telogen (did not grow): {result.n_telogen}"),
        ((255, 255, 255), f"not followed: {counted - followed}; numbers: growth um/day"),
    ]
    if not reg.ok:
        rows[2] = ((255, 255, 255), f"could not register (score {reg.score:.2f})")
    return canvas.with_legend(rows, um)


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
