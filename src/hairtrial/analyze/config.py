"""Analysis options: one validated, hashable configuration saved with every result."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from hairtrial._validate import InputError, check_fields, check_positive

#: Site × visit endpoints the analysis knows (the columns of the ``endpoints`` tables).
KNOWN_ENDPOINTS: tuple[str, ...] = (
    "terminal_fraction",
    "mean_diameter_um",
    "density_per_cm2",
    "hair_count",
    "cumulative_thickness_mm_per_cm2",
    "fraction_below_index",
    "anagen_fraction",
)

#: Plain-language names and units, for headlines and methods text.
ENDPOINT_LABELS: dict[str, tuple[str, str]] = {
    "terminal_fraction": ("terminal-hair fraction", ""),
    "mean_diameter_um": ("mean shaft diameter", " µm"),
    "density_per_cm2": ("hair density", " hairs/cm²"),
    "hair_count": ("hair count", " hairs"),
    "cumulative_thickness_mm_per_cm2": ("cumulative thickness", " mm/cm²"),
    "fraction_below_index": ("fraction of hairs below the index", ""),
    "anagen_fraction": ("anagen fraction", ""),
}

#: Arm labels used by the simulator presets and the store (``cells`` against ``saline``),
#: accepted for the default ``treated``/``control`` names (see :func:`resolve_arms`).
ARM_ALIASES: dict[str, str] = {"treated": "cells", "control": "saline"}


@dataclass(frozen=True)
class AnalysisConfig:
    """Options of the trial analysis (validated on construction).

    Parameters
    ----------
    treated_arm, control_arm : str
        Arm labels of the treated and the control site. The defaults ``treated`` and
        ``control`` also match the simulator's and the store's ``cells`` and ``saline``
        (see :func:`resolve_arms`).
    baseline_day : int, days
        Visit day of the baseline (changes are from this visit).
    index_um : float, µm
        Miniaturisation index: splits subgroups by baseline shaft diameter.
    alpha : float
        Two-sided significance level; confidence intervals are ``1 - alpha``.
    endpoints : tuple of str
        Site × visit endpoints analysed (columns of the endpoints table).
    primary : tuple of str
        Primary endpoints (a subset of `endpoints`): headline, power.
    responder_endpoint : str
        Endpoint defining a responder.
    responder_day : int or None, days
        Visit of the responder definition; None is the first post-baseline visit.
    responder_min_change : float
        A subject responds when the treated-minus-control change from baseline of
        `responder_endpoint` at `responder_day` is greater than this (endpoint units).
    bootstrap : int
        Bootstrap resamples for the AUC confidence intervals (0 turns them off).
    seed : int
        Seed of the bootstrap.
    image_kind : str
        Image kind analysed (``clipped`` is the main trichoscopy image).
    """

    treated_arm: str = "treated"
    control_arm: str = "control"
    baseline_day: int = 0
    index_um: float = 60.0
    alpha: float = 0.05
    endpoints: tuple[str, ...] = (
        "terminal_fraction",
        "mean_diameter_um",
        "density_per_cm2",
        "hair_count",
        "cumulative_thickness_mm_per_cm2",
        "fraction_below_index",
    )
    primary: tuple[str, ...] = ("terminal_fraction", "mean_diameter_um")
    responder_endpoint: str = "mean_diameter_um"
    responder_day: int | None = None
    responder_min_change: float = 2.0
    bootstrap: int = 2000
    seed: int = 0
    image_kind: str = "clipped"

    def __post_init__(self) -> None:
        for name in ("treated_arm", "control_arm", "image_kind", "responder_endpoint"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise InputError(
                    f"AnalysisConfig.{name}: expected a non-empty string, got {value!r}"
                )
        if self.treated_arm == self.control_arm:
            raise InputError(
                f"AnalysisConfig: treated_arm and control_arm are both {self.treated_arm!r}"
            )
        for name in ("baseline_day", "bootstrap", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise InputError(f"AnalysisConfig.{name}: expected a whole number, got {value!r}")
        if self.bootstrap < 0:
            raise InputError(f"AnalysisConfig.bootstrap: must be ≥ 0, got {self.bootstrap}")
        if self.responder_day is not None and (
            isinstance(self.responder_day, bool) or not isinstance(self.responder_day, int)
        ):
            raise InputError(
                f"AnalysisConfig.responder_day: expected a visit day or None, got "
                f"{self.responder_day!r}"
            )
        check_positive(self.index_um, name="AnalysisConfig.index_um")
        if not 0.0 < float(self.alpha) < 1.0:
            raise InputError(
                f"AnalysisConfig.alpha: expected a number in (0, 1), got {self.alpha!r}"
            )
        if not isinstance(self.responder_min_change, int | float) or isinstance(
            self.responder_min_change, bool
        ):
            raise InputError(
                "AnalysisConfig.responder_min_change: expected a number, got "
                f"{self.responder_min_change!r}"
            )
        endpoints = _names(self.endpoints, "endpoints")
        primary = _names(self.primary, "primary")
        missing = [p for p in primary if p not in endpoints]
        if missing:
            raise InputError(
                f"AnalysisConfig.primary: {', '.join(missing)} not among the analysed endpoints "
                f"({', '.join(endpoints)})"
            )
        object.__setattr__(self, "endpoints", endpoints)
        object.__setattr__(self, "primary", primary)

    def to_dict(self) -> dict[str, Any]:
        """Return the options as a JSON-ready dict (tuples become lists)."""
        out = asdict(self)
        out["endpoints"] = list(self.endpoints)
        out["primary"] = list(self.primary)
        return out

    def config_hash(self) -> str:
        """Return a short SHA-256 of the options (stable across runs and machines)."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, source: str = "analysis config"
    ) -> AnalysisConfig:
        """Build a configuration from a mapping (e.g. a TOML or JSON file).

        Parameters
        ----------
        data : mapping
            Field values; fields left out keep their defaults.
        source : str
            Where the values came from, named in errors.

        Returns
        -------
        AnalysisConfig
        """
        check_fields(data, known=(f.name for f in fields(cls)), what="analysis", source=source)
        values = dict(data)
        for key in ("endpoints", "primary"):
            if key in values and isinstance(values[key], list):
                values[key] = tuple(values[key])
        try:
            return cls(**values)
        except InputError as exc:
            raise InputError(f"{source}: {exc}") from None


