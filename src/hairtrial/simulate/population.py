r"""Follicle-level population model of a trial site: cycling, miniaturisation, treatment.

Every follicle of every site is simulated day by day, vectorised over all follicles of all
sites at once (one set of arrays with a site index per follicle).

The model
---------
**Layout.** Follicular units (FUs) of 1–4 follicles are placed on a jittered grid over the
square site (side ``sqrt(area_cm2)·1e4`` µm, origin at the top-left corner), so units are
spread roughly uniformly and never closer than ``fu_min_spacing_um`` to their grid
neighbours; the members of a unit sit on a small circle about ``fu_spread_um`` apart. Each
unit has an azimuth drawn around the site's hair stream, members scatter a little around it;
each follicle has a fixed exit elevation.

**Size.** A follicle has a *potential* (pre-miniaturisation) diameter :math:`D_p`, normal
and truncated at ±3.5 sd, and an *own* diameter :math:`D_b = m D_p` (its papilla's current
size): :math:`m = 1` for normal follicles, Beta distributed for the ``miniaturised_fraction``
already miniaturised at baseline. At each new anagen, with ``miniaturisation_probability``,
AGA shrinks :math:`D_b` by ``miniaturisation_factor`` (never below ``minimum_diameter_um``).

**Cycle.** anagen → catagen → telogen → (kenogen with ``kenogen_probability``) → anagen.
Durations are log-normal with the configured means and coefficients of variation. Mean
anagen is :math:`\max(A_{min}, A_{term} m^{\beta})` and mean kenogen
:math:`K\,m^{-\delta}`, with :math:`m = D_b/D_p` at the phase start, so miniaturised
follicles cycle in months instead of years and rest empty for longer. Each phase has an
intrinsic clock advancing 1 per day, except the telogen and kenogen clocks, which advance
:math:`1 + g_{re} S(t)` per day: this multiplies the re-entry hazard by
:math:`1 + g_{re} S(t)` whatever the duration distribution.

**Shaft.** A new shaft emerges ``emergence_days`` after anagen starts and then grows at
:math:`v(D) = v_{term} (D / D_{ref})^{\gamma}` µm/day. At catagen the shaft stops and
becomes the club hair, kept through telogen. Exogen (shedding) happens at the end of
telogen when the follicle rests in kenogen, otherwise a uniform 0–``exogen_max_delay_days``
into the next anagen, always before the new shaft emerges (one visible shaft per follicle).

**Treatment.** The site's stimulus :math:`S(t) = \text{response}\cdot s(t)` (from
:func:`hairtrial.simulate.treatment.stimulus`; 0 before day 0 and for untreated sites)
(a) speeds the telogen and kenogen clocks as above and (b) drives a per-follicle recovery
state :math:`r \in [0, 1]` towards :math:`\min(1, g_{rec} S(t) b)` with the time constant
``recovery_days``, where :math:`b = 1 +` ``miniaturised_extra_gain`` for follicles with
:math:`D_b` below ``miniaturised_threshold_um`` (60 µm), else 1. The visible diameter of a
growing shaft is :math:`D_v = D_b + r (D_p - D_b)`: miniaturised follicles have more room
to recover. When the stimulus decays, :math:`r` relaxes back and so does the diameter, so
the effect is transient. Only with ``consolidation`` :math:`c > 0` (a treatment that can
rebuild the papilla) does a follicle starting anagen keep part of it: :math:`D_b \leftarrow
D_b + c\,r\,(D_p - D_b)`, which also lengthens its anagen and shortens its rests.

**Initialisation.** Phases and ages are drawn from the stationary distribution of the
alternating renewal process (phase chosen with probability proportional to its mean
duration, duration length-biased, age uniform within it), so a short burn-in suffices.

Time is in days since the first treatment: day 0 is imaged just before the injection.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.special import ndtr, ndtri

from hairtrial._validate import InputError, check_choice, check_fields, check_range
from hairtrial.simulate.treatment import ARMS, TreatmentParams, stimulus

__all__ = [
    "OUTPUT_COLUMNS",
    "PHASES",
    "SEVERITIES",
    "PopulationParams",
    "SiteSpec",
    "severity_params",
    "simulate_population",
]

#: Cycle phases, in the order of the ``phase`` column's categories.
PHASES: tuple[str, ...] = ("anagen", "catagen", "telogen", "kenogen")
_ANAGEN, _CATAGEN, _TELOGEN, _KENOGEN = 0, 1, 2, 3

#: Severity presets in ``presets/severity.toml``: healthy, Hamilton–Norwood, Ludwig.
SEVERITIES: tuple[str, ...] = tuple(
    "healthy HN-II HN-III HN-IV HN-V HN-VI HN-VII Ludwig-I Ludwig-II Ludwig-III".split()
)

#: Columns of :func:`simulate_population`'s table, in order.
OUTPUT_COLUMNS: tuple[str, ...] = tuple(
    "site day follicle_id fu_id x_um y_um phase has_shaft diameter_um potential_diameter_um "
    "length_um growth_um_per_day azimuth_deg elevation_deg cycle".split()
)

_FU_FIELD = "fu_size_probabilities"


def _field(default: float, low: float, high: float) -> Any:
    """Return a dataclass field with its allowed range (inclusive) in the metadata."""
    return field(default=default, metadata={"range": (low, high)})


@dataclass(frozen=True)
class PopulationParams:
    """Every parameter of one site's follicle population (defaults: healthy adult scalp).

    Each scalar field's allowed range is in its metadata (``dataclasses.fields``) and is
    enforced by :meth:`from_dict` and :meth:`with_overrides`.

    Parameters
    ----------
    follicle_density_per_cm2 : float, follicles/cm²
        All follicles, including resting empty (kenogen) ones; the visible-hair density is
        lower by the share of follicles without a shaft.
    fu_size_probabilities : (4,) tuple of float
        Probabilities of follicular units of 1, 2, 3 and 4 follicles; sum to 1.
    fu_min_spacing_um, fu_spread_um : float, µm
        Minimum distance between neighbouring unit centres; typical distance between the
        members of one unit.
    potential_diameter_mean_um, potential_diameter_sd_um : float, µm
        Normal distribution (truncated at ±3.5 sd) of the pre-miniaturisation diameter.
    minimum_diameter_um : float, µm
        Thinnest shaft miniaturisation can produce.
    miniaturised_fraction : float
        Share of follicles already miniaturised at baseline.
    miniaturised_ratio_mean, miniaturised_ratio_sd : float
        Beta distribution of own/potential diameter among miniaturised follicles.
    anagen_terminal_days : float, days
        Mean anagen of a follicle at its full potential size (healthy: 2–7 years).
    anagen_cv : float
        Coefficient of variation of anagen durations (log-normal).
    anagen_min_days : float, days
        Floor of the mean anagen of a fully miniaturised follicle; must exceed
        `emergence_days`.
    anagen_miniaturisation_exponent : float
        β in mean anagen = max(`anagen_min_days`, `anagen_terminal_days`·mᵝ), where
        m = own/potential diameter at anagen start.
    catagen_days, catagen_cv : float, days and dimensionless
        Catagen mean duration (~14–21 days) and its coefficient of variation.
    telogen_days, telogen_cv : float, days and dimensionless
        Telogen mean duration (~90 days, longer in AGA) and its coefficient of variation.
    kenogen_probability : float
        Probability that a follicle shedding its club hair rests empty in kenogen.
    kenogen_days, kenogen_cv : float, days and dimensionless
        Kenogen mean duration of a follicle at its full potential size and the coefficient
        of variation (heavy-tailed: months).
    kenogen_miniaturisation_exponent : float
        δ in mean kenogen = `kenogen_days`·m⁻ᵟ, m = own/potential diameter: miniaturised
        follicles rest empty longer.
    miniaturisation_probability, miniaturisation_factor : float
        Probability per new anagen that the follicle miniaturises further (0 in health),
        and the factor on its own diameter when it does.
    growth_terminal_um_per_day, growth_reference_diameter_um, growth_diameter_exponent : float
        Growth law v = v_term·(D/D_ref)ᵞ in µm/day (~350 µm/day at 80 µm, ≈1 cm/month;
        slower for thin shafts), D_ref in µm.
    emergence_days : float, days
        Days from anagen start until the new shaft emerges above the skin.
    exogen_max_delay_days : float, days
        The old club hair is shed a uniform 0–this many days into the next anagen; at most
        `emergence_days`.
    elevation_mean_deg, elevation_sd_deg : float, degrees
        Normal distribution of the angle between shaft and skin (clipped to 5–85°).
    hair_stream_deg, hair_stream_sd_deg, fu_azimuth_sd_deg : float, degrees
        Main hair direction of the site in the image plane (0° = +x, 90° = +y downward),
        spread of unit azimuths around it, and of member azimuths around their unit's.
    """

    follicle_density_per_cm2: float = _field(250.0, 1.0, 1000.0)
    fu_size_probabilities: tuple[float, float, float, float] = (0.35, 0.45, 0.15, 0.05)
    fu_min_spacing_um: float = _field(300.0, 0.0, 5000.0)
    fu_spread_um: float = _field(150.0, 0.0, 1000.0)
    potential_diameter_mean_um: float = _field(80.0, 10.0, 250.0)
    potential_diameter_sd_um: float = _field(12.0, 0.0, 60.0)
    minimum_diameter_um: float = _field(12.0, 1.0, 60.0)
    miniaturised_fraction: float = _field(0.15, 0.0, 1.0)
    miniaturised_ratio_mean: float = _field(0.3, 0.01, 0.99)
    miniaturised_ratio_sd: float = _field(0.08, 0.0, 0.5)
    anagen_terminal_days: float = _field(1400.0, 30.0, 3650.0)
    anagen_cv: float = _field(0.35, 0.0, 2.0)
    anagen_min_days: float = _field(45.0, 2.0, 3650.0)
    anagen_miniaturisation_exponent: float = _field(2.0, 0.0, 10.0)
    catagen_days: float = _field(17.0, 1.0, 90.0)
    catagen_cv: float = _field(0.15, 0.0, 2.0)
    telogen_days: float = _field(90.0, 1.0, 730.0)
    telogen_cv: float = _field(0.3, 0.0, 2.0)
    kenogen_probability: float = _field(0.05, 0.0, 1.0)
    kenogen_days: float = _field(60.0, 1.0, 3650.0)
    kenogen_cv: float = _field(1.0, 0.0, 3.0)
    kenogen_miniaturisation_exponent: float = _field(1.0, 0.0, 5.0)
    miniaturisation_probability: float = _field(0.0, 0.0, 1.0)
    miniaturisation_factor: float = _field(0.85, 0.05, 1.0)
    growth_terminal_um_per_day: float = _field(350.0, 10.0, 1000.0)
    growth_reference_diameter_um: float = _field(80.0, 10.0, 250.0)
    growth_diameter_exponent: float = _field(0.5, 0.0, 3.0)
    emergence_days: float = _field(20.0, 0.0, 120.0)
    exogen_max_delay_days: float = _field(10.0, 0.0, 120.0)
    elevation_mean_deg: float = _field(40.0, 5.0, 85.0)
    elevation_sd_deg: float = _field(10.0, 0.0, 40.0)
    hair_stream_deg: float = _field(90.0, 0.0, 360.0)
    hair_stream_sd_deg: float = _field(20.0, 0.0, 180.0)
    fu_azimuth_sd_deg: float = _field(8.0, 0.0, 90.0)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str) -> PopulationParams:
        """Build validated parameters from a mapping (e.g. a TOML table).

        Parameters
        ----------
        d : mapping of str to number
            Field values; fields left out keep their (healthy-scalp) defaults.
        source : str
            Where the values came from (a file and table), named in every error.

        Returns
        -------
        PopulationParams

        Raises
        ------
        InputError
            For an unknown field, a non-number, a value outside its range, or inconsistent
            fields; the message names `source`, the field and what is allowed.
        """
        check_fields(d, known=(f.name for f in fields(cls)), what="population", source=source)
        values: dict[str, Any] = {}
        for key, (low, high) in _RANGES.items():
            if key in d:
                values[key] = _number(d[key], name=key, low=low, high=high, source=source)
        if _FU_FIELD in d:
            values[_FU_FIELD] = _fu_probabilities(d[_FU_FIELD], source=source)
        params = cls(**values)
        params._check_consistent(source)
        return params

    def with_overrides(self, d: Mapping[str, Any], *, source: str) -> PopulationParams:
        """Return a copy with the fields in `d` replaced, validated like :meth:`from_dict`.

        Parameters
        ----------
        d : mapping of str to number
            Fields to replace (e.g. a trial preset's ``[population]`` table).
        source : str
            Where the overrides came from, named in every error.

        Returns
        -------
        PopulationParams
        """
        if not isinstance(d, Mapping):
            raise InputError(f"{source}: expected a table of population fields, got {d!r}")
        merged = asdict(self)
        merged.update(d)
        return PopulationParams.from_dict(merged, source=source)

    def _check_consistent(self, source: str) -> None:
        beta_sd_limit = math.sqrt(self.miniaturised_ratio_mean * (1 - self.miniaturised_ratio_mean))
        problems = {
            "anagen_min_days": (
                self.anagen_min_days <= self.emergence_days,
                f"must exceed emergence_days ({self.emergence_days}) so every shaft emerges",
            ),
            "exogen_max_delay_days": (
                self.exogen_max_delay_days > self.emergence_days,
                f"is outside the allowed range [0, emergence_days = {self.emergence_days}]",
            ),
            "miniaturised_ratio_sd": (
                self.miniaturised_ratio_sd >= beta_sd_limit,
                f"is outside the allowed range [0, {beta_sd_limit:.4g}) of a Beta distribution "
                f"with mean {self.miniaturised_ratio_mean}",
            ),
            "minimum_diameter_um": (
                self.minimum_diameter_um >= self.potential_diameter_mean_um,
                f"must be below potential_diameter_mean_um ({self.potential_diameter_mean_um})",
            ),
        }
        for name, (bad, why) in problems.items():
            if bad:
                raise InputError(f"{name} ({source}): {getattr(self, name)} {why}")


# Allowed range of every scalar field, inclusive.
_RANGES: dict[str, tuple[float, float]] = {
    f.name: f.metadata["range"] for f in fields(PopulationParams) if "range" in f.metadata
}


def _number(value: Any, *, name: str, low: float, high: float, source: str) -> float:
    if isinstance(value, bool):
        raise InputError(f"{name} ({source}): expected a number in [{low}, {high}], got {value!r}")
    return check_range(value, name=name, low=low, high=high, path=source)


def _fu_probabilities(value: Any, *, source: str) -> tuple[float, float, float, float]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence) or len(value) != 4:
        raise InputError(
            f"{_FU_FIELD} ({source}): expected 4 probabilities (units of 1, 2, 3, 4 "
            f"follicles), got {value!r}"
        )
    probs = [
        _number(v, name=f"{_FU_FIELD}[{i}]", low=0.0, high=1.0, source=source)
        for i, v in enumerate(value)
    ]
    if abs(sum(probs) - 1.0) > 1e-6:
        raise InputError(f"{_FU_FIELD} ({source}): probabilities must sum to 1, got {sum(probs)}")
    return (probs[0], probs[1], probs[2], probs[3])


@lru_cache(maxsize=1)
def _severity_tables() -> dict[str, Any]:
    text = (
        resources.files("hairtrial.simulate")
        .joinpath("presets/severity.toml")
        .read_text(encoding="utf-8")
    )
    return tomllib.loads(text)


def severity_params(name: str) -> PopulationParams:
    """Return the follicle population of a packaged AGA severity preset.

    Parameters
    ----------
    name : str
        One of :data:`SEVERITIES`: ``healthy``, ``HN-II`` … ``HN-VII`` (Hamilton–Norwood,
        the affected vertex/crown site), ``Ludwig-I`` … ``Ludwig-III`` (female pattern, the
        central parting).

    Returns
    -------
    PopulationParams

    Raises
    ------
    InputError
        For an unknown name (the message lists the allowed names).
    """
    check_choice(name, name="severity", choices=SEVERITIES)
    tables = _severity_tables()
    if name not in tables:
        raise InputError(f"severity: preset {name!r} is missing from severity.toml")
    return PopulationParams.from_dict(tables[name], source=f"severity.toml [{name}]")


@dataclass(frozen=True)
class SiteSpec:
    """One recipient site of one subject.

    Parameters
    ----------
    params : PopulationParams
        The site's follicle population.
    area_cm2 : float, cm²
        Area of the square site (0.001–100).
    arm : {'cells', 'saline', 'untreated'}
        The site's arm.
    treatment : TreatmentParams or None
        The intervention; required for the "cells" and "saline" arms.
    response : float
        Subject-level multiplier of the site's stimulus (0–100; 1 = typical responder).
    schedule_days : tuple of int, days
        Injection session days relative to the first treatment.
    """

    params: PopulationParams
    area_cm2: float
    arm: str
    treatment: TreatmentParams | None
    response: float = 1.0
    schedule_days: tuple[int, ...] = (0,)

    def __post_init__(self) -> None:
        if not isinstance(self.params, PopulationParams):
            raise InputError(f"params: expected PopulationParams, got {type(self.params)}")
        check_range(self.area_cm2, name="area_cm2", low=1e-3, high=100.0)
        check_choice(self.arm, name="arm", choices=ARMS)
        check_range(self.response, name="response", low=0.0, high=100.0)
        if self.treatment is None and self.arm != "untreated":
            raise InputError(f"treatment: the {self.arm!r} arm needs a TreatmentParams")
        if self.treatment is not None and not isinstance(self.treatment, TreatmentParams):
            raise InputError(f"treatment: expected TreatmentParams, got {type(self.treatment)}")
        for day in self.schedule_days:
            number = check_range(day, name="schedule_days", low=0, high=36500)
            if isinstance(day, bool) or not number.is_integer():
                raise InputError(f"schedule_days: expected whole days, got {day!r}")


# ---------------------------------------------------------------------------------------
# Distributions shared by the stationary initial state and the daily transitions

Array = NDArray[np.float64]


def _lognormal(rng: np.random.Generator, mean: Array | float, cv: Array | float, n: int) -> Array:
    """Log-normal draws with the given mean(s) and coefficient(s) of variation."""
    s2 = np.log1p(np.square(cv))
    out: Array = rng.lognormal(np.log(mean) - 0.5 * s2, np.sqrt(s2), n)
    return out


def _mean_anagen(ratio: Array, terminal: Any, exponent: Any, minimum: Any) -> Array:
    """Mean anagen (days) of follicles at size ratio own/potential."""
    out: Array = np.maximum(minimum, terminal * np.power(ratio, exponent))
    return out


def _mean_kenogen(ratio: Array, days: Any, exponent: Any) -> Array:
    """Mean kenogen (days) of follicles at size ratio own/potential."""
    out: Array = days * np.power(ratio, -exponent)
    return out


def _growth(diameter: Array, v_term: Any, d_ref: Any, exponent: Any) -> Array:
    """Anagen growth rate (µm/day) of shafts of the given diameters (µm)."""
    out: Array = v_term * np.power(diameter / d_ref, exponent)
    return out


# ---------------------------------------------------------------------------------------
# One site: layout and stationary initial state


def _layout(p: PopulationParams, area_cm2: float, rng: np.random.Generator) -> dict[str, Any]:
    """Follicular units on a jittered grid: fu_id, exit x/y (µm) and azimuth (°)."""
    side = math.sqrt(area_cm2) * 1e4
    sizes_p = np.asarray(p.fu_size_probabilities)
    mean_size = float(np.dot(sizes_p, np.arange(1, 5)))
    n_fu = int(rng.poisson(p.follicle_density_per_cm2 * area_cm2 / mean_size))
    # A grid with ~25 % spare cells keeps units apart without looking crystalline.
    g = max(1, math.ceil(math.sqrt(1.25 * n_fu)))
    cell = side / g
    chosen = rng.choice(g * g, size=n_fu, replace=False)
    jitter = max(cell - p.fu_min_spacing_um, 0.0) / 2.0
    cx = (chosen % g + 0.5) * cell + rng.uniform(-jitter, jitter, n_fu)
    cy = (chosen // g + 0.5) * cell + rng.uniform(-jitter, jitter, n_fu)
    fu_azimuth = p.hair_stream_deg + rng.normal(0.0, p.hair_stream_sd_deg, n_fu)
    sizes = rng.choice(np.arange(1, 5), size=n_fu, p=sizes_p)
    fu_id = np.repeat(np.arange(n_fu, dtype=np.int64), sizes)
    n = fu_id.size
    member = np.arange(n) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    k = sizes[fu_id]
    # Members on a circle whose chord between neighbours is about fu_spread_um.
    radius = np.where(k > 1, p.fu_spread_um / (2.0 * np.sin(np.pi / np.maximum(k, 2))), 0.0)
    radius = radius * rng.uniform(0.7, 1.3, n)
    theta = rng.uniform(0.0, 2.0 * np.pi, n_fu)[fu_id] + 2.0 * np.pi * member / np.maximum(k, 1)
    theta += rng.normal(0.0, 0.2, n)
    inside = np.nextafter(side, 0.0)
    return {
        "fu_id": fu_id,
        "x_um": np.clip(cx[fu_id] + radius * np.cos(theta), 0.0, inside),
        "y_um": np.clip(cy[fu_id] + radius * np.sin(theta), 0.0, inside),
        "azimuth_deg": np.mod(fu_azimuth[fu_id] + rng.normal(0.0, p.fu_azimuth_sd_deg, n), 360),
    }


def _init_site(p: PopulationParams, area_cm2: float, rng: np.random.Generator) -> dict[str, Any]:
    """Layout plus a draw from the stationary state of the follicle cycle (no stimulus)."""
    site = _layout(p, area_cm2, rng)
    n = site["fu_id"].size
    site["elevation_deg"] = np.clip(
        rng.normal(p.elevation_mean_deg, p.elevation_sd_deg, n), 5.0, 85.0
    )
    # Potential diameter: normal truncated at ±3.5 sd (and at the thinnest shaft).
    mean, sd = p.potential_diameter_mean_um, p.potential_diameter_sd_um
    low = max((p.minimum_diameter_um - mean) / sd, -3.5) if sd > 0 else 0.0
    potential = mean + sd * ndtri(rng.uniform(ndtr(low), ndtr(3.5), n))
    ratio = np.ones(n)
    mini = rng.uniform(size=n) < p.miniaturised_fraction
    r_mean, r_sd = p.miniaturised_ratio_mean, p.miniaturised_ratio_sd
    if r_sd > 0.0:
        conc = r_mean * (1.0 - r_mean) / (r_sd * r_sd) - 1.0
        ratio[mini] = rng.beta(r_mean * conc, (1.0 - r_mean) * conc, int(mini.sum()))
    else:
        ratio[mini] = r_mean
    own = np.minimum(np.maximum(p.minimum_diameter_um, ratio * potential), potential)

    # Alternating renewal process at stationarity: the phase is found with probability
    # proportional to its mean duration, its duration is length-biased (for a log-normal:
    # mean·(1 + cv²)) and the age is uniform within it.
    mean_a = _mean_anagen(
        own / potential, p.anagen_terminal_days, p.anagen_miniaturisation_exponent,
        p.anagen_min_days,
    )  # fmt: skip
    mean_k = _mean_kenogen(own / potential, p.kenogen_days, p.kenogen_miniaturisation_exponent)
    means = np.stack([mean_a, np.full(n, p.catagen_days), np.full(n, p.telogen_days), mean_k])
    cvs = (p.anagen_cv, p.catagen_cv, p.telogen_cv, p.kenogen_cv)
    weights = means * np.array([1.0, 1.0, 1.0, p.kenogen_probability])[:, None]
    cum = np.cumsum(weights, axis=0)
    phase = (rng.uniform(size=n) * cum[-1] >= cum).sum(axis=0).astype(np.int8)
    duration = np.empty(n)
    for code, cv in enumerate(cvs):
        sel = phase == code
        duration[sel] = _lognormal(rng, means[code, sel] * (1.0 + cv * cv), cv, int(sel.sum()))
    anagen = phase == _ANAGEN
    duration[anagen] = np.maximum(duration[anagen], p.emergence_days + 1.0)
    clock = rng.uniform(size=n) * duration

    rate = _growth(
        own, p.growth_terminal_um_per_day, p.growth_reference_diameter_um,
        p.growth_diameter_exponent,
    )  # fmt: skip
    # Clubs hold the shaft made during the last anagen; growing shafts what they made so far.
    past_anagen = np.maximum(_lognormal(rng, mean_a, p.anagen_cv, n), p.emergence_days + 1.0)
    exogen_delay = rng.uniform(0.0, p.exogen_max_delay_days, n)
    came_from_telogen = rng.uniform(size=n) >= p.kenogen_probability
    club = (phase == _CATAGEN) | (phase == _TELOGEN)
    club |= anagen & came_from_telogen & (clock < exogen_delay)
    site.update(
        potential=potential,
        own=own,
        phase=phase,
        clock=clock,
        duration=duration,
        shaft_len=np.where(anagen, rate * np.maximum(clock - p.emergence_days, 0.0), 0.0),
        club=club,
        club_d=own.copy(),
        club_len=rate * (past_anagen - p.emergence_days),
        exogen_delay=exogen_delay,
    )
    return site


# ---------------------------------------------------------------------------------------
# The daily simulation over all sites at once


class _Population:
    """Arrays of all follicles of all sites, advanced one day at a time."""

    def __init__(
        self,
        params: Sequence[PopulationParams],
        inits: Sequence[Mapping[str, Any]],
        treatments: Sequence[TreatmentParams | None],
        rng: np.random.Generator,
    ) -> None:
        self.rng = rng
        self.site = np.repeat(np.arange(len(inits)), [init["fu_id"].size for init in inits])
        state = {key: np.concatenate([init[key] for init in inits]) for key in inits[0]}
        self.potential: Array = state["potential"]
        self.own: Array = state["own"]
        self.phase: NDArray[np.int8] = state["phase"]
        self.clock: Array = state["clock"]
        self.duration: Array = state["duration"]
        self.shaft_len: Array = state["shaft_len"]
        self.club: NDArray[np.bool_] = state["club"]
        self.club_d: Array = state["club_d"]
        self.club_len: Array = state["club_len"]
        self.exogen_delay: Array = state["exogen_delay"]
        self.cycle = np.zeros(self.site.size, dtype=np.int64)
        self.recovery = np.zeros(self.site.size)

        # Per-site parameters, gathered per follicle where every follicle needs them daily.
        self.p = {f: np.array([float(getattr(q, f)) for q in params]) for f in _RANGES}
        self.emergence = self.p["emergence_days"][self.site]
        self.growth_args = tuple(
            self.p[f][self.site]
            for f in (
                "growth_terminal_um_per_day",
                "growth_reference_diameter_um",
                "growth_diameter_exponent",
            )
        )
        self.rate = _growth(self.own, *self.growth_args)

        def per_follicle(name: str, default: float) -> Array:
            values = [default if t is None else float(getattr(t, name)) for t in treatments]
            out: Array = np.array(values)[self.site]
            return out

        self.recovery_alpha = -np.expm1(-1.0 / per_follicle("recovery_days", 1.0))
        self.threshold = per_follicle("miniaturised_threshold_um", 60.0)
        self.boost = 1.0 + per_follicle("miniaturised_extra_gain", 0.0)
        self.consolidation = per_follicle("consolidation", 0.0)

    def visible_anagen_diameter(self) -> Array:
        out: Array = self.own + self.recovery * (self.potential - self.own)
        return out

    def snapshot(self) -> dict[str, NDArray[Any]]:
        new_shaft = (self.phase == _ANAGEN) & (self.clock > self.emergence)
        club = self.club & ~new_shaft
        visible_d = self.visible_anagen_diameter()
        return {
            "phase": self.phase.copy(),
            "has_shaft": new_shaft | club,
            "diameter_um": np.where(new_shaft, visible_d, np.where(club, self.club_d, np.nan)),
            "length_um": np.where(new_shaft, self.shaft_len, np.where(club, self.club_len, np.nan)),
            "growth_um_per_day": np.where(new_shaft, self.rate, 0.0),
            "cycle": self.cycle.copy(),
        }

    def step(self, hazard: Array | None, recovery_target: Array | None) -> None:
        """Advance one day; `hazard`, `recovery_target` are per site (None: no stimulus)."""
        if recovery_target is not None:
            target = recovery_target[self.site]
            target *= np.where(self.own < self.threshold, self.boost, 1.0)
            np.minimum(target, 1.0, out=target)
            self.recovery += (target - self.recovery) * self.recovery_alpha
            self.rate = _growth(self.visible_anagen_diameter(), *self.growth_args)
        anagen = self.phase == _ANAGEN
        # Growing shafts lengthen once they have emerged (a partial first day included).
        emerging = np.clip(self.clock + 1.0 - self.emergence, 0.0, 1.0)
        self.shaft_len += np.where(anagen, self.rate * emerging, 0.0)
        if hazard is None:
            self.clock += 1.0
        else:
            resting = (self.phase == _TELOGEN) | (self.phase == _KENOGEN)
            self.clock += np.where(resting, 1.0 + hazard[self.site], 1.0)
        # Exogen of a club hair kept into the new anagen.
        self.club &= ~(anagen & (self.clock >= self.exogen_delay))
        done = np.flatnonzero(self.clock >= self.duration)
        if done.size:
            self._transition(done)

    def _transition(self, done: NDArray[np.intp]) -> None:
        p, rng = self.p, self.rng
        self.clock[done] -= self.duration[done]  # carry the remainder: durations stay exact
        phase = self.phase[done]

        idx = done[phase == _ANAGEN]
        s = self.site[idx]
        own = self.own[idx]
        self.club_d[idx] = own + self.recovery[idx] * (self.potential[idx] - own)
        self.club_len[idx] = self.shaft_len[idx]
        self.club[idx] = True
        self.duration[idx] = _lognormal(rng, p["catagen_days"][s], p["catagen_cv"][s], idx.size)
        self.phase[idx] = _CATAGEN

        idx = done[phase == _CATAGEN]
        s = self.site[idx]
        self.duration[idx] = _lognormal(rng, p["telogen_days"][s], p["telogen_cv"][s], idx.size)
        self.phase[idx] = _TELOGEN

        ends_telogen = done[phase == _TELOGEN]
        rests = (
            rng.uniform(size=ends_telogen.size) < p["kenogen_probability"][self.site[ends_telogen]]
        )
        idx = ends_telogen[rests]
        s = self.site[idx]
        self.club[idx] = False  # exogen: the club hair is shed and the follicle rests empty
        mean_k = _mean_kenogen(
            self.own[idx] / self.potential[idx],
            p["kenogen_days"][s],
            p["kenogen_miniaturisation_exponent"][s],
        )
        self.duration[idx] = _lognormal(rng, mean_k, p["kenogen_cv"][s], idx.size)
        self.phase[idx] = _KENOGEN

        starts = np.concatenate([ends_telogen[~rests], done[phase == _KENOGEN]])
        if starts.size:
            self._start_anagen(starts)

    def _start_anagen(self, idx: NDArray[np.intp]) -> None:
        p, rng = self.p, self.rng
        s = self.site[idx]
        self.cycle[idx] += 1
        own = self.own[idx]
        shrink = rng.uniform(size=idx.size) < p["miniaturisation_probability"][s]
        shrunk = np.maximum(p["minimum_diameter_um"][s], own * p["miniaturisation_factor"][s])
        own = np.where(shrink, np.minimum(own, shrunk), own)
        potential = self.potential[idx]
        recovery = self.recovery[idx]
        own = own + self.consolidation[idx] * recovery * (potential - own)
        self.own[idx] = own
        visible = own + recovery * (potential - own)
        # Anagen length follows the follicle's own (papilla) size, not the transient boost.
        mean_a = _mean_anagen(
            own / potential,
            p["anagen_terminal_days"][s],
            p["anagen_miniaturisation_exponent"][s],
            p["anagen_min_days"][s],
        )
        anagen = _lognormal(rng, mean_a, p["anagen_cv"][s], idx.size)
        self.duration[idx] = np.maximum(anagen, self.emergence[idx] + 1.0)
        self.exogen_delay[idx] = rng.uniform(size=idx.size) * p["exogen_max_delay_days"][s]
        self.shaft_len[idx] = 0.0
        self.rate[idx] = _growth(visible, *(arg[idx] for arg in self.growth_args))
        self.phase[idx] = _ANAGEN


def _seed_child(seed: np.random.SeedSequence, *key: int) -> np.random.SeedSequence:
    # Derived without spawn(), which would mutate the caller's SeedSequence.
    return np.random.SeedSequence(
        seed.entropy, spawn_key=(*seed.spawn_key, *key), pool_size=seed.pool_size
    )


def _check_inputs(
    sites: Sequence[SiteSpec],
    days: Sequence[int],
    seed: int | np.random.SeedSequence,
    burn_in_days: int,
) -> tuple[list[SiteSpec], list[int], np.random.SeedSequence, int]:
    if isinstance(sites, SiteSpec) or not isinstance(sites, Sequence) or len(sites) == 0:
        raise InputError("sites: expected a non-empty sequence of SiteSpec")
    for i, site in enumerate(sites):
        if not isinstance(site, SiteSpec):
            raise InputError(f"sites[{i}]: expected SiteSpec, got {type(site).__name__}")
    burn_in_number = check_range(burn_in_days, name="burn_in_days", low=0, high=36500)
    if isinstance(burn_in_days, bool) or not burn_in_number.is_integer():
        raise InputError(f"burn_in_days: expected whole days, got {burn_in_days!r}")
    burn_in = int(burn_in_number)
    day_list = []
    for day in np.atleast_1d(np.asarray(days)).tolist():
        if isinstance(day, bool) or not isinstance(day, int | float) or not float(day).is_integer():
            raise InputError(f"days: expected whole days, got {day!r}")
        check_range(day, name="days", low=-burn_in, high=36500)
        day_list.append(int(day))
    if not day_list:
        raise InputError("days: expected at least one day")
    if isinstance(seed, np.random.SeedSequence):
        seq = seed
    elif isinstance(seed, int | np.integer) and not isinstance(seed, bool) and seed >= 0:
        seq = np.random.SeedSequence(int(seed))
    else:
        raise InputError(f"seed: expected a non-negative int or SeedSequence, got {seed!r}")
    return list(sites), sorted(set(day_list)), seq, burn_in


def simulate_population(
    sites: Sequence[SiteSpec],
    *,
    days: Sequence[int],
    seed: int | np.random.SeedSequence,
    burn_in_days: int = 60,
) -> pd.DataFrame:
    """Simulate every follicle of every site day by day and return the requested days.

    Parameters
    ----------
    sites : sequence of SiteSpec
        The sites; all are simulated together, vectorised over follicles.
    days : sequence of int, days
        Days to report, relative to the first treatment (day 0 is imaged just before the
        injection). Duplicates are dropped; each must be ≥ ``-burn_in_days``.
    seed : int or numpy.random.SeedSequence
        Seed; the same seed and inputs give an identical table. Site ``i``'s layout and
        initial state depend only on the seed, ``i`` and that site's spec.
    burn_in_days : int, days
        Days simulated before day 0 from the stationary initial state, without stimulus.

    Returns
    -------
    pandas.DataFrame
        One row per follicle per requested day, sorted by ``site``, ``day``,
        ``follicle_id``, with columns (lengths in µm, angles in degrees):

        - ``site`` (int): index into `sites`; ``day`` (int, days).
        - ``follicle_id`` (int): unique within the site, stable across days;
          ``fu_id`` (int): follicular unit within the site.
        - ``x_um``, ``y_um`` (float): exit point, origin at the site's top-left corner.
        - ``phase`` (categorical: anagen, catagen, telogen, kenogen).
        - ``has_shaft`` (bool): a shaft is above the skin (emerged anagen shaft, catagen,
          telogen club hair until exogen).
        - ``diameter_um`` (float): visible shaft diameter near the skin; NaN without shaft.
        - ``potential_diameter_um`` (float): pre-miniaturisation diameter.
        - ``length_um`` (float): shaft length above the skin; NaN without shaft.
        - ``growth_um_per_day`` (float): elongation rate of the visible shaft (0 unless it
          is a growing anagen shaft).
        - ``azimuth_deg`` (float): shaft direction in the skin plane (0° = +x, 90° = +y
          downward); ``elevation_deg`` (float): angle between shaft and skin.
        - ``cycle`` (int): anagen starts since the simulation (burn-in included) began.

    Raises
    ------
    InputError
        For bad sites, days, seed or burn-in.
    """
    site_list, record_days, seq, burn_in = _check_inputs(sites, days, seed, burn_in_days)
    inits = [
        _init_site(s.params, s.area_cm2, np.random.default_rng(_seed_child(seq, 1, i)))
        for i, s in enumerate(site_list)
    ]
    population = _Population(
        [s.params for s in site_list],
        inits,
        [s.treatment for s in site_list],
        np.random.default_rng(_seed_child(seq, 0)),
    )
    start, stop = -burn_in, record_days[-1]
    # Stimulus during each simulated day (rows: day, columns: site), scaled by the gains.
    step_days = np.arange(start, stop)
    hazard = np.zeros((step_days.size, len(site_list)))
    recovery_target = np.zeros_like(hazard)
    for i, s in enumerate(site_list):
        if s.treatment is not None and s.arm != "untreated":
            level = s.response * stimulus(
                step_days, arm=s.arm, params=s.treatment, schedule=s.schedule_days
            )
            hazard[:, i] = s.treatment.reentry_gain * level
            recovery_target[:, i] = s.treatment.recovery_gain * level
    active = np.flatnonzero((hazard > 0).any(axis=1) | (recovery_target > 0).any(axis=1))
    first_active = int(active[0]) if active.size else step_days.size

    snapshots: dict[int, dict[str, NDArray[Any]]] = {}
    wanted = set(record_days)
    for k, day in enumerate(range(start, stop + 1)):
        if day in wanted:
            snapshots[day] = population.snapshot()
        if day == stop:
            break
        if k >= first_active:
            population.step(hazard[k], recovery_target[k])
        else:
            population.step(None, None)

    n_days = len(record_days)
    # Snapshots are day-major; a stable sort on site gives site, day, follicle order.
    order = np.argsort(np.tile(population.site, n_days), kind="stable")

    def per_day(key: str) -> Any:
        return np.concatenate([snapshots[d][key] for d in record_days])[order]

    def per_follicle(values: NDArray[Any]) -> Any:
        return np.tile(values, n_days)[order]

    def layout(key: str) -> Any:
        return per_follicle(np.concatenate([init[key] for init in inits]))

    follicle_id = np.concatenate([np.arange(init["fu_id"].size) for init in inits])
    phase_codes: NDArray[np.int8] = per_day("phase")
    columns: dict[str, Any] = {
        "site": per_follicle(population.site.astype(np.int64)),
        "day": np.repeat(np.asarray(record_days, dtype=np.int64), population.site.size)[order],
        "follicle_id": per_follicle(follicle_id.astype(np.int64)),
        "fu_id": layout("fu_id"),
        "x_um": layout("x_um"),
        "y_um": layout("y_um"),
        "phase": pd.Categorical.from_codes(phase_codes, dtype=pd.CategoricalDtype(list(PHASES))),
        "has_shaft": per_day("has_shaft"),
        "diameter_um": per_day("diameter_um"),
        "potential_diameter_um": per_follicle(population.potential),
        "length_um": per_day("length_um"),
        "growth_um_per_day": per_day("growth_um_per_day"),
        "azimuth_deg": layout("azimuth_deg"),
        "elevation_deg": layout("elevation_deg"),
        "cycle": per_day("cycle"),
    }
    return pd.DataFrame(columns, columns=list(OUTPUT_COLUMNS))
