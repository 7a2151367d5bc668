"""Look parameters of the trichoscopy renderer and their random presets.

Public names are re-exported by :mod:`hairtrial.simulate.render`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from hairtrial._validate import InputError, check_choice, check_range

#: Pigment colours a style can give to pigmented hairs.
HAIR_COLOURS: tuple[str, ...] = ("black", "dark_brown", "brown", "blond", "grey", "white")
#: Names accepted by :func:`random_style`.
PRESETS: tuple[str, ...] = ("standard", "hard")

# Allowed range of every numeric field (inclusive).
_RANGES: dict[str, tuple[float, float]] = {
    "skin_texture": (0.0, 1.0),
    "skin_sheen": (0.0, 1.0),
    "grey_fraction": (0.0, 1.0),
    "light_azimuth_deg": (-360.0, 360.0),
    "light_elevation_deg": (5.0, 90.0),
    "specular_strength": (0.0, 1.0),
    "follicle_opening_strength": (0.0, 1.0),
    "subsurface_visibility": (0.0, 1.0),
    "empty_opening_density": (0.0, 20.0),
    "yellow_dot_fraction": (0.0, 1.0),
    "yellow_dot_density": (0.0, 20.0),
    "perifollicular_pigment": (0.0, 1.0),
    "scale_flake_density": (0.0, 50.0),
    "bubble_density": (0.0, 5.0),
    "ink_dot_density": (0.0, 20.0),
    "blur_sigma_px": (0.0, 6.0),
    "blur_edge_gain": (0.0, 2.0),
    "chromatic_aberration_px": (0.0, 4.0),
    "veiling_glare": (0.0, 0.2),
    "vignetting": (0.0, 0.9),
    "illumination_gradient": (0.0, 0.9),
    "illumination_angle_deg": (-360.0, 360.0),
    "exposure": (0.3, 2.0),
    "noise_sigma": (0.0, 30.0),
    "sharpen": (0.0, 2.0),
}


@dataclass(frozen=True)
class RenderStyle:
    """Every look parameter of a rendered trichoscopy image.

    All fields are validated on construction (an :class:`~hairtrial._validate.InputError`
    names the field). Densities are per mm² of imaged field; colours are sRGB in [0, 1].

    Parameters
    ----------
    skin_rgb : (3,) tuple of float, sRGB [0, 1]
        Base skin colour (light ~ (0.90, 0.82, 0.74), dark ~ (0.40, 0.27, 0.19)).
    skin_texture : float, [0, 1]
        Strength of mottling, skin furrows and grain.
    skin_sheen : float, [0, 1]
        Glints and sheen of the wet skin surface.
    hair_colour : {'black', 'dark_brown', 'brown', 'blond', 'grey', 'white'}
        Pigment of the pigmented hairs.
    grey_fraction : float, [0, 1]
        Share of unpigmented (white) hairs; which follicles are unpigmented is fixed by the
        follicle id, so the same hairs stay white across visits.
    light_azimuth_deg : float, degrees
        Direction towards the light in the image plane (0 = +x, 90 = +y, i.e. down).
    light_elevation_deg : float, degrees, [5, 90]
        Elevation of the light above the skin.
    specular_strength : float, [0, 1]
        Brightness of the specular line on the shafts.
    follicle_opening_strength : float, [0, 1]
        Darkness of the follicular openings (ostia).
    subsurface_visibility : float, [0, 1]
        Contrast of the intradermal shaft seen through the epidermis (blue-grey root).
    empty_opening_density : float, 1/mm², [0, 20]
        Extra empty openings scattered over the field (per image).
    yellow_dot_fraction : float, [0, 1]
        Chance that a follicle without shaft shows a yellow dot (fixed per follicle).
    yellow_dot_density : float, 1/mm², [0, 20]
        Extra yellow dots scattered over the field (per image).
    perifollicular_pigment : float, [0, 1]
        Share of hair-bearing units with a brown perifollicular halo (fixed per unit).
    scale_flake_density : float, 1/mm², [0, 50]
        White scale flakes (half of them at hair exits).
    bubble_density : float, 1/mm², [0, 5]
        Air bubbles in the contact fluid.
    ink_dot_density : float, 1/mm², [0, 20]
        Specks of blue marker ink (in clumps).
    blur_sigma_px : float, px, [0, 6]
        Defocus blur (Gaussian sigma) at the image centre.
    blur_edge_gain : float, [0, 2]
        Relative extra blur at the corners (field curvature).
    chromatic_aberration_px : float, px, [0, 4]
        Lateral chromatic aberration: red/blue displacement at the corners.
    veiling_glare : float, [0, 0.2]
        Stray light in the optics: this fraction of the (heavily blurred) image is added
        everywhere, which lifts the blacks of dark hairs.
    vignetting : float, [0, 0.9]
        Relative fall-off of illumination at the corners.
    illumination_gradient : float, [0, 0.9]
        Relative brightness change across the field along `illumination_angle_deg`.
    illumination_angle_deg : float, degrees
        Direction in which the illumination increases.
    white_balance : (3,) tuple of float, [0.5, 1.5]
        Per-channel gains (colour-balance drift).
    exposure : float, [0.3, 2]
        Overall exposure.
    noise_sigma : float, 8-bit levels, [0, 30]
        Sensor noise standard deviation at mid-grey (signal dependent).
    sharpen : float, [0, 2]
        Unsharp-mask amount of the camera's processing.
    jpeg_quality : int, [1, 100]
        JPEG quality for the writer (the renderer itself returns uncompressed pixels).
    text_overlay : bool
        Burn a device information bar into the top rows.
    """

    skin_rgb: tuple[float, float, float] = (0.86, 0.75, 0.65)
    skin_texture: float = 0.5
    skin_sheen: float = 0.3
    hair_colour: str = "black"
    grey_fraction: float = 0.0
    light_azimuth_deg: float = -60.0
    light_elevation_deg: float = 45.0
    specular_strength: float = 0.3
    follicle_opening_strength: float = 0.5
    subsurface_visibility: float = 0.6
    empty_opening_density: float = 0.1
    yellow_dot_fraction: float = 0.2
    yellow_dot_density: float = 0.0
    perifollicular_pigment: float = 0.1
    scale_flake_density: float = 0.2
    bubble_density: float = 0.0
    ink_dot_density: float = 0.0
    blur_sigma_px: float = 0.8
    blur_edge_gain: float = 0.3
    chromatic_aberration_px: float = 0.0
    veiling_glare: float = 0.03
    vignetting: float = 0.15
    illumination_gradient: float = 0.1
    illumination_angle_deg: float = 0.0
    white_balance: tuple[float, float, float] = (1.0, 1.0, 1.0)
    exposure: float = 1.0
    noise_sigma: float = 2.0
    sharpen: float = 0.3
    jpeg_quality: int = 90
    text_overlay: bool = False

    def __post_init__(self) -> None:
        for name, (low, high) in _RANGES.items():
            value = check_range(getattr(self, name), name=f"RenderStyle.{name}", low=low, high=high)
            object.__setattr__(self, name, value)
        for name, (low, high) in (("skin_rgb", (0.0, 1.0)), ("white_balance", (0.5, 1.5))):
            value = getattr(self, name)
            try:
                items = tuple(value)
            except TypeError:
                raise InputError(f"RenderStyle.{name}: expected 3 numbers, got {value!r}") from None
            if len(items) != 3:
                raise InputError(f"RenderStyle.{name}: expected 3 numbers, got {value!r}")
            checked = tuple(
                check_range(v, name=f"RenderStyle.{name}", low=low, high=high) for v in items
            )
            object.__setattr__(self, name, checked)
        check_choice(self.hair_colour, name="RenderStyle.hair_colour", choices=HAIR_COLOURS)
        object.__setattr__(self, "hair_colour", str(self.hair_colour))
        q = self.jpeg_quality
        if isinstance(q, bool) or not isinstance(q, int | np.integer) or not 1 <= q <= 100:
            raise InputError(
                f"RenderStyle.jpeg_quality: expected an integer in [1, 100], got {q!r}"
            )
        object.__setattr__(self, "jpeg_quality", int(q))
        if not isinstance(self.text_overlay, bool | np.bool_):
            raise InputError(
                f"RenderStyle.text_overlay: expected a bool, got {self.text_overlay!r}"
            )
        object.__setattr__(self, "text_overlay", bool(self.text_overlay))


def _mix_rgb(stops: list[tuple[float, float, float]], t: float) -> np.ndarray[Any, Any]:
    """Piecewise-linear interpolation between colour stops, t in [0, 1]."""
    arr = np.asarray(stops, dtype=np.float64)
    pos = t * (len(stops) - 1)
    i = min(int(pos), len(stops) - 2)
    return np.asarray(arr[i] + (pos - i) * (arr[i + 1] - arr[i]))


_LIGHT_SKIN = (0.88, 0.81, 0.74)
_MEDIUM_SKIN = (0.74, 0.60, 0.50)
_DARK_SKIN = (0.40, 0.27, 0.19)


def random_style(
    rng: np.random.Generator, *, preset: str = "standard", **overrides: Any
) -> RenderStyle:
    """Draw a random look, so that detection cannot lean on one appearance.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness (the same state gives the same style).
    preset : {'standard', 'hard'}
        ``'standard'``: the measurement benchmark's look — black to brown hair on light to
        medium skin, mild blur (0.5–1.2 px), moderate clutter, JPEG 85–95, text bar in half
        of the images. ``'hard'``: everything — light to dark skin, all hair colours with up
        to 60 % unpigmented hairs, strong blur (1–2.5 px), heavy clutter and bubbles, uneven
        light, strong noise, text bars, JPEG 60–80.
    **overrides
        Field values that replace the drawn ones (e.g. ``hair_colour="white"``). The same
        random numbers are drawn whatever the overrides, so overriding one field leaves the
        others unchanged.

    Returns
    -------
    RenderStyle

    Raises
    ------
    InputError
        For an unknown preset, an unknown field name or an invalid value.
    """
    if not isinstance(rng, np.random.Generator):
        raise InputError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
    check_choice(preset, name="preset", choices=PRESETS)
    known = {f.name for f in dataclasses.fields(RenderStyle)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise InputError(
            f"random_style: unknown field(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known))}"
        )
    hard = preset == "hard"
    u = rng.uniform

    if hard:
        skin = _mix_rgb([_LIGHT_SKIN, _MEDIUM_SKIN, _DARK_SKIN], float(u()))
        colours = ["black", "dark_brown", "brown", "blond", "grey", "white"]
        weights = [0.2, 0.15, 0.15, 0.2, 0.15, 0.15]
    else:
        skin = _mix_rgb([_LIGHT_SKIN, _MEDIUM_SKIN], float(u()))
        colours = ["black", "dark_brown", "brown"]
        weights = [0.45, 0.4, 0.15]
    skin = np.clip(skin + rng.normal(0.0, 0.015, 3), 0.02, 0.98)
    hair_colour = colours[int(rng.choice(len(colours), p=weights))]
    some = float(u())  # shared switch for optional clutter in the standard preset

    def rng_range(standard: tuple[float, float], hard_range: tuple[float, float]) -> float:
        lo, hi = hard_range if hard else standard
        return float(u(lo, hi))

    drawn: dict[str, Any] = {
        "skin_rgb": tuple(float(v) for v in skin),
        "skin_texture": rng_range((0.3, 0.8), (0.4, 1.0)),
        "skin_sheen": rng_range((0.15, 0.8), (0.2, 1.0)),
        "hair_colour": hair_colour,
        "grey_fraction": rng_range((0.0, 0.08), (0.0, 0.6)) * (1.0 if hard or some < 0.4 else 0.0),
        "light_azimuth_deg": float(u(-180.0, 180.0)),
        "light_elevation_deg": rng_range((30.0, 75.0), (15.0, 80.0)),
        "specular_strength": rng_range((0.05, 0.4), (0.0, 0.8)),
        "follicle_opening_strength": rng_range((0.3, 0.8), (0.3, 1.0)),
        "subsurface_visibility": rng_range((0.4, 0.9), (0.2, 1.0)),
        "empty_opening_density": rng_range((0.0, 0.4), (0.2, 1.5)),
        "yellow_dot_fraction": rng_range((0.0, 0.3), (0.1, 0.6)),
        "yellow_dot_density": rng_range((0.0, 0.15), (0.1, 0.8)),
        "perifollicular_pigment": rng_range((0.0, 0.25), (0.1, 0.5)),
        "scale_flake_density": rng_range((0.0, 0.6), (0.5, 3.0)),
        "bubble_density": rng_range((0.0, 0.03), (0.02, 0.15))
        * (1.0 if hard or some > 0.7 else 0.0),
        "ink_dot_density": rng_range((0.0, 0.3), (0.0, 1.0)) * (1.0 if hard or some < 0.3 else 0.0),
        "blur_sigma_px": rng_range((0.5, 1.2), (1.0, 2.5)),
        "blur_edge_gain": rng_range((0.0, 0.4), (0.2, 0.8)),
        "chromatic_aberration_px": rng_range((0.0, 0.4), (0.3, 1.5)),
        "veiling_glare": rng_range((0.015, 0.05), (0.02, 0.1)),
        "vignetting": rng_range((0.05, 0.3), (0.2, 0.5)),
        "illumination_gradient": rng_range((0.0, 0.2), (0.1, 0.45)),
        "illumination_angle_deg": float(u(-180.0, 180.0)),
        "white_balance": tuple(
            float(v) for v in np.clip(1.0 + rng.normal(0.0, 0.06 if hard else 0.03, 3), 0.6, 1.4)
        ),
        "exposure": rng_range((0.65, 0.95), (0.55, 1.15)),
        "noise_sigma": rng_range((1.0, 3.0), (2.0, 6.0)),
        "sharpen": rng_range((0.0, 0.5), (0.0, 1.0)),
        "jpeg_quality": int(rng.integers(60, 81) if hard else rng.integers(85, 96)),
        "text_overlay": bool(u() < (0.8 if hard else 0.5)),
    }
    drawn.update(overrides)
    return RenderStyle(**drawn)
