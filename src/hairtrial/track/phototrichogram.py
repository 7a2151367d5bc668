"""Phototrichogram: the same clipped field imaged twice; the hairs that grew are anagen.

An anagen hair grows about 0.2–0.4 mm/day; a telogen hair does not grow at all, so the
growth of each hair splits the two phases with a wide margin (default cut 100 µm/day).

With the two images (the normal use), growth is measured along each clipped hair's own
axis (:mod:`hairtrial.track._regrowth`): the fields are registered from their absorptance
maps, every counted hair of the clipped image is locked onto its shaft in the second image
and followed outwards from both ends to bare skin, in both images; the growth is the
difference, and the end that grew is the cut end. This does not depend on the second
image's own hair detection, which long, crossing regrowth makes the weakest link.

With the measurements alone, the pair goes through the tracking engine
(:func:`~hairtrial.track.match.match_pair`): registered from hair exit points and matched
one to one like two visits, growth read from the two measured lengths.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hairtrial._validate import InputError, check_positive
from hairtrial.measure.config import MeasureConfig
from hairtrial.measure.core import ImageMeasurement, absorptance_image
from hairtrial.records import HairRecord
from hairtrial.track import _regrowth
from hairtrial.track._geometry import apply, invert
from hairtrial.track.config import TrackConfig, resolve_config
from hairtrial.track.match import match_hairs, match_pair
from hairtrial.track.register import Registration

#: Fastest plausible growth followed, µm/day (scalp anagen hair: 0.2–0.4 mm/day).
_MAX_GROWTH_UM_PER_DAY = 800.0


@dataclass(frozen=True)
class HairGrowth:
    """One hair matched between the two images.

    Parameters
    ----------
    id_first : int
        Hair id in the first (clipped) measurement.
    id_second : int or None
        Id of the hair matched to it in the second measurement (``None``: the second
        image's detection has no hair for it; its growth was still measured on the shaft).
    growth_um_per_day : float, µm/day
        Change of visible length per day.
    phase : {'anagen', 'telogen'}
        Growing or not.
    cut_end : {'tip', 'exit', ''}
        Which end of the first measurement grew (``'exit'`` means the measurement had
        the ends the wrong way round); empty when no end grew or unknown.
    """

    id_first: int
    id_second: int | None
    growth_um_per_day: float
    phase: str
    cut_end: str = ""


@dataclass(frozen=True)
class PhototrichogramResult:
    """Growth per hair and the anagen / telogen counts of a phototrichogram pair.

    Parameters
    ----------
    hairs : tuple of HairGrowth
        Matched hairs (empty when the registration was refused).
    n_anagen, n_telogen : int
        Matched hairs by phase.
    anagen_fraction : float or None
        ``n_anagen / (n_anagen + n_telogen)``; ``None`` without matches or when the pair
        could not be registered.
    n_unmatched_first, n_unmatched_second : int
        Counted hairs (exit inside the field) seen in only one image.
    registration : Registration
        The second image onto the first (``registration.matrix`` maps second-image pixels
        to first-image pixels), with its score; ``registration.ok`` is ``False`` with a
        ``reason`` when the two images do not overlap well enough to match hairs.
    days : float, days
        Time between the two images.
    method : {'shaft', 'hairs'}
        ``'shaft'``: growth traced along each hair on the two images; ``'hairs'``: from
        the two measurements' matched lengths.
    n_lost : int
        Counted hairs of the first image whose shaft is not in the second (shed, hidden).
    n_undetermined : int
        Hairs whose growth ran off the image, so that the phase cannot be told.
    """

    hairs: tuple[HairGrowth, ...]
    n_anagen: int
    n_telogen: int
    anagen_fraction: float | None
    n_unmatched_first: int
    n_unmatched_second: int
    registration: Registration
    days: float
    method: str = "hairs"
    n_lost: int = 0
    n_undetermined: int = 0

    def to_json(self) -> dict[str, Any]:
        """Return the result as a JSON-ready dict (µm/day; the matrix as 2×3 lists)."""
        reg = self.registration
        return {
            "days": self.days,
            "method": self.method,
            "registered": reg.ok,
            "registration": {
                "matrix": [[float(v) for v in row] for row in reg.matrix],
                "score": float(reg.score),
                "method": reg.method,
                "reason": reg.reason,
            },
            "n_anagen": self.n_anagen,
            "n_telogen": self.n_telogen,
            "anagen_fraction": self.anagen_fraction,
            "unmatched_first": self.n_unmatched_first,
            "unmatched_second": self.n_unmatched_second,
            "lost": self.n_lost,
            "undetermined": self.n_undetermined,
            "hairs": [
                {
                    "id_first": h.id_first,
                    "id_second": h.id_second,
                    "phase": h.phase,
                    "growth_um_per_day": round(h.growth_um_per_day, 2),
                    "cut_end": h.cut_end,
                }
                for h in self.hairs
            ],
        }


def phototrichogram(
    first: ImageMeasurement,
    second: ImageMeasurement,
    *,
    days: float,
    images: Sequence[NDArray[Any]] | None = None,
    anagen_min_um_per_day: float = 100.0,
    config: TrackConfig | None = None,
    measure_config: MeasureConfig | None = None,
) -> PhototrichogramResult:
    """Register two measurements of one field, follow its hairs and classify their growth.

    Parameters
    ----------
    first, second : ImageMeasurement
        The field just after clipping and `days` later. Calibrations may differ: lengths
        are compared in µm.
    days : float, days
        Time between the two images.
    images : (first, second) ndarrays, optional
        The two images. With them growth is traced along each hair on the images
        (``method='shaft'``, recommended); without, it is read from the matched hairs'
        measured lengths (``method='hairs'``).
    anagen_min_um_per_day : float, µm/day
        Growth at or above which a hair is anagen.
    config : TrackConfig, optional
        Registration and matching parameters (the tracking engine's).
    measure_config : MeasureConfig, optional
        Parameters of the absorptance maps (``method='shaft'``; defaults otherwise).

    Returns
    -------
    PhototrichogramResult
        Empty, with ``registration.ok`` false and its reason, when the two fields cannot
        be registered.

    Raises
    ------
    InputError
        For a non-positive `days` or threshold, or not exactly two images.
    """
    days = check_positive(days, name="days")
    threshold = check_positive(anagen_min_um_per_day, name="anagen_min_um_per_day")
    cfg = resolve_config(config)
    if images is not None:
        pair_images = list(images)
        if len(pair_images) != 2:
            raise InputError(f"images: expected the two images of the pair, got {len(pair_images)}")
        return _by_shaft(first, second, pair_images, days, threshold, cfg, measure_config)
    pair = match_pair(
        first.hairs, second.hairs, um_per_px=(first.um_per_px, second.um_per_px),
        shapes=(first.shape, second.shape), config=cfg,
    )  # fmt: skip
    before = {h.id: h for h in pair.before}
    after = {h.id: h for h in pair.after}
    rates = [(i, j, (after[j].length_um - before[i].length_um) / days) for i, j in pair.match.pairs]
    growth = tuple(
        HairGrowth(
            id_first=int(i),
            id_second=int(j),
            growth_um_per_day=float(rate),
            phase="anagen" if rate >= threshold else "telogen",
        )
        for i, j, rate in rates
    )
    unmatched = (len(pair.match.unmatched_a), len(pair.match.unmatched_b))
    return _result(growth, pair.registration, days, "hairs", unmatched=unmatched)


def _result(
    growth: tuple[HairGrowth, ...],
    registration: Registration,
    days: float,
    method: str,
    *,
    unmatched: tuple[int, int],
    lost: int = 0,
    undetermined: int = 0,
) -> PhototrichogramResult:
    n_anagen = sum(1 for g in growth if g.phase == "anagen")
    return PhototrichogramResult(
        hairs=growth,
        n_anagen=n_anagen,
        n_telogen=len(growth) - n_anagen,
        anagen_fraction=(n_anagen / len(growth)) if growth else None,
        n_unmatched_first=unmatched[0],
        n_unmatched_second=unmatched[1],
        registration=registration,
        days=days,
        method=method,
        n_lost=lost,
        n_undetermined=undetermined,
    )


def _by_shaft(
    first: ImageMeasurement,
    second: ImageMeasurement,
    images: list[NDArray[Any]],
    days: float,
    threshold: float,
    cfg: TrackConfig,
    measure_config: MeasureConfig | None,
) -> PhototrichogramResult:
    """Growth traced along each clipped hair on both images (see the module docstring)."""
    u1, u2 = first.um_per_px, second.um_per_px
    od1 = absorptance_image(images[0], um_per_px=u1, config=measure_config)
    od2 = absorptance_image(images[1], um_per_px=u2, config=measure_config)
    reg = _regrowth.register_absorptance(
        od1, od2, um_per_px=(u1, u2), max_rotation_deg=cfg.max_rotation_deg
    )
    counted = [h for h in first.hairs if h.exit_px is not None and len(h.centerline_px) >= 2]
    if not reg.ok:
        n_second = sum(h.exit_px is not None for h in second.hairs)
        return _result((), reg, days, "shaft", unmatched=(len(counted), n_second))
    second_of = _second_ids(first.hairs, second.hairs, reg, u1, cfg)
    diam = np.array([h.diameter_um for h in counted], dtype=np.float64)
    body1 = _regrowth.hair_bodies(counted, diam / u1)
    to_second = invert(np.asarray(reg.matrix, dtype=np.float64))
    shafts1 = _regrowth.lock_shafts(od1, body1, diam / u1, search_px=1.5)
    shafts2 = _regrowth.lock_shafts(
        od2, apply(to_second, body1), diam / u2,
        search_px=_regrowth.lock_search_px(u2),
    )  # fmt: skip
    found = _regrowth.found_in_second(shafts1, shafts2)
    reach_um = _MAX_GROWTH_UM_PER_DAY * days + 500.0
    ext1, cut1 = _regrowth.trace_ends(od1, shafts1, max_px=reach_um / u1)
    ext2, cut2 = _regrowth.trace_ends(od2, shafts2, max_px=reach_um / u2)
    grown = (ext2 * u2 - ext1 * u1) / days  # µm/day beyond the start and the end
    growth: list[HairGrowth] = []
    lost = undetermined = 0
    for k, hair in enumerate(counted):
        if not found[k]:
            lost += 1
            continue
        end = int(np.argmax(grown[k]))
        rate = float(grown[k, end])
        if rate >= threshold and not cut1[k, end]:
            phase = "anagen"
        elif np.all(grown[k] < threshold) and not cut2[k].any():
            phase = "telogen"
        else:
            undetermined += 1
            continue
        cut_end = ("exit" if end == 0 else "tip") if phase == "anagen" else ""
        growth.append(
            HairGrowth(
                id_first=hair.id,
                id_second=second_of.get(hair.id),
                growth_um_per_day=max(rate, 0.0) if phase == "telogen" else rate,
                phase=phase,
                cut_end=cut_end,
            )
        )
    paired = set(second_of.values())
    n_new = sum(1 for h in second.hairs if h.exit_px is not None and h.id not in paired)
    return _result(
        tuple(growth), reg, days, "shaft", unmatched=(lost + undetermined, n_new),
        lost=lost, undetermined=undetermined,
    )  # fmt: skip


def _second_ids(
    first: Sequence[HairRecord],
    second: Sequence[HairRecord],
    reg: Registration,
    um_per_px: float,
    cfg: TrackConfig,
) -> dict[int, int]:
    """First-image hair id → the second image's hair matched to it by exit point."""
    match = match_hairs(first, second, transform=reg, um_per_px=um_per_px, config=cfg)
    return {int(i): int(j) for i, j in match.pairs}


__all__ = ["HairGrowth", "PhototrichogramResult", "phototrichogram"]
