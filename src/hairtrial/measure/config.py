"""One validated, frozen configuration object for :func:`~hairtrial.measure.measure_image`.

Every length is given in µm (physical size), never in pixels: the measurement converts
them once with the image's ``um_per_px``. Intensity thresholds are in optical-density
units (OD, natural log: ``-ln(I / I_background)``), so they mean the same on light and dark
skin and under uneven light. :meth:`MeasureConfig.config_hash` is stored with every result
so that a re-run with the same image, version and parameters can be recognised.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from hairtrial._validate import InputError, check_positive, check_range
from hairtrial.records import HairClasses


@dataclass(frozen=True)
class MeasureConfig:
    """Parameters of the hair measurement, in physical units.

    Parameters
    ----------
    min_diameter_um, max_diameter_um : float, µm
        Range of shaft diameters the ridge detector is matched to (default 10–150 µm).
    n_scales : int
        Number of detection scales, spaced geometrically over the diameter range.
    work_um_per_px : float, µm/px
        Finest pixel size worth working at; images sampled more finely are reduced to it
        before detection (diameters are still measured on the full-resolution image).
    background_um : float, µm
        Size of the robust (median) filter that estimates the bare-skin background; must be
        several times the widest shaft.
    ridge_low_od, ridge_high_od : float, OD
        Hysteresis thresholds on the scale-normalised ridge strength, expressed as the
        optical-density contrast of an ideal shaft that would give that response.
    min_length_um : float, µm
        Shortest visible shaft reported as a hair.
    link_gap_um : float, µm
        Largest gap bridged when linking ridge pieces by direction continuity (crossings,
        faint stretches).
    link_max_angle_deg : float, degrees
        Largest change of direction accepted when linking two pieces.
    psf_sigma_um : float or None, µm
        Standard deviation of the optical blur; ``None`` estimates it from the image.
    bundle_min_um : float, µm
        A dark band at least this wide is taken as several touching shafts (no scalp hair
        is that thick) and split into as many hairs as the image's typical diameter fits.
    light_hairs : bool
        Also look for shafts brighter than the skin (white, grey or blond hair). Off by
        default: on real images it still adds a few false shafts (bright scale lines);
        turn it on for subjects with grey hair.
    grey_hairs : bool
        Also trace shafts that differ from coloured skin by their colour only: a grey
        (unpigmented) hair over pink or tanned skin is darker in red and brighter in
        blue, so the smallest per-channel absorptance misses it, but its own colour
        turns neutral (:func:`hairtrial.measure._absorbance.neutral_contrast`). A trace
        seen mostly by that colour alone is reported only when it runs straight (exit
        shadows and the rims of openings turn neutral too, and curve). Off by default:
        on the real sets, whose skin is pale and yellowish, it moves little but costs
        ~20 % more time; turn it on for grey-haired subjects with pink or tanned skin. No
        effect on greyscale images or over skin less coloured than `ridge_high_od`.
    light_ridge_high_od : float, OD
        `ridge_high_od` of the light pass (brightening instead of absorptance): a white
        shaft scatters strongly and brightens the skin by far more than the faint bright
        lines of scale flakes and skin furrows on whitish skin, which at 0.15 were most
        of the pass's false shafts on real images.
    border_um : float, µm
        An end closer than this to the image edge is treated as leaving the field.
    classes : HairClasses
        Diameter limits for vellus / intermediate / terminal.
    histogram_bin_um : float, µm
        Bin width of the per-image diameter histogram.
    histogram_max_um : float, µm
        Upper edge of the diameter histogram (wider hairs go to the last bin).
    """

    min_diameter_um: float = 10.0
    max_diameter_um: float = 150.0
    n_scales: int = 5
    work_um_per_px: float = 5.0
    background_um: float = 600.0
    ridge_low_od: float = 0.06
    ridge_high_od: float = 0.15
    min_length_um: float = 100.0
    link_gap_um: float = 250.0
    link_max_angle_deg: float = 35.0
    psf_sigma_um: float | None = None
    bundle_min_um: float = 130.0
    light_hairs: bool = False
    grey_hairs: bool = False
    light_ridge_high_od: float = 0.25
    border_um: float = 20.0
    classes: HairClasses = field(default_factory=HairClasses)
    histogram_bin_um: float = 10.0
    histogram_max_um: float = 200.0

    def __post_init__(self) -> None:
        for name in (
            "min_diameter_um",
            "max_diameter_um",
            "work_um_per_px",
            "background_um",
            "ridge_low_od",
            "ridge_high_od",
            "light_ridge_high_od",
            "min_length_um",
            "link_gap_um",
            "border_um",
            "bundle_min_um",
            "histogram_bin_um",
            "histogram_max_um",
        ):
            check_positive(getattr(self, name), name=f"MeasureConfig.{name}")
        if self.min_diameter_um >= self.max_diameter_um:
            raise InputError(
                "MeasureConfig: min_diameter_um must be below max_diameter_um, got "
                f"{self.min_diameter_um} and {self.max_diameter_um}"
            )
        if self.ridge_low_od > self.ridge_high_od:
            raise InputError(
                "MeasureConfig: ridge_low_od must not exceed ridge_high_od, got "
                f"{self.ridge_low_od} and {self.ridge_high_od}"
            )
        if self.ridge_low_od > self.light_ridge_high_od:
            raise InputError(
                "MeasureConfig: ridge_low_od must not exceed light_ridge_high_od, got "
                f"{self.ridge_low_od} and {self.light_ridge_high_od}"
            )
        if self.background_um < 3 * self.max_diameter_um:
            raise InputError(
                "MeasureConfig.background_um: must be at least 3 x max_diameter_um "
                f"({3 * self.max_diameter_um} µm), got {self.background_um}"
            )
        if not isinstance(self.n_scales, int) or not 1 <= self.n_scales <= 12:
            raise InputError(
                f"MeasureConfig.n_scales: expected an int in [1, 12], got {self.n_scales!r}"
            )
        check_range(
            self.link_max_angle_deg, name="MeasureConfig.link_max_angle_deg", low=0, high=90
        )
        if self.psf_sigma_um is not None:
            check_positive(self.psf_sigma_um, name="MeasureConfig.psf_sigma_um")
        if not isinstance(self.classes, HairClasses):
            raise InputError("MeasureConfig.classes: expected a HairClasses instance")

    def to_dict(self) -> dict[str, Any]:
        """Return the configuration as a JSON-serialisable dict (nested ``classes``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> MeasureConfig:
        """Build a configuration from :meth:`to_dict` output; unknown keys are an error.

        Parameters
        ----------
        obj : dict
            Field values; missing fields keep their defaults.

        Returns
        -------
        MeasureConfig
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(obj) - known)
        if unknown:
            raise InputError(f"MeasureConfig: unknown field(s) {', '.join(unknown)}")
        values = dict(obj)
        if isinstance(values.get("classes"), dict):
            values["classes"] = HairClasses(**values["classes"])
        try:
            return cls(**values)
        except (TypeError, ValueError) as exc:
            raise InputError(f"MeasureConfig: {exc}") from None

    def config_hash(self) -> str:
        """Return the sha256 hex digest of the canonical JSON of this configuration."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()
