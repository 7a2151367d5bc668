import tomllib

import pytest

from hairtrial._validate import InputError
from hairtrial.simulate.config import list_presets, load_preset, parse_preset, preset_text


def preset_dict(name="nanfang-2023"):
    _, text = preset_text(name)
    return tomllib.loads(text)


def test_packaged_presets_load():
    names = list_presets()
    assert {"nanfang-2023", "gentile-2020"} <= set(names)
    for name in names:
        preset = load_preset(name)
        assert preset.name == name
        assert preset.description


def test_nanfang_design_matches_the_trial():
    p = load_preset("nanfang-2023")
    assert p.trial.subjects == 50
    assert p.trial.age_range == (25, 45)
    assert p.trial.sites_per_subject == 2
    assert p.trial.site_area_cm2 == 1.0
    assert p.trial.visit_days == (0, 30, 90, 210, 270)
    assert set(p.trial.arms) == {"cells", "saline"}


def test_user_file_round_trip(tmp_path):
    _, text = preset_text("gentile-2020")
    path = tmp_path / "mine.toml"
    path.write_text(text.replace("subjects = ", "subjects = 1", 1))
    preset = load_preset(path)
    assert preset.source == str(path)
    assert preset.trial.subjects == int("1" + str(load_preset("gentile-2020").trial.subjects))


@pytest.mark.parametrize(
    ("section", "field", "value", "message"),
    [
        (
            "trial",
            "subjects",
            0,
            r"subjects \(my.toml:trial\): 0 is outside the allowed range",
        ),
        ("trial", "visit_days", [0, 90, 30], "increase strictly"),
        ("trial", "arms", ["cells", "placebo"], "'placebo' is not one of"),
        ("trial", "severity_mix", {"HN-IV": 0.5}, "sum to 1"),
        ("trial", "severity_mix", {"HN-XX": 1.0}, "'HN-XX' is not one of"),
        ("trial", "colour", 3, r"unknown field\(s\) in \[trial\]: colour"),
        (
            "imaging",
            "um_per_px",
            -5,
            r"um_per_px \(my.toml:imaging\): -5 is outside",
        ),
        ("imaging", "clip", "yes", "clip must be true or false"),
        ("imaging", "style", "cartoon", "'cartoon' is not one of"),
    ],
)
def test_bad_values_name_file_field_and_range(section, field, value, message):
    data = preset_dict()
    data[section][field] = value
    with pytest.raises(InputError, match=message) as info:
        parse_preset(data, source="my.toml")
    assert "my.toml" in str(info.value)


def test_bad_treatment_and_population_fields_are_named():
    data = preset_dict()
    data["treatment"]["no_such_knob"] = 1
    with pytest.raises(InputError, match="no_such_knob"):
        parse_preset(data, source="my.toml")
    data = preset_dict()
    data["population"] = {"no_such_param": 2}
    with pytest.raises(InputError, match="no_such_param"):
        parse_preset(data, source="my.toml")


def test_unknown_preset_and_bad_toml(tmp_path):
    with pytest.raises(InputError, match="unknown preset 'nope'.*nanfang-2023"):
        load_preset("nope")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [unclosed\n")
    with pytest.raises(InputError, match="bad.toml: not valid TOML"):
        load_preset(bad)
    with pytest.raises(InputError, match="not found"):
        load_preset(tmp_path / "absent.toml")


def test_shape_px_is_4_by_3():
    p = load_preset("nanfang-2023")
    h, w = p.imaging.shape_px()
    assert w / h == pytest.approx(4 / 3, rel=0.01)
    assert h * w * p.imaging.um_per_px**2 / 1e8 == pytest.approx(p.imaging.field_cm2, rel=0.01)
