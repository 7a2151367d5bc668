import pytest

from hairtrial._validate import InputError
from hairtrial.analyze import AnalysisConfig, resolve_arms


def test_defaults_match_the_contract():
    c = AnalysisConfig()
    assert (c.treated_arm, c.control_arm, c.baseline_day, c.index_um, c.alpha) == (
        "treated", "control", 0, 60.0, 0.05,
    )  # fmt: skip
    assert c.primary == ("terminal_fraction", "mean_diameter_um")
    assert c.responder_day is None and c.responder_min_change == 2.0
    assert (c.bootstrap, c.seed, c.image_kind) == (2000, 0, "clipped")


def test_hash_is_stable_and_sensitive():
    a, b = AnalysisConfig(), AnalysisConfig()
    assert a.config_hash() == b.config_hash()
    assert AnalysisConfig(index_um=50.0).config_hash() != a.config_hash()
    assert AnalysisConfig.from_dict(a.to_dict()) == a


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": 1.5}, "alpha"),
        ({"index_um": -1}, "index_um"),
        ({"treated_arm": "x", "control_arm": "x"}, "both"),
        ({"primary": ("hair_count",), "endpoints": ("terminal_fraction",)}, "primary"),
        ({"bootstrap": -1}, "bootstrap"),
        ({"endpoints": "terminal_fraction"}, "endpoints"),
    ],
)
def test_bad_options_are_named(kwargs, message):
    with pytest.raises(InputError, match=message):
        AnalysisConfig(**kwargs)


def test_unknown_field_from_dict():
    with pytest.raises(InputError, match="unknown analysis field 'alpah'"):
        AnalysisConfig.from_dict({"alpah": 0.1}, source="a.toml")


def test_resolve_arms():
    config, note = resolve_arms(["cells", "saline"], AnalysisConfig())
    assert (config.treated_arm, config.control_arm) == ("cells", "saline") and "cells" in note
    same, none = resolve_arms(["a", "b"], AnalysisConfig(treated_arm="a", control_arm="b"))
    assert none is None and same.treated_arm == "a"
    with pytest.raises(InputError, match="arms found: a, b"):
        resolve_arms(["a", "b"], AnalysisConfig())
