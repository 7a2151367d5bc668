"""Tests of the follicle population model: validation, output contract, calibration."""

from __future__ import annotations

import tomllib
from importlib import resources

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hairtrial._validate import InputError
from hairtrial.simulate.population import (
    OUTPUT_COLUMNS,
    PHASES,
    SEVERITIES,
    PopulationParams,
    SiteSpec,
    severity_params,
    simulate_population,
)
from hairtrial.simulate.treatment import TreatmentParams, schedule_days
from tests.factories import preset_table

# The [treatment] tables of the packaged trial presets: the tests pin what the presets ship.
NANFANG_TREATMENT = preset_table("nanfang-2023", "treatment")
GENTILE_TREATMENT = preset_table("gentile-2020", "treatment")
NANFANG_SEVERITIES = ("HN-IV", "HN-V", "HN-VI")
GENTILE_SEVERITIES = ("HN-IV", "HN-V")
TERMINAL_UM = 60.0
VELLUS_UM = 30.0


def _untreated(params: PopulationParams, n: int, area_cm2: float = 1.0) -> list[SiteSpec]:
    return [SiteSpec(params, area_cm2, "untreated", None) for _ in range(n)]


def _visible(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["has_shaft"]]


# ---------------------------------------------------------------------------------------
# Parameters


def test_defaults_validate_and_round_trip() -> None:
    params = PopulationParams()
    assert PopulationParams.from_dict({}, source="x") == params
    same = params.with_overrides({"telogen_days": 120}, source="x")
    assert same.telogen_days == 120.0
    assert same.follicle_density_per_cm2 == params.follicle_density_per_cm2
    assert params.telogen_days == 90.0


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("follicle_density_per_cm2", 0.0, "[1.0, 1000.0]"),
        ("miniaturised_fraction", 1.2, "[0.0, 1.0]"),
        ("telogen_days", "ninety", "[1.0, 730.0]"),
        ("catagen_days", float("inf"), "[1.0, 90.0]"),
        ("kenogen_probability", True, "[0.0, 1.0]"),
    ],
)
def test_bad_value_names_source_field_and_range(field: str, value: object, allowed: str) -> None:
    with pytest.raises(InputError) as err:
        PopulationParams.from_dict({field: value}, source="trial.toml:population")
    message = str(err.value)
    assert "trial.toml:population" in message
    assert field in message
    assert allowed in message


def test_inconsistent_and_unknown_fields_are_rejected() -> None:
    with pytest.raises(InputError, match=r"trial\.toml.*'telogen_day'"):
        PopulationParams.from_dict({"telogen_day": 90}, source="trial.toml")
    with pytest.raises(InputError, match=r"fu_size_probabilities \(s\).*sum to 1"):
        PopulationParams.from_dict({"fu_size_probabilities": [0.5, 0.5, 0.5, 0.0]}, source="s")
    with pytest.raises(InputError, match=r"fu_size_probabilities\[2\] \(s\)"):
        PopulationParams.from_dict({"fu_size_probabilities": [0.5, 0.5, -0.1, 0.1]}, source="s")
    with pytest.raises(InputError, match="4 probabilities"):
        PopulationParams.from_dict({"fu_size_probabilities": [0.5, 0.5]}, source="s")
    with pytest.raises(InputError, match=r"exogen_max_delay_days \(s\).*emergence_days"):
        PopulationParams.from_dict({"exogen_max_delay_days": 30.0}, source="s")
    with pytest.raises(InputError, match=r"anagen_min_days \(s\)"):
        PopulationParams.from_dict({"anagen_min_days": 10.0}, source="s")
    with pytest.raises(InputError, match=r"miniaturised_ratio_sd \(s\)"):
        PopulationParams.from_dict(
            {"miniaturised_ratio_mean": 0.1, "miniaturised_ratio_sd": 0.4}, source="s"
        )
    with pytest.raises(InputError, match=r"miniaturised_fraction \(o\)"):
        PopulationParams().with_overrides({"miniaturised_fraction": -1}, source="o")


