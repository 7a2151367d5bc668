"""Annotation files in the formats clinics have: hairtrial JSON, Pascal VOC, polylines."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hairtrial._validate import InputError
from hairtrial.measure.annotations import read_annotations, score_boxes
from hairtrial.records import HairRecord

VOC = """<annotation>
  <filename>site.jpg</filename>
  <size><width>400</width><height>300</height><depth>3</depth></size>
  <object><name>hair</name><bndbox>
    <xmin>10</xmin><ymin>20</ymin><xmax>60</xmax><ymax>90</ymax></bndbox></object>
  <object><class>premium</class><difficult>0</difficult><bndbox>
    <xmin>250</xmin><ymin>200</ymin><xmax>200</xmax><ymax>140</ymax></bndbox></object>
</annotation>
"""


def _hair(hair_id: int, line: list[tuple[float, float]], exit_in: bool = True) -> HairRecord:
    return HairRecord(
        id=hair_id,
        exit_px=line[0] if exit_in else None,
        tip_px=line[-1],
        centerline_px=tuple(line),
        diameter_um=60.0,
        length_um=100.0,
        hair_class="terminal",
    )


def test_pascal_voc_boxes_with_swapped_corners_and_either_label_tag(tmp_path) -> None:
    path = tmp_path / "site.xml"
    path.write_text(VOC)
    ann = read_annotations(path)
    assert ann.format == "voc" and ann.n_annotated == 2 and ann.hairs == []
    assert ann.boxes.tolist() == [[10, 20, 60, 90], [200, 140, 250, 200]]
    assert ann.labels == ("hair", "premium")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<annotation><object><name>x</name></object></annotation>", "object 1: no <bndbox>"),
        (
            "<annotation><object><bndbox><xmin>1</xmin><ymin>a</ymin></bndbox></object>"
            "</annotation>",
            "object 1",
        ),
        ("<annotation><object>", "not well-formed XML"),
        ("<svg></svg>", "not a Pascal VOC annotation"),
        ("[{", "neither Pascal VOC XML nor JSON"),
        ('"a string"', "expected a JSON object"),
        ('[{"joints": [[1, 2]], "width": 3}, {"joints": [1, 2]}]', "hair 2: expected 'joints'"),
        ('[{"joints": [[1, 2], [3, 4]], "width": "wide"}]', "'width' is not a number"),
        ('{"hairs": [{"width_px": 4}]}', "neither exit_px nor centerline_px"),
    ],
)
def test_bad_annotation_files_name_the_file_and_the_problem(tmp_path, text, message) -> None:
    path = tmp_path / "bad.xml"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        read_annotations(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_missing_annotation_file_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        read_annotations(tmp_path / "absent.json")


def test_polylines_with_a_width_are_centrelines_at_pixel_centres(tmp_path) -> None:
    path = tmp_path / "site.jpg.json"
    hairs = [
        {"joints": [[10, 20], [25, 22], [40, 30]], "width": 8, "mid": [25, 22]},
        {"joints": [[100, 50], [100, 80]], "width": 5},
    ]
    path.write_text(json.dumps(hairs))
    ann = read_annotations(path, um_per_px=4.0)
    assert ann.format == "polylines" and ann.n_annotated == 2
    first = ann.hairs[0]
    assert first.centerline_px == ((10.5, 20.5), (25.5, 22.5), (40.5, 30.5))
    assert first.diameter_um == pytest.approx(32.0)
    assert ann.hairs[1].diameter_um == pytest.approx(20.0)
    # without a calibration the width is unknown, not a guess
    assert np.isnan(read_annotations(path).hairs[0].diameter_um)


def test_hairtrial_json_is_read_as_before(tmp_path) -> None:
    path = tmp_path / "site.truth.json"
    path.write_text(json.dumps({"um_per_px": 5.0, "hairs": [
        {"exit_px": [10, 10], "centerline_px": [[10, 10], [40, 10]], "width_px": 10},
        {"exit_px": [80, 80]},
    ]}))  # fmt: skip
    ann = read_annotations(path)
    assert ann.format == "hairtrial" and ann.n_annotated == 2
    assert ann.hairs[0].diameter_um == pytest.approx(50.0)


def test_score_boxes_by_mid_shaft_point_or_exit() -> None:
    boxes = np.array([[0.0, 0.0, 40.0, 40.0], [100.0, 100.0, 140.0, 140.0]])
    found = [
        _hair(1, [(5.0, 5.0), (20.0, 20.0), (60.0, 60.0)]),  # mid in box 0, exit too
        _hair(2, [(150.0, 150.0), (130.0, 130.0), (90.0, 90.0)]),  # mid in box 1, exit not
        _hair(3, [(300.0, 300.0), (320.0, 320.0)]),  # on nothing
        _hair(4, [(10.0, 10.0), (30.0, 30.0)], exit_in=False),  # not counted
    ]
    mid = score_boxes(found, boxes, max_distance_px=10.0)
    assert (mid.detection.n_detected, mid.detection.n_true, mid.detection.n_matched) == (3, 2, 2)
    assert mid.matches == [(0, 0), (1, 1)]
    assert mid.detection.count_error == pytest.approx(0.5)
    by_exit = score_boxes(found, boxes, max_distance_px=10.0, by="exit")
    assert by_exit.matches == [(0, 0)]
    # within the distance of a box's centre counts even outside the box
    near = score_boxes(
        [_hair(5, [(125.0, 140.0), (125.0, 145.0), (125.0, 160.0)])], boxes, max_distance_px=30.0
    )
    assert near.detection.n_matched == 1
    assert score_boxes([], boxes, max_distance_px=10.0).detection.recall == 0.0
    with pytest.raises(InputError):
        score_boxes(found, boxes, max_distance_px=10.0, by="tip")  # type: ignore[arg-type]


def test_box_errors_say_what_lies_in_each_missed_box() -> None:
    boxes = np.array(
        [
            [10.0, 10.0, 50.0, 30.0],  # 0: matched by hair 1
            [10.0, 32.0, 50.0, 52.0],  # 1: hair 1 runs on through it (a partner beside)
            [100.0, 10.0, 140.0, 30.0],  # 2: hair 2 lies in it, its mid-shaft point beyond
            [100.0, 100.0, 140.0, 120.0],  # 3: only a hair not counted lies in it
            [0.0, 200.0, 30.0, 230.0],  # 4: nothing, at the border
            [200.0, 200.0, 240.0, 220.0],  # 5: nothing
        ]
    )
    found = [
        _hair(1, [(15.0, 20.0), (30.0, 20.0), (45.0, 45.0)]),  # mid at box 0's centre
        _hair(2, [(105.0, 20.0), (135.0, 20.0), (200.0, 20.0), (260.0, 20.0)]),
        _hair(3, [(102.0, 110.0), (138.0, 110.0)], exit_in=False),
        _hair(4, [(20.0, 15.0), (30.0, 18.0), (45.0, 25.0)]),  # a second trace in box 0
        _hair(5, [(300.0, 150.0), (300.0, 190.0)]),  # on no box
    ]
    from hairtrial.measure.annotations import (
        BOX_FALSE_REASONS,
        BOX_MISSED_REASONS,
        explain_box_errors,
    )

    scored = score_boxes(found, boxes, max_distance_px=5.0)
    assert scored.matches == [(0, 0)]
    why = explain_box_errors(found, boxes, scored.matches, shape=(300, 400))
    assert dict(why.missed_reason) == {
        1: "beside_found_hair",
        2: "point_outside",
        3: "not_counted",
        4: "at_border",
        5: "not_found",
    }
    # counted detections: 0 matched; 1 (hair 2) on missed box 2, 2 (hair 4) a second
    # trace in matched box 0, 3 (hair 5) on nothing
    assert dict(why.false_reason) == {1: "on_missed_box", 2: "on_found_box", 3: "on_no_box"}
    assert set(why.missed) == set(BOX_MISSED_REASONS)
    assert set(why.false) == set(BOX_FALSE_REASONS)
    assert sum(why.missed.values()) == 5 and sum(why.false.values()) == 3
    # a tight box a few pixels off the trace still holds it, within the margin
    thin = np.array([[105.0, 23.0, 200.0, 26.0]])
    assert explain_box_errors(found[1:2], thin, [], shape=(300, 400)).missed_reason == (
        (0, "point_outside"),
    )
    assert explain_box_errors(found[1:2], thin, [], shape=(300, 400), margin_px=1.0).missed == {
        **dict.fromkeys(BOX_MISSED_REASONS, 0),
        "not_found": 1,
    }
