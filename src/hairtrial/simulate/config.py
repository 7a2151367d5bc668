"""Trial presets: plain TOML files a user can copy and edit.

A preset has five tables::

    name = "nanfang-2023"
    description = "..."
    [trial]        # design: subjects, sites, arms, visits, severity / colour / skin mixes
    [imaging]      # field, calibration, clipping, phototrichogram, render style, pose jitter
    [treatment]    # passed to TreatmentParams.from_dict
    [population]   # optional overrides of the severity presets (PopulationParams fields)

Packaged presets live in ``hairtrial/simulate/presets/``; ``hairtrial presets show NAME``
prints one so that it can be copied, and ``--preset path/to/file.toml`` loads a user's
file. A bad value raises :class:`~hairtrial._validate.InputError` naming the file, the
field and the allowed range.
"""

from __future__ import annotations

import itertools
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hairtrial._validate import InputError, check_choice, check_range

if TYPE_CHECKING:
    from hairtrial.simulate.population import PopulationParams
    from hairtrial.simulate.treatment import TreatmentParams

ARMS = ("cells", "saline", "untreated")
SCHEDULES = ("single", "repeated", "yearly")
HAIR_COLOURS = ("black", "dark_brown", "brown", "blond", "grey", "white")
#: Named skin tones as linear-ish sRGB triplets in [0, 1] (light to dark).
SKIN_TONES: dict[str, tuple[float, float, float]] = {
    "very_light": (0.93, 0.80, 0.74),
    "light": (0.88, 0.72, 0.64),
    "medium": (0.78, 0.60, 0.50),
    "olive": (0.68, 0.53, 0.40),
    "brown": (0.52, 0.37, 0.27),
    "dark": (0.34, 0.23, 0.17),
}
STYLE_PRESETS = ("standard", "hard")
_TOP_LEVEL = {"name", "description", "trial", "imaging", "treatment", "population"}


@dataclass(frozen=True)
class TrialDesign:
    """Who is enrolled and when they are seen.

    Parameters
    ----------
    subjects : int
        Number of subjects.
    age_range : (int, int), years
        Inclusive age range; ages are drawn from a triangular law with mode `age_mode`.
    age_mode : float, years
        Most frequent age.
    sites_per_subject : {1, 2}
        Recipient sites per subject. With 2 sites the arms are assigned by a randomised
        side (``left``/``right``); with 1 site arms alternate between subjects.
    site_area_cm2 : float, cm²
        Area of each marked site.
    count_area_cm2 : float, cm²
        Area over which the preset's published hair counts are expressed (0.65 cm² in
        the micrograft trials); truth endpoints report counts per this area too.
    arms : tuple of str
        Arms in site order, e.g. ``("cells", "saline")``.
    visit_days : tuple of int, days
        Visit days since the first treatment, strictly increasing, starting at 0.
    schedule : {'single', 'repeated', 'yearly'}
        Injection schedule of treated sites.
    schedule_sessions, schedule_interval_days : int
        For ``repeated``: number of sessions and days between them.
    severity_mix, hair_colour_mix, skin_tone_mix : dict of str to float
        Share of subjects per severity preset, hair colour and skin tone (each sums to 1).
    response_sd : float
        Log-normal spread of the subject-level treatment response multiplier.
    """

    subjects: int
    age_range: tuple[int, int]
    age_mode: float
    sites_per_subject: int
    site_area_cm2: float
    count_area_cm2: float
    arms: tuple[str, ...]
    visit_days: tuple[int, ...]
    schedule: str
    schedule_sessions: int
    schedule_interval_days: int
    severity_mix: dict[str, float]
    hair_colour_mix: dict[str, float]
    skin_tone_mix: dict[str, float]
    response_sd: float