def test_severity_presets() -> None:
    text = resources.files("hairtrial.simulate").joinpath("presets/severity.toml").read_text()
    assert tuple(tomllib.loads(text)) == SEVERITIES
    assert SEVERITIES[0] == "healthy"
    assert {f"HN-{r}" for r in ("II", "III", "IV", "V", "VI", "VII")} <= set(SEVERITIES)
    assert {"Ludwig-I", "Ludwig-II", "Ludwig-III"} <= set(SEVERITIES)
    params = {name: severity_params(name) for name in SEVERITIES}
    assert params["healthy"].miniaturisation_probability == 0.0
    assert params["HN-VI"].miniaturised_fraction > params["HN-II"].miniaturised_fraction
    with pytest.raises(InputError, match=r"'HN-9'.*healthy, HN-II.*Ludwig-III"):
        severity_params("HN-9")


def test_site_spec_validation() -> None:
    params = PopulationParams()
    treatment = TreatmentParams()
    with pytest.raises(InputError, match="arm"):
        SiteSpec(params, 1.0, "placebo", treatment)
    with pytest.raises(InputError, match="treatment"):
        SiteSpec(params, 1.0, "cells", None)
    with pytest.raises(InputError, match="area_cm2"):
        SiteSpec(params, 0.0, "untreated", None)
    with pytest.raises(InputError, match="response"):
        SiteSpec(params, 1.0, "cells", treatment, response=-1.0)
    with pytest.raises(InputError, match="schedule_days"):
        SiteSpec(params, 1.0, "cells", treatment, schedule_days=(0, 45.5))  # type: ignore[arg-type]


def test_simulate_input_errors() -> None:
    sites = _untreated(PopulationParams(), 1, 0.1)
    with pytest.raises(InputError, match="sites"):
        simulate_population([], days=[0], seed=0)
    with pytest.raises(InputError, match="days"):
        simulate_population(sites, days=[], seed=0)
    with pytest.raises(InputError, match="days"):
        simulate_population(sites, days=[-100], seed=0, burn_in_days=60)
    with pytest.raises(InputError, match="days"):
        simulate_population(sites, days=[1.5], seed=0)
    with pytest.raises(InputError, match="seed"):
        simulate_population(sites, days=[0], seed=-1)
    with pytest.raises(InputError, match="burn_in_days"):
        simulate_population(sites, days=[0], seed=0, burn_in_days=-5)


# ---------------------------------------------------------------------------------------
# Output contract


@pytest.fixture(scope="module")
def small_trial() -> pd.DataFrame:
    treatment = TreatmentParams.from_dict(NANFANG_TREATMENT, source="test")
    params = severity_params("HN-V")
    sites = [
        SiteSpec(params, 1.0, "cells", treatment),
        SiteSpec(params, 1.0, "saline", treatment),
        SiteSpec(severity_params("healthy"), 0.5, "untreated", None),
    ]
    return simulate_population(sites, days=[30, 0, 2, 90, 30], seed=7)


def test_columns_types_and_order(small_trial: pd.DataFrame) -> None:
    df = small_trial
    assert tuple(df.columns) == OUTPUT_COLUMNS
    assert isinstance(df["phase"].dtype, pd.CategoricalDtype)
    assert list(df["phase"].cat.categories) == list(PHASES)
    for name in ("site", "day", "follicle_id", "fu_id", "cycle"):
        assert pd.api.types.is_integer_dtype(df[name]), name
    assert df["has_shaft"].dtype == bool
    assert sorted(df["day"].unique()) == [0, 2, 30, 90]
    assert df.index.equals(pd.RangeIndex(len(df)))
    key = df[["site", "day", "follicle_id"]].to_numpy()
    assert not df.duplicated(["site", "day", "follicle_id"]).any()
    assert np.all(np.diff(key[:, 0]) >= 0)
    order = np.lexsort((key[:, 2], key[:, 1], key[:, 0]))
    np.testing.assert_array_equal(order, np.arange(len(df)))


def test_follicles_are_stable_across_days(small_trial: pd.DataFrame) -> None:
    for _, site in small_trial.groupby("site"):
        days = [d for _, d in site.groupby("day")]
        for column in ("follicle_id", "fu_id", "x_um", "y_um", "potential_diameter_um",
                       "azimuth_deg", "elevation_deg"):  # fmt: skip
            for later in days[1:]:
                np.testing.assert_array_equal(days[0][column].to_numpy(), later[column])
        ids = days[0]["follicle_id"].to_numpy()
        np.testing.assert_array_equal(ids, np.arange(ids.size))
        cycles = np.stack([d["cycle"].to_numpy() for d in days])
        assert np.all(np.diff(cycles, axis=0) >= 0)


