"""Phototrichogram: the same clipped field imaged twice; the hairs that grew are anagen.

The pair goes through the tracking engine (:func:`~hairtrial.track.match.match_pair`), so
a phototrichogram is registered and matched exactly like two visits of a site: a
similarity transform from hair exit points (image features as a fallback) with a quality
score and an explicit refusal, then one-to-one hair matching. An anagen hair grows about
0.3–0.4 mm/day; a telogen hair does not grow at all, so the growth of each matched hair
splits the two phases with a wide margin (default cut 100 µm/day).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from numpy.typing import NDArray

from hairtrial._validate import check_positive
from hairtrial.measure.core import ImageMeasurement
from hairtrial.track.config import TrackConfig
from hairtrial.track.match import match_pair
from hairtrial.track.register import Registration


@dataclass(frozen=True)
class HairGrowth:
    """One hair matched between the two images.

    Parameters
    ----------
    id_first, id_second : int
        Hair ids in the first and second measurement.
    growth_um_per_day : float, µm/day
        Change of visible length per day.
    phase : {'anagen', 'telogen'}
        Growing or not.
    """

    id_first: int
    id_second: int
    growth_um_per_day: float
    phase: str


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
    """

    hairs: tuple[HairGrowth, ...]
    n_anagen: int
    n_telogen: int
    anagen_fraction: float | None
    n_unmatched_first: int
    n_unmatched_second: int
    registration: Registration
    days: float

    def to_json(self) -> dict[str, Any]:
        """Return the result as a JSON-ready dict (µm/day; the matrix as 2×3 lists)."""
        reg = self.registration
        return {
            "days": self.days,
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
            "hairs": [
                {
                    "id_first": h.id_first,
                    "id_second": h.id_second,
                    "phase": h.phase,
                    "growth_um_per_day": round(h.growth_um_per_day, 2),
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
) -> PhototrichogramResult:
    """Register two measurements of one field, match hairs and classify their growth.

    Parameters
    ----------
    first, second : ImageMeasurement
        The field just after clipping and `days` later. Calibrations may differ: lengths
        are compared in µm.
    days : float, days
        Time between the two images.
    images : (first, second) ndarrays, optional
        The two images, used by the registration's image-feature fallback when the hair
        exits alone cannot register the pair.
    anagen_min_um_per_day : float, µm/day
        Growth at or above which a hair is anagen.
    config : TrackConfig, optional
        Registration and matching parameters (the tracking engine's).

    Returns
    -------
    PhototrichogramResult
    """
    days = check_positive(days, name="days")
    check_positive(anagen_min_um_per_day, name="anagen_min_um_per_day")
    pair = match_pair(
        first.hairs,
        second.hairs,
        um_per_px=(first.um_per_px, second.um_per_px),
        images=images,
        shapes=None if images is not None else (first.shape, second.shape),
        config=config,
    )
    before = {h.id: h for h in pair.before}
    after = {h.id: h for h in pair.after}
    rates = [(i, j, (after[j].length_um - before[i].length_um) / days) for i, j in pair.match.pairs]
    growth = tuple(
        HairGrowth(
            id_first=int(i),
            id_second=int(j),
            growth_um_per_day=float(rate),
            phase="anagen" if rate >= anagen_min_um_per_day else "telogen",
        )
        for i, j, rate in rates
    )
    n_anagen = sum(1 for g in growth if g.phase == "anagen")
    return PhototrichogramResult(
        hairs=growth,
        n_anagen=n_anagen,
        n_telogen=len(growth) - n_anagen,
        anagen_fraction=(n_anagen / len(growth)) if growth else None,
        n_unmatched_first=len(pair.match.unmatched_a),
        n_unmatched_second=len(pair.match.unmatched_b),
        registration=pair.registration,
        days=days,
    )


__all__ = ["HairGrowth", "PhototrichogramResult", "phototrichogram"]
