import pytest
from hypothesis import given
from hypothesis import strategies as st

from hairtrial.records import HairClasses, HairRecord, summarize_hairs


def hair(i, d, exit_px=(1.0, 2.0)):
    return HairRecord(
        id=i,
        exit_px=exit_px,
        tip_px=(5.0, 6.0),
        centerline_px=((1.0, 2.0), (5.0, 6.0)),
        diameter_um=d,
        length_um=400.0,
        hair_class=HairClasses().classify(d),
        extra={"follicle_id": 7},
    )


def test_classes_at_the_limits():
    c = HairClasses()
    assert c.classify(30.0) == "vellus"
    assert c.classify(30.1) == "intermediate"
    assert c.classify(59.99) == "intermediate"
    assert c.classify(60.0) == "terminal"
    with pytest.raises(ValueError, match="vellus_max_um"):
        HairClasses(vellus_max_um=70, terminal_min_um=60)


def test_json_round_trip_keeps_extra_keys():
    h = hair(3, 72.5)
    obj = h.to_json()
    assert obj["class"] == "terminal" and obj["follicle_id"] == 7
    back = HairRecord.from_json(obj)
    assert back == h and back.extra == {"follicle_id": 7}


def test_summary_counts_only_hairs_with_exit_inside():
    hairs = [hair(0, 80.0), hair(1, 40.0), hair(2, 20.0), hair(3, 90.0, exit_px=None)]
    s = summarize_hairs(hairs, area_cm2=0.5)
    assert s["hair_count"] == 3
    assert s["density_per_cm2"] == 6.0
    assert s["terminal_fraction"] == pytest.approx(1 / 3)
    assert s["mean_diameter_um"] == pytest.approx(140 / 3)
    assert s["cumulative_thickness_mm_per_cm2"] == pytest.approx(0.140 / 0.5)
    assert s["class_counts"] == {"vellus": 1, "intermediate": 1, "terminal": 1}


def test_summary_of_no_hairs():
    s = summarize_hairs([], area_cm2=1.0)
    assert s["hair_count"] == 0 and s["mean_diameter_um"] is None


@given(st.lists(st.floats(5, 150), max_size=50))
def test_fractions_are_consistent(diameters):
    s = summarize_hairs([hair(i, d) for i, d in enumerate(diameters)], area_cm2=1.0)
    if diameters:
        assert s["terminal_fraction"] + s["fraction_below_index"] == pytest.approx(1.0)
        assert sum(s["class_counts"].values()) == len(diameters)