def _names(value: Any, field: str) -> tuple[str, ...]:
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        raise InputError(f"AnalysisConfig.{field}: expected a tuple of column names, got {value!r}")
    names = tuple(value)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise InputError(f"AnalysisConfig.{field}: expected non-empty column names, got {value!r}")
    if len(set(names)) != len(names):
        raise InputError(f"AnalysisConfig.{field}: repeated names in {names!r}")
    return names


def resolve_arms(arms: Any, config: AnalysisConfig) -> tuple[AnalysisConfig, str | None]:
    """Match the configured arm labels to the arms present in the data.

    Parameters
    ----------
    arms : iterable of str
        Arm labels found in a table.
    config : AnalysisConfig
        Options; its ``treated_arm`` and ``control_arm`` should be among `arms`.

    Returns
    -------
    config : AnalysisConfig
        `config`, or a copy whose default ``treated``/``control`` labels are replaced by the
        simulator's and the store's ``cells``/``saline`` when the data use those.
    note : str or None
        Says which labels were substituted, so it can be reported.

    Raises
    ------
    InputError
        When the treated or the control arm is absent; the message lists the arms found.
    """
    present = sorted({str(a) for a in arms})
    if config.treated_arm in present and config.control_arm in present:
        return config, None
    treated = ARM_ALIASES.get(config.treated_arm) if config.treated_arm == "treated" else None
    control = ARM_ALIASES.get(config.control_arm) if config.control_arm == "control" else None
    if treated in present and control in present and treated is not None and control is not None:
        from dataclasses import replace

        note = (
            f"arms: the data label the arms {treated!r} and {control!r}; analysed "
            f"{treated!r} as treated and {control!r} as control"
        )
        return replace(config, treated_arm=treated, control_arm=control), note
    raise InputError(
        f"arm: treated arm {config.treated_arm!r} and control arm {config.control_arm!r} are "
        f"not both in the data (arms found: {', '.join(present) or 'none'}); set "
        "AnalysisConfig(treated_arm=..., control_arm=...)"
    )