@dataclass(frozen=True)
class ImagingDesign:
    """How each site is imaged at a visit.

    Parameters
    ----------
    field_cm2 : float, cm²
        Area of the imaged field (4:3 aspect).
    um_per_px : float, µm/px
        Calibration of the rendered images.
    clip : bool
        Whether hairs are clipped before imaging.
    clip_length_mm : (float, float), mm
        Range of clipped shaft lengths.
    haircut_length_mm : (float, float), mm
        Range of shaft lengths of unclipped hair (the subject's own haircut).
    phototrichogram_days : int, days
        Re-imaging delay of the phototrichogram pair (when enabled).
    style : {'standard', 'hard'}
        Renderer style preset.
    pose_shift_um, pose_rotation_deg, pose_scale : float
        Largest field shift (µm), rotation (degrees) and relative rescale between visits.
    image_format : {'jpg', 'png'}
        File format of rendered images.
    """

    field_cm2: float
    um_per_px: float
    clip: bool
    clip_length_mm: tuple[float, float]
    haircut_length_mm: tuple[float, float]
    phototrichogram_days: int
    style: str
    pose_shift_um: float
    pose_rotation_deg: float
    pose_scale: float
    image_format: str

    def shape_px(self) -> tuple[int, int]:
        """Return the image shape ``(height, width)`` in pixels for a 4:3 field."""
        side_um = math.sqrt(self.field_cm2) * 1e4
        width = round(side_um * math.sqrt(4 / 3) / self.um_per_px)
        height = round(side_um * math.sqrt(3 / 4) / self.um_per_px)
        return int(height), int(width)


@dataclass(frozen=True)
class Preset:
    """A whole simulated-trial configuration loaded from TOML.

    Parameters
    ----------
    name : str
        Preset name.
    description : str
        One paragraph saying what the preset reproduces.
    source : str
        File it was read from (named in error messages).
    trial : TrialDesign
    imaging : ImagingDesign
    treatment : TreatmentParams
    population_overrides : dict
        Overrides applied on top of each subject's severity preset.
    """

    name: str
    description: str
    source: str
    trial: TrialDesign
    imaging: ImagingDesign
    treatment: TreatmentParams
    population_overrides: dict[str, Any] = field(default_factory=dict)

    def population_params(self, severity: str) -> PopulationParams:
        """Return the population parameters of `severity` with this preset's overrides."""
        from hairtrial.simulate.population import severity_params

        base = severity_params(severity)
        if not self.population_overrides:
            return base
        return base.with_overrides(self.population_overrides, source=f"{self.source}:population")


