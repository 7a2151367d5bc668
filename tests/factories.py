"""Factories that build small simulated trials and presets in memory for tests."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from typing import Any

from hairtrial.simulate.config import Preset, load_preset, preset_text
from hairtrial.simulate.trial import with_overrides


def small_preset(
    name: str = "nanfang-2023",
    *,
    subjects: int = 2,
    field_cm2: float = 0.03,
    visit_days: tuple[int, ...] | None = None,
    **imaging: object,
) -> Preset:
    """A preset shrunk for tests: few subjects, a small field (≈200×150 px at 5 µm/px)."""
    preset = with_overrides(load_preset(name), subjects=subjects, field_cm2=field_cm2)
    if visit_days is not None:
        preset = replace(preset, trial=replace(preset.trial, visit_days=visit_days))
    if imaging:
        preset = replace(preset, imaging=replace(preset.imaging, **imaging))
    return preset


def preset_table(name: str, section: str) -> dict[str, Any]:
    """One table (e.g. ``treatment``) of a packaged preset's TOML, as a plain dict."""
    _, text = preset_text(name)
    return dict(tomllib.loads(text)[section])
