"""Power of a split-site trial by simulation: whole trials plus measurement error.

Each Monte Carlo draw simulates one whole trial at the largest size with
:func:`hairtrial.simulate.trial.simulate_trial` (the population model: subjects,
severities, follicle cycles, treatment response), adds per-image measurement error
(:class:`MeasurementError`) to its site × visit truth endpoints, and runs the primary
analysis — the paired treated-minus-control test on the change from baseline, Holm-adjusted
across visits — on the first ``n`` subjects for every size ``n``. Subjects are drawn
independently, so the nested subsets are valid samples of each size and one simulation
serves all sizes. Power is the share of draws in which the test rejects at ``alpha`` at
the primary visit (``config.responder_day``, by default the first post-baseline visit),
with a Wilson score interval for the Monte Carlo error.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from hairtrial._validate import InputError, check_positive
from hairtrial.analyze.config import AnalysisConfig, resolve_arms
from hairtrial.analyze.paired import holm, paired_summary
from hairtrial.analyze.tables import site_visit_table

POWER_COLUMNS: tuple[str, ...] = (
    "endpoint", "test", "visit_day", "subjects", "sims", "successes", "power", "ci_low",
    "ci_high",
)  # fmt: skip
TESTS: tuple[str, ...] = ("paired_t", "wilcoxon")


@dataclass(frozen=True)
class MeasurementError:
    """Per-image measurement error added to simulated truth endpoints.

    Parameters
    ----------
    count_rel_sd : float
        SD of the relative hair-count error of one image (count and density are
        multiplied by ``1 + e``). Default 0.133: this project's validation found a median
        absolute count error of 9 % per image, and for a normal error the median absolute
        value is 0.6745 SD (0.09 / 0.6745).
    diameter_sd_um : float, µm
        SD of the per-image mean shaft diameter error. Default 3 µm: the per-image mean
        diameter error measured in validation is about ±3 µm.
    terminal_fraction_sd : float
        SD of the per-image terminal-fraction error. Default 0.04, an assumption (not
        measured here): a systematic 3 µm per-image diameter error alone moves about 2 %
        of hairs across the 60 µm limit in the simulated advanced-AGA populations, and
        per-hair diameter errors and missed thin hairs add to it, so the figure is
        deliberately cautious; :meth:`from_validation` replaces it with a measured one.
    source : str
        Where the figures came from.
    """

    count_rel_sd: float = 0.133
    diameter_sd_um: float = 3.0
    terminal_fraction_sd: float = 0.04
    source: str = "defaults (project validation: median count error 9 %, diameter ±3 µm)"

    def __post_init__(self) -> None:
        for name in ("count_rel_sd", "diameter_sd_um", "terminal_fraction_sd"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise InputError(f"MeasurementError.{name}: expected a number ≥ 0, got {value!r}")

    @classmethod
    def none(cls) -> MeasurementError:
        """No measurement error (truth endpoints as measured)."""
        return cls(0.0, 0.0, 0.0, source="none")

    @classmethod
    def from_validation(cls, path: str | Path) -> MeasurementError:
        """Read the figures from ``hairtrial validate --format json`` output.

        Every JSON object in the file (a document, a list, or JSON Lines; nested objects
        included) that carries per-image ``count_error`` (relative, signed),
        ``mean_diameter_error_um`` or ``terminal_fraction_error`` contributes one value;
        the SD of each error over images is used (a single image gives its absolute
        value). Figures the file lacks keep their defaults.

        Parameters
        ----------
        path : str or Path
            Validation JSON.

        Returns
        -------
        MeasurementError
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"{path}: cannot read validation results ({exc})") from None
        try:
            docs = [json.loads(text)]
        except ValueError:
            try:
                docs = [json.loads(line) for line in text.splitlines() if line.strip()]
            except ValueError as exc:
                raise InputError(f"{path}: not JSON or JSON Lines ({exc})") from None
        keys = {
            "count_rel_sd": ("count_error",),
            "diameter_sd_um": ("mean_diameter_error_um",),
            "terminal_fraction_sd": ("terminal_fraction_error",),
        }
        found: dict[str, list[float]] = {k: [] for k in keys}
        for obj in _objects(docs):
            if str(obj.get("image", "")).lower() in {"all", "pooled", "total"}:
                continue
            for name, candidates in keys.items():
                for key in candidates:
                    value = obj.get(key)
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        if math.isfinite(value):
                            found[name].append(float(value))
        if not any(found.values()):
            raise InputError(
                f"{path}: no per-image count_error, mean_diameter_error_um or "
                "terminal_fraction_error values found"
            )
        values = asdict(cls())
        for name, errors in found.items():
            if len(errors) >= 2:
                values[name] = float(np.std(errors, ddof=1))
            elif errors:
                values[name] = abs(errors[0])
        n = max(len(v) for v in found.values())
        values["source"] = f"{path} ({n} images)"
        return cls(**values)