def _table(data: Mapping[str, Any], key: str, source: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise InputError(f"{source}: [{key}] must be a table")
    return dict(value)


def _pop(table: dict[str, Any], key: str, default: Any, source: str) -> Any:
    if key in table:
        return table.pop(key)
    if default is _REQUIRED:
        raise InputError(f"{source}: required field {key!r} is missing")
    return default


_REQUIRED = object()


def _int(value: Any, *, name: str, low: int, high: int, source: str) -> int:
    number = check_range(value, name=name, low=low, high=high, path=source)
    if not float(number).is_integer() or isinstance(value, bool):
        raise InputError(f"{source}: {name}: expected a whole number, got {value!r}")
    return int(number)


def _mix(value: Any, *, name: str, allowed: tuple[str, ...], source: str) -> dict[str, float]:
    if not isinstance(value, Mapping) or not value:
        raise InputError(f"{source}: {name} must be a non-empty table of shares")
    mix: dict[str, float] = {}
    for key, share in value.items():
        check_choice(key, name=f"{name} key", choices=allowed, path=source)
        mix[str(key)] = check_range(share, name=f"{name}.{key}", low=0.0, high=1.0, path=source)
    total = sum(mix.values())
    if not math.isclose(total, 1.0, abs_tol=1e-6):
        raise InputError(f"{source}: {name} shares must sum to 1, they sum to {total:.6g}")
    return mix


def _no_leftovers(table: Mapping[str, Any], section: str, source: str) -> None:
    if table:
        raise InputError(f"{source}: unknown field(s) in [{section}]: {', '.join(sorted(table))}")


def _parse_trial(raw: dict[str, Any], source: str) -> TrialDesign:
    from hairtrial.simulate.population import SEVERITIES

    src = f"{source}:trial"
    t = dict(raw)
    age = _pop(t, "age_range", [25, 45], src)
    if not (isinstance(age, list | tuple) and len(age) == 2):
        raise InputError(f"{src}: age_range must be [min, max]")
    age_lo = _int(age[0], name="age_range[0]", low=0, high=120, source=src)
    age_hi = _int(age[1], name="age_range[1]", low=age_lo, high=120, source=src)
    age_mode = check_range(
        _pop(t, "age_mode", (age_lo + age_hi) / 2, src),
        name="age_mode",
        low=age_lo,
        high=age_hi,
        path=src,
    )
    sites = _int(
        _pop(t, "sites_per_subject", 2, src), name="sites_per_subject", low=1, high=2, source=src
    )
    arms_raw = _pop(t, "arms", ["cells", "saline"], src)
    if not isinstance(arms_raw, list | tuple) or not arms_raw:
        raise InputError(f'{src}: arms must be a list such as ["cells", "saline"]')
    arms = tuple(check_choice(a, name="arms", choices=ARMS, path=src) for a in arms_raw)
    if sites == 2 and len(arms) != 2:
        raise InputError(f"{src}: arms must name 2 arms for 2 sites per subject, got {arms}")
    days_raw = _pop(t, "visit_days", _REQUIRED, src)
    if not isinstance(days_raw, list | tuple) or not days_raw:
        raise InputError(f"{src}: visit_days must be a non-empty list of days")
    days = tuple(_int(d, name="visit_days", low=0, high=3650, source=src) for d in days_raw)
    if days[0] != 0 or any(b <= a for a, b in itertools.pairwise(days)):
        raise InputError(f"{src}: visit_days must start at 0 and increase strictly, got {days}")
    design = TrialDesign(
        subjects=_int(
            _pop(t, "subjects", _REQUIRED, src), name="subjects", low=1, high=100_000, source=src
        ),
        age_range=(age_lo, age_hi),
        age_mode=age_mode,
        sites_per_subject=sites,
        site_area_cm2=check_range(
            _pop(t, "site_area_cm2", 1.0, src), name="site_area_cm2", low=0.05, high=100.0, path=src
        ),
        count_area_cm2=check_range(
            _pop(t, "count_area_cm2", 1.0, src),
            name="count_area_cm2",
            low=0.01,
            high=100.0,
            path=src,
        ),
        arms=arms,
        visit_days=days,
        schedule=check_choice(
            _pop(t, "schedule", "single", src), name="schedule", choices=SCHEDULES, path=src
        ),
        schedule_sessions=_int(
            _pop(t, "schedule_sessions", 3, src),
            name="schedule_sessions",
            low=1,
            high=100,
            source=src,
        ),
        schedule_interval_days=_int(
            _pop(t, "schedule_interval_days", 45, src),
            name="schedule_interval_days",
            low=1,
            high=3650,
            source=src,
        ),
        severity_mix=_mix(
            _pop(t, "severity_mix", _REQUIRED, src),
            name="severity_mix",
            allowed=tuple(SEVERITIES),
            source=src,
        ),
        hair_colour_mix=_mix(
            _pop(t, "hair_colour_mix", {"black": 1.0}, src),
            name="hair_colour_mix",
            allowed=HAIR_COLOURS,
            source=src,
        ),
        skin_tone_mix=_mix(
            _pop(t, "skin_tone_mix", {"light": 1.0}, src),
            name="skin_tone_mix",
            allowed=tuple(SKIN_TONES),
            source=src,
        ),
        response_sd=check_range(
            _pop(t, "response_sd", 0.3, src), name="response_sd", low=0.0, high=2.0, path=src
        ),
    )
    if design.count_area_cm2 > design.site_area_cm2:
        raise InputError(f"{src}: count_area_cm2 must not exceed site_area_cm2")
    _no_leftovers(t, "trial", source)
    return design


def _length_range(value: Any, *, name: str, source: str) -> tuple[float, float]:
    if not (isinstance(value, list | tuple) and len(value) == 2):
        raise InputError(f"{source}: {name} must be [min, max] in mm")
    lo = check_range(value[0], name=f"{name}[0]", low=0.05, high=300.0, path=source)
    hi = check_range(value[1], name=f"{name}[1]", low=lo, high=300.0, path=source)
    return lo, hi


def _parse_imaging(raw: dict[str, Any], source: str, site_area_cm2: float) -> ImagingDesign:
    src = f"{source}:imaging"
    t = dict(raw)
    clip_lo, clip_hi = _length_range(_pop(t, "clip_length_mm", [0.3, 1.5], src),
                                     name="clip_length_mm", source=src)  # fmt: skip
    cut_lo, cut_hi = _length_range(_pop(t, "haircut_length_mm", [5.0, 30.0], src),
                                   name="haircut_length_mm", source=src)  # fmt: skip
    clip = _pop(t, "clip", True, src)
    if not isinstance(clip, bool):
        raise InputError(f"{src}: clip must be true or false, got {clip!r}")
    design = ImagingDesign(
        field_cm2=check_range(
            _pop(t, "field_cm2", 0.3, src),
            name="field_cm2",
            low=0.01,
            high=min(site_area_cm2, 4.0),
            path=src,
        ),
        um_per_px=check_range(
            _pop(t, "um_per_px", 5.0, src), name="um_per_px", low=0.5, high=50.0, path=src
        ),
        clip=clip,
        clip_length_mm=(clip_lo, clip_hi),
        haircut_length_mm=(cut_lo, cut_hi),
        phototrichogram_days=_int(
            _pop(t, "phototrichogram_days", 3, src),
            name="phototrichogram_days",
            low=1,
            high=14,
            source=src,
        ),
        style=check_choice(
            _pop(t, "style", "standard", src), name="style", choices=STYLE_PRESETS, path=src
        ),
        pose_shift_um=check_range(
            _pop(t, "pose_shift_um", 300.0, src),
            name="pose_shift_um",
            low=0.0,
            high=5000.0,
            path=src,
        ),
        pose_rotation_deg=check_range(
            _pop(t, "pose_rotation_deg", 5.0, src),
            name="pose_rotation_deg",
            low=0.0,
            high=180.0,
            path=src,
        ),
        pose_scale=check_range(
            _pop(t, "pose_scale", 0.03, src), name="pose_scale", low=0.0, high=0.3, path=src
        ),
        image_format=check_choice(
            _pop(t, "image_format", "jpg", src),
            name="image_format",
            choices=("jpg", "png"),
            path=src,
        ),
    )
    _no_leftovers(t, "imaging", source)
    return design


def parse_preset(data: Mapping[str, Any], *, source: str) -> Preset:
    """Build and validate a :class:`Preset` from parsed TOML.

    Parameters
    ----------
    data : mapping
        The parsed TOML document.
    source : str
        Where it came from, named in every error.

    Returns
    -------
    Preset
    """
    from hairtrial.simulate.treatment import TreatmentParams

    unknown = set(data) - _TOP_LEVEL
    if unknown:
        raise InputError(f"{source}: unknown top-level field(s): {', '.join(sorted(unknown))}")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise InputError(f"{source}: 'name' must be a non-empty string")
    trial = _parse_trial(_table(data, "trial", source), source)
    imaging = _parse_imaging(_table(data, "imaging", source), source, trial.site_area_cm2)
    treatment = TreatmentParams.from_dict(
        _table(data, "treatment", source), source=f"{source}:treatment"
    )
    preset = Preset(
        name=name,
        description=str(data.get("description", "")),
        source=source,
        trial=trial,
        imaging=imaging,
        treatment=treatment,
        population_overrides=_table(data, "population", source),
    )
    for severity in trial.severity_mix:  # validate overrides against every severity used
        preset.population_params(severity)
    return preset


def list_presets() -> list[str]:
    """Return the names of the packaged trial presets."""
    folder = resources.files("hairtrial.simulate") / "presets"
    return sorted(
        p.name.removesuffix(".toml")
        for p in folder.iterdir()
        if p.name.endswith(".toml") and p.name != "severity.toml"
    )


def preset_text(name_or_path: str | Path) -> tuple[str, str]:
    """Return ``(source, toml_text)`` of a packaged preset name or a TOML file path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise InputError(f"{path}: preset file not found")
        return str(path), path.read_text(encoding="utf-8")
    names = list_presets()
    if str(name_or_path) not in names:
        raise InputError(
            f"unknown preset {str(name_or_path)!r}; packaged presets: {', '.join(names)} "
            "(or give a path to a .toml file)"
        )
    resource = resources.files("hairtrial.simulate") / "presets" / f"{name_or_path}.toml"
    return f"preset {name_or_path}", resource.read_text(encoding="utf-8")


def load_preset(name_or_path: str | Path) -> Preset:
    """Load a packaged preset by name, or a user's TOML file by path.

    Parameters
    ----------
    name_or_path : str or Path
        ``"nanfang-2023"``, ``"gentile-2020"`` … or a path ending in ``.toml``.

    Returns
    -------
    Preset

    Raises
    ------
    InputError
        For an unknown name, a missing file, invalid TOML, or a bad field (named with its
        allowed range).
    """
    source, text = preset_text(name_or_path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{source}: not valid TOML ({exc})") from None
    return parse_preset(data, source=source)
