"""Find, trace and measure every hair in one trichoscopy image.

Pipeline (each step physically motivated, see the private modules):

1. optical density against a robust skin-background estimate, device overlays masked
   (:mod:`._absorbance`);
2. multi-scale, scale-normalised Hessian ridges matched to 10–150 µm shafts, sub-pixel
   crest, hysteresis, pieces re-linked through crossings by direction continuity where
   the bridge is dark, traces cut at bare-skin gaps and at corners (:mod:`._ridges`);
3. diameter from a blurred Beer–Lambert cylinder fitted to the median perpendicular
   profile on the full-resolution image, the blur estimated once per image
   (:mod:`._profile`); a step in the width along a trace shows a unit partner lying
   against it, reported as a hair of its own;
4. exit end against cut end from what lies beyond each end: the shaft continues under the
   translucent epidermis as a faint shadow and other hairs of the follicular unit
   converge there, while the skin past a cut end is bare.
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass, field, replace
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from hairtrial._validate import check_image, check_um_per_px
from hairtrial.measure import _absorbance, _profile, _ridges
from hairtrial.measure.config import MeasureConfig
from hairtrial.records import HairRecord, summarize_hairs

log = logging.getLogger(__name__)

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]


@dataclass(frozen=True)
class ImageMeasurement:
    """Every hair found in one image and the per-image endpoints.

    Parameters
    ----------
    hairs : tuple of HairRecord
        All hairs found, counted ones (exit inside the field) and entering ones.
    summary : dict
        Output of :func:`hairtrial.records.summarize_hairs` (``hair_count``,
        ``density_per_cm2`` in hairs/cm², ``mean_diameter_um`` in µm, ``terminal_fraction``,
        ``cumulative_thickness_mm_per_cm2``, ``fraction_below_index``, ``class_counts``).
    histogram_counts : tuple of int
        Counted hairs per diameter bin.
    histogram_edges_um : tuple of float, µm
        Bin edges, one more than `histogram_counts`.
    exit_confidence : tuple of float
        Per hair, how sure the exit end is the exit and not the cut end, in [0, 1].
    um_per_px : float, µm/px
        Calibration used.
    shape : (int, int)
        Image height and width in pixels.
    area_cm2 : float, cm²
        Imaged area: the image less the frame round a round field of view.
    psf_sigma_um : float, µm
        Blur (Gaussian σ) used for the diameter fit.
    config_hash : str
        :meth:`MeasureConfig.config_hash` of the parameters used.
    hidden_rows : (int, int), px
        Rows a burned-in status bar spans at the top and at the bottom of the image
        (under its labels no exit can be seen, so tracking leaves those rows out of the
        field; skin between and beside the labels is measured). Not part of the JSON
        contract.
    extra : dict
        Free-form additions by callers (not part of the JSON contract).
    """

    hairs: tuple[HairRecord, ...]
    summary: dict[str, Any]
    histogram_counts: tuple[int, ...]
    histogram_edges_um: tuple[float, ...]
    exit_confidence: tuple[float, ...]
    um_per_px: float
    shape: tuple[int, int]
    area_cm2: float
    psf_sigma_um: float
    config_hash: str
    hidden_rows: tuple[int, int] = (0, 0)
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def hair_count(self) -> int:
        """Number of counted hairs (exit inside the image)."""
        return int(self.summary["hair_count"])

    def to_json(self, image_name: str) -> dict[str, Any]:
        """Return the DESIGN.md JSON Lines object for this image.

        Parameters
        ----------
        image_name : str
            Value of the ``image`` key (file name as given by the caller).

        Returns
        -------
        dict
            ``image, um_per_px, area_cm2, hair_count, density_per_cm2, mean_diameter_um,
            terminal_fraction, cumulative_thickness_mm_per_cm2, hairs``. Each hair also
            carries ``exit_confidence``, how sure its exit end is the exit (0.5–1), an
            addition to the contract's keys.
        """
        s = self.summary
        hairs = [h.to_json() for h in self.hairs]
        for row, sure in zip(hairs, self.exit_confidence, strict=False):
            row["exit_confidence"] = round(float(sure), 3)

        def rnd(v: float | None, nd: int = 4) -> float | None:
            return None if v is None else round(float(v), nd)

        return {
            "image": str(image_name),
            "um_per_px": float(self.um_per_px),
            "area_cm2": round(self.area_cm2, 6),
            "hair_count": int(s["hair_count"]),
            "density_per_cm2": rnd(s["density_per_cm2"], 2),
            "mean_diameter_um": rnd(s["mean_diameter_um"], 2),
            "terminal_fraction": rnd(s["terminal_fraction"]),
            "cumulative_thickness_mm_per_cm2": rnd(s["cumulative_thickness_mm_per_cm2"]),
            "hairs": hairs,
        }


#: Logistic gain per unit of red-minus-blue absorptance difference between the two ends.
_BLUE_GAIN = 40.0
#: Red-minus-blue absorptance past an end above which it reads as a sub-surface shaft.
_BLUE_MIN = 0.02
#: Shortest visible shaft, in units of its own diameter (a shaft is elongated).
_MIN_ASPECT = 1.5
#: Shortest crest (px, working resolution) looked at as a possible stub.
_STUB_MIN_CREST_PX = 3.0
#: A stub's visible length, at least, per unit of the shortest shaft crest reported.
_STUB_LENGTH = 1.5
#: A stub's visible length, at least, per unit of its width (both at half its level).
_STUB_ASPECT = 1.6
#: Absorptance just past each end of a stub, at most, per unit of its crest level.
_STUB_END = 0.5
#: A stub's crest level, at least, per unit of the median level of the image's shafts.
_STUB_LEVEL = 0.7
#: A hair leaving the field just past its exit shows only its exit cap on the border:
#: rows (px) of the border strip read for dark runs ...
_CAP_ROWS = 2
#: ... the shortest visible depth, in diameters, of a cap (a sliver is the shadow or
#: edge of a hair beside the field) and the longest (a longer shaft is traced) ...
_CAP_MIN_DEPTH = 0.5
_CAP_MAX_DEPTH = 2.5
#: Across profiles over the middle half of a stub (:func:`_bar_like`).
_STUB_STATIONS = 7
#: Largest coefficient of variation of a stub's width along it.
_STUB_WIDTH_CV = 0.2
#: Lowest axis level along a stub's middle half, per unit of its highest.
_STUB_PLATEAU = 0.5
#: Share of a trace lying on an accepted one above which it is a duplicate.
_DUPLICATE_SHARE = 0.6
#: Absorptance between two crests, per unit of the fainter crest's, under which they are
#: two shafts with skin between them, not one band (:class:`_Footprint`).
_GAP_DIP = 0.5
#: Share of a diameter around a trace's own axis whose profile samples are kept even on
#: another traced shaft (:func:`_mask_other_shafts`).
_OWN_CORE = 0.25
#: Closest two crests (px) that may have skin between them.
_GAP_MIN_PX = 3.0
#: Width of an accepted trace's footprint, per unit of its measured shaft diameter
#: (:func:`_outside_wider`).
_DUPLICATE_WIDTH = 1.0
#: Width of an accepted trace's footprint at detection, per unit of its shaft's width at
#: half its axis absorptance (or of the detection scale, if narrower): a second crest on
#: the shaft wobbles a little beyond the half-absorptance edges.
_FOOTPRINT_WIDTH = 1.3
#: Share of the shaft's median absorptance that marks where the visible shaft ends (the
#: shaft under the skin is seen through it and is far fainter; a cut end is a sharp step).
_END_LEVEL = 0.75
#: Rise of the blue shift per unit of absorptance (red-minus-blue over mean absorptance)
#: at a trace's end over its middle's, above which that end runs on into the shaft under
#: the skin: pigment seen through the epidermis is blue-grey (Tyndall), the shaft's own
#: pigment is not, so the hue changes at the exit even where the shadow is as dark.
_SUBSURFACE_HUE = 0.2
#: Smallest ratio of weakest to strongest channel absorptance along a hair (melanin
#: absorbs all visible light; ink is selective).
_BROADBAND_SHARE = 0.3
#: Share of a trace's median absorptance below which a stretch along it is bare skin.
_GAP_SHARE = 0.2
#: Largest turn (degrees) of a join made after traces were cut at corners and kinks (a
#: hair goes straight through a crossing, as `_ridges._CROSSED_MAX_TURN_DEG`).
_RELINK_MAX_DEG = 15.0
#: Shortest chord (µm) and largest turn (degrees) between the chords before and after a
#: point of a trace; a sharper turn is a corner between two touching hairs. With chords of
#: two shaft widths (~150 µm for a terminal hair) a 30° turn means a radius of curvature of
#: about 0.3 mm, tighter than scalp hair curls (millimetres).
_CORNER_CHORD_UM = 30.0
_CORNER_TURN_DEG = 30.0
#: The crest of a shaft rounds a corner off over about its width: the chords compared
#: are at least this many shaft widths long.
_CORNER_WIDTHS = 2.0
#: Chord (shaft widths) and turn (degrees) of a bend no shaft makes: a turn of 60° within
#: one width is a radius of curvature of about one width. The corner test's longer
#: chords miss such a bend on a stub shorter than four widths (an S through two touching
#: stubs) and within two widths of an end (a crest hooked round a thick shaft's cut end).
_BEND_WIDTHS = 1.0
_BEND_TURN_DEG = 60.0
#: Smallest turn (degrees) at a kink, where two hairs meet end to end ...
_KINK_TURN_DEG = 15.0
#: ... and the most the turn may grow between chords twice as long (a bend doubles it).
_KINK_SPREAD = 1.3
#: Smallest ratio of weakest to strongest channel of a light (unpigmented) shaft's own
#: colour: white, grey and blond hair are near neutral, coloured ink is not.
_NEUTRAL_SHARE = 0.5
#: a grey shaft, told by its colour only, is looked for where its own colour is at most
#: this share of the skin's (ink, the blue shadow of a shaft under the skin and brown
#: pigment are coloured themselves); the skin must be at least as coloured as the crest
#: threshold, the most that colour alone can give
_GREY_CHROMA_SHARE = 0.5
#: ... and darker than the skin in some channel by this much (a white scale flake or
#: bubble is neutral too, but brighter than the skin in every channel)
_GREY_MIN_DARKENING = 0.02
#: Logistic gain per unit of grey shadow past an end (absorptance as a share of the
#: shaft's own), and the share above which it reads as the shaft under the skin: the
#: skin past a cut end is bare (share ~0), past an exit the buried shaft shows through.
_GREY_GAIN = 40.0
#: A trace with at least this share of its points seen by the grey contrast only ...
_GREY_BORNE_SHARE = 0.5
#: ... is a shaft only when its chord is at least this share of its length (a cut shaft
#: runs straight; exit shadows, opening rims and shaft edges curve)
_GREY_MIN_STRAIGHT = 0.97
_GREY_MIN = 0.1
#: An image sets its own blue and grey floors (:func:`_own_floors`) from at least this
#: many hairs with both ends measured and clearly different (the smaller value at most
#: _FLOOR_CLEAR of the larger), within _FLOOR_RANGE times the defaults above.
_FLOOR_MIN_HAIRS = 5
_FLOOR_CLEAR = 0.5
_FLOOR_RANGE = (0.25, 2.0)
#: Offset, in shaft diameters, of the strips beside the axis that the shadow past an end
#: is compared with (the shadow of the buried shaft is diffused to a few widths).
_SIDE_WIDTHS = 3.0
#: Cosine of the largest angle at which another trace's end lies ahead of an end, and
#: points back at it, for it to be the same hair going on across a crossing.
_IN_LINE_COS = math.cos(math.radians(30.0))
#: How far behind a unit partner's crest end (px, along its outward direction) the strip
#: past another end may still see its shaft as the opening's shadow (:class:`_PartnerEnds`).
_PARTNER_BEHIND_PX = 2.0
#: Logistic gain per converging neighbour end (a follicular unit).
_NEAR_GAIN = 0.7
#: Neighbourhood over which hairs share their growth direction (µm), the largest weight
#: of one neighbour's own evidence (log-odds) and the prior's gain (log-odds at full
#: agreement); see _direction_prior.
_STREAM_RADIUS_UM = 1000.0
#: The wider neighbourhood (µm) whose votes count as far as the hairs in it lie parallel
#: (a hair stream), and the fewest neighbours there for their alignment to be read.
_STREAM_WIDE_UM = 2000.0
_STREAM_MIN_ALIGNED = 3
_STREAM_CAP = 4.0
_STREAM_GAIN = 6.0
#: sections of a trace whose widths are compared (:func:`_narrowest_section`)
_SECTIONS = 3
#: widest / narrowest section beyond which the wider sections hold a second shaft
_SECTION_SPREAD = 1.4
#: narrowest shaft, in blur σ, whose sections are compared (a thinner one's width is not
#: separable from its density)
_SECTION_MIN_BLURS = 6.0
#: A trace's profiles at least this many times as wide as its narrow profiles over a run
#: hold a second shaft lying against it there (:func:`_shafts_beside`) ...
_BESIDE_WIDE = 1.6
#: ... when the rest of the trace is at most this many times as wide.
_BESIDE_NARROW = 1.3
#: Shallowest profile (transmittance below skin) whose half-depth width is measured.
_BESIDE_MIN_DEPTH = 0.1
#: Shortest such run, in shaft widths and in `min_length_um`: a hair crossing at a shallow
#: angle, or a third shaft in the band, widens a shorter one.
_BESIDE_MIN_DIAMETERS = 4.0
_BESIDE_MIN_LENGTHS = 3.0
#: Share of a trace two other traces must each run on along (:func:`_run_on_into_partners`)
#: for it to be the stretch they share from their opening, not a hair of its own.
_SHARED_SHARE = 0.6
#: Share of `min_length_um` a trace ending at the image border (within `_BORDER_PX` px or
#: half its shaft width, whichever is more) must reach: the border cuts a hair leaving
#: the field short (the blob test still applies).
_BORDER_LENGTH = 0.5
_BORDER_PX = 3.0
#: Crest points between width profiles when looking for width steps.
_WIDTH_STEP = 2
#: A crest piece is cut where the shaft's width changes by this factor for good ...
_WIDTH_RATIO = 1.6
#: ... each part being at least this many of its own widths long.
_WIDTH_PART = 2.0
#: A trace whose points lie within this share of a band's fitted width of the band's own
#: trace is a hair of that band (the band's trace sits on one of its hairs, the fitted
#: width of two touching hairs reads short of their sum).
_BAND_REACH = 0.75
#: Largest share of a light trace's own brightening that the skin beside it may show
#: (the brighter side, one to two shaft widths clear of its edge): a white shaft lies on
#: skin, the bright crest of a scale flake or a fluid bubble inside a bright patch.
_LIGHT_SIDE_SHARE = 0.3
#: Smallest length-to-width ratio of the region brighter than half a light trace's axis
#: level: a shaft is elongated (the dark pass asks 1.5 widths of crest, about 2.5 of
#: shaft), a flake or bubble is not, whatever line its bright mottling traces.
_LIGHT_ELONGATION = 2.5
#: Largest share of a light trace that may run along a dark shaft (closer than their
#: two half widths): the bright rim or specular line on a dark shaft's edge is not a
#: light shaft.
_LIGHT_ALONG_DARK = 0.3
#: A trace whose end lies on another traced shaft, running within this angle (degrees) of
#: it, is a hair of the same unit or a crossing one whose crest merged into the other's
#: where they overlap: it runs on straight inside that shaft ...
_RUN_ON_MAX_DEG = 20.0
#: ... while the absorptance along it keeps this share of its own shaft's median ...
_RUN_ON_LEVEL = 0.5
#: ... for at most this many times its own traced length.
_RUN_ON_LENGTHS = 4.0
#: A trace thinner than the thinnest hair, or sharper than the blur allows (narrower at
#: half absorptance than this share of the blur's full width at half maximum), half of
#: whose points keep within _GRID_PX of one pixel row or column over at least
#: _GRID_MIN_PX, is drawn graphics (a scale bar's stroke, a frame line).
_DRAWN_SHARPNESS = 0.4
_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
_GRID_PX = 0.25
_GRID_MIN_PX = 25.0
#: A band as wide as several hairs is split into them only where the absorptance along
#: them, on average, reaches this share of the median over the image's other traces.
_BUNDLE_MIN_LEVEL = 0.5


@dataclass(frozen=True)
class _Candidate:
    """A traced shaft before measurement (working-resolution pixel-centre coordinates)."""

    points: F64
    diameter_px: float
    strength: float
    #: the trace's own crest where `points` was run on into another shaft (else None):
    #: whether it is a second crest of a wider shaft is judged by this part alone
    core: F64 | None = None
    #: an exit cap on the border (:func:`_border_caps`), `points` from the border inwards
    cap: bool = False
    #: its width (px), the smaller of `diameter_px` and its width at half absorptance
    #: (None: not measured): the window of the profiles across it is sized by it
    width_px: float | None = None


def _detect(
    od_work: F32, exclude: NDArray[np.bool_] | None, work_um: float, config: MeasureConfig
) -> list[_Candidate]:
    """Ridges → crest → pieces → linked shafts, at the working resolution."""
    diam_um = np.geomspace(config.min_diameter_um, config.max_diameter_um, config.n_scales)
    ridges = _ridges.ridge_map(od_work, diam_um / work_um, low=config.ridge_low_od)
    crest = _ridges.hysteresis(ridges, high=config.ridge_high_od, exclude=exclude)
    pieces = _ridges.crest_segments(crest, ridges.dx, ridges.dy)
    pieces = _split_width_steps(pieces, od_work, ridges.diameter_px)
    scale_widths = _piece_widths(pieces, ridges.diameter_px)
    linked = _ridges.link_segments(
        pieces,
        max_gap=max(4.0, config.link_gap_um / work_um),
        max_angle_deg=config.link_max_angle_deg,
        od=od_work,
        widths=scale_widths,
        half_widths=_shaft_widths(pieces, od_work, scale_widths),
    )
    corner_chord = max(3.0, _CORNER_CHORD_UM / work_um)
    min_len = config.min_length_um / work_um
    shape = od_work.shape

    def long_enough(pts: F64) -> bool:
        # the border cuts a hair leaving the field: its visible length says little
        length = _ridges.polyline_length(pts)
        if length >= min_len:
            return True
        if length < _BORDER_LENGTH * min_len:
            return False
        width = float(_piece_widths([pts], ridges.diameter_px)[0])
        return _touches_border(pts, shape, 0.5 * width)

    def by_length(traces: list[F64]) -> tuple[list[F64], list[F64]]:
        # the traces long enough to be shafts, in order, and those too short; too short a
        # crest may still be a whole hair cut to a stub (judged at the end)
        whole: list[F64] = []
        stubby: list[F64] = []
        for pts in traces:
            if long_enough(pts):
                whole.append(pts)
            elif _ridges.polyline_length(pts) >= _STUB_MIN_CREST_PX:
                stubby.append(pts)
        return whole, stubby

    whole, short = by_length(linked)
    # the others are too short, whatever their pieces
    gapless = [
        piece
        for pieces in _ridges.split_at_gaps(whole, od_work, share=_GAP_SHARE)
        for piece in pieces
    ]
    traces: list[F64] = []
    cuts: list[tuple[int, int]] = []
    # the crest of a wide shaft rounds a corner off over about its width
    for piece, width in zip(gapless, _piece_widths(gapless, ridges.diameter_px), strict=True):
        first = len(traces)
        traces.extend(_split_corners_kinks(piece, float(width), corner_chord))
        cuts.extend((2 * t + 1, 2 * t + 2) for t in range(first, len(traces) - 1))
    if cuts:
        traces = _relink_cut_ends(
            traces,
            np.asarray(cuts, dtype=np.intp),
            od_work,
            ridges.diameter_px,
            max_gap=max(4.0, config.link_gap_um / work_um),
            corner_chord=corner_chord,
        )
    if len(traces) > 1:
        # a shallow crossing's shared patch may have turned two traces into each other's hair
        scale = _piece_widths(traces, ridges.diameter_px)
        traces = _ridges.swap_crossed_arms(traces, _shaft_widths(traces, od_work, scale), od_work)
    linked = traces
    m, n = od_work.shape
    out: list[_Candidate] = []
    # longest first; a trace lying along an accepted one (a second crest on the same wide
    # shaft) is dropped, while a neighbour a shaft-width away is kept
    linked.sort(key=_ridges.polyline_length, reverse=True)
    kept, more_short = by_length(linked)
    short += more_short
    cands: list[_Candidate] = []
    if kept:
        # scale and strength medians over each trace's points on a ridge, in one pass
        ip = np.round(np.concatenate(kept)).astype(np.intp)
        cols = np.clip(ip[:, 0], 0, n - 1)
        rows = np.clip(ip[:, 1], 0, m - 1)
        owner = np.repeat(np.arange(len(kept)), [len(p) for p in kept])
        strength = ridges.strength[rows, cols]
        on = strength > 0
        counts = np.bincount(owner[on], minlength=len(kept))
        has = counts > 0
        diam_med = _ridges.group_medians(ridges.diameter_px[rows, cols][on], counts[has])
        strength_med = _ridges.group_medians(strength[on], counts[has])
        cands = [
            _Candidate(points=pts, diameter_px=float(d), strength=float(st))
            for pts, d, st in zip(
                [p for p, h in zip(kept, has, strict=True) if h],
                diam_med,
                strength_med,
                strict=True,
            )
        ]
    # the detection scales are a factor ~2 apart: a 19-px shaft may answer best at 30 px;
    # judged by that scale, a short shaft looked like a blob and its footprint swallowed
    # a vellus hair lying beside it
    shafts = np.minimum(
        [c.diameter_px for c in cands],
        _half_widths([c.points for c in cands], od_work, [c.diameter_px for c in cands]),
    )
    footprint = _Footprint((m, n))
    out_shafts: list[float] = []
    blobs: list[F64] = []
    for cand, shaft in zip(cands, shafts, strict=True):
        if footprint.covers(cand.points):
            continue
        aspect = _MIN_ASPECT
        if _touches_border(cand.points, shape, 0.5 * float(shaft)):
            # the border, not the hair, ends it: half the visible length will do
            aspect *= _BORDER_LENGTH
        if _ridges.polyline_length(cand.points) < aspect * shaft:
            blobs.append(cand.points)  # a blob (opening, flake, dot) or a stub
            continue
        out.append(replace(cand, width_px=float(shaft)))
        out_shafts.append(float(shaft))
        footprint.add(cand.points, _FOOTPRINT_WIDTH * shaft)
    stubs = [pts for pts in blobs + short if not footprint.covers(pts)]
    if stubs:
        widths = _piece_widths(stubs, ridges.diameter_px)
        for stub in _stubs(stubs, widths, [c.points for c in out], od_work, min_len, exclude):
            if footprint.covers(stub.points):
                continue
            out.append(stub)
            out_shafts.append(stub.diameter_px)
            footprint.add(stub.points, _FOOTPRINT_WIDTH * stub.diameter_px)
    out = _run_on_into_partners(out, np.asarray(out_shafts), od_work)
    if out:
        diam_range = (config.min_diameter_um / work_um, config.max_diameter_um / work_um)
        ref = float(np.median(_shaft_levels(od_work, [c.points for c in out])))
        for cap in _border_caps(od_work, exclude, ref, diam_range):
            if not footprint.covers(cap.points):
                out.append(cap)
                footprint.add(cap.points, _FOOTPRINT_WIDTH * cap.diameter_px)
    return out


def _split_corners_kinks(pts: F64, width: float, corner_chord: float) -> list[F64]:
    """Cut a trace at corners and kinks (chords ~2 widths) and at bends no shaft makes.

    The bends are turns of `_BEND_TURN_DEG` or more between chords of `_BEND_WIDTHS`
    widths, looked for on each part the corner and kink cuts leave.
    """
    return _ridges.split_at_corners_and_kinks(
        pts,
        chord=max(corner_chord, _CORNER_WIDTHS * width),
        max_turn_deg=_CORNER_TURN_DEG,
        min_turn_deg=_KINK_TURN_DEG,
        spread=_KINK_SPREAD,
        bend_chord=max(corner_chord, _BEND_WIDTHS * width),
        bend_turn_deg=_BEND_TURN_DEG,
    )


def _relink_cut_ends(
    traces: list[F64],
    cuts: NDArray[np.intp],
    od: F32,
    diameter_px: F32,
    *,
    max_gap: float,
    corner_chord: float,
) -> list[F64]:
    """Join the ends that corner and kink cuts made to the trace continuing them.

    Where a hair crosses another at a T or a shallow angle, its crest may run on into
    the other hair's crest without a junction, and its own continuation past the
    crossing stays a separate piece: the corner cut parts the two hairs but leaves the
    first one broken. Each end a cut made may now join another trace's end by the
    ordinary rules (:func:`~hairtrial.measure._ridges.link_segments`: the bridge dark
    all along, the other end ahead and near the line), turning by at most
    :data:`_RELINK_MAX_DEG`, never to the part it was cut from. A join that makes a
    corner or a kink again (chords as long as the first cut's) is cut the same way; a
    trace that joins nothing is returned as it was.

    Parameters
    ----------
    traces : list of (P, 2) ndarray, px
        Traces after the corner and kink cuts, in order along each cut trace.
    cuts : (K, 2) ndarray of int
        The ends each cut made (``2 i + 1`` the end of trace ``i``, ``2 i + 2`` the
        start of trace ``i + 1``).
    od : (M, N) ndarray of float32
        Absorptance (working resolution).
    diameter_px : (M, N) ndarray of float32
        Detection scale per pixel.
    max_gap : float, px
        The ordinary link gap.
    corner_chord : float, px
        Shortest chord of the corner and kink tests.

    Returns
    -------
    list of (P, 2) ndarray, px
        The traces, some joined.
    """
    scale = _piece_widths(traces, diameter_px)
    before = {id(t) for t in traces}
    relinked = _ridges.link_segments(
        traces,
        max_gap=max_gap,
        max_angle_deg=_RELINK_MAX_DEG,
        od=od,
        widths=scale,
        half_widths=_shaft_widths(traces, od, scale),
        apart=cuts,
        fresh=np.unique(cuts.ravel()),
        keep_unjoined=True,
    )
    out: list[F64] = []
    for pts in relinked:
        if id(pts) in before:
            out.append(pts)
        else:
            width = float(_piece_widths([pts], diameter_px)[0])
            out.extend(_split_corners_kinks(pts, width, corner_chord))
    return out


def _stubs(
    traces: list[F64],
    scale_px: F64,
    shafts: list[F64],
    od: F32,
    min_len: float,
    exclude: NDArray[np.bool_] | None = None,
) -> list[_Candidate]:
    """Hairs cut to a stub among crests too short, or too blob-like, to be a shaft.

    A freshly clipped hair may be only two or three shaft widths long: its crest is
    shorter than `min_len` (the crest stops about half a width short of each end) and
    shorter than :data:`_MIN_ASPECT` times the detection scale, so it falls with the
    blobs (openings, yellow dots, flakes). Seen along its own axis it is a bar: the
    absorptance stays above half its crest level over a visible length of at least
    :data:`_STUB_LENGTH` times `min_len` and :data:`_STUB_ASPECT` times its width at half
    that level, and falls below :data:`_STUB_END` of that level just past *both* ends
    (bare skin; the grey shadow past an exit stays fainter than that), the whole bar
    inside the image and clear of overlays. It is as dark as a shaft: its crest level is at least
    :data:`_STUB_LEVEL` of the median level of the image's shafts (a ring of grey
    shadow round an opening, or a flake, is fainter than the hairs growing there). Its
    edges are parallel and it is dark all along (:func:`_bar_like`), where a patch of
    pigment or a pool of shadow is ragged.

    Parameters
    ----------
    traces : list of (P, 2) ndarray, px
        Crests left out as too short or too blob-like (x, y), off the accepted shafts.
    scale_px : (len(traces),) ndarray, px
        Their detection-scale diameters.
    shafts : list of (P, 2) ndarray, px
        The accepted shafts' crests: their median level is the reference. With fewer
        than 3 of them, the stub candidates' own levels join the reference.
    od : (M, N) float32 ndarray
        Absorptance at the working resolution.
    min_len : float, px
        Shortest shaft crest the measurement reports.
    exclude : (M, N) ndarray of bool, optional
        Overlays (status bars, text boxes), zero in `od`: a bar touching one is not
        known to end there (the shaft may run on under it), so it is no stub.

    Returns
    -------
    list of _Candidate
        The stubs, each a straight crest spanning its visible length at half level.
    """
    m, n = od.shape
    levels = _shaft_levels(od, traces)
    reference = list(_shaft_levels(od, shafts))
    if len(reference) < 3:
        reference += list(levels)
    ref = float(np.median(reference)) if reference else 0.0
    if ref <= 0:
        return []
    widths = _half_widths(traces, od, list(scale_px))
    out: list[_Candidate] = []
    for pts, level, scale, width in zip(traces, levels, scale_px, widths, strict=True):
        if level < _STUB_LEVEL * ref:
            continue
        chord = pts[-1] - pts[0]
        crest = float(np.hypot(chord[0], chord[1]))
        if crest < 1.0:
            continue
        unit = chord / crest
        normal = np.array([-unit[1], unit[0]])
        reach = 1.5 * max(float(scale), float(width)) + 4.0
        t = np.arange(-reach, crest + reach + 0.25, 0.5)
        across = np.linspace(-0.25 * width, 0.25 * width, 3)
        x = pts[0, 0] + t[None, :] * unit[0] + across[:, None] * normal[0]
        y = pts[0, 1] + t[None, :] * unit[1] + across[:, None] * normal[1]
        profile = _ridges.remap_points(od, x.ravel(), y.ravel()).reshape(x.shape).mean(axis=0)
        on = profile >= 0.5 * level
        mid = int(np.argmin(np.abs(t - 0.5 * crest)))
        if not on[mid]:
            continue
        off = np.flatnonzero(~on)
        lo = int(off[off < mid].max()) + 1 if (off < mid).any() else 0
        hi = int(off[off > mid].min()) - 1 if (off > mid).any() else len(t) - 1
        visible = t[hi] - t[lo]
        if visible < _STUB_LENGTH * min_len or visible < _STUB_ASPECT * width:
            continue
        past = max(2.0, 0.5 * float(width))
        ends = np.interp([t[lo] - past, t[hi] + past], t, profile)
        if lo == 0 or hi == len(t) - 1 or ends.max() > _STUB_END * level:
            continue
        start = pts[0] + unit * t[lo]
        stop = pts[0] + unit * t[hi]
        margin = past + _BORDER_PX
        if not all(_inside(p, m, n, margin) for p in (start, stop)):
            continue
        if exclude is not None and _near_overlay(exclude, start, stop, unit, past, float(width)):
            continue
        if not _bar_like(od, start, stop, float(width)):
            continue
        count = max(2, math.ceil(float(visible)) + 1)
        line = start[None, :] + np.linspace(0.0, 1.0, count)[:, None] * (stop - start)[None, :]
        out.append(_Candidate(points=line, diameter_px=float(width), strength=float(level)))
    return out


def _at_pixels(image: NDArray[Any], pts: F64) -> NDArray[Any]:
    """Values of `image` at the pixels nearest to points (x, y), clipped to the image."""
    m, n = image.shape[:2]
    cols = np.clip(np.rint(pts[:, 0]).astype(np.intp), 0, n - 1)
    rows = np.clip(np.rint(pts[:, 1]).astype(np.intp), 0, m - 1)
    return image[rows, cols]


def _near_overlay(
    exclude: NDArray[np.bool_], start: F64, stop: F64, unit: F64, past: float, width: float
) -> bool:
    """Whether an overlay touches a bar: within `past` (px) beyond its ends or beside it.

    Samples a grid every pixel over the bar from `past` + 2 px before its start to as far
    past its stop, out to half its `width` + 2 px on either side.
    """
    along = np.arange(-(past + 2.0), float(np.hypot(*(stop - start))) + past + 2.5, 1.0)
    side = np.arange(-(0.5 * width + 2.0), 0.5 * width + 2.5, 1.0)
    normal = np.array([-unit[1], unit[0]])
    pts = (
        start[None, None, :]
        + along[:, None, None] * unit[None, None, :]
        + side[None, :, None] * normal[None, None, :]
    ).reshape(-1, 2)
    return bool(_at_pixels(exclude, pts).any())


def _border_caps(
    od: F32,
    exclude: NDArray[np.bool_] | None,
    ref: float,
    diam_range: tuple[float, float],
) -> list[_Candidate]:
    """Hairs showing only the cap of their shaft on the image border.

    A hair leaving the skin a few pixels inside the border and growing out of the field
    shows only its exit: a dark cap, cut by the border, shorter than the crest any
    detection scale gives a shaft. A hair entering the field with its cut tip just
    inside, or a dark dot cut by the border, looks much the same: a cap is reported
    only where its own ends put the exit at its inner end (the shadow past it; see
    :func:`_measure_candidates`), so that only the first kind is reported and counted.

    Along each image edge the outermost :data:`_CAP_ROWS` rows are read for runs at
    least half `ref` (the image's median shaft level) dark, from the smallest diameter
    (and 3 px) to three times the largest wide (a shaft crossing the border at a slant
    cuts a longer run).
    A run's dark region (the pixels above half `ref` connected to it, inside a window
    2.5 run widths deep and wide) must close inside the window: a longer shaft is the
    detection's own. The cap's axis is the line through the middles of the region's
    rows parallel to the border, over its nearer half (the far half is cut by the end of
    the shaft); its diameter is the run's width projected across that axis. It is kept
    when its median absorptance is at least :data:`_STUB_LEVEL` of `ref` (as dark as
    the image's shafts; a pigment spot or a shadow is fainter), its diameter lies in
    `diam_range` and it shows :data:`_CAP_MIN_DEPTH` to :data:`_CAP_MAX_DEPTH`
    diameters inside the field. Runs touching a burned-in overlay are left alone.

    Parameters
    ----------
    od : (M, N) ndarray of float32
        Absorptance at the working resolution.
    exclude : (M, N) ndarray of bool or None
        Burned-in overlays.
    ref : float
        Median absorptance of the image's traced shafts.
    diam_range : (float, float), px
        Smallest and largest shaft diameter.

    Returns
    -------
    list of _Candidate
        One straight centreline per cap, from the border inwards (x, y).
    """
    m, n = od.shape
    out: list[_Candidate] = []
    if ref <= 0 or min(m, n) <= 4 * _CAP_ROWS:
        return out
    dark = od >= 0.5 * ref
    lo_d, hi_d = diam_range
    k = _CAP_ROWS
    hidden_all = np.zeros(od.shape, dtype=bool) if exclude is None else exclude
    # each edge: its strip (rows along the edge, outermost first), the inward unit normal,
    # and the edge's own coordinate (x of a column edge, y of a row edge)
    edges = (
        (od[:k], hidden_all[:k], (0.0, 1.0), 0.0),
        (od[m - k :][::-1], hidden_all[m - k :], (0.0, -1.0), m - 1.0),
        (od[:, :k].T, hidden_all[:, :k].T, (1.0, 0.0), 0.0),
        (od[:, n - k :][:, ::-1].T, hidden_all[:, n - k :].T, (-1.0, 0.0), n - 1.0),
    )
    for rows_od, rows_hidden, normal, fixed in edges:
        strip = np.asarray(rows_od, dtype=np.float64).mean(axis=0)
        hidden: NDArray[np.bool_] = np.asarray(np.asarray(rows_hidden, dtype=bool).any(axis=0))
        inward = np.array(normal)
        along_edge = np.array([-inward[1], inward[0]])
        row_edge = normal[0] == 0.0
        on = np.r_[False, strip >= 0.5 * ref, False]
        starts = np.flatnonzero(~on[:-1] & on[1:])
        stops = np.flatnonzero(on[:-1] & ~on[1:])
        for a, b in zip(starts, stops, strict=True):
            w = float(b - a)
            if w < max(lo_d, 3.0) or w > 3.0 * hi_d:
                continue
            if hidden[max(a - 1, 0) : b + 1].any():
                continue
            t = 0.5 * (a + b - 1)
            edge = np.array([t, fixed] if row_edge else [fixed, t])
            reach = math.ceil(2.5 * w) + 2
            x0 = int(max(edge[0] - reach, 0))
            x1 = int(min(edge[0] + reach + 1, n))
            y0 = int(max(edge[1] - reach, 0))
            y1 = int(min(edge[1] + reach + 1, m))
            win = dark[y0:y1, x0:x1].astype(np.uint8)
            _, labels = cv2.connectedComponents(win, connectivity=8)
            label = labels[int(edge[1]) - y0, int(edge[0]) - x0]
            if label == 0:
                continue
            rows, cols = np.nonzero(labels == label)
            # the region must close inside the window, on every side but the border's
            if (
                (rows.min() == 0 and y0 > 0)
                or (rows.max() == y1 - y0 - 1 and y1 < m)
                or (cols.min() == 0 and x0 > 0)
                or (cols.max() == x1 - x0 - 1 and x1 < n)
            ):
                continue
            pts = np.c_[cols + x0, rows + y0].astype(float)
            if float(np.median(od[rows + y0, cols + x0])) < _STUB_LEVEL * ref:
                continue
            # the shaft's axis: the middles of the rows parallel to the border, over the
            # nearer half of the region (the far half is cut by the shaft's end)
            level = np.rint((pts - edge) @ inward).astype(np.intp)
            if level.max() < 1:
                continue  # a sliver one row deep
            span = np.arange(max(2, math.ceil(0.5 * (int(level.max()) + 1))))
            middles = [float(np.mean((pts[level == k] - edge) @ along_edge)) for k in span]
            slope = float(np.polyfit(span, middles, 1)[0])
            axis = inward + slope * along_edge
            axis /= float(np.hypot(axis[0], axis[1]))
            if float(axis @ inward) <= 0.2:
                continue
            diameter = w * float(axis @ inward)
            depth = float(np.max((pts - edge) @ axis))
            if not lo_d <= diameter <= hi_d:
                continue
            if not _CAP_MIN_DEPTH * diameter <= depth <= _CAP_MAX_DEPTH * diameter:
                continue
            inner = edge + axis * max(depth - 0.25 * diameter, 1.0)
            count = max(2, math.ceil(float(np.hypot(*(inner - edge)))) + 1)
            line = edge[None, :] + np.linspace(0.0, 1.0, count)[:, None] * (inner - edge)[None, :]
            out.append(_Candidate(points=line, diameter_px=diameter, strength=ref, cap=True))
    return out


def _run_on_into_partners(cands: list[_Candidate], shafts: F64, od: F32) -> list[_Candidate]:
    """Run traces on, straight, inside the shaft their end lies on at a small angle.

    Where two hairs of a unit leave one opening at a small angle, or one hair crosses
    another almost along it, the two shafts overlap over ``d / sin θ``: one dark band
    with one crest, which the detection gives to one of them. The other's crest stops
    where the shafts part, on the first one's shaft, and its exit (or the rest of it)
    was lost. An end lying on another trace's shaft (within half its width, probed half
    a shaft width past the end) that runs within :data:`_RUN_ON_MAX_DEG` of that
    trace there goes on straight along its own end direction as long as the absorptance
    keeps :data:`_RUN_ON_LEVEL` of its own shaft's median (at most
    :data:`_RUN_ON_LENGTHS` times its traced length, inside the image). The run-on
    trace keeps its crest as ``core``: the test for second crests of one wide shaft
    (:func:`_outside_wider`) judges it by that alone, since its run-on part lies in the
    other shaft by construction. Where the shared stretch has a crest of its own, both
    hairs run on along it: a trace along which two others run on, each over
    :data:`_SHARED_SHARE` of it or more, is that stretch and not a third hair (dropped).

    Parameters
    ----------
    cands : list of _Candidate
        Accepted traces (working resolution).
    shafts : (len(cands),) ndarray, px
        Their shaft widths.
    od : (M, N) ndarray of float32
        Absorptance at the working resolution.

    Returns
    -------
    list of _Candidate
        The same traces, some run on.
    """
    from scipy.spatial import cKDTree

    if len(cands) < 2:
        return cands
    lines = [_ridges.resample(c.points, 1.0) for c in cands]
    sizes = [len(x) for x in lines]
    allpts = np.concatenate(lines)
    owner = np.repeat(np.arange(len(lines)), sizes)
    tangent = np.concatenate(
        [np.gradient(x, axis=0) if len(x) > 1 else np.ones_like(x) for x in lines]
    )
    tangent /= np.maximum(np.hypot(tangent[:, 0], tangent[:, 1]), 1e-9)[:, None]
    tree = cKDTree(allpts)
    levels = _shaft_levels(od, lines)
    widest = float(np.max(shafts))
    cos_max = math.cos(math.radians(_RUN_ON_MAX_DEG))
    # every end's outward direction and the probe half a shaft width past it
    usable = [i for i, line in enumerate(lines) if len(line) >= 6]
    ways = _ridges.end_directions(
        [lines[i] for i in usable],
        np.maximum(4.0, 2.0 * np.asarray([shafts[i] for i in usable], dtype=float)),
        np.ones(len(usable)),
    )
    who = np.repeat(np.asarray(usable, dtype=np.intp), 2)
    tip = np.array([lines[i][k] for i in usable for k in (0, -1)]).reshape(-1, 2)
    probes = tip + ways * (0.5 * shafts[who] + 2.0)[:, None]
    # points of other traces' shafts there, running within the angle (all ends at once)
    found = tree.query_ball_point(probes, r=1.0 + 0.5 * widest) if len(probes) else []
    counts = np.array([len(h) for h in found], dtype=np.intp)
    hit = (
        np.concatenate([np.asarray(h, dtype=np.intp) for h in found])
        if counts.sum()
        else np.zeros(0, np.intp)
    )
    end_of = np.repeat(np.arange(len(found)), counts)
    other = owner[hit]
    gap = np.hypot(*(allpts[hit] - probes[end_of]).T)
    along = np.abs(np.sum(tangent[hit] * ways[end_of], axis=1)) >= cos_max
    good = np.flatnonzero((other != who[end_of]) & (gap <= 0.5 * shafts[other] + 1.0) & along)
    # the nearest such point names the shaft the end lies on
    good = good[np.lexsort((gap[good], end_of[good]))]
    partner = np.full(len(found), -1, dtype=np.intp)
    firsts, at = np.unique(end_of[good], return_index=True)
    partner[firsts] = other[good[at]]
    m, n = od.shape
    runs: dict[tuple[int, bool], F64] = {}
    into: dict[int, set[int]] = {}
    for e in np.flatnonzero(partner >= 0):
        i, at_start, j = int(who[e]), e % 2 == 0, int(partner[e])
        line, way, end = lines[i], ways[e], tip[e]
        steps = np.arange(1.0, _RUN_ON_LENGTHS * len(line) + 1.0)
        run = end[None, :] + steps[:, None] * way[None, :]
        inside = (run[:, 0] >= 0) & (run[:, 0] <= n - 1) & (run[:, 1] >= 0) & (run[:, 1] <= m - 1)
        dark = inside & (
            _ridges.remap_points(od, run[:, 0], run[:, 1]) >= _RUN_ON_LEVEL * levels[i]
        )
        length = len(dark) if dark.all() else int(np.argmin(dark))
        if length < 3:
            continue
        # the shafts share their stretch up to the partner's end (a unit's opening) or
        # the border; a run leaving the partner's side ended on it (end to end)
        stop = run[length - 1]
        ends = lines[j][[0, -1]]
        reach = max(shafts[i], shafts[j]) + 2.0
        at_end = np.min(np.hypot(*(ends - stop).T)) <= reach
        if at_end or length == len(dark) or not inside[length]:
            runs[(i, at_start)] = run[:length]
            # how much of the other trace this run lies along
            near = cKDTree(run[:length]).query(lines[j])[0] <= 0.5 * shafts[j] + 2.0
            if near.mean() >= _SHARED_SHARE:
                into.setdefault(j, set()).add(i)
    out: list[_Candidate] = []
    for i, (cand, line) in enumerate(zip(cands, lines, strict=True)):
        if len(into.get(i, ())) >= 2:
            continue  # two hairs run on along all of it: the stretch they share
        before, after = runs.get((i, True)), runs.get((i, False))
        if before is None and after is None:
            out.append(cand)
            continue
        parts = [line]
        if before is not None:
            parts.insert(0, before[::-1])
        if after is not None:
            parts.append(after)
        out.append(replace(cand, points=np.vstack(parts), core=line))
    return out


class _Footprint:
    """Pixels covered by accepted traces, each drawn as wide as its shaft.

    A trace with :data:`_DUPLICATE_SHARE` of its points on the footprint lies along an
    accepted one: a second crest of the same shaft or band, not another hair. Given the
    absorptance map, a point counts only where the shaft is continuous between it and
    the nearest accepted trace: two crests of one band have shaft between them, while
    two hairs parting from one opening (a V) have skin between them wherever they are
    apart, however close the footprint holds them (:data:`_GAP_DIP`).
    """

    def __init__(self, shape: tuple[int, int], od: F32 | None = None) -> None:
        self.mask = np.zeros(shape, dtype=np.uint8)
        self.od = od
        self.traces: list[F64] = []
        self.boxes: list[tuple[float, float, float, float]] = []

    def covers(self, pts: F64) -> bool:
        """Whether the trace `pts` (px) lies along accepted traces."""
        m, n = self.mask.shape
        ip = np.rint(pts).astype(np.int32)  # np.round's values, without its wrappers
        col = np.minimum(np.maximum(ip[:, 0], 0), n - 1)
        row = np.minimum(np.maximum(ip[:, 1], 0), m - 1)
        inside = self.mask[row, col] > 0
        if inside.mean() < _DUPLICATE_SHARE:
            return False
        if self.od is None:
            return True
        apart = self._apart(pts[inside])
        return bool((inside.sum() - apart.sum()) >= _DUPLICATE_SHARE * len(pts))

    def _apart(self, pts: F64) -> NDArray[np.bool_]:
        """Whether skin lies between each point (px) and the nearest accepted trace."""
        assert self.od is not None
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        near = [
            t
            for t, (x0, y0, x1, y1) in zip(self.traces, self.boxes, strict=True)
            if x0 <= hi[0] and x1 >= lo[0] and y0 <= hi[1] and y1 >= lo[1]
        ]
        if not near:
            return np.zeros(len(pts), dtype=bool)
        from scipy.spatial import cKDTree

        accepted = np.concatenate(near)
        dist, idx = cKDTree(accepted).query(pts)
        other = accepted[idx]
        far = dist >= _GAP_MIN_PX
        out = np.zeros(len(pts), dtype=bool)
        if not far.any():
            return out
        p, q = pts[far], other[far]
        t = np.linspace(0.25, 0.75, 5)
        between = p[:, None, :] + t[None, :, None] * (q - p)[:, None, :]
        mid = _ridges.remap_points(self.od, between[..., 0].ravel(), between[..., 1].ravel())
        ends = _ridges.remap_points(
            self.od, np.concatenate([p[:, 0], q[:, 0]]), np.concatenate([p[:, 1], q[:, 1]])
        ).reshape(2, -1)
        level = ends.min(axis=0)
        dip = mid.reshape(len(p), len(t)).min(axis=1)
        out[far] = (level > 0) & (dip < _GAP_DIP * level)
        return out

    def add(self, pts: F64, width_px: float) -> None:
        """Accept the trace `pts` (px), `width_px` wide (at least 3 px)."""
        ip = np.rint(pts).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(self.mask, [ip], False, 1, thickness=max(3, round(width_px)))
        if self.od is not None:
            reach = 0.5 * max(3.0, width_px) + 1.0
            lo, hi = pts.min(axis=0) - reach, pts.max(axis=0) + reach
            self.traces.append(pts)
            self.boxes.append((float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])))


def _half_widths(traces: list[F64], od: F32, diameters_px: list[float]) -> F64:
    """Full width (px) at half the axis absorptance, per trace: median of 5 profiles.

    The profiles are sampled every pixel over ± the trace's detection-scale diameter at
    five points spread along it, all traces in one gather; the axis level is the largest
    of the three central samples (the crest may sit a pixel off the axis). A trace of
    fewer than 3 points keeps its detection-scale diameter.
    """
    count = len(traces)
    out = np.asarray(diameters_px, dtype=np.float64).copy()
    usable = [i for i in range(count) if len(traces[i]) >= 3]
    if not usable:
        return out
    half = np.array([math.ceil(out[i]) for i in usable])
    off = np.arange(-int(half.max()), int(half.max()) + 1, dtype=np.float64)  # (K,)
    mid = len(off) // 2
    # five points spread along each trace (np.linspace(1, P - 2, 5), rounded), all at once
    sizes = np.array([len(traces[i]) for i in usable], dtype=np.intp)
    allpts = np.concatenate([traces[i] for i in usable])
    first = np.r_[0, np.cumsum(sizes)[:-1]]
    quarter = (sizes - 3).astype(np.float64) / 4.0
    spread = np.arange(5, dtype=np.float64)[None, :] * quarter[:, None] + 1.0
    spread[:, -1] = sizes - 2
    idx = (first[:, None] + spread.round().astype(np.intp)).ravel()  # (T * 5,)
    tang = allpts[idx + 1] - allpts[idx - 1]
    tang /= np.maximum(np.hypot(tang[:, 0], tang[:, 1]), 1e-9)[:, None]
    x = (allpts[idx, 0, None] - off[None, :] * tang[:, 1, None]).reshape(len(usable), 5, -1)
    y = (allpts[idx, 1, None] + off[None, :] * tang[:, 0, None]).reshape(len(usable), 5, -1)
    vals = _ridges.remap_points(od, x.ravel(), y.ravel(), border=cv2.BORDER_REPLICATE)
    vals = vals.reshape(x.shape)
    centre = vals[:, :, mid - 1 : mid + 2].max(axis=2)
    within = np.abs(off)[None, None, :] <= half[:, None, None]
    above = ((vals >= 0.5 * centre[:, :, None]) & within).sum(axis=2)
    out[usable] = np.maximum(np.median(above, axis=1), 1.0)
    return out


def _shaft_widths(traces: list[F64], od: F32, scale_px: F64) -> F64:
    """Per trace, the narrower of its detection-scale width and its half-absorptance width.

    The detection scales are a factor ~2 apart, so a shaft may answer best at a scale
    wider than itself (px).
    """
    return np.minimum(scale_px, _half_widths(traces, od, list(scale_px)))


def _split_width_steps(pieces: list[F64], od: F32, diameter_px: F32) -> list[F64]:
    """Cut crest pieces where the shaft under them changes width for good.

    The profiles reach as far as the widest detection scale met along the piece.
    """
    if not pieces:
        return pieces
    m, n = diameter_px.shape
    ip = np.round(np.concatenate(pieces)).astype(np.intp)
    vals = diameter_px[np.clip(ip[:, 1], 0, m - 1), np.clip(ip[:, 0], 0, n - 1)]
    starts = np.r_[0, np.cumsum([len(p) for p in pieces])[:-1]]
    reach = np.maximum.reduceat(vals, starts)
    profiles = _ridges.width_profiles(pieces, od, reach, step=_WIDTH_STEP)
    out: list[F64] = []
    for pts, widths in zip(pieces, profiles, strict=True):
        out.extend(
            _ridges.split_at_width_steps(
                pts,
                widths,
                step=_WIDTH_STEP,
                min_ratio=_WIDTH_RATIO,
                min_widths=_WIDTH_PART,
            )
        )
    return out


def _piece_widths(pieces: list[F64], diameter_px: F32) -> F64:
    """Median detection-scale diameter (px) under each crest piece."""
    if not pieces:
        return np.zeros(0)
    m, n = diameter_px.shape
    ip = np.round(np.concatenate(pieces)).astype(np.intp)
    vals = diameter_px[np.clip(ip[:, 1], 0, m - 1), np.clip(ip[:, 0], 0, n - 1)]
    return _ridges.group_medians(vals, np.array([len(p) for p in pieces]))


def _strip_means(
    od: F32,
    origin: F64,
    direction: F64,
    diameter: F64,
    reach: F64,
    side: F64,
    owners: NDArray[np.int32] | None = None,
    strip_end: NDArray[np.intp] | None = None,
    partners: _PartnerEnds | None = None,
) -> F64:
    """Mean of `od` in strips past shaft ends, all at once (px units of `od`).

    Strip ``s`` starts ``diameter/2 + 1.5`` px past ``origin[s]`` along the outward unit
    ``direction[s]``, runs ``reach[s]`` px on (8 samples) and is ``max(diameter, 2)`` px
    wide (5 samples), shifted ``side[s]`` px sideways (to sample the surroundings of the
    axis). With `owners` (a map of traced shafts numbered from 1, 0 for none),
    `strip_end` (the end, numbered ``2·i`` and ``2·i + 1`` for shaft ``i``, of each strip)
    and `partners`, a strip sees bare skin, its own shaft, and a unit partner's shaft in
    front of that partner's end (:meth:`_PartnerEnds.visible`); samples on any other
    shaft are left out, as are those beyond the image. A strip with less than half its
    samples left gives NaN.
    """
    count = len(origin)
    if count == 0:
        return np.zeros(0)
    normal = np.column_stack([-direction[:, 1], direction[:, 0]])
    start = 0.5 * diameter + 1.5
    along = np.linspace(start, start + reach, 8, axis=1)
    across = np.linspace(-0.5, 0.5, 5)[None, :] * np.maximum(diameter, 2.0)[:, None] + side[:, None]
    px = (
        origin[:, 0, None, None]
        + along[:, :, None] * direction[:, 0, None, None]
        + across[:, None, :] * normal[:, 0, None, None]
    )
    py = (
        origin[:, 1, None, None]
        + along[:, :, None] * direction[:, 1, None, None]
        + across[:, None, :] * normal[:, 1, None, None]
    )
    m, n = od.shape
    inside = ((px >= 0) & (px <= n - 1) & (py >= 0) & (py <= m - 1)).reshape(count, -1)
    if owners is not None and strip_end is not None and partners is not None:
        cols = np.clip(np.round(px), 0, n - 1).astype(np.intp).reshape(count, -1)
        rows = np.clip(np.round(py), 0, m - 1).astype(np.intp).reshape(count, -1)
        inside &= partners.visible(strip_end, owners[rows, cols], px, py)
    vals = _ridges.remap_points(od, px.ravel(), py.ravel()).reshape(count, -1).astype(np.float64)
    hits = inside.sum(axis=1)
    total = np.where(inside, vals, 0.0).sum(axis=1)
    mean = total / np.maximum(hits, 1)
    return np.where(hits < 0.5 * inside.shape[1], math.nan, mean)


@dataclass(frozen=True)
class _PartnerEnds:
    """Which end of each partner shaft lies near each shaft end, and where it points.

    Past a shared opening the strips of a follicular unit's hairs may see their partners'
    ends, which meet over the opening's shadow; but a partner's shaft *behind* its end is
    its body, not shadow. Where the hairs of a unit lie on one another for a while and
    then part (long hair), their traces end where they part, and the strip past one end
    ran along the partners' bodies: a shadow as dark as the shafts, read as an exit.
    Only samples in front of the partner's end, along its outward direction (less
    :data:`_PARTNER_BEHIND_PX` for the crest's uncertain end), are kept.

    Attributes
    ----------
    keys : (H,) ndarray of int64, sorted
        ``end * stride + shaft number`` (as in the owner map, from 1) of each partner
        shaft with an end near that end: a sparse table, since a dense one of ends by
        shafts grows with the square of the hairs in the image.
    ends : (H,) ndarray of intp
        The partner's end lying there, per key.
    stride : int
        Shaft numbers per end (the number of shafts plus one).
    points, directions : (E, 2) ndarray, px
        Every end's position and outward unit direction (x, y).
    """

    keys: NDArray[np.int64]
    ends: NDArray[np.intp]
    stride: int
    points: F64
    directions: F64

    @classmethod
    def from_hits(
        cls, hits: list[list[int]], shafts: int, points: F64, directions: F64
    ) -> _PartnerEnds:
        """Build the table from each end's nearby ends (`hits`, ends numbered 2·i, 2·i+1)."""
        stride = shafts + 1
        keys: list[int] = []
        ends: list[int] = []
        for e, near in enumerate(hits):
            for h in near:
                if h // 2 != e // 2:
                    keys.append(e * stride + h // 2 + 1)
                    ends.append(h)
        key_arr = np.asarray(keys, dtype=np.int64)
        order = np.argsort(key_arr, kind="stable")
        return cls(
            key_arr[order], np.asarray(ends, dtype=np.intp)[order], stride, points, directions
        )

    def visible(
        self, strip_end: NDArray[np.intp], owner: NDArray[np.int32], px: F64, py: F64
    ) -> NDArray[np.bool_]:
        """Return which samples a strip may see: skin, its own shaft, a partner in front.

        `strip_end` (S,) is the end of each strip (``2·i`` or ``2·i + 1`` for shaft
        ``i``); `owner` (S, K) the shaft number under each of its K samples (0: none), at
        (`px`, `py`) (shaped (S, ...) with K values per strip).
        """
        count = len(strip_end)
        own = (strip_end // 2 + 1)[:, None]
        seen = (owner == 0) | (owner == own)
        if self.keys.size == 0:
            return np.asarray(seen, dtype=bool)
        wanted = strip_end[:, None].astype(np.int64) * self.stride + owner
        pos = np.minimum(np.searchsorted(self.keys, wanted), self.keys.size - 1)
        on_partner = (self.keys[pos] == wanted) & ~seen
        at = np.where(on_partner, self.ends[pos], 0)
        ahead = (px.reshape(count, -1) - self.points[at, 0]) * self.directions[at, 0] + (
            py.reshape(count, -1) - self.points[at, 1]
        ) * self.directions[at, 1]
        return np.asarray(seen | (on_partner & (ahead >= -_PARTNER_BEHIND_PX)), dtype=bool)


def _exit_scores(
    cands: list[_Candidate], lines: list[F64], blue: F32, od: F32, work_um: float
) -> list[tuple[float, float, float, float, float, float]]:
    """Evidence per end: sub-surface shadow past it and converging neighbours.

    The shaft goes on under the translucent epidermis past its exit: there the skin is
    darker in every channel (a grey shadow, a few tenths of the shaft's own absorptance)
    and bluer (Tyndall); past a cut end the skin is bare.

    Returns, per shaft, ``(blue_start, blue_end, near_start, near_end, grey_start,
    grey_end)``; grey is the absorptance past the end on the shaft's axis, less that
    :data:`_SIDE_WIDTHS` diameters to the fainter side (another hair lying across the
    strip, or darker skin, darkens both sides as well; a neighbour of the same unit on
    one side only does not), as a share of the shaft's median absorptance, at least 0.
    Samples on another traced shaft are left out of every strip, unless that shaft has an
    end there too (a unit partner; not the same hair going on across a crossing, see
    :func:`_not_in_line`), and then only in front of that end (:class:`_PartnerEnds`). A
    blue or grey value is NaN when that end's strip on the axis leaves the image or lies
    on other shafts. `lines` are the shafts' trimmed centrelines (the visible shaft, at
    the resolution of `blue` and `od`): the crest may run on into the shadow itself.
    """
    from scipy.spatial import cKDTree

    if not cands:
        return []
    ends = np.array([[p[0], p[-1]] for p in lines]).reshape(-1, 2)
    diam = np.repeat(np.array([c.diameter_px for c in cands], dtype=float), 2)
    reach = np.maximum(2.0 * diam, 150.0 / work_um)
    # hairs of one unit nearly touch where they leave the skin; their cut tips spread
    radius = np.maximum(1.5 * diam, 50.0 / work_um)
    direction = _ridges.end_directions(
        lines,
        np.maximum(4.0, 2.0 * np.array([c.diameter_px for c in cands], dtype=float)),
        np.zeros(len(lines)),
    )
    # each shaft drawn as wide as its detection scale, numbered from 1: a strip past one
    # hair's end measures skin, not another hair lying there (a unit partner's longer
    # shaft past a cut end read as a shadow as dark as the hair itself)
    owners = np.zeros(od.shape, np.int32)
    for i, (c, pts) in enumerate(zip(cands, lines, strict=True)):
        cv2.polylines(
            owners,
            [np.round(pts).astype(np.int32).reshape(-1, 1, 2)],
            False,
            i + 1,
            thickness=max(1, round(c.diameter_px)),
        )
    tree = cKDTree(ends)
    hits = [
        _not_in_line(e, hs, ends, direction)
        for e, hs in enumerate(tree.query_ball_point(ends, r=radius))
    ]
    # the strips past an end may still see bare skin, the hair itself and the partners of
    # its follicular unit whose ends lie there (their shafts meet over the shared
    # opening's shadow), those in front of their ends
    partners = _PartnerEnds.from_hits(hits, len(cands), ends, direction)
    k = len(ends)
    strip_end = np.arange(k)
    shade = _strip_means(
        blue,
        ends,
        direction,
        diam,
        reach,
        np.zeros_like(diam),
        owners,
        strip_end,
        partners,
    )
    offset = _SIDE_WIDTHS * np.maximum(diam, 2.0) + 2.0
    od_strips = _strip_means(
        od,
        np.tile(ends, (3, 1)),
        np.tile(direction, (3, 1)),
        np.tile(diam, 3),
        np.tile(reach, 3),
        np.r_[np.zeros(k), -offset, offset],
        owners,
        np.tile(strip_end, 3),
        partners,
    )
    centre, left, right = od_strips[:k], od_strips[k : 2 * k], od_strips[2 * k :]
    side = np.fmin(left, right)  # the fainter side inside the image, NaN if neither is
    side = np.where(np.isnan(side), 0.0, np.maximum(side, 0.0))
    level = np.repeat(np.maximum(_shaft_levels(od, lines), 1e-3), 2)
    # a shadow is never fainter than bare skin: a negative share is a neighbour's shaft in
    # the side strip (the only one inside the field, near the border), not evidence of a
    # cut end, and it had outweighed the blue shift of a real exit
    grey = np.maximum((centre - side) / level, 0.0)
    # converging ends of other hairs: the partner table holds one key per such end
    near = np.bincount(partners.keys // partners.stride, minlength=k).astype(float)
    return [
        (
            float(shade[2 * i]),
            float(shade[2 * i + 1]),
            float(near[2 * i]),
            float(near[2 * i + 1]),
            float(grey[2 * i]),
            float(grey[2 * i + 1]),
        )
        for i in range(len(cands))
    ]


def _not_in_line(e: int, hits: list[int], ends: F64, direction: F64) -> list[int]:
    """Return the ends among `hits` that are not end `e`'s hair going on across a gap.

    Where another hair crosses a shaft, the shaft's crest stops on either side of it: the
    piece beyond ends facing this end, straight ahead along its outward direction and
    pointing back. That is the same hair going on, not a unit partner converging on a
    shared opening: its shaft past the end is no shadow, and its end no partner's.
    """
    h = np.asarray(hits, dtype=np.intp)
    if len(h) <= 1:
        return list(hits)
    gap = ends[h] - ends[e]
    dist = np.hypot(gap[:, 0], gap[:, 1])
    ahead = (gap @ direction[e]) >= _IN_LINE_COS * dist
    facing = (direction[h] @ -direction[e]) >= _IN_LINE_COS
    continuation = ahead & facing & (dist > 0) & (h // 2 != e // 2)
    return h[~continuation].tolist()


def _shaft_levels(od: F32, lines: list[F64]) -> F64:
    """Median absorptance along each trace (px units of `od`), one remap for all."""
    if not lines:
        return np.zeros(0)
    resampled = [_ridges.resample(pts, 1.0) for pts in lines]
    xy = np.concatenate(resampled)
    vals = _ridges.remap_points(od, xy[:, 0], xy[:, 1], border=cv2.BORDER_REPLICATE)
    return _ridges.group_medians(vals, np.array([len(r) for r in resampled]))


def _not_skin(
    channels: F32, hair_px: float
) -> tuple[NDArray[np.bool_], NDArray[np.bool_], float, tuple[int, int]]:
    """Pixels that image no skin: burned-in overlays and the frame of a round field.

    Returns the union, the frame alone (:func:`._absorbance.outside_field`), the imaged
    area (px²) and the rows hidden at the top and bottom (:func:`._absorbance.hidden_rows`).
    """
    outside, imaged_px = _absorbance.outside_field(channels, hair_px)
    bars = _absorbance.status_bars(channels)  # masked over their labels, their rows hidden
    mask = _absorbance.overlay_mask(channels, bars) | outside
    hidden = _absorbance.hidden_rows(mask, _absorbance.bar_rows(bars, channels.shape[0]))
    return mask, outside, imaged_px, hidden


def absorptance_image(
    image: NDArray[Any], *, um_per_px: float, config: MeasureConfig | None = None
) -> F32:
    """Return the absorptance of dark hair over skin, ``1 - I / I_skin``, per pixel.

    The same map :func:`measure_image` traces hairs on (full resolution, skin background
    removed, burned-in overlays and the frame round a round field of view set to 0), for
    callers that follow a known shaft through another image, such as the
    phototrichogram's regrowth measurement.

    Parameters
    ----------
    image : (M, N) or (M, N, 3) ndarray
        Greyscale or RGB pixels, any integer dtype or float in [0, 1]; not modified.
    um_per_px : float, µm/px
        Calibration of the image.
    config : MeasureConfig, optional
        Parameters (``background_um`` and ``max_diameter_um`` are used).

    Returns
    -------
    (M, N) ndarray of float32, in [0, 1]
        0 on bare skin, near 1 inside an opaque shaft.

    Raises
    ------
    InputError
        If the image is not a finite 2-D/3-D array or `um_per_px` is not positive.
    """
    arr = check_image(image)
    um = check_um_per_px(um_per_px)
    config = config or MeasureConfig()
    channels = _absorbance.to_float_channels(arr)
    overlay, _, _, _ = _not_skin(channels, config.max_diameter_um / um)
    bg = _absorbance.skin_background(
        channels,
        size_px=config.background_um / um,
        hair_px=config.max_diameter_um / um,
        exclude=overlay,
    )
    od = _absorbance.absorptance(channels, bg)
    od[overlay] = 0.0
    return od


def measure_image(
    image: NDArray[Any], *, um_per_px: float, config: MeasureConfig | None = None
) -> ImageMeasurement:
    """Find, trace and measure every hair in a trichoscopy image.

    Parameters
    ----------
    image : (M, N) or (M, N, 3) ndarray
        Greyscale or RGB pixels, any integer dtype or float in [0, 1]; not modified.
    um_per_px : float, µm/px
        Calibration of the image (no default: a missing calibration is an error).
    config : MeasureConfig, optional
        Parameters; the defaults suit clipped scalp hair at 3–8 µm/px.

    Returns
    -------
    ImageMeasurement
        Hairs with exit, tip, sub-pixel centreline (px, origin at the top-left pixel's
        corner), diameter and length (µm), class and confidence, and per-image endpoints.

    Raises
    ------
    InputError
        If the image is not a finite 2-D/3-D array or `um_per_px` is not positive.
    """
    arr = check_image(image)
    um = check_um_per_px(um_per_px)
    config = config or MeasureConfig()
    m, n = arr.shape[:2]
    overlay: NDArray[np.bool_] | None = None
    hidden = (0, 0)
    # distance (px) to the frame round a round field of view (None without one)
    field_px: F32 | None = None
    imaged_px = float(m * n)
    factor = config.work_um_per_px / um
    factor = factor if factor > 1.25 else 1.0
    work_um = um * factor
    wm, wn = max(2, round(m / factor)), max(2, round(n / factor))
    polarities = (True, False) if config.light_hairs else (True,)
    records: list[HairRecord] = []
    exit_conf: list[float] = []
    psf_um = math.nan
    for dark in polarities:
        # the float copy and the full-size background live only until the absorptance is
        # made: a 12-Mpx image must stay within the memory budget
        channels = _absorbance.to_float_channels(arr)
        if overlay is None:
            # the frame round a round field of view is no skin: masked as an overlay, and
            # its edge cuts hairs as the image's border does
            overlay, outside, imaged_px, hidden = _not_skin(channels, config.max_diameter_um / um)
            if outside.any():
                field_px = np.asarray(
                    cv2.distanceTransform((~outside).astype(np.uint8), cv2.DIST_L2, 3), np.float32
                )
            del outside
        bg = _absorbance.skin_background(
            channels,
            size_px=config.background_um / um,
            hair_px=config.max_diameter_um / um,
            dark=dark,
            exclude=overlay,
        )
        # the blue shift (red less blue absorptance) comes from the same channel ratios
        blue = np.zeros(arr.shape[:2], dtype=np.float32)
        od = _absorbance.absorptance(channels, bg, dark=dark, blue_out=blue if dark else None)
        # where the shaft is seen by its colour only (the grey pass), at full resolution
        grey_borne: NDArray[np.bool_] | None = None
        if dark and config.grey_hairs:
            grey = _absorbance.neutral_contrast(
                channels,
                bg,
                min_skin_chroma=config.ridge_high_od,
                max_chroma_share=_GREY_CHROMA_SHARE,
                min_darkening=_GREY_MIN_DARKENING,
            )
            grey_borne = (grey > od) & (od < config.ridge_high_od)
            np.maximum(od, grey, out=od)
            del grey
        od[overlay] = 0.0
        del channels
        bg_scale = 8.0
        bg_small = np.asarray(
            cv2.resize(
                bg,
                (max(2, round(n / bg_scale)), max(2, round(m / bg_scale))),
                interpolation=cv2.INTER_AREA,
            ),
            np.float32,
        ).reshape(max(2, round(m / bg_scale)), max(2, round(n / bg_scale)), -1)
        del bg
        if factor > 1.0:
            blue = np.asarray(cv2.resize(blue, (wn, wm), interpolation=cv2.INTER_AREA), np.float32)
            od_work = np.asarray(cv2.resize(od, (wn, wm), interpolation=cv2.INTER_AREA), np.float32)
            excl = (
                cv2.resize(overlay.astype(np.uint8), (wn, wm), interpolation=cv2.INTER_NEAREST) > 0
            )
        else:
            od_work, excl = od, overlay
        # white shafts brighten the skin far more than bright scale lines do
        pass_config = config if dark else replace(config, ridge_high_od=config.light_ridge_high_od)
        cands = _detect(od_work, excl if excl.any() else None, work_um, pass_config)
        if cands and arr.ndim == 3:
            keep = _broadband(
                [c.points for c in cands],
                arr,
                bg_small,
                factor,
                dark,
                config.ridge_high_od if config.grey_hairs else None,
            )
            cands = [c for c, ok in zip(cands, keep, strict=True) if ok]
        if cands and grey_borne is not None:
            keep = _straight_where_grey(cands, grey_borne, factor)
            cands = [c for c, ok in zip(cands, keep, strict=True) if ok]
        if cands and not dark:
            keep = _light_shafts(cands, od_work, records, um, factor)
            cands = [c for c, ok in zip(cands, keep, strict=True) if ok]
        if not cands:
            continue
        hairs, conf, psf = _measure_candidates(
            cands, od, blue, od_work, factor, um, overlay, config, len(records), dark, field_px
        )
        records.extend(hairs)
        exit_conf.extend(conf)
        if dark or math.isnan(psf_um):
            psf_um = psf
    area_cm2 = imaged_px * um * um * 1e-8
    summary = summarize_hairs(records, area_cm2=area_cm2, classes=config.classes)
    edges = np.arange(
        0.0, config.histogram_max_um + config.histogram_bin_um / 2, config.histogram_bin_um
    )
    diam = np.array([h.diameter_um for h in records if h.exit_px is not None])
    counts, _ = np.histogram(np.clip(diam, 0, edges[-1] - 1e-9), bins=edges)
    log.debug("measure_image: %d hairs (%d counted)", len(records), summary["hair_count"])
    return ImageMeasurement(
        hairs=tuple(records),
        summary=summary,
        histogram_counts=tuple(int(c) for c in counts),
        histogram_edges_um=tuple(float(e) for e in edges),
        exit_confidence=tuple(exit_conf),
        um_per_px=um,
        shape=(m, n),
        area_cm2=area_cm2,
        psf_sigma_um=0.0 if math.isnan(psf_um) else psf_um,
        config_hash=config.config_hash(),
        hidden_rows=hidden,
    )


def _measure_candidates(
    cands: list[_Candidate],
    od: F32,
    blue_work: F32,
    od_work: F32,
    factor: float,
    um: float,
    overlay: NDArray[np.bool_],
    config: MeasureConfig,
    first_id: int,
    dark: bool = True,
    field_px: F32 | None = None,
) -> tuple[list[HairRecord], list[float], float]:
    """Diameters, ends, records for traced shafts.

    Dark shafts thinner than any hair that run along the pixel grid are left out as
    burned-in graphics; a light shaft's fitted diameter is too rough for that test.
    Profile samples under a burned-in overlay are unknown, not skin: a shaft whose edge
    is hidden there (or beyond the image border) keeps its detection-scale diameter and
    is never split as a bundle. `field_px`, the distance (px) to the frame round a round
    field of view, makes the frame's edge a border like the image's own.
    """
    m, n = overlay.shape
    to_full = _trim_ends([(c.points + 0.5) * factor - 0.5 for c in cands], od, blue_work, factor)
    guess = np.array([c.diameter_px for c in cands]) * factor
    psf_given = None if config.psf_sigma_um is None else config.psf_sigma_um / um
    # the profiles span the shaft's measured width, not the detection scale, which may
    # be twice as wide (the scales are a factor ~2 apart): over a window twice too wide,
    # the 41 samples fall ~2.6 px apart on a sharp 80 µm shaft at 5 µm/px, and its fitted
    # diameter jumped by up to 15 µm with a 1.5 % change of the image's blur estimate
    width = np.array([c.diameter_px if c.width_px is None else c.width_px for c in cands])
    half = np.maximum(1.6 * (width * factor) + 4.0, 6.0)
    transmittance = (1.0 - od).astype(np.float32)
    transmittance[overlay] = np.nan
    # a trace run on into another shaft is measured along its own crest: where it runs
    # on, the profile is of both shafts
    profiled = [
        t if c.core is None else (c.core + 0.5) * factor - 0.5
        for c, t in zip(cands, to_full, strict=True)
    ]
    offsets, stack = _profile.sample_profile_stack(
        transmittance, profiled, half, trim_px=0.5 * half + 2
    )
    del transmittance
    shaft_fits = _profile.fit_diameters(
        offsets, _profile.column_medians(stack), guess, psf_sigma_px=psf_given
    )
    diam_px, quality, psf_px = shaft_fits.diameter_px, shaft_fits.quality, shaft_fits.psf_sigma_px
    # the data's own width, for drawn lines thinner than the blur (the pigment prior
    # widens them to the image's hairs)
    free_px = shaft_fits.free_diameter_px
    # later fits (samples on other shafts left out, sections) take the whole image's
    # pigment, or none where the image has too few resolved shafts
    image_pigment: _profile.Pigment | bool = shaft_fits.pigment or False
    # samples on another traced shaft (a partner alongside, a hair crossing) are not
    # skin: fitted again without them, the profile is the shaft's own
    stack, hit = _mask_other_shafts(
        stack, offsets, profiled, diam_px, od.shape, half, 0.5 * half + 2
    )
    if hit.any():
        refit = _profile.fit_diameters(
            offsets[hit],
            _profile.column_medians(stack[hit]),
            guess[hit],
            psf_sigma_px=psf_px,
            pigment=image_pigment,
        )
        diam_px[hit], quality[hit] = refit.diameter_px, refit.quality
        free_px[hit] = refit.free_diameter_px
    diam_px = _narrowest_section(offsets, stack, profiled, diam_px, psf_px, image_pigment)
    bad = _implausible(diam_px, guess)
    diam_px = np.where(bad, guess, diam_px)
    free_px = np.where(_implausible(free_px, guess), guess, free_px)
    trimmed = [(p + 0.5) / factor - 0.5 for p in to_full]
    # a trace run on into another shaft is a second crest of it only by its own crest
    judged = [t if c.core is None else c.core for c, t in zip(cands, trimmed, strict=True)]
    keep = np.flatnonzero(_outside_wider(judged, diam_px / factor, od_work))
    cands = [cands[i] for i in keep]
    to_full = [to_full[i] for i in keep]
    trimmed = [trimmed[i] for i in keep]
    diam_px, bad, quality, free_px = diam_px[keep], bad[keep], quality[keep], free_px[keep]
    diam_um = diam_px * um
    # a unit partner lying against a shaft over a stretch: one crest for both
    beside = _shafts_beside(
        offsets[keep],
        stack[keep],
        [profiled[i] for i in keep],
        (0.5 * half + 2)[keep],
        np.where(bad, np.nan, diam_px),
        psf_px,
        config.min_length_um / um,
    )
    single = diam_um[(diam_um >= 0.3 * config.bundle_min_um) & (diam_um < config.bundle_min_um)]
    typical_um = float(np.median(single)) if single.size >= 3 else 0.65 * config.bundle_min_um
    scores = _exit_scores(cands, trimmed, blue_work, od_work, um * factor)
    wide = (diam_um >= config.bundle_min_um) & ~bad
    traced_in = _traced_within(to_full, diam_px, np.flatnonzero(wide))
    border = config.border_um / um

    def in_field(p: F64) -> bool:
        # the edge of the frame round a round field of view (`field_px`, the distance to
        # it) is a border too
        if not _inside(p, m, n, border):
            return False
        if field_px is None:
            return True
        row = min(max(round(float(p[1])), 0), m - 1)
        col = min(max(round(float(p[0])), 0), n - 1)
        return bool(field_px[row, col] >= border + 1.0)

    records: list[HairRecord] = []
    confidences: list[float] = []
    blue_min, grey_min = _own_floors(scores)
    # log-odds that each trace's start is its exit: its own ends, then its neighbours
    exit_logodds = np.array(
        [
            _NEAR_GAIN * (near_start - near_end)
            + _end_evidence(b_start, b_end, _BLUE_GAIN, blue_min)
            + _end_evidence(g_start, g_end, _GREY_GAIN, grey_min)
            for b_start, b_end, near_start, near_end, g_start, g_end in scores
        ],
        dtype=float,
    )
    own_logodds = exit_logodds.copy()
    exit_logodds += _direction_prior(
        to_full, exit_logodds, _STREAM_RADIUS_UM / um, wide_px=_STREAM_WIDE_UM / um
    )
    # the median absorptance of the image's traces other than the wide bands
    shaft_level = (
        float(np.median(_shaft_levels(od, [to_full[i] for i in np.flatnonzero(~wide)])))
        if wide.any() and (~wide).sum() >= 3
        else 0.0
    )
    for i, c in enumerate(cands):
        pts = to_full[i]
        if (
            dark
            and _drawn(free_px[i], c.width_px, factor, psf_px, um, config)
            and _on_pixel_grid(pts)
        ):
            continue  # a burned-in scale bar or frame line: not imaged through the optics
        if c.cap and own_logodds[i] >= 0:
            # a cap is a hair only by its exit's own shadow past its inner end: a dot or
            # an opening cut by the border shows none (nor does a cut tip, uncounted)
            continue
        start_in = in_field(pts[0])
        end_in = in_field(pts[-1])
        evidence = float(exit_logodds[i])
        p_start = 1.0 / (1.0 + math.exp(-max(min(evidence, 30.0), -30.0)))
        if p_start < 0.5:
            pts = pts[::-1]
            start_in, end_in = end_in, start_in
        conf_exit = max(p_start, 1.0 - p_start)
        exit_px = (float(pts[0, 0] + 0.5), float(pts[0, 1] + 0.5)) if start_in else None
        line = _ridges.resample(pts, max(2.0, factor))
        d_um = float(diam_um[i])
        det = 1.0 - math.exp(-c.strength / max(config.ridge_high_od, 1e-6))
        conf = float(np.clip(det * (0.5 + 0.5 * quality[i]), 0.0, 1.0))
        parts = 1
        sub_um = d_um
        if wide[i]:
            # hairs of the band traced on their own already count for themselves
            fits = int(np.clip(round(d_um / typical_um), 2, 4))
            parts = max(fits - int(traced_in[i]), 1)
            sub_um = d_um / (fits if parts == 1 else parts)
            if parts > 1 and not _bundle_dark(line, parts, sub_um / um, od, shaft_level):
                # a band fainter than the image's shafts where its hairs would lie (a
                # pigment blotch's edge): one trace, as wide as one of them
                parts, sub_um = 1, d_um / fits
        for shift in _bundle_offsets(line, parts, sub_um / um):
            moved = line + shift
            exit_moved = (
                None if exit_px is None else (exit_px[0] + shift[0, 0], exit_px[1] + shift[0, 1])
            )
            records.append(
                HairRecord(
                    id=first_id + len(records) + 1,
                    exit_px=exit_moved,
                    tip_px=(float(moved[-1, 0] + 0.5), float(moved[-1, 1] + 0.5)),
                    centerline_px=tuple(map(tuple, (moved + 0.5).tolist())),
                    diameter_um=sub_um,
                    length_um=_ridges.polyline_length(pts) * um,
                    hair_class=config.classes.classify(sub_um),
                    confidence=conf if parts == 1 else 0.8 * conf,
                )
            )
            confidences.append(float(conf_exit))
        other = beside[i]
        if other is not None and exit_px is not None and parts == 1:
            # it leaves the shared opening: its exit is its end nearer the traced exit
            side = other.line
            if math.dist(side[-1], pts[0]) < math.dist(side[0], pts[0]):
                side = side[::-1]
            side_um = other.diameter_px * um
            side_in = in_field(side[0])
            records.append(
                HairRecord(
                    id=first_id + len(records) + 1,
                    exit_px=(float(side[0, 0] + 0.5), float(side[0, 1] + 0.5)) if side_in else None,
                    tip_px=(float(side[-1, 0] + 0.5), float(side[-1, 1] + 0.5)),
                    centerline_px=tuple(
                        map(tuple, (_ridges.resample(side, max(2.0, factor)) + 0.5).tolist())
                    ),
                    diameter_um=side_um,
                    length_um=_ridges.polyline_length(side) * um,
                    hair_class=config.classes.classify(side_um),
                    confidence=0.8 * conf,
                )
            )
            confidences.append(float(conf_exit))
    return records, confidences, float(psf_px * um)


@dataclass(frozen=True)
class _Beside:
    """A shaft lying against a traced one over a stretch, seen only as extra width.

    Parameters
    ----------
    line : (P, 2) ndarray, px
        Its centreline (pixel centres, full resolution), in the traced shaft's order.
    diameter_px : float, px
        Its diameter, from the extra width at half depth.
    """

    line: F64
    diameter_px: float


def _band_edges(offsets: F64, profiles: F64) -> tuple[F64, F64]:
    """Where each profile crosses half its depth on either side of the shaft (px).

    Skin is the median of the outer fifth of the profile on both sides, the floor the
    darkest sample in its middle half; the band is the run of samples darker than halfway
    between them that holds the darkest one, its edges interpolated. NaN where the band
    runs into an unknown sample (the image border, another traced shaft) or off the
    profile, or where the profile is less than :data:`_BESIDE_MIN_DEPTH` deep.

    Parameters
    ----------
    offsets : (K,) ndarray, px
        Sample positions across the shaft, increasing.
    profiles : (A, K) ndarray
        Transmittance profiles (NaN: not seen).

    Returns
    -------
    lo, hi : (A,) ndarray, px
        Band edges.
    """
    a, k = profiles.shape
    u = offsets / max(float(np.abs(offsets).max()), 1e-9)
    outer = profiles[:, np.abs(u) >= 0.8]
    middle = np.flatnonzero(np.abs(u) <= 0.5)
    lo = np.full(a, np.nan)
    hi = np.full(a, np.nan)
    enough = (np.isfinite(outer).sum(axis=1) >= 2) & np.isfinite(profiles[:, middle]).any(axis=1)
    if not enough.any():
        return lo, hi
    rows = np.flatnonzero(enough)
    prof = profiles[rows]
    skin = np.nanmedian(outer[rows], axis=1)
    core = prof[:, middle]
    c = middle[np.nanargmin(np.where(np.isfinite(core), core, np.inf), axis=1)]
    floor = prof[np.arange(len(rows)), c]
    depth = skin - floor
    level = (skin - 0.5 * depth)[:, None]
    # a sample stops the band where it is not darker than the level, or not seen
    stop = ~(prof < level)
    idx = np.arange(k)[None, :]
    left = np.where(stop & (idx < c[:, None]), idx, -1).max(axis=1)
    right = np.where(stop & (idx > c[:, None]), idx, k).min(axis=1)
    good = (depth >= _BESIDE_MIN_DEPTH) & (left >= 0) & (right < k)
    r = np.arange(len(rows))
    left_c, right_c = np.clip(left, 0, k - 1), np.clip(right, 0, k - 1)
    v_left, v_right = prof[r, left_c], prof[r, right_c]
    good &= np.isfinite(v_left) & np.isfinite(v_right)
    lvl = level[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        # the band's edge lies between the stopping sample and the next one inward
        w_left = (lvl - prof[r, left_c + 1]) / (v_left - prof[r, left_c + 1])
        w_right = (lvl - prof[r, right_c - 1]) / (v_right - prof[r, right_c - 1])
    e_left = offsets[left_c + 1] + w_left * (offsets[left_c] - offsets[left_c + 1])
    e_right = offsets[right_c - 1] + w_right * (offsets[right_c] - offsets[right_c - 1])
    lo[rows[good]] = e_left[good]
    hi[rows[good]] = e_right[good]
    return lo, hi


def _shafts_beside(
    offsets: F64,
    stack: F64,
    lines: list[F64],
    trim: F64,
    diam_px: F64,
    psf_px: float,
    min_length_px: float,
) -> list[_Beside | None]:
    """Shafts lying against traced ones over a stretch, told by steps in the width.

    Hairs of one follicular unit leave the skin through one opening; where two of them lie
    touching over a stretch, the ridge detector sees one band twice as wide and traces one
    crest down it, on into the longer hair. Along such a trace the width at half depth
    (:func:`_band_edges`) steps up to about twice the shaft's own width and back down
    where the shorter hair's cut end lies. A trace whose profiles over one run are at
    least :data:`_BESIDE_WIDE` times as wide as its narrow profiles (the median of the
    narrowest third), over at least :data:`_BESIDE_MIN_LENGTHS` times `min_length_px`
    and :data:`_BESIDE_MIN_DIAMETERS` widths, the rest at most :data:`_BESIDE_NARROW`
    times, with both band edges seen (no
    other traced shaft alongside), holds a second shaft over that run. The traced hair
    goes on past the run on its own axis, which, carried back into the run, tells on which
    side of the band the second shaft lies; its diameter is the extra width, scaled as
    the traced shaft's half-depth width is to its fitted diameter (where that fit was not
    widened by the second shaft). Shafts narrower than :data:`_SECTION_MIN_BLURS` blur σ
    are left alone (their width is not resolved).

    Parameters
    ----------
    offsets : (H, K) ndarray, px
        Profile sample positions of each trace.
    stack : (H, A, K) ndarray
        Transmittance profiles along each trace (NaN: not seen or on another traced
        shaft), as :func:`._profile.sample_profile_stack` took them.
    lines : list of (P, 2) ndarray, px
        The traces the profiles were taken along.
    trim : (H,) ndarray, px
        Length left out at each end when the profiles were taken.
    diam_px : (H,) ndarray, px
        Fitted diameters (NaN: not measured).
    psf_px : float, px
        Optical blur of the image.
    min_length_px : float, px
        Shortest hair reported.

    Returns
    -------
    list of _Beside or None
        Per trace.
    """
    out: list[_Beside | None] = [None] * len(lines)
    n_along = stack.shape[1] if stack.ndim == 3 else 0
    if n_along < 8:
        return out
    length = np.array([_ridges.polyline_length(p) for p in lines])
    with np.errstate(invalid="ignore"):
        judged = np.flatnonzero(
            (diam_px >= _SECTION_MIN_BLURS * max(psf_px, 0.3))
            & (length >= min_length_px + 2.0 * diam_px)
        )
    if judged.size == 0:
        return out
    # the profiles of every trace share one grid across, in units of their half-length
    half = np.abs(offsets[judged, -1])
    unit = offsets[judged[0]] / half[0]
    lo_all, hi_all = _band_edges(unit, stack[judged].reshape(-1, stack.shape[2]))
    lo_all = lo_all.reshape(-1, n_along) * half[:, None]
    hi_all = hi_all.reshape(-1, n_along) * half[:, None]
    for i, lo, hi in zip(judged, lo_all, hi_all, strict=True):
        pts, d = lines[i], float(diam_px[i])
        width = hi - lo
        seen = np.isfinite(width)
        if seen.sum() < n_along // 2:
            continue
        ref = float(np.median(np.sort(width[seen])[: max(3, int(seen.sum()) // 3)]))
        ratio = width / max(ref, 1e-6)
        # the longest run of wide profiles: the second shaft's whole touching stretch
        wide_flag = np.r_[False, ratio >= _BESIDE_WIDE, False]
        starts = np.flatnonzero(~wide_flag[:-1] & wide_flag[1:])
        stops = np.flatnonzero(wide_flag[:-1] & ~wide_flag[1:])
        if starts.size == 0:
            continue
        k = int(np.argmax(stops - starts))
        a0, a1 = int(starts[k]), int(stops[k])  # profiles a0 .. a1 - 1 are wide
        rest = np.r_[ratio[:a0], ratio[a1:]]
        rest = rest[np.isfinite(rest)]
        if a1 - a0 < 2 or rest.size < 4 or np.mean(rest <= _BESIDE_NARROW) < 0.75:
            continue
        along, centre, normal = _profile.profile_frames(pts, float(trim[i]), n_along)
        s_lo = 0.0 if a0 == 0 else 0.5 * (along[a0 - 1] + along[a0])
        s_hi = float(length[i]) if a1 == n_along else 0.5 * (along[a1 - 1] + along[a1])
        if s_hi - s_lo < max(_BESIDE_MIN_LENGTHS * min_length_px, _BESIDE_MIN_DIAMETERS * ref):
            continue
        wide = np.arange(a0, a1)
        # the traced hair's own axis beside the run, carried into the wide stretch
        after = np.arange(a1, min(a1 + 6, n_along))
        before = np.arange(max(a0 - 6, 0), a0)
        near = after if after.size >= before.size else before
        if near.size < 2:
            continue
        fit = np.polyfit(along[near], centre[near], 1)
        axis = along[wide][:, None] * fit[0][None, :] + fit[1][None, :]
        c = float(np.median(np.einsum("ij,ij->i", axis - centre[wide], normal[wide])))
        e_lo, e_hi = float(np.median(lo[wide])), float(np.median(hi[wide]))
        if not (e_lo - 2.0 <= c <= e_hi + 2.0):
            continue
        side = 0.5 * (e_lo + ref + e_hi) if c - e_lo <= e_hi - c else 0.5 * (e_lo + e_hi - ref)
        extra = float(np.median(width[wide])) / ref - 1.0
        # its centreline: the trace over the run, moved across
        dense = _ridges.resample(pts, 1.0)
        seg = _ridges.arc_lengths(dense)
        inside = (seg >= s_lo) & (seg <= s_hi)
        if inside.sum() < 3:
            continue
        # half-depth width to diameter, as the traced shaft's own (unless the second
        # shaft widened its fit)
        scale = float(np.clip(d / ref, 0.8, 1.25))
        out[i] = _Beside(
            line=(dense + side * _unit_normals(dense))[inside], diameter_px=extra * ref * scale
        )
    return out


def _mask_other_shafts(
    stack: F64,
    offsets: F64,
    lines: list[F64],
    diam_px: F64,
    shape: tuple[int, int],
    half: F64,
    trim: F64,
) -> tuple[F64, NDArray[np.bool_]]:
    """Profile samples lying on another traced shaft, made unknown (NaN).

    Each trace is drawn as wide as its fitted diameter into an image of trace labels,
    once in each order so that where two shafts overlap each sees the other; a sample
    of one trace's profiles that falls on another trace's shaft is left out, except
    within :data:`_OWN_CORE` of a diameter of its own axis (where the two shafts overlap
    the trace's own darkness is needed to fit it). The blurred-cylinder fit then sees
    the shaft's own edges and the skin beside them, not a partner's darkness.

    Parameters
    ----------
    stack : (H, A, K) ndarray
        Profiles as :func:`hairtrial.measure._profile.sample_profile_stack` samples them.
    offsets : (H, K) ndarray, px
        Profile sample positions across each trace.
    lines : list of (P, 2) ndarray, px
        The traces the profiles were taken along (the same resolution as `stack`).
    diam_px : (H,) ndarray, px
        Diameters fitted to the whole profiles (NaN: not drawn).
    shape : (M, N)
        Image shape at that resolution.
    half, trim : (H,) ndarray, px
        Profile half-lengths and end trims the stack was sampled with.

    Returns
    -------
    stack : (H, A, K) ndarray
        A copy with the samples on other shafts set to NaN.
    hit : (H,) ndarray of bool
        Traces that lost samples.
    """
    out = stack.copy()
    hit = np.zeros(len(lines), dtype=bool)
    if len(lines) < 2:
        return out, hit
    ok = np.isfinite(diam_px)
    # 65535 labels fit 16 bits, half the memory of float labels on a 12-Mpx image
    dtype = np.uint16 if len(lines) < 65535 else np.float32
    own = np.arange(1, len(lines) + 1)[:, None, None]
    core = np.abs(offsets) <= _OWN_CORE * np.where(ok, diam_px, 0.0)[:, None]
    # a thick polyline costs a round cap per vertex: half a pixel of slack drops most
    drawn = [
        cv2.approxPolyDP(np.round(p).astype(np.int32).reshape(-1, 1, 2), 0.5, False) for p in lines
    ]
    for order in (range(len(lines)), range(len(lines) - 1, -1, -1)):
        labels = np.zeros(shape, dtype=dtype)
        for i in order:
            if ok[i]:
                width = max(1, round(float(diam_px[i])))
                cv2.polylines(labels, [drawn[i]], False, i + 1, thickness=width)
        _, got = _profile.sample_profile_stack(labels, lines, half, trim_px=trim, nearest=True)
        other = (got > 0) & (got != own) & ~core[:, None, :]
        out[other] = np.nan
        hit |= other.any(axis=(1, 2))
    return out, hit


def _bar_like(od: F32, start: F64, stop: F64, width: float) -> bool:
    """Whether the stretch `start`-`stop` (px) is a bar: straight, even edges, even dark.

    Across profiles at :data:`_STUB_STATIONS` stations over the middle half of the
    stretch: each one's width at half its own axis level varies by at most
    :data:`_STUB_WIDTH_CV` (coefficient of variation; a cut shaft has parallel edges, a
    pigmented patch or a shadow ragged ones), and the axis level nowhere falls below
    :data:`_STUB_PLATEAU` of its highest (a shaft is pigmented all along).
    """
    chord = stop - start
    length = float(np.hypot(chord[0], chord[1]))
    unit = chord / max(length, 1e-9)
    normal = np.array([-unit[1], unit[0]])
    along = np.linspace(0.25, 0.75, _STUB_STATIONS) * length
    off = np.arange(-2.0 * width - 4.0, 2.0 * width + 4.0 + 1e-9, 0.5)
    x = start[0] + along[:, None] * unit[0] + off[None, :] * normal[0]
    y = start[1] + along[:, None] * unit[1] + off[None, :] * normal[1]
    prof = _ridges.remap_points(od, x.ravel(), y.ravel()).reshape(x.shape)
    c = len(off) // 2
    axis = prof[:, c - 2 : c + 3].max(axis=1)
    if axis.max() <= 0 or axis.min() < _STUB_PLATEAU * axis.max():
        return False
    below = prof < 0.5 * axis[:, None]
    idx = np.arange(len(off))
    # the half-level edges on each side: the first sample below half, outwards from the axis
    left = np.where(below[:, :c], idx[None, :c], -1).max(axis=1)
    right = np.where(below[:, c:], idx[None, c:], len(off)).min(axis=1)
    widths = 0.5 * (right - left - 1)
    return bool(widths.std() <= _STUB_WIDTH_CV * max(float(widths.mean()), 1e-9))


def _traced_within(lines: list[F64], diameter_px: F64, which: NDArray[np.intp]) -> F64:
    """How many other traces run along inside each band ``which`` (0 for the rest).

    A band wider than one hair may be two touching hairs of which one has its own crest,
    and so its own trace: that hair is counted once, by its trace. A trace runs inside
    when at least half of the band's points have one of its points within
    :data:`_BAND_REACH` of the band's width.
    """
    out = np.zeros(len(lines))
    if which.size == 0 or len(lines) < 2:
        return out
    from scipy.spatial import cKDTree

    dense = [_ridges.resample(p, 2.0) for p in lines]
    owner = np.concatenate([np.full(len(d), k) for k, d in enumerate(dense)])
    tree = cKDTree(np.concatenate(dense))
    for i in which:
        near = tree.query_ball_point(dense[i], r=_BAND_REACH * float(diameter_px[i]))
        seen: dict[int, int] = {}
        for hits in near:
            for k in set(owner[hits].tolist()) - {int(i)}:
                seen[k] = seen.get(k, 0) + 1
        out[i] = sum(1 for k in seen.values() if k >= 0.5 * len(dense[i]))
    return out


def _outside_wider(lines: list[F64], diameter_px: F64, od: F32) -> NDArray[np.bool_]:
    """Whether each trace stands on its own, not inside the measured shaft of a longer one.

    The detection drops a trace lying along a longer one within the longer one's
    detection-scale width, but that scale is coarse (a few scales, often finer than the
    shaft), so a second crest along the same dark band (a wide shaft, or two shafts
    overlapping along their length) can lie outside it yet inside the measured shaft:
    on the simulated trial such twins run nearly the whole length of the other at a
    median 0.4 diameter from its axis. Once diameters are measured, a trace with
    :data:`_DUPLICATE_SHARE` of its points inside the measured width of a longer trace is
    a second crest of that band, not another hair, except where skin lies between the
    two crests: a hair parting from a partner in a narrow V lies inside the partner's
    measured width (the shared stretch widens it) yet is a hair of its own.

    Parameters
    ----------
    lines : list of (P, 2) ndarray, px
        Traces.
    diameter_px : (H,) ndarray, px
        Measured diameters, at the resolution of `lines`.
    od : (M, N) ndarray, absorptance
        The map the traces were found on (same resolution).

    Returns
    -------
    (H,) ndarray of bool
        True for traces kept.
    """
    keep = np.ones(len(lines), dtype=bool)
    footprint = _Footprint(od.shape, od)
    lengths = [_ridges.polyline_length(p) for p in lines]
    for i in sorted(range(len(lines)), key=lambda k: -lengths[k]):
        if footprint.covers(lines[i]):
            keep[i] = False
            continue
        footprint.add(lines[i], _DUPLICATE_WIDTH * float(diameter_px[i]))
    return keep


def _implausible(diam_px: F64, guess_px: F64) -> NDArray[np.bool_]:
    """Fitted diameters (px) not to be believed against the detection scale's `guess_px`.

    Unmeasured (NaN), over four times the guess plus 4 px, or under a fifth of it: the
    fit has left the shaft (a neighbour, a shadow), and the detection scale stands in.
    """
    return np.asarray(
        ~np.isfinite(diam_px) | (diam_px > 4 * guess_px + 4) | (diam_px < 0.2 * guess_px), bool
    )


def _narrowest_section(
    offsets: F64,
    stack: F64,
    lines: list[F64],
    diam_px: F64,
    psf_px: float,
    pigment: _profile.Pigment | bool = True,
) -> F64:
    """Shaft diameter where the width fitted along the trace is not one width.

    A shaft keeps its diameter over the millimetre or so a trichoscope sees. The profiles
    of a trace are fitted again in :data:`_SECTIONS` consecutive sections; where the
    sections' widths differ by more than :data:`_SECTION_SPREAD` the wider ones include a
    second shaft lying alongside (the partner of a follicular unit fanning out of the
    same opening, a touching neighbour), so the narrowest section gives the diameter.
    Traces shorter than two diameters per section, and shafts narrower than
    :data:`_SECTION_MIN_BLURS` blur σ, keep the fit of the whole trace.

    Parameters
    ----------
    offsets : (H, K) ndarray, px
        Profile sample positions.
    stack : (H, A, K) ndarray
        Profiles along each trace, proximal to distal (NaN: not seen).
    lines : list of (P, 2) ndarray, px
        The traces.
    diam_px : (H,) ndarray, px
        Diameters fitted to the whole of each trace.
    psf_px : float, px
        Optical blur of the image.
    pigment : Pigment or bool
        The image's pigment prior, as for :func:`_profile.fit_diameters`.

    Returns
    -------
    (H,) ndarray, px
        Diameters.
    """
    out = diam_px.copy()
    length = np.array([_ridges.polyline_length(p) for p in lines])
    # a shaft's width is told apart from its density only where the blur leaves its two
    # edges apart: a thinner shaft's sections trade one for the other with the noise
    resolved = diam_px >= _SECTION_MIN_BLURS * max(psf_px, 0.3)
    long_enough = (
        np.isfinite(diam_px)
        & resolved
        & (length >= _SECTIONS * 2.0 * diam_px + 2 * np.abs(offsets[:, -1]))
    )
    idx = np.flatnonzero(long_enough)
    if idx.size == 0:
        return out
    along = stack.shape[1]
    cuts = np.linspace(0, along, _SECTIONS + 1).round().astype(int)
    parts = np.concatenate(
        [_profile.column_medians(stack[idx, a:b]) for a, b in itertools.pairwise(cuts)]
    )
    widths = _profile.fit_diameters(
        np.tile(offsets[idx], (_SECTIONS, 1)),
        parts,
        np.tile(diam_px[idx], _SECTIONS),
        psf_sigma_px=max(psf_px, 0.3),
        iterations=6,
        pigment=pigment,
    ).diameter_px.reshape(_SECTIONS, idx.size)
    seen = np.isfinite(widths).all(axis=0)
    narrow = np.where(seen, widths.min(axis=0), np.nan)
    spread = np.where(seen, widths.max(axis=0) / np.maximum(narrow, 1e-6), 1.0)
    take = seen & (spread > _SECTION_SPREAD)
    out[idx[take]] = narrow[take]
    return out


def _direction_prior(
    lines: list[F64], evidence: F64, radius_px: float, wide_px: float | None = None
) -> F64:
    """Log-odds that each line's start is its exit, from how its neighbours point.

    Hairs within a millimetre of each other grow in one direction (the scalp's hair
    stream): a hair's exit-to-tip direction is told by its neighbours' as well as by its
    own ends, where each cue alone (the shadow past the exit, its blue shift, converging
    unit partners) is right for only 75-84 % of hairs (a neighbour's exit shadow lies
    past a cut end, a unit partner darkens the side strip). Each neighbour within
    `radius_px` votes with its own exit-to-tip unit vector, weighted by how sure its own
    evidence is (capped at :data:`_STREAM_CAP` log-odds); the prior is
    :data:`_STREAM_GAIN` times the weighted mean of the votes projected on the line's
    start-to-end direction (+1: all neighbours say the start is the exit).

    A stream runs on beyond a millimetre, where hairs lie parallel: with `wide_px`
    given, the votes within `wide_px` are counted too, as far as the axes of the lines
    there are aligned. Their alignment is the nematic order ``|mean(exp(2i angle))|`` of
    the neighbours' axes, 1 when all lie parallel (either way along), about 0 for axes at
    random (a whorl's centre, or units pointing every way); it is 0 with fewer than
    :data:`_STREAM_MIN_ALIGNED` neighbours. The prior is ``(1 - order) * near + order *
    wide``.

    Parameters
    ----------
    lines : list of (P, 2) ndarray, px
        Traced shafts (x, y), each from its start to its end.
    evidence : (len(lines),) ndarray
        Each line's own log-odds that its start is the exit.
    radius_px : float, px
        Neighbourhood radius.
    wide_px : float, optional, px
        Radius of the wider neighbourhood of aligned lines (none if not given).

    Returns
    -------
    (len(lines),) ndarray
        Log-odds to add to `evidence` (0 where a line has no sure neighbour).
    """
    count = len(lines)
    if count < 2:
        return np.zeros(count)
    chord = np.array([p[-1] - p[0] for p in lines], dtype=float)
    unit = chord / np.maximum(np.hypot(chord[:, 0], chord[:, 1]), 1e-9)[:, None]
    mid = np.array([p.mean(axis=0) for p in lines])
    weight = np.minimum(np.abs(evidence), _STREAM_CAP) / _STREAM_CAP
    votes = unit * (np.sign(evidence) * weight)[:, None]
    from scipy.spatial import cKDTree

    reach = radius_px if wide_px is None else max(radius_px, wide_px)
    pairs = cKDTree(mid).query_pairs(reach, output_type="ndarray").reshape(-1, 2)
    a, b = pairs[:, 0], pairs[:, 1]

    def agreement(near: NDArray[np.bool_]) -> F64:
        total = np.zeros((count, 2))
        weights = np.zeros(count)
        np.add.at(total, a[near], votes[b[near]])
        np.add.at(total, b[near], votes[a[near]])
        np.add.at(weights, a[near], weight[b[near]])
        np.add.at(weights, b[near], weight[a[near]])
        agree = np.sum(total * unit, axis=1) / np.maximum(weights, 1e-9)
        return np.where(weights > 0, _STREAM_GAIN * agree, 0.0)

    gap = np.hypot(*(mid[a] - mid[b]).T)
    prior = agreement(gap <= radius_px)
    if wide_px is None:
        return prior
    # the axes' alignment: doubled angles, so a line and its reverse count alike
    axis = np.exp(2j * np.arctan2(unit[:, 1], unit[:, 0]))
    summed = np.zeros(count, complex)
    np.add.at(summed, a, axis[b])
    np.add.at(summed, b, axis[a])
    seen = np.bincount(pairs.ravel(), minlength=count)
    order = np.where(seen >= _STREAM_MIN_ALIGNED, np.abs(summed) / np.maximum(seen, 1), 0.0)
    return (1.0 - order) * prior + order * agreement(gap <= wide_px)


def _own_floors(
    scores: list[tuple[float, float, float, float, float, float]],
) -> tuple[float, float]:
    """Return the image's own blue and grey floors for an end whose partner is unmeasured.

    Past an exit the buried shaft shows through the skin; past a cut tip the skin is
    bare, but how bare depends on the skin and the optics (a real scalp past a cut tip is
    greyer than the simulator's, and its exits show more or less shadow). The image's own
    hairs tell: a hair with both ends measured whose two ends clearly differ (the smaller
    value at most :data:`_FLOOR_CLEAR` of the larger, the larger positive) shows one exit
    and one cut tip. With at least :data:`_FLOOR_MIN_HAIRS` such hairs, each floor is
    midway between the medians of their larger and smaller values, within
    :data:`_FLOOR_RANGE` times the default (:data:`_BLUE_MIN`, :data:`_GREY_MIN`), which
    it is otherwise. The two-ended decisions themselves do not use the floors.

    Parameters
    ----------
    scores : list of tuple
        Per trace, as :func:`_exit_scores` returns them.

    Returns
    -------
    (float, float)
        Blue and grey floors.
    """
    values = np.array(scores, dtype=float).reshape(-1, 6)
    out = []
    for cols, default in (((0, 1), _BLUE_MIN), ((4, 5), _GREY_MIN)):
        pair = values[:, cols]
        pair = pair[np.isfinite(pair).all(axis=1)]
        high, low = pair.max(axis=1), pair.min(axis=1)
        clear = (high > 0) & (low <= _FLOOR_CLEAR * high)
        if int(clear.sum()) < _FLOOR_MIN_HAIRS:
            out.append(default)
            continue
        floor = 0.5 * (float(np.median(high[clear])) + float(np.median(low[clear])))
        out.append(float(np.clip(floor, _FLOOR_RANGE[0] * default, _FLOOR_RANGE[1] * default)))
    return out[0], out[1]


def _end_evidence(start: float, end: float, gain: float, floor: float) -> float:
    """Log-odds that the start is the exit from one shadow measure past the two ends.

    With both ends measured the larger shadow wins; when one end's strip leaves the
    field, the interior end is the exit if its shadow exceeds `floor`.
    """
    if math.isnan(start) and math.isnan(end):
        return 0.0
    if math.isnan(end):
        return gain * (start - floor)
    if math.isnan(start):
        return -gain * (end - floor)
    return gain * (start - end)


def _bundle_offsets(line: F64, parts: int, spacing_px: float) -> list[F64]:
    """Per-point shifts that spread `parts` side-by-side shafts across a traced band."""
    if parts == 1:
        return [np.zeros_like(line)]
    normal = _unit_normals(line)
    return [normal * ((j - (parts - 1) / 2.0) * spacing_px) for j in range(parts)]


def _bundle_dark(line: F64, parts: int, spacing_px: float, od: F32, level: float) -> bool:
    """Whether a band's `parts` side-by-side shafts are as dark as the image's shafts.

    Hairs lying side by side are each about as opaque as a single shaft of the image.
    Along each line where :func:`_bundle_offsets` would put one, the median absorptance
    is read; their mean must reach :data:`_BUNDLE_MIN_LEVEL` of `level` (the median over
    the image's other traces; 0 when unknown, which passes). A pigment blotch traced as a
    wide band is fainter than the shafts, most of all where its side hairs would lie.
    The mean, not the least: the arms of a V-shaped pair part, and the line of one arm
    runs onto the skin between them.
    """
    if level <= 0.0:
        return True
    lines = [line + shift for shift in _bundle_offsets(line, parts, spacing_px)]
    return bool(np.mean(_shaft_levels(od, lines)) >= _BUNDLE_MIN_LEVEL * level)


def _unit_normals(line: F64) -> F64:
    """Return unit vectors across a polyline at each of its points: (-ty, tx) of its tangent."""
    tangent = np.gradient(line, axis=0)
    norm = np.hypot(tangent[:, 0], tangent[:, 1])[:, None] + 1e-12
    return np.column_stack([-tangent[:, 1], tangent[:, 0]]) / norm


def _drawn(
    free_px: float,
    width_px: float | None,
    factor: float,
    psf_px: float,
    um: float,
    config: MeasureConfig,
) -> bool:
    """Whether a trace is too thin or too sharp to be a shaft imaged through the optics.

    Its free-fit diameter (`free_px`, px of the image) is under ``config.min_diameter_um``,
    or its width at half absorptance (`width_px`, working px, `factor` times the image's)
    is under :data:`_DRAWN_SHARPNESS` of the blur's own full width at half maximum
    (2.355 `psf_px`): the thinnest shaft is blurred at least that wide, a line drawn on
    the image after the optics (a scale bar's 2-px stroke) is not.
    """
    if free_px * um < config.min_diameter_um:
        return True
    if width_px is None or not math.isfinite(psf_px) or psf_px <= 0:
        return False
    return width_px * factor < _DRAWN_SHARPNESS * _FWHM_PER_SIGMA * psf_px


def _on_pixel_grid(pts: F64) -> bool:
    """Whether a trace runs along one pixel row or column, as drawn graphics do.

    Half of its points lie within :data:`_GRID_PX` of the median row (or column, whichever
    the trace spans more), over at least :data:`_GRID_MIN_PX` (the rest may bend into a
    corner or a tick mark of the graphic, or along a hair it touches). Device overlays
    (scale bars, frames) are drawn on the pixel grid; a hair lies along it, to a quarter
    of a pixel over 25 px (half a degree), only by chance.
    """
    if len(pts) < 3 or _ridges.polyline_length(pts) < _GRID_MIN_PX:
        return False
    along_x = np.ptp(pts[:, 0]) >= np.ptp(pts[:, 1])
    across = pts[:, 1] if along_x else pts[:, 0]
    return bool(np.median(np.abs(across - np.median(across))) < _GRID_PX)


def _touches_border(pts: F64, shape: tuple[int, int], half_width: float = 0.0) -> bool:
    """Whether either end of a trace lies within reach of the image border (px).

    The reach is :data:`_BORDER_PX` or the shaft's half width, whichever is larger: the
    crest of a wide shaft cut by the border stops about half its width short of it.
    """
    reach = max(_BORDER_PX, half_width)
    return not (_inside(pts[0], *shape, reach) and _inside(pts[-1], *shape, reach))


def _inside(p: F64, m: int, n: int, border: float) -> bool:
    """Whether pixel-centre point `p` lies at least `border` px inside the image."""
    return bool(border <= p[0] <= n - 1 - border and border <= p[1] <= m - 1 - border)


def _greyer_than_skin(colour: F64, skin: F64, min_skin_chroma: float) -> bool:
    """Whether a shaft's own colour is neutral over skin at least `min_skin_chroma` coloured."""
    if colour.size < 3 or np.any(colour <= 0):
        return False
    own = np.linalg.norm(_absorbance.log_chroma(colour))
    bare = np.linalg.norm(_absorbance.log_chroma(np.maximum(skin, 1e-6)))
    return bool(bare >= min_skin_chroma and own <= _GREY_CHROMA_SHARE * bare)


def _broadband(
    traces: list[F64],
    image: NDArray[Any],
    bg_small: F32,
    factor: float,
    dark: bool,
    grey_min_chroma: float | None = None,
) -> list[bool]:
    """Whether each trace absorbs in every colour channel, as pigment does (ink does not).

    A red or blue pen line or measuring circle absorbs strongly in one or two channels
    and hardly at all in the other; melanin absorbs in all three. A light shaft
    (`dark` False) must instead be near neutral in colour, and so may a dark one that
    fails the broadband test when `grey_min_chroma` (least skin chromaticity, log units)
    is given: a grey shaft over pink skin absorbs in red and brightens blue, its own
    colour neutral where the skin's is not (:func:`_greyer_than_skin`). `image` is the
    caller's RGB array (read, never written); `bg_small` the skin background at reduced size;
    `traces` are at the working resolution (`factor` times coarser than `image`). All
    traces are sampled in one pass, every 2 px, and judged on per-channel medians.
    """
    if not traces:
        return []
    m, n = image.shape[:2]
    lines = [_ridges.resample((pts + 0.5) * factor - 0.5, 2.0) for pts in traces]
    counts = np.array([len(line) for line in lines])
    full = np.concatenate(lines)
    cols = np.clip(np.round(full[:, 0]).astype(np.intp), 0, n - 1)
    rows = np.clip(np.round(full[:, 1]).astype(np.intp), 0, m - 1)
    scale = _absorbance.full_scale(image)
    level = _absorbance.to_float_pixels(image[rows, cols], scale).astype(np.float64)
    sm, sn = bg_small.shape[:2]
    mx = (full[:, 0] + 0.5) * sn / n - 0.5
    my = (full[:, 1] + 0.5) * sm / m - 0.5
    skin = np.column_stack(
        [
            _ridges.remap_points(
                np.ascontiguousarray(bg_small[:, :, ch]), mx, my, border=cv2.BORDER_REPLICATE
            )
            for ch in range(level.shape[1])
        ]
    ).astype(np.float64)
    ratio = level / np.maximum(skin, 1e-6)
    change = 1.0 - ratio if dark else ratio - 1.0
    absorb = np.column_stack(
        [_ridges.group_medians(change[:, ch], counts) for ch in range(change.shape[1])]
    )
    colour = np.column_stack(
        [_ridges.group_medians(level[:, ch], counts) for ch in range(level.shape[1])]
    )
    # the skin's own colour per trace, only to tell grey shafts (`grey_min_chroma`)
    skin_colour = (
        np.column_stack([_ridges.group_medians(skin[:, ch], counts) for ch in range(skin.shape[1])])
        if grey_min_chroma is not None
        else colour
    )
    out = []
    for a, c, s in zip(absorb, colour, skin_colour, strict=True):
        strongest = float(a.max())
        if strongest <= 0 or float(a.min()) >= _BROADBAND_SHARE * strongest:
            out.append(True)
        elif dark:
            # a grey (unpigmented) shaft over coloured skin: its own colour neutral
            grey = grey_min_chroma is not None and _greyer_than_skin(c, s, grey_min_chroma)
            out.append(grey)
        else:
            # an unpigmented shaft scatters all wavelengths alike: over skin it looks
            # white, grey or pale yellow, its own colour near neutral, while its contrast
            # is largest where the skin absorbs most (blue on fair skin)
            out.append(float(c.min()) >= _NEUTRAL_SHARE * float(c.max()))
    return out


def _straight_where_grey(
    cands: list[_Candidate], grey_borne: NDArray[np.bool_], factor: float
) -> list[bool]:
    """Whether each trace seen mostly by its colour (the grey pass) runs straight.

    An unpigmented shaft is seen by the grey pass where it is neither darker nor brighter
    than the skin, only less coloured; so are the blue-grey shadow round an exit, the
    blurred rim of a follicular opening and the edge of a dark shaft against tanned skin.
    A cut shaft is straight over the field, those are not: a trace with at least
    :data:`_GREY_BORNE_SHARE` of its points where only the grey contrast shows it is kept
    only when its chord is at least :data:`_GREY_MIN_STRAIGHT` of its length.

    Parameters
    ----------
    cands : list of _Candidate
        Traces at the working resolution.
    grey_borne : (M, N) ndarray of bool
        Full-resolution pixels where the grey contrast exceeds the darkness and the
        darkness alone is under the crest threshold.
    factor : float
        Full-resolution pixels per working pixel.

    Returns
    -------
    list of bool
        Per trace: kept.
    """
    keep = [True] * len(cands)
    for k, cand in enumerate(cands):
        pts = cand.points
        full = (pts + 0.5) * factor - 0.5 if factor > 1.0 else pts
        if _at_pixels(grey_borne, full).mean() < _GREY_BORNE_SHARE:
            continue
        length = _ridges.polyline_length(pts)
        chord = float(np.hypot(*(pts[-1] - pts[0])))
        keep[k] = bool(length > 0 and chord >= _GREY_MIN_STRAIGHT * length)
    return keep


def _light_shafts(
    cands: list[_Candidate], od_work: F32, dark: list[HairRecord], um: float, factor: float
) -> list[bool]:
    """Whether each light-pass trace is a light shaft rather than a bright patch or rim.

    Three tests, all at the working resolution (`factor` times coarser than the image's
    `um` µm/px; `od_work` is the light pass's brightening): the skin beside the trace
    stays dark (:func:`_side_share` below :data:`_LIGHT_SIDE_SHARE`), the region
    brighter than half the trace's axis level is elongated (:func:`_elongations` at
    least :data:`_LIGHT_ELONGATION`), and the trace does not run along a dark shaft
    already measured (`dark`, full-resolution records; share below
    :data:`_LIGHT_ALONG_DARK`).
    """
    if not cands:
        return []
    lines = [c.points for c in cands]
    widths = [c.diameter_px for c in cands]
    keep = (_side_share(od_work, lines, widths) < _LIGHT_SIDE_SHARE) & (
        _elongations(od_work, lines) >= _LIGHT_ELONGATION
    )
    if dark:
        # full-resolution pixel-edge coordinates to working pixel centres
        shafts = [np.asarray(h.centerline_px) / factor - 0.5 for h in dark]
        shaft_px = np.array([h.diameter_um for h in dark]) / (um * factor)
        keep &= _along_dark(lines, widths, shafts, shaft_px) < _LIGHT_ALONG_DARK
    return [bool(k) for k in keep]


def _side_share(od: F32, traces: list[F64], diameters_px: list[float]) -> F64:
    """How much of each trace's level the skin beside it shows (px units of `od`).

    Along each trace (every 2 px) `od` is read on the axis and in two strips, one per
    side, from one to two shaft widths (at least 2 to 4 px) clear of the shaft's edge.
    Per trace: the median of the higher side over the median on the axis; a shaft lying
    on bare skin gives about 0, a crest inside a patch as bright as itself about 1 (a
    trace with nothing on its axis gives 1).
    """
    if not traces:
        return np.zeros(0)
    lines = [_ridges.resample(p, 2.0) for p in traces]
    counts = np.array([len(p) for p in lines])
    pts, _owner, _local, tangent = _ridges.piece_tangents(lines)
    normal = np.column_stack([-tangent[:, 1], tangent[:, 0]])
    d = np.repeat(np.asarray(diameters_px, dtype=float), counts)
    steps = np.linspace(1.0, 2.0, 3)
    offset = 0.5 * d[:, None] + np.maximum(d, 2.0)[:, None] * steps[None, :]  # (P, 3)
    centre = _ridges.remap_points(od, pts[:, 0], pts[:, 1], border=cv2.BORDER_REPLICATE)
    sides = []
    for sign in (-1.0, 1.0):
        sx = pts[:, 0, None] + sign * offset * normal[:, 0, None]
        sy = pts[:, 1, None] + sign * offset * normal[:, 1, None]
        vals = _ridges.remap_points(od, sx.ravel(), sy.ravel(), border=cv2.BORDER_REPLICATE)
        sides.append(vals.reshape(-1, steps.size).mean(axis=1))
    higher = np.maximum(sides[0], sides[1]).astype(np.float64)
    axis = _ridges.group_medians(centre.astype(np.float64), counts)
    side = _ridges.group_medians(higher, counts)
    return np.where(axis > 1e-6, side / np.maximum(axis, 1e-6), 1.0)


def _elongations(od: F32, traces: list[F64]) -> F64:
    """Length over width of the region around each trace above half its axis level.

    The region is the 8-connected part of ``od >= level / 2`` (`level`: median of `od`
    along the trace) that most trace points fall in, searched within half the trace's
    length of it; length over width is the square root of the ratio of its second
    moments' eigenvalues (a `L` × `W` rectangle gives ``L / W``). 0 when the trace lies
    on no such region.
    """
    m, n = od.shape
    out = np.zeros(len(traces))
    for k, (pts, level) in enumerate(zip(traces, _shaft_levels(od, traces), strict=True)):
        pad = math.ceil(0.5 * _ridges.polyline_length(pts) + 4)
        x0, y0 = np.maximum(np.floor(pts.min(axis=0)).astype(int) - pad, 0)
        x1, y1 = np.minimum(np.ceil(pts.max(axis=0)).astype(int) + pad + 1, [n, m])
        mask = (od[y0:y1, x0:x1] >= 0.5 * level).astype(np.uint8)
        _count, labels = cv2.connectedComponents(mask, connectivity=8)
        cols = np.clip(np.round(pts[:, 0]).astype(int) - x0, 0, x1 - x0 - 1)
        rows = np.clip(np.round(pts[:, 1]).astype(int) - y0, 0, y1 - y0 - 1)
        on = labels[rows, cols]
        on = on[on > 0]
        if on.size == 0:
            continue
        ys, xs = np.nonzero(labels == np.bincount(on).argmax())
        if xs.size < 5:
            continue
        low, high = np.linalg.eigvalsh(np.cov(np.vstack([xs, ys]).astype(float)))
        out[k] = math.sqrt(max(high, 1e-9) / max(low, 1e-9))
    return out


def _along_dark(
    traces: list[F64], widths_px: list[float], dark: list[F64], dark_widths_px: F64
) -> F64:
    """Share of each trace lying along one of the `dark` centrelines (all in px).

    A trace point lies along a dark shaft when it is closer to the shaft's centreline
    than that shaft's half width (`dark_widths_px`) and its own (`widths_px`) together:
    the two would overlap. A light shaft merely touching a dark one is not along it.
    """
    from scipy.spatial import cKDTree

    lines = [_ridges.resample(p, 1.0) for p in dark]
    half = np.repeat(0.5 * np.asarray(dark_widths_px, float), [len(p) for p in lines])
    tree = cKDTree(np.concatenate(lines))
    out = np.zeros(len(traces))
    for k, (pts, width) in enumerate(zip(traces, widths_px, strict=True)):
        dist, idx = tree.query(_ridges.resample(pts, 1.0))
        out[k] = float(np.mean(dist < half[idx] + 0.5 * width))
    return out


def _trim_ends(
    traces: list[F64], od: F32, blue: F32 | None = None, factor: float = 1.0
) -> list[F64]:
    """Cut each end of each trace back to where the visible shaft ends.

    The crest runs on into the blurred end of the shaft and into the shaft under the
    skin; the visible shaft ends where the absorptance falls clearly below that of its
    middle (:data:`_END_LEVEL`), or, with `blue` given, where the hue turns from the
    shaft's own to the blue-grey of pigment under the skin (:data:`_SUBSURFACE_HUE`):
    the shadow of a thick hair, or of a unit's hairs together, can be as dark as a shaft.
    At most a third of the length is cut at each end. The absorptance and blue shift
    along all traces are each one gather and their medians one sort
    (:func:`._ridges.group_medians`); only a trace with a blue-grey end is looked at on
    its own.

    Parameters
    ----------
    traces : list of (P, 2) ndarray, px
        Traces (x, y) at the resolution of `od`.
    od : (M, N) ndarray of float32
        Absorptance.
    blue : ndarray of float32, optional
        Red-minus-blue absorptance, at `factor` times coarser resolution than `od`.
    factor : float
        Pixels of `od` per pixel of `blue`.

    Returns
    -------
    list of (Q, 2) ndarray, px
        Each visible shaft, resampled every pixel (or the trace unchanged if too short).
    """
    lines = [_ridges.resample(pts, 1.0) for pts in traces]
    out = list(traces)
    judged = [i for i, line in enumerate(lines) if len(line) >= 8]
    if not judged:
        return out
    sizes = np.array([len(lines[i]) for i in judged], dtype=np.intp)
    xy = np.concatenate([lines[i] for i in judged])
    vals_all = _ridges.remap_points(od, xy[:, 0], xy[:, 1], border=cv2.BORDER_REPLICATE)
    first = np.r_[0, np.cumsum(sizes)[:-1]]
    cut = sizes // 5
    middle = sizes - 2 * cut

    def middles(values: NDArray[np.float32]) -> NDArray[np.float32]:
        # the middle three fifths of each trace, as consecutive groups
        return np.concatenate(
            [values[a + c : a + k - c] for a, k, c in zip(first, sizes, cut, strict=True)]
        )

    refs = _ridges.group_medians(middles(vals_all), middle)
    hue_all: NDArray[np.float32] | None = None
    blue_grey = np.zeros(len(judged), dtype=bool)
    if blue is not None:
        work = (xy + 0.5) / factor - 0.5
        shift = _ridges.remap_points(blue, work[:, 0], work[:, 1], border=cv2.BORDER_REPLICATE)
        floor = np.repeat((0.25 * refs).astype(np.float32), sizes)
        with np.errstate(divide="ignore", invalid="ignore"):  # traces with no level: unused
            hue = np.asarray(shift / np.maximum(vals_all, floor), dtype=np.float32)
        mid_all = _ridges.group_medians(middles(hue), middle).astype(np.float32)
        three = np.arange(3)
        head = np.median(hue[first[:, None] + three], axis=1)
        tail = np.median(hue[(first + sizes - 3)[:, None] + three], axis=1)
        hue_all = hue
        # most traces end in shaft or bare skin: look closer only at a blue-grey end
        blue_grey = np.maximum(head, tail) - mid_all > _SUBSURFACE_HUE
    for t, i in enumerate(judged):
        a, k, c = int(first[t]), int(sizes[t]), int(cut[t])
        ref = float(refs[t])
        if ref <= 0:
            continue
        vals = vals_all[a : a + k]
        above = np.nonzero(vals >= _END_LEVEL * ref)[0]
        if above.size < 2:
            continue
        lo = min(int(above[0]), k // 3)
        hi = max(int(above[-1]), k - 1 - k // 3)
        if hue_all is not None and blue_grey[t]:
            from scipy import ndimage as ndi

            smooth = ndi.median_filter(hue_all[a : a + k], size=5, mode="nearest")
            mid = float(np.median(smooth[c : k - c]))
            lo = max(lo, _hue_edge(smooth, 0, 1, mid))
            hi = min(hi, _hue_edge(smooth, k - 1, -1, mid))
        out[i] = lines[i][lo : hi + 1]
    return out


def _hue_edge(hue: F64, end: int, step: int, mid: float) -> int:
    """Index where a run of blue-grey hue at one end of a trace gives way to the shaft's.

    Walking from `end` by `step` (+1 from the start, -1 from the end), the run is where
    `hue` exceeds `mid` (the median of the middle three fifths, the shaft's own hue) by
    more than :data:`_SUBSURFACE_HUE`, for at most a third of the length; the shaft starts
    where the hue falls below midway between the run's median and `mid` (its edge,
    wherever the blur puts the run's end). Returns `end` when there is no such run.
    """
    k = len(hue)
    limit = k // 3 if step > 0 else k - 1 - k // 3
    i = end
    while i != limit and hue[i] - mid > _SUBSURFACE_HUE:
        i += step
    if abs(i - end) < 3:
        return end
    run = hue[min(end, i) : max(end, i)]
    half = 0.5 * (float(np.median(run)) + mid)
    j = end
    while j != i and hue[j] > half:
        j += step
    return j