def test_geometry(small_trial: pd.DataFrame) -> None:
    areas = {0: 1.0, 1: 1.0, 2: 0.5}
    day0 = small_trial[small_trial["day"] == 0]
    for site, rows in day0.groupby("site"):
        side = np.sqrt(areas[int(site)]) * 1e4
        assert rows["x_um"].between(0, side, inclusive="left").all()
        assert rows["y_um"].between(0, side, inclusive="left").all()
        # Members of a follicular unit sit within ~100–300 µm of each other.
        spread = rows.groupby("fu_id").agg(
            dx=("x_um", lambda v: v.max() - v.min()), dy=("y_um", lambda v: v.max() - v.min())
        )
        assert np.hypot(spread["dx"], spread["dy"]).max() < 400.0
        centres = rows.groupby("fu_id")[["x_um", "y_um"]].mean().to_numpy()
        nearest = np.sort(np.hypot(*(centres[:, None, :] - centres[None]).transpose(2, 0, 1)))
        assert np.median(nearest[:, 1]) > 300.0  # units spread out, not clumped
        sizes = rows.groupby("fu_id").size()
        assert sizes.between(1, 4).all()
    assert small_trial["elevation_deg"].between(5, 85).all()
    assert small_trial["azimuth_deg"].between(0, 360, inclusive="left").all()


def test_shaft_consistency(small_trial: pd.DataFrame) -> None:
    df = small_trial
    shaft = df["has_shaft"]
    assert (df["diameter_um"].notna() == shaft).all()
    assert (df["length_um"].notna() == shaft).all()
    assert not shaft[df["phase"] == "kenogen"].any()
    assert shaft[df["phase"].isin(["catagen", "telogen"])].all()
    anagen = df["phase"] == "anagen"
    assert (~shaft[anagen]).any()  # early anagen before the new shaft emerges
    assert (df.loc[~anagen, "growth_um_per_day"] == 0).all()
    growing = anagen & shaft & (df["growth_um_per_day"] > 0)
    assert growing.mean() > 0.5
    assert (df.loc[shaft, "diameter_um"] <= df.loc[shaft, "potential_diameter_um"] + 1e-9).all()
    assert (df.loc[shaft, "length_um"] >= 0).all()


def test_anagen_shafts_grow_and_clubs_do_not(small_trial: pd.DataFrame) -> None:
    # Phototrichogram: between days 0 and 2, growing hairs lengthen by 2 days of growth.
    d0 = small_trial[small_trial["day"] == 0].set_index(["site", "follicle_id"])
    d2 = small_trial[small_trial["day"] == 2].set_index(["site", "follicle_id"])
    untreated = d0.index.get_level_values("site") == 2
    same = (d0["cycle"] == d2["cycle"]) & untreated
    growing = same & (d0["growth_um_per_day"] > 0) & (d2["growth_um_per_day"] > 0)
    gained = d2["length_um"][growing] - d0["length_um"][growing]
    np.testing.assert_allclose(gained, 2 * d0["growth_um_per_day"][growing], rtol=1e-9)
    rate = d0["growth_um_per_day"][growing]
    diameter = d0["diameter_um"][growing]
    assert rate[diameter > 75].mean() == pytest.approx(350, rel=0.15)  # ~1 cm/month
    assert rate[diameter < 30].mean() < 0.75 * rate[diameter > 75].mean()
    resting = (d0["cycle"] == d2["cycle"]) & (d0["phase"] == "telogen") & (d2["phase"] == "telogen")
    assert resting.sum() > 10
    np.testing.assert_array_equal(d0["length_um"][resting], d2["length_um"][resting])


