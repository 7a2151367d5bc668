"""The hair record shared by measurement, simulator truth and everything downstream.

The JSON form of :class:`HairRecord` is the public contract of DESIGN.md: pixel
coordinates are (x, y) with the origin at the top-left pixel's corner, lengths and
diameters in µm.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

HairClass = Literal["vellus", "intermediate", "terminal"]

#: Default class limits in µm (DESIGN.md): vellus ≤ 30, intermediate 30–60, terminal ≥ 60.
VELLUS_MAX_UM = 30.0
TERMINAL_MIN_UM = 60.0


@dataclass(frozen=True)
class HairClasses:
    """Diameter limits that split hairs into classes.

    Parameters
    ----------
    vellus_max_um : float, µm
        A hair with diameter ≤ this is vellus.
    terminal_min_um : float, µm
        A hair with diameter ≥ this is terminal; in between is intermediate. The same
        threshold (60 µm by default) splits the miniaturised subgroup in ``analyze``.
    """

    vellus_max_um: float = VELLUS_MAX_UM
    terminal_min_um: float = TERMINAL_MIN_UM

    def __post_init__(self) -> None:
        if not 0 < self.vellus_max_um < self.terminal_min_um:
            raise ValueError(
                "HairClasses: need 0 < vellus_max_um < terminal_min_um, got "
                f"{self.vellus_max_um} and {self.terminal_min_um}"
            )

    def classify(self, diameter_um: float) -> HairClass:
        """Return the class of a hair of shaft diameter `diameter_um` (µm)."""
        if diameter_um >= self.terminal_min_um:
            return "terminal"
        if diameter_um <= self.vellus_max_um:
            return "vellus"
        return "intermediate"


DEFAULT_CLASSES = HairClasses()

Point = tuple[float, float]


@dataclass(frozen=True)
class HairRecord:
    """One hair as seen in one image.

    Parameters
    ----------
    id : int
        Hair id, unique within the image.
    exit_px : (x, y) or None, px
        Where the shaft leaves the skin; ``None`` for a hair entering from outside the field
        (such a hair is reported but not counted).
    tip_px : (x, y), px
        The free (cut or natural) end.
    centerline_px : sequence of (x, y), px
        Sub-pixel centreline from exit (or field edge) to tip.
    diameter_um : float, µm
        Shaft diameter.
    length_um : float, µm
        Length of the visible shaft, as projected in the image.
    hair_class : {'vellus', 'intermediate', 'terminal'}
        Class from the diameter.
    confidence : float
        Detection confidence in [0, 1]; 1 for simulator truth.
    extra : dict
        Additional fields (simulator truth: ``follicle_id``, ``phase``).
    """

    id: int
    exit_px: Point | None
    tip_px: Point
    centerline_px: tuple[Point, ...]
    diameter_um: float
    length_um: float
    hair_class: HairClass
    confidence: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_json(self, *, ndigits: int = 2) -> dict[str, Any]:
        """Return the DESIGN.md JSON form (``class`` key, rounded coordinates).

        Parameters
        ----------
        ndigits : int
            Decimal places for pixel coordinates and µm values.

        Returns
        -------
        dict
            JSON-serialisable hair record.
        """

        def pt(p: Point) -> list[float]:
            return [round(float(p[0]), ndigits), round(float(p[1]), ndigits)]

        out: dict[str, Any] = {
            "id": int(self.id),
            "exit_px": None if self.exit_px is None else pt(self.exit_px),
            "tip_px": pt(self.tip_px),
            "centerline_px": [pt(p) for p in self.centerline_px],
            "diameter_um": round(float(self.diameter_um), ndigits),
            "length_um": round(float(self.length_um), ndigits),
            "class": self.hair_class,
            "confidence": round(float(self.confidence), 4),
        }
        out.update(self.extra)
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> HairRecord:
        """Build a record from its JSON form (unknown keys go to `extra`).

        Parameters
        ----------
        obj : dict
            A hair object as written by :meth:`to_json`.

        Returns
        -------
        HairRecord
        """
        known = {
            "id",
            "exit_px",
            "tip_px",
            "centerline_px",
            "diameter_um",
            "length_um",
            "class",
            "confidence",
        }
        exit_px = obj.get("exit_px")
        return cls(
            id=int(obj["id"]),
            exit_px=None if exit_px is None else (float(exit_px[0]), float(exit_px[1])),
            tip_px=(float(obj["tip_px"][0]), float(obj["tip_px"][1])),
            centerline_px=tuple((float(x), float(y)) for x, y in obj["centerline_px"]),
            diameter_um=float(obj["diameter_um"]),
            length_um=float(obj["length_um"]),
            hair_class=obj["class"],
            confidence=float(obj.get("confidence", 1.0)),
            extra={k: v for k, v in obj.items() if k not in known},
        )


def summarize_hairs(
    hairs: Sequence[HairRecord],
    *,
    area_cm2: float,
    classes: HairClasses = DEFAULT_CLASSES,
) -> dict[str, Any]:
    """Per-image endpoints from hair records (the counted hairs only).

    A hair is counted when its exit lies inside the image (``exit_px`` not ``None``).

    Parameters
    ----------
    hairs : sequence of HairRecord
        Hairs of one image.
    area_cm2 : float, cm²
        Imaged skin area.
    classes : HairClasses
        Class limits; `classes.terminal_min_um` is also the miniaturisation index.

    Returns
    -------
    dict
        ``hair_count``, ``density_per_cm2`` (hairs/cm²), ``mean_diameter_um`` (µm, ``None``
        without hairs), ``terminal_fraction`` (``None`` without hairs),
        ``cumulative_thickness_mm_per_cm2`` (sum of diameters in mm per cm²),
        ``fraction_below_index`` (share of hairs thinner than the terminal limit) and
        ``class_counts``.
    """
    if not area_cm2 > 0:
        raise ValueError(f"area_cm2 must be positive, got {area_cm2}")
    counted = [h for h in hairs if h.exit_px is not None]
    n = len(counted)
    diameters = [h.diameter_um for h in counted]
    terminal = sum(1 for d in diameters if d >= classes.terminal_min_um)
    class_counts = {"vellus": 0, "intermediate": 0, "terminal": 0}
    for d in diameters:
        class_counts[classes.classify(d)] += 1
    return {
        "hair_count": n,
        "density_per_cm2": n / area_cm2,
        "mean_diameter_um": (sum(diameters) / n) if n else None,
        "terminal_fraction": (terminal / n) if n else None,
        "cumulative_thickness_mm_per_cm2": sum(diameters) / 1000.0 / area_cm2,
        "fraction_below_index": ((n - terminal) / n) if n else None,
        "class_counts": class_counts,
    }
