"""Long-term scenarios: injection schedules and severities over several years.

For each schedule (``single`` session, ``yearly`` re-injection, ``repeated`` sessions) and
each severity, a trial of the preset is simulated with every subject at that severity and
visits every ``step_days`` for ``years`` years; the site × visit truth endpoints are then
averaged per arm and day. The same seed is used for every scenario (common random
numbers), so differences between curves come from the schedule and the severity, not from
drawing other subjects.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from hairtrial._validate import InputError, check_choice
from hairtrial.simulate.config import SCHEDULES, Preset

SCENARIO_COLUMNS: tuple[str, ...] = (
    "schedule", "severity", "arm", "day", "years", "n_sites", "terminal_fraction",
    "terminal_fraction_se", "density_per_cm2", "density_per_cm2_se", "mean_diameter_um",
    "mean_diameter_um_se",
)  # fmt: skip
_OUTCOMES = ("terminal_fraction", "density_per_cm2", "mean_diameter_um")


def simulate_scenarios(
    preset: Preset | str,
    *,
    schedules: Sequence[str] = ("single", "yearly"),
    severities: Sequence[str] | None = None,
    years: float = 3,
    subjects: int = 20,
    seed: int = 0,
    step_days: int = 30,
) -> pd.DataFrame:
    """Simulate expected terminal fraction, density and diameter curves per scenario.

    Parameters
    ----------
    preset : Preset or str
        Trial preset (or its name / TOML path); its treatment and arms are used.
    schedules : sequence of {'single', 'repeated', 'yearly'}
        Injection schedules of the treated site (``repeated`` uses the preset's sessions
        and interval).
    severities : sequence of str, optional
        Severity presets (e.g. ``HN-IV``); default: those of the preset's severity mix.
    years : float, years
        Horizon (0 < years ≤ 10).
    subjects : int
        Simulated subjects per scenario (more: smoother curves).
    seed : int
        Root seed, shared by every scenario.
    step_days : int, days
        Days between curve points.

    Returns
    -------
    DataFrame
        One row per schedule × severity × arm × day: ``years`` (day / 365.25),
        ``n_sites`` and the mean and standard error over sites of ``terminal_fraction``,
        ``density_per_cm2`` (hairs/cm²) and ``mean_diameter_um`` (µm).

    Raises
    ------
    InputError
        For an unknown schedule or severity, or an out-of-range option.
    """
    from hairtrial.simulate.config import load_preset
    from hairtrial.simulate.population import severity_params
    from hairtrial.simulate.trial import simulate_trial

    loaded = preset if isinstance(preset, Preset) else load_preset(preset)
    if not schedules:
        raise InputError("schedules: give at least one schedule")
    for name in schedules:
        check_choice(name, name="schedules", choices=SCHEDULES)
    chosen = list(severities) if severities else sorted(loaded.trial.severity_mix)
    for name in chosen:
        severity_params(name)  # raises InputError naming the unknown severity
    if not isinstance(years, int | float) or not 0 < years <= 10:
        raise InputError(f"years: expected a number in (0, 10], got {years!r}")
    if isinstance(subjects, bool) or not isinstance(subjects, int) or subjects < 1:
        raise InputError(f"subjects: expected a whole number ≥ 1, got {subjects!r}")
    if isinstance(step_days, bool) or not isinstance(step_days, int) or not 1 <= step_days <= 365:
        raise InputError(f"step_days: expected a whole number in [1, 365], got {step_days!r}")
    horizon = math.floor(years * 365)
    days = tuple(sorted(set(range(0, horizon + 1, step_days)) | {horizon}))
    frames: list[pd.DataFrame] = []
    for schedule in schedules:
        for severity in chosen:
            design = replace(
                loaded.trial, subjects=subjects, visit_days=days, schedule=schedule,
                severity_mix={severity: 1.0},
            )  # fmt: skip
            trial = simulate_trial(replace(loaded, trial=design), seed=seed)
            grouped = trial.endpoints.groupby(["arm", "visit_day"], sort=True)[list(_OUTCOMES)]
            block = grouped.mean().join(grouped.sem(ddof=1).add_suffix("_se")).reset_index()
            block.insert(0, "n_sites", grouped.size().to_numpy())
            block = block.rename(columns={"visit_day": "day"})
            block["schedule"] = schedule
            block["severity"] = severity
            block["years"] = block["day"] / 365.25
            frames.append(block)
    out = pd.concat(frames, ignore_index=True)[list(SCENARIO_COLUMNS)]
    return out.astype({"day": int, "n_sites": int})


def plot_scenarios(table: pd.DataFrame, path: str | Path) -> Path:
    """Plot terminal fraction and density curves per scenario (PNG).

    Parameters
    ----------
    table : DataFrame
        :func:`simulate_scenarios` output.
    path : str or Path
        PNG to write (deterministic: no timestamp in the file).

    Returns
    -------
    Path
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    missing = [
        c for c in ("schedule", "severity", "arm", "years", *_OUTCOMES[:2]) if c not in table
    ]
    if missing:
        raise InputError(f"scenarios table: missing column(s) {', '.join(missing)}")
    out = Path(path)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    colours: dict[Any, Any] = {}
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for (schedule, severity, arm), rows in table.groupby(
        ["schedule", "severity", "arm"], sort=True
    ):
        key = (schedule, severity)
        colour = colours.setdefault(key, cycle[len(colours) % len(cycle)])
        first = sorted(table["arm"].unique())
        style = "-" if arm == first[0] else "--"
        for ax, outcome in zip(axes, _OUTCOMES[:2], strict=True):
            ax.plot(rows["years"], rows[outcome], style, color=colour,
                    label=f"{schedule}, {severity}, {arm}")  # fmt: skip
    axes[0].set_ylabel("terminal fraction")
    axes[1].set_ylabel("density (hairs/cm²)")
    for ax in axes:
        ax.set_xlabel("years since first injection")
    axes[1].legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(out, format="png", metadata={"Software": None})
    plt.close(fig)
    return out