def test_determinism_and_seed_handling() -> None:
    treatment = TreatmentParams.from_dict(NANFANG_TREATMENT, source="test")
    params = severity_params("HN-IV")
    sites = [SiteSpec(params, 0.3, "cells", treatment), SiteSpec(params, 0.3, "saline", treatment)]
    first = simulate_population(sites, days=[0, 30], seed=11)
    pd.testing.assert_frame_equal(first, simulate_population(sites, days=[0, 30], seed=11))
    other = simulate_population(sites, days=[0, 30], seed=12)
    assert len(other) != len(first) or not other.equals(first)
    seq = np.random.SeedSequence(5)
    a = simulate_population(sites, days=[0], seed=seq)
    pd.testing.assert_frame_equal(a, simulate_population(sites, days=[0], seed=seq))
    # A site's layout depends only on the seed, its index and its own spec.
    more = simulate_population([*sites, SiteSpec(params, 1.0, "untreated", None)], days=[0],
                               seed=seq)  # fmt: skip
    layout = ["follicle_id", "fu_id", "x_um", "y_um", "potential_diameter_um"]
    pd.testing.assert_frame_equal(a[layout], more[more["site"] < 2][layout])


def test_zero_response_equals_untreated() -> None:
    treatment = TreatmentParams.from_dict(NANFANG_TREATMENT, source="test")
    params = severity_params("HN-V")
    silent = simulate_population(
        [SiteSpec(params, 0.5, "cells", treatment, response=0.0)], days=[0, 90], seed=3
    )
    untreated = simulate_population(_untreated(params, 1, 0.5), days=[0, 90], seed=3)
    pd.testing.assert_frame_equal(silent, untreated)


# ---------------------------------------------------------------------------------------
# Calibration: steady state and severities


def test_steady_state_reproduces_configured_phases_and_diameters() -> None:
    params = PopulationParams().with_overrides(
        {
            "miniaturised_fraction": 0.0,
            "miniaturisation_probability": 0.0,
            "anagen_terminal_days": 600.0,
            "telogen_days": 120.0,
            "kenogen_probability": 0.3,
            "kenogen_days": 150.0,
        },
        source="test",
    )
    df = simulate_population(_untreated(params, 24), days=[0, 400, 1000], seed=21)
    # Stationary alternating renewal process: share of a phase = its mean duration / cycle.
    means = {
        "anagen": params.anagen_terminal_days,
        "catagen": params.catagen_days,
        "telogen": params.telogen_days,
        "kenogen": params.kenogen_probability * params.kenogen_days,
    }
    cycle = sum(means.values())
    for day, rows in df.groupby("day"):
        n = len(rows)
        observed = rows["phase"].value_counts(normalize=True)
        for phase, mean in means.items():
            p = mean / cycle
            # Follicles cycle independently, so the count is binomial; 4.5 standard errors
            # leave a false alarm rate of ~1e-5 per check.
            assert observed[phase] == pytest.approx(p, abs=4.5 * np.sqrt(p * (1 - p) / n)), (
                day,
                phase,
            )
    # Diameters: no miniaturisation, so visible shafts keep the configured distribution.
    mean, sd = params.potential_diameter_mean_um, params.potential_diameter_sd_um
    potential = df.loc[df["day"] == 0, "potential_diameter_um"]
    assert stats.kstest(potential, "norm", args=(mean, sd)).pvalue > 1e-3
    late = _visible(df[df["day"] == 1000])["diameter_um"]
    n = len(late)
    assert late.mean() == pytest.approx(mean, abs=4.5 * sd / np.sqrt(n))
    assert late.std() == pytest.approx(sd, abs=4.5 * sd / np.sqrt(2 * n))
    assert stats.kstest(late, "norm", args=(mean, sd)).pvalue > 1e-3


def _site_summary(df: pd.DataFrame) -> dict[str, float]:
    visible = _visible(df)
    n_sites = df["site"].nunique()
    terminal = (visible["diameter_um"] >= TERMINAL_UM).mean()
    vellus = (visible["diameter_um"] <= VELLUS_UM).mean()
    per_fu = visible.groupby(["site", "fu_id"]).size()
    return {
        "density": len(visible) / n_sites,
        "terminal_to_vellus": terminal / vellus,
        "anagen": (visible["phase"] == "anagen").mean(),
        "telogen": (visible["phase"] == "telogen").mean(),
        "kenogen": (df["phase"] == "kenogen").mean(),
        "singles": (per_fu == 1).mean(),
    }


