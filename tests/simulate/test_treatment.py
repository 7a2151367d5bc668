"""Tests of the treatment model: parameters, schedules and the stimulus time course."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hairtrial._validate import InputError
from hairtrial.simulate.treatment import (
    ARMS,
    SCHEDULE_KINDS,
    TreatmentParams,
    schedule_days,
    stimulus,
)
from tests.factories import preset_table

# The [treatment] tables of the packaged trial presets: the tests pin what the presets ship.
NANFANG_TREATMENT = preset_table("nanfang-2023", "treatment")
GENTILE_TREATMENT = preset_table("gentile-2020", "treatment")


def test_from_dict_keeps_values_and_defaults() -> None:
    params = TreatmentParams.from_dict(NANFANG_TREATMENT, source="nanfang-2023.toml")
    assert params.decay_days == 60.0
    assert params.injection_points == 9
    assert isinstance(params.injection_points, int)
    assert TreatmentParams.from_dict({}, source="x") == TreatmentParams()
    assert params == TreatmentParams()  # the defaults are the nanfang-2023 calibration


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("onset_days", 0.0, "[0.5, 365.0]"),
        ("decay_days", -5, "[1.0, 3650.0]"),
        ("consolidation", 1.5, "[0.0, 1.0]"),
        ("reentry_gain", float("nan"), "[0.0, 100.0]"),
        ("recovery_gain", "lots", "[0.0, 100.0]"),
    ],
)
def test_bad_value_names_source_field_and_range(field: str, value: object, allowed: str) -> None:
    with pytest.raises(InputError) as err:
        TreatmentParams.from_dict({field: value}, source="my-trial.toml:treatment")
    message = str(err.value)
    assert "my-trial.toml:treatment" in message
    assert field in message
    assert allowed in message


def test_unknown_field_and_bad_types_are_rejected() -> None:
    with pytest.raises(InputError, match=r"my\.toml.*'decay_day'"):
        TreatmentParams.from_dict({"decay_day": 30}, source="my.toml")
    with pytest.raises(InputError, match="injection_points"):
        TreatmentParams.from_dict({"injection_points": 9.5}, source="my.toml")
    with pytest.raises(InputError, match="cells_amplitude"):
        TreatmentParams.from_dict({"cells_amplitude": True}, source="my.toml")
    with pytest.raises(InputError, match="my.toml"):
        TreatmentParams.from_dict([("decay_days", 3)], source="my.toml")  # type: ignore[arg-type]


def test_with_overrides_replaces_and_validates() -> None:
    base = TreatmentParams.from_dict(NANFANG_TREATMENT, source="n")
    longer = base.with_overrides({"decay_days": 120}, source="override")
    assert longer.decay_days == 120.0
    assert longer.recovery_gain == base.recovery_gain
    assert base.decay_days == 60.0  # the original is untouched
    with pytest.raises(InputError, match=r"decay_days \(override\)"):
        base.with_overrides({"decay_days": 0}, source="override")


def test_schedule_kinds() -> None:
    assert SCHEDULE_KINDS == ("single", "repeated", "yearly")
    assert schedule_days("single") == (0,)
    assert schedule_days("repeated") == (0, 45, 90)
    assert schedule_days("repeated", n=4, interval_days=30) == (0, 30, 60, 90)
    assert schedule_days("yearly") == (0, 365, 730, 1095)
    assert schedule_days("yearly", horizon_days=800) == (0, 365, 730)
    with pytest.raises(InputError, match="kind.*'monthly'.*single, repeated, yearly"):
        schedule_days("monthly")
    with pytest.raises(InputError, match="n"):
        schedule_days("repeated", n=0)
    with pytest.raises(InputError, match="interval_days"):
        schedule_days("repeated", interval_days=2.5)  # type: ignore[arg-type]


def _peak_day(params: TreatmentParams, decay: float) -> float:
    return params.onset_days * math.log1p(decay / params.onset_days)


def test_stimulus_shape_cells() -> None:
    params = TreatmentParams.from_dict(NANFANG_TREATMENT, source="n")
    days = np.arange(-30.0, 400.0, 0.25)
    s = stimulus(days, arm="cells", params=params, schedule=(0,))
    assert s.shape == days.shape
    assert np.all(s[days <= 0] == 0.0)
    assert np.all(s >= 0.0)
    peak = int(np.argmax(s))
    # Onset over days, peak at tau_on*ln(1 + tau_off/tau_on) at exactly the amplitude.
    assert days[peak] == pytest.approx(_peak_day(params, params.decay_days), abs=0.25)
    assert s[peak] == pytest.approx(params.cells_amplitude, rel=1e-4)
    assert np.all(np.diff(s[(days > 0) & (days <= days[peak])]) > 0)
    assert np.all(np.diff(s[days >= days[peak] + 0.25]) < 0)
    # Decays with the configured time constant: e-fold every decay_days, late on.
    late = stimulus(np.array([200.0, 260.0]), arm="cells", params=params, schedule=(0,))
    assert late[1] / late[0] == pytest.approx(math.exp(-60.0 / params.decay_days), rel=1e-3)


def test_stimulus_arms_and_saline_much_smaller() -> None:
    for table in (NANFANG_TREATMENT, GENTILE_TREATMENT):
        params = TreatmentParams.from_dict(table, source="t")
        days = np.arange(0.0, 400.0)
        cells = stimulus(days, arm="cells", params=params, schedule=(0,))
        saline = stimulus(days, arm="saline", params=params, schedule=(0,))
        untreated = stimulus(days, arm="untreated", params=params, schedule=(0,))
        assert np.all(untreated == 0.0)
        assert saline.max() == pytest.approx(params.saline_amplitude, rel=1e-2)
        assert saline.max() <= 0.1 * cells.max()
        assert saline.sum() <= 0.02 * cells.sum()  # needling: small and short
        assert np.all(saline[100:] < 1e-2 * cells.max())


def test_stimulus_sums_sessions_and_leaves_input_alone() -> None:
    params = TreatmentParams.from_dict(NANFANG_TREATMENT, source="n")
    days = np.arange(0.0, 800.0)
    before = days.copy()
    single = stimulus(days, arm="cells", params=params, schedule=(0,))
    yearly = stimulus(days, arm="cells", params=params, schedule=schedule_days("yearly"))
    np.testing.assert_array_equal(days, before)
    np.testing.assert_allclose(yearly[:365], single[:365])
    shifted = np.concatenate([np.zeros(365), single[: 800 - 365]])
    np.testing.assert_allclose(
        yearly, single + shifted + np.concatenate([np.zeros(730), single[: 800 - 730]])
    )
    assert yearly[365 + 20] > 10 * single[365 + 20]  # re-injection restarts the pulse


def test_stimulus_input_errors() -> None:
    params = TreatmentParams()
    with pytest.raises(InputError, match="arm"):
        stimulus(np.arange(3.0), arm="placebo", params=params, schedule=(0,))
    with pytest.raises(InputError, match="days"):
        stimulus(np.array([0.0, np.nan]), arm="cells", params=params, schedule=(0,))
    with pytest.raises(InputError, match="schedule"):
        stimulus(np.arange(3.0), arm="cells", params=params, schedule=(-10,))
    with pytest.raises(InputError, match="params"):
        stimulus(np.arange(3.0), arm="cells", params={}, schedule=(0,))  # type: ignore[arg-type]
    assert set(ARMS) == {"cells", "saline", "untreated"}
