import pytest

from hairtrial._validate import InputError
from hairtrial.measure import MeasureConfig
from hairtrial.records import HairClasses


def test_hash_is_stable_and_changes_with_parameters():
    a = MeasureConfig()
    assert a.config_hash() == MeasureConfig().config_hash()
    assert len(a.config_hash()) == 64
    assert MeasureConfig(ridge_high_od=0.2).config_hash() != a.config_hash()
    assert MeasureConfig(classes=HairClasses(25, 55)).config_hash() != a.config_hash()


def test_round_trip_through_dict():
    cfg = MeasureConfig(min_diameter_um=15, classes=HairClasses(25, 55), psf_sigma_um=3.0)
    again = MeasureConfig.from_dict(cfg.to_dict())
    assert again == cfg
    assert again.config_hash() == cfg.config_hash()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_diameter_um": 0},
        {"min_diameter_um": 200, "max_diameter_um": 150},
        {"ridge_low_od": 0.3, "ridge_high_od": 0.2},
        {"ridge_low_od": 0.1, "light_ridge_high_od": 0.05},
        {"light_ridge_high_od": 0},
        {"background_um": 100},
        {"n_scales": 0},
        {"link_max_angle_deg": 120},
        {"psf_sigma_um": -1},
        {"work_um_per_px": float("nan")},
    ],
)
def test_invalid_values_are_rejected(kwargs):
    with pytest.raises(InputError, match="MeasureConfig"):
        MeasureConfig(**kwargs)


def test_unknown_field_is_rejected():
    with pytest.raises(InputError, match="unknown"):
        MeasureConfig.from_dict({"ridge_hi": 0.2})