@pytest.fixture(scope="module")
def severities() -> dict[str, dict[str, float]]:
    out = {}
    for i, name in enumerate(SEVERITIES):
        df = simulate_population(_untreated(severity_params(name), 30), days=[0], seed=100 + i)
        out[name] = _site_summary(df)
    return out


def test_healthy_scalp_matches_design_ranges(severities: dict[str, dict[str, float]]) -> None:
    healthy = severities["healthy"]
    assert 200 <= healthy["density"] <= 300  # hairs/cm²
    assert 5.0 <= healthy["terminal_to_vellus"] <= 10.0  # ~7:1
    assert 0.85 <= healthy["anagen"] <= 0.90
    assert 0.09 <= healthy["telogen"] <= 0.16  # telogen ~3 months, 10–15 %
    assert 0.30 <= healthy["singles"] <= 0.45  # ~35 % single-hair units


@pytest.mark.parametrize("name", ["HN-V", "HN-VI", "HN-VII", "Ludwig-III"])
def test_advanced_aga_matches_design_ranges(
    name: str, severities: dict[str, dict[str, float]]
) -> None:
    advanced, healthy = severities[name], severities["healthy"]
    assert 100 <= advanced["density"] <= 150  # hairs/cm² in advanced AGA
    assert advanced["terminal_to_vellus"] < 4.0
    assert advanced["telogen"] > healthy["telogen"] + 0.05
    assert advanced["kenogen"] > 0.15  # empty follicles persist
    assert advanced["singles"] > healthy["singles"] + 0.15


def test_severity_scales_are_monotone(severities: dict[str, dict[str, float]]) -> None:
    for scale in (
        ["healthy", "HN-II", "HN-III", "HN-IV", "HN-V", "HN-VI", "HN-VII"],
        ["healthy", "Ludwig-I", "Ludwig-II", "Ludwig-III"],
    ):
        for key, sign in (("density", -1), ("terminal_to_vellus", -1), ("singles", 1)):
            values = np.array([severities[name][key] for name in scale])
            assert np.all(sign * np.diff(values) > 0), (key, scale, values)


def test_miniaturisation_thins_each_new_cycle_and_kenogen_lasts_months() -> None:
    params = severity_params("HN-VI").with_overrides(
        {"miniaturisation_probability": 1.0, "miniaturisation_factor": 0.8}, source="test"
    )
    df = simulate_population(_untreated(params, 10), days=[0, 150], seed=4)
    d0 = df[df["day"] == 0].set_index(["site", "follicle_id"])
    d1 = df[df["day"] == 150].set_index(["site", "follicle_id"])
    # A telogen club at day 0 shows the last cycle's shaft; the next anagen's is thinner.
    new_cycle = (
        (d1["cycle"] == d0["cycle"] + 1)
        & (d0["phase"] == "telogen")
        & (d1["growth_um_per_day"] > 0)  # the new shaft, not a club kept until exogen
    )
    assert new_cycle.sum() > 60
    ratio = d1["diameter_um"][new_cycle] / d0["diameter_um"][new_cycle]
    floor = d1["diameter_um"][new_cycle] <= params.minimum_diameter_um + 1e-9
    assert (~floor).sum() > 30
    np.testing.assert_allclose(ratio[~floor], 0.8)
    still_empty = (d0["phase"] == "kenogen") & (d1["phase"] == "kenogen")
    assert still_empty.sum() > 0.2 * (d0["phase"] == "kenogen").sum()


# ---------------------------------------------------------------------------------------
# Calibration: the published trials


def _arm_changes(df: pd.DataFrame, arms: dict[int, str]) -> pd.DataFrame:
    """Treated-minus-control change from baseline of per-site endpoints, per day."""
    visible = _visible(df)
    grouped = visible.groupby(["site", "day"])["diameter_um"]
    per_site = pd.DataFrame(
        {
            "terminal_fraction": grouped.apply(lambda d: (d >= TERMINAL_UM).mean()),
            "mean_diameter_um": grouped.mean(),
            "hair_count": grouped.size().astype(float),
        }
    ).reset_index()
    baseline = per_site[per_site["day"] == 0].set_index("site")
    endpoints = ["terminal_fraction", "mean_diameter_um", "hair_count"]
    change = per_site.set_index(["site", "day"])[endpoints].sub(baseline[endpoints], level=0)
    change = change.reset_index()
    change["arm"] = change["site"].map(arms)
    return change.groupby(["arm", "day"])[endpoints].mean()