def _objects(value: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if isinstance(value, dict):
        out.append(value)
        for v in value.values():
            out.extend(_objects(v))
    elif isinstance(value, list):
        for v in value:
            out.extend(_objects(v))
    return out


def add_measurement_error(
    endpoints: pd.DataFrame, error: MeasurementError, *, rng: np.random.Generator
) -> pd.DataFrame:
    """Return truth endpoints with independent per-image measurement error added.

    Parameters
    ----------
    endpoints : DataFrame
        Site × visit truth (``hair_count, density_per_cm2, mean_diameter_um,
        terminal_fraction``; derived columns are recomputed).
    error : MeasurementError
        Error sizes.
    rng : numpy.random.Generator
        Random source.

    Returns
    -------
    DataFrame
        A copy; ``fraction_below_index = 1 - terminal_fraction`` and
        ``cumulative_thickness_mm_per_cm2 = density · mean diameter / 1000``.
    """
    out = endpoints.copy()
    n = len(out)
    factor = np.clip(1.0 + rng.normal(0.0, error.count_rel_sd, n), 0.0, None)
    out["hair_count"] = out["hair_count"].to_numpy(dtype=float) * factor
    out["density_per_cm2"] = out["density_per_cm2"].to_numpy(dtype=float) * factor
    out["mean_diameter_um"] = out["mean_diameter_um"].to_numpy(dtype=float) + rng.normal(
        0.0, error.diameter_sd_um, n
    )
    tf = out["terminal_fraction"].to_numpy(dtype=float) + rng.normal(
        0.0, error.terminal_fraction_sd, n
    )
    out["terminal_fraction"] = np.clip(tf, 0.0, 1.0)
    out["fraction_below_index"] = 1.0 - out["terminal_fraction"]
    out["cumulative_thickness_mm_per_cm2"] = (
        out["density_per_cm2"] * out["mean_diameter_um"] / 1000.0
    )
    return out


def wilson_interval(successes: int, n: int, *, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion.

    Parameters
    ----------
    successes, n : int
        Successes out of `n` trials.
    alpha : float
        Two-sided level.

    Returns
    -------
    (float, float)
        Lower and upper limit (NaN when ``n`` is 0).
    """
    from scipy import stats

    if n <= 0:
        return math.nan, math.nan
    z = float(stats.norm.ppf(1 - alpha / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact ends, no rounding dust
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


@dataclass(frozen=True)
class PowerResult:
    """Simulated power by number of subjects.

    Parameters
    ----------
    table : DataFrame
        ``endpoint, test, visit_day, subjects, sims, successes, power, ci_low, ci_high``
        (Wilson interval at ``1 - alpha``) per primary endpoint × test × size.
    preset : str
        Preset simulated.
    measurement : MeasurementError
        Error added to each image.
    config : AnalysisConfig
        Analysis options (``alpha``, primary endpoints, visit).
    seed : int
        Root seed.
    """

    table: pd.DataFrame = field(compare=False)
    preset: str = ""
    measurement: MeasurementError = field(default_factory=MeasurementError)
    config: AnalysisConfig = field(default_factory=AnalysisConfig)
    seed: int = 0

    def sample_size(
        self, power: float = 0.8, *, endpoint: str | None = None, test: str = "paired_t"
    ) -> int | None:
        """Smallest simulated number of subjects whose power reaches `power`.

        Parameters
        ----------
        power : float
            Target power in (0, 1).
        endpoint : str, optional
            Endpoint (default: the first primary endpoint).
        test : {'paired_t', 'wilcoxon'}
            Test.

        Returns
        -------
        int or None
            None when no simulated size reaches the target.
        """
        endpoint = endpoint or self.config.primary[0]
        rows = self.table[(self.table["endpoint"] == endpoint) & (self.table["test"] == test)]
        reached = rows[rows["power"] >= power]
        return int(reached["subjects"].min()) if len(reached) else None

    def describe(self) -> str:
        """Return the power table and the sample sizes as text."""
        lines = [
            f"power of {self.preset} ({self.table['sims'].max()} simulated trials; "
            f"measurement error: {self.measurement.source})",
            self.table.to_string(index=False, float_format=lambda v: f"{v:.3f}"),
        ]
        for endpoint in self.config.primary:
            for target in (0.8, 0.9):
                n = self.sample_size(target, endpoint=endpoint)
                lines.append(
                    f"{endpoint}: {int(target * 100)} % power with "
                    + (f"{n} subjects" if n is not None else "none of the simulated sizes")
                )
        return "\n".join(lines)


def _differences(
    table: pd.DataFrame, endpoint: str, codes: list[str], days: list[int], config: AnalysisConfig
) -> np.ndarray:
    """(subjects, visits) treated-minus-control change, in subject order (NaN if missing)."""
    wide = table.pivot_table(
        index=["subject", "visit_day"], columns="arm", values=f"{endpoint}_change",
        aggfunc="mean",
    )  # fmt: skip
    diff = (wide[config.treated_arm] - wide[config.control_arm]).unstack("visit_day")
    out: np.ndarray = diff.reindex(index=codes, columns=days).to_numpy(dtype=float)
    return out


def _one_draw(
    args: tuple[Any, int, tuple[int, ...], MeasurementError, AnalysisConfig, int],
) -> list[tuple[str, str, int, bool]]:
    """Simulate one trial; say for each size, endpoint and test whether it rejected."""
    from hairtrial.simulate.trial import simulate_trial

    preset, seed, sizes, error, config, day = args
    trial = simulate_trial(preset, seed=seed)
    rng = np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(99,)))
    measured = add_measurement_error(trial.endpoints, error, rng=rng)
    table = site_visit_table(measured, config=config)
    codes = [str(c) for c in trial.subjects["subject"]]
    days = sorted(int(d) for d in table["visit_day"].unique() if d != config.baseline_day)
    out: list[tuple[str, str, int, bool]] = []
    for endpoint in config.primary:
        diffs = _differences(table, endpoint, codes, days, config)
        for n in sizes:
            summaries = [paired_summary(diffs[:n, j], alpha=config.alpha) for j in range(len(days))]
            i = days.index(day)
            for test, key in (("paired_t", "p_t"), ("wilcoxon", "p_wilcoxon")):
                adjusted = holm([s[key] for s in summaries])
                out.append((endpoint, test, n, bool(adjusted[i] < config.alpha)))
    return out


def power_curve(
    preset: Any,
    *,
    subjects: Sequence[int],
    sims: int,
    seed: int = 0,
    measurement: MeasurementError | None = None,
    config: AnalysisConfig | None = None,
    workers: int = 1,
) -> PowerResult:
    """Simulate whole trials and estimate power for each number of subjects.

    Parameters
    ----------
    preset : str or Preset
        Preset name, TOML path, or a loaded :class:`~hairtrial.simulate.config.Preset`.
    subjects : sequence of int
        Numbers of subjects to evaluate (each ≥ 2).
    sims : int
        Simulated trials (Monte Carlo draws), each at the largest size.
    seed : int
        Root seed; draw ``i`` uses ``seed + i``, so results do not depend on `workers`.
    measurement : MeasurementError, optional
        Per-image error (defaults documented in :class:`MeasurementError`).
    config : AnalysisConfig, optional
        Primary endpoints, ``alpha``, primary visit (``responder_day``; default the first
        post-baseline visit). Arms default to the preset's (treated = first arm).
    workers : int
        Processes.

    Returns
    -------
    PowerResult
    """
    from hairtrial.simulate.config import Preset, load_preset
    from hairtrial.simulate.trial import with_overrides

    loaded = preset if isinstance(preset, Preset) else load_preset(preset)
    sizes = tuple(sorted({int(s) for s in subjects}))
    if not sizes or sizes[0] < 2:
        raise InputError(f"subjects: expected sizes of at least 2 subjects, got {list(subjects)}")
    if isinstance(sims, bool) or int(sims) != sims or sims < 1:
        raise InputError(f"sims: expected a whole number ≥ 1, got {sims!r}")
    check_positive(workers, name="workers")
    measurement = measurement or MeasurementError()
    config = config or AnalysisConfig()
    config, _ = resolve_arms(loaded.trial.arms, config)
    days = [d for d in loaded.trial.visit_days if d != config.baseline_day]
    day = config.responder_day if config.responder_day is not None else (days[0] if days else None)
    if day is None or day not in days:
        raise InputError(f"responder_day: {day!r} is not a post-baseline visit of {loaded.name}")
    big = with_overrides(loaded, subjects=sizes[-1])
    jobs = [(big, seed + i, sizes, measurement, config, day) for i in range(int(sims))]
    if workers > 1:
        with ProcessPoolExecutor(max_workers=int(workers)) as pool:
            results = list(pool.map(_one_draw, jobs, chunksize=max(1, len(jobs) // (4 * workers))))
    else:
        results = [_one_draw(job) for job in jobs]
    flat = pd.DataFrame(
        [r for draw in results for r in draw], columns=["endpoint", "test", "subjects", "reject"]
    )
    rows: list[dict[str, Any]] = []
    for key, group in flat.groupby(["endpoint", "test", "subjects"], sort=False):
        endpoint, test, n = cast(tuple[str, str, int], key)
        k = int(group["reject"].sum())
        lo, hi = wilson_interval(k, len(group), alpha=config.alpha)
        rows.append({"endpoint": endpoint, "test": test, "visit_day": day, "subjects": int(n),
                     "sims": len(group), "successes": k, "power": k / len(group),
                     "ci_low": lo, "ci_high": hi})  # fmt: skip
    table = pd.DataFrame(rows, columns=list(POWER_COLUMNS))
    return PowerResult(table=table, preset=loaded.name, measurement=measurement,
                       config=config, seed=seed)  # fmt: skip


def plot_power(result: PowerResult, path: str | Path) -> Path:
    """Plot power against the number of subjects with Monte Carlo CIs (PNG).

    Parameters
    ----------
    result : PowerResult
        From :func:`power_curve`.
    path : str or Path
        PNG file to write (deterministic: no timestamp in the file).

    Returns
    -------
    Path
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(path)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=100)
    for (endpoint, test), rows in result.table.groupby(["endpoint", "test"], sort=False):
        x = rows["subjects"].to_numpy()
        y = rows["power"].to_numpy()
        err = np.vstack([y - rows["ci_low"].to_numpy(), rows["ci_high"].to_numpy() - y])
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=f"{endpoint} ({test})",
                    linestyle="-" if test == "paired_t" else "--")  # fmt: skip
    for level in (0.8, 0.9):
        ax.axhline(level, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xlabel("subjects")
    ax.set_ylabel("power")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"{result.preset}: power at day {int(result.table['visit_day'].iloc[0])}")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, format="png", metadata={"Software": None})
    plt.close(fig)
    return out
