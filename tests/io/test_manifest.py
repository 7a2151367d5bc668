import pytest
from hypothesis import given
from hypothesis import strategies as st

from hairtrial._validate import InputError
from hairtrial.io import read_manifest, write_manifest

ROW = {
    "image": "images/a.jpg",
    "subject": "S001",
    "site": "S001-L",
    "arm": "cells",
    "visit_day": 30,
    "um_per_px": 5.0,
}


def test_round_trip(tmp_path):
    path = write_manifest(tmp_path / "m.csv", [ROW, {**ROW, "visit_day": 90, "kind": "clipped"}])
    frame = read_manifest(path)
    assert list(frame["visit_day"]) == [30, 90]
    assert frame["image"].iloc[0] == str(tmp_path / "images/a.jpg")
    assert list(frame["line"]) == [2, 3]
    assert frame["kind"].iloc[1] == "clipped"


def test_every_bad_line_is_reported(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text(
        "image,subject,site,arm,visit_day,um_per_px,kind\n"
        "a.jpg,S1,S1-L,cells,0,5,clipped\n"
        "b.jpg,S1,S1-L,cells,thirty,5,\n"
        "c.jpg,S1,S1-L,cells,90,-1,\n"
        "d.jpg,,S1-L,cells,90,5,shaved\n"
    )
    with pytest.raises(InputError) as info:
        read_manifest(path)
    text = str(info.value)
    assert "m.csv" in text
    for fragment in ("line 3: visit_day", "line 4: um_per_px", "line 5: subject", "line 5: kind"):
        assert fragment in text


def test_missing_column(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("image,subject,site,arm,visit_day\na.jpg,S1,S1-L,cells,0\n")
    with pytest.raises(InputError, match="lacks column.*um_per_px"):
        read_manifest(path)


@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "image": st.from_regex(r"[a-z]{1,8}\.jpg", fullmatch=True),
                "subject": st.from_regex(r"S[0-9]{3}", fullmatch=True),
                "site": st.sampled_from(["L", "R"]),
                "arm": st.sampled_from(["cells", "saline"]),
                "visit_day": st.integers(0, 3000),
                "um_per_px": st.floats(0.1, 50, allow_nan=False),
            }
        ),
        min_size=1,
        max_size=10,
    )
)
def test_property_round_trip(tmp_path_factory, rows):
    path = write_manifest(tmp_path_factory.mktemp("m") / "m.csv", rows)
    frame = read_manifest(path)
    assert list(frame["visit_day"]) == [r["visit_day"] for r in rows]
    assert list(frame["um_per_px"]) == pytest.approx([r["um_per_px"] for r in rows])