@pytest.fixture(scope="module")
def nanfang() -> tuple[pd.DataFrame, dict[int, str]]:
    treatment = TreatmentParams.from_dict(NANFANG_TREATMENT, source="nanfang-2023")
    sites, arms = [], {}
    for subject in range(50):
        params = severity_params(NANFANG_SEVERITIES[subject % 3])
        for arm in ("cells", "saline"):
            arms[len(sites)] = arm
            sites.append(SiteSpec(params, 1.0, arm, treatment))
    return simulate_population(sites, days=[0, 30, 90, 210, 270], seed=2023), arms


def test_nanfang_shape(nanfang: tuple[pd.DataFrame, dict[int, str]]) -> None:
    df, arms = nanfang
    change = _arm_changes(df, arms)
    effect = change.loc["cells"] - change.loc["saline"]
    tf, md = effect["terminal_fraction"], effect["mean_diameter_um"]
    for day in (30, 90):  # rose at month 1 and stayed up to month 3: a few pp and µm
        assert 0.015 < tf[day] < 0.12, (day, tf[day])
        assert 2.0 < md[day] < 10.0, (day, md[day])
    peak_tf, peak_md = max(tf[30], tf[90]), max(md[30], md[90])
    for day in (210, 270):  # faded towards baseline by months 7–9
        assert abs(tf[day]) < 0.35 * peak_tf, (day, tf[day])
    assert abs(md[210]) < 0.5 * peak_md
    assert abs(md[270]) < 0.25 * peak_md


def test_nanfang_gain_larger_below_60_um(nanfang: tuple[pd.DataFrame, dict[int, str]]) -> None:
    df, arms = nanfang
    visible = _visible(df)
    baseline = visible[visible["day"] == 0][["site", "follicle_id", "diameter_um"]]
    for day in (30, 90):
        later = visible[visible["day"] == day].merge(
            baseline, on=["site", "follicle_id"], suffixes=("", "_0")
        )
        later["gain"] = later["diameter_um"] - later["diameter_um_0"]
        later["arm"] = later["site"].map(arms)
        later["below_index"] = later["diameter_um_0"] < TERMINAL_UM
        gain = later.groupby(["below_index", "arm"])["gain"].mean()
        below = gain[True, "cells"] - gain[True, "saline"]
        above = gain[False, "cells"] - gain[False, "saline"]
        assert below > 2.0 + above, (day, below, above)
        assert below > 3.0


def test_gentile_hair_count_at_58_weeks() -> None:
    treatment = TreatmentParams.from_dict(GENTILE_TREATMENT, source="gentile-2020")
    sites, arms = [], {}
    for subject in range(30):
        params = severity_params(GENTILE_SEVERITIES[subject % 2])
        for arm in ("cells", "saline"):
            arms[len(sites)] = arm
            sites.append(SiteSpec(params, 0.65, arm, treatment))  # hairs per 0.65 cm²
    df = simulate_population(sites, days=[0, 406], seed=2020)
    count = _arm_changes(df, arms)["hair_count"]
    assert 14.0 <= count["cells", 406] <= 22.0, count["cells", 406]
    assert -4.0 <= count["saline", 406] <= 2.0, count["saline", 406]


def test_yearly_reinjection_restores_the_effect() -> None:
    treatment = TreatmentParams.from_dict(NANFANG_TREATMENT, source="nanfang-2023")
    params = severity_params("HN-V")
    sites = [
        SiteSpec(params, 1.0, "cells", treatment, schedule_days=schedule_days("single")),
        SiteSpec(params, 1.0, "cells", treatment, schedule_days=schedule_days("yearly")),
    ] * 8
    df = simulate_population(sites, days=[330, 395], seed=9)
    arms = {i: ("single", "yearly")[i % 2] for i in range(len(sites))}
    visible = _visible(df).assign(schedule=lambda d: d["site"].map(arms))
    md = visible.groupby(["schedule", "day"])["diameter_um"].mean()
    single_gain = md["single", 395] - md["single", 330]
    yearly_gain = md["yearly", 395] - md["yearly", 330]
    assert yearly_gain > single_gain + 2.0
