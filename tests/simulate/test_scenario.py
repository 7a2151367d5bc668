import pytest

from hairtrial._validate import InputError
from hairtrial.simulate.scenario import plot_scenarios, simulate_scenarios


@pytest.fixture(scope="module")
def curves():
    return simulate_scenarios(
        "nanfang-2023", schedules=("single", "yearly"), severities=("HN-V",), years=2,
        subjects=4, seed=1, step_days=60,
    )  # fmt: skip


def test_yearly_reinjection_matches_single_until_the_second_session(curves):
    cells = curves[curves["arm"] == "cells"].set_index(["schedule", "day"])
    single, yearly = cells.loc["single"], cells.loc["yearly"]
    early = [d for d in single.index if d < 365]
    assert (single.loc[early, "terminal_fraction"] == yearly.loc[early, "terminal_fraction"]).all()
    # four months after the second session the re-injected site is thicker again
    assert yearly.loc[480, "mean_diameter_um"] > single.loc[480, "mean_diameter_um"] + 1.0
    saline = curves[curves["arm"] == "saline"]
    assert set(saline["schedule"]) == {"single", "yearly"}
    assert curves["day"].max() == 730 and (curves["n_sites"] == 4).all()


def test_plot_is_deterministic(curves, tmp_path):
    a = plot_scenarios(curves, tmp_path / "a.png").read_bytes()
    assert a[:4] == b"\x89PNG" and a == plot_scenarios(curves, tmp_path / "b.png").read_bytes()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"schedules": ("weekly",)}, "schedules"), ({"severities": ("HN-XX",)}, "HN-XX"),
     ({"years": 0}, "years")],
)  # fmt: skip
def test_bad_options(kwargs, message):
    with pytest.raises(InputError, match=message):
        simulate_scenarios("nanfang-2023", subjects=2, **kwargs)
