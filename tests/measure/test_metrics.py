"""Metrics against hand-worked examples."""

import math

import pytest

from hairtrial._validate import InputError
from hairtrial.measure.metrics import (
    FALSE_REASONS,
    MISSED_REASONS,
    centreline_distance,
    detection_score,
    explain_errors,
    match_boxes,
    match_centrelines,
    match_points,
    score_exit_ends,
    score_hairs,
    terminal_fraction,
)
from hairtrial.records import HairRecord


def _hair(i, exit_xy, d, line=None):
    line = line or (exit_xy, (exit_xy[0] + 50.0, exit_xy[1]))
    return HairRecord(
        id=i,
        exit_px=exit_xy,
        tip_px=line[-1],
        centerline_px=tuple(line),
        diameter_um=d,
        length_um=250.0,
        hair_class="terminal" if d >= 60 else ("vellus" if d <= 30 else "intermediate"),
    )


def test_match_points_is_one_to_one_and_global():
    # greedy nearest-first would pair det 0 with truth 0 (distance 1) and leave det 1
    # unmatched (truth 1 is 6 away > 5); the optimal assignment pairs both.
    det = [(0.0, 0.0), (4.0, 0.0)]
    tru = [(1.0, 0.0), (-3.0, 0.0)]
    assert match_points(det, tru, max_distance=5.0) == [(0, 1), (1, 0)]


def test_match_points_respects_tolerance_and_empty_inputs():
    assert match_points([(0, 0)], [(10, 0)], max_distance=5) == []
    assert match_points([], [(10, 0)], max_distance=5) == []
    assert match_points([(0, 0)], [], max_distance=5) == []
    with pytest.raises(InputError):
        match_points([(0, 0)], [(0, 0)], max_distance=0)


def test_match_boxes_inside_or_near_centre():
    boxes = [(10, 10, 50, 30), (100, 30, 60, 10)]  # second has swapped corners
    det = [(45.0, 12.0), (80.0, 40.0), (300.0, 300.0)]
    # (45,12) lies in box 0; (80,40) is outside box 1 (y > 30) but 20 px from its centre (80,20)
    assert match_boxes(det, boxes, centre_tolerance=25) == [(0, 0), (1, 1)]
    assert match_boxes(det, boxes, centre_tolerance=10) == [(0, 0)]


def test_centreline_distance_hand_worked():
    a = [(0.0, 0.0), (10.0, 0.0)]
    b = [(0.0, 2.0), (10.0, 2.0)]
    assert centreline_distance(a, b) == pytest.approx(2.0)
    assert centreline_distance(a, a) == pytest.approx(0.0)
    assert centreline_distance(a, []) == math.inf


def test_match_centrelines():
    det = [[(0, 0), (20, 0)], [(0, 50), (20, 50)]]
    tru = [[(0, 49), (20, 49)], [(0, 1), (20, 1)], [(0, 200), (20, 200)]]
    assert match_centrelines(det, tru, max_distance=3) == [(0, 1), (1, 0)]


def test_detection_score_hand_worked():
    s = detection_score(n_detected=10, n_true=8, n_matched=6)
    assert s.precision == pytest.approx(0.6)
    assert s.recall == pytest.approx(0.75)
    assert s.f1 == pytest.approx(2 * 0.6 * 0.75 / 1.35)
    assert s.count_error == pytest.approx(0.25)
    empty = detection_score(0, 0, 0)
    assert empty.precision == 1 and empty.recall == 1 and math.isnan(empty.count_error)
    with pytest.raises(InputError):
        detection_score(2, 3, 4)


def test_terminal_fraction():
    assert terminal_fraction([59.9, 60.0, 90.0, 20.0]) == pytest.approx(0.5)
    assert math.isnan(terminal_fraction([]))


def test_score_hairs_hand_worked():
    truth = [
        _hair(1, (10.0, 10.0), 80.0),
        _hair(2, (100.0, 10.0), 40.0),
        _hair(3, (200.0, 10.0), 70.0),
    ]
    detected = [
        _hair(1, (12.0, 10.0), 85.0),  # matches truth 1, +5 µm
        _hair(2, (100.0, 13.0), 37.0),  # matches truth 2, -3 µm
        _hair(3, (400.0, 10.0), 65.0),  # false positive
        HairRecord(
            4, None, (0.0, 0.0), ((5.0, 5.0), (0.0, 0.0)), 70.0, 10.0, "terminal"
        ),  # not counted
    ]
    s = score_hairs(detected, truth, max_distance_px=5.0)
    assert s.matches == ((0, 0), (1, 1))
    assert s.detection.n_detected == 3 and s.detection.n_true == 3
    assert s.detection.precision == pytest.approx(2 / 3)
    assert s.detection.recall == pytest.approx(2 / 3)
    assert s.diameter_mae_um == pytest.approx(4.0)
    assert s.diameter_bias_um == pytest.approx(1.0)
    assert s.mean_diameter_error_um == pytest.approx((85 + 37 + 65) / 3 - (80 + 40 + 70) / 3)
    assert s.terminal_fraction_error == pytest.approx(2 / 3 - 2 / 3)
    by_line = score_hairs(detected, truth, max_distance_px=5.0, by="centreline")
    assert by_line.matches == ((0, 0), (1, 1))
    with pytest.raises(InputError):
        score_hairs(detected, truth, max_distance_px=5.0, by="box")


def test_truth_from_json_hand_format_and_records():
    from hairtrial.measure.metrics import truth_from_json

    hand = {
        "um_per_px": 5.0,
        "hairs": [
            {"exit_px": [10, 20], "centerline_px": [[10, 20], [40, 20]], "width_px": 12},
            {"centerline_px": [[100, 100], [100, 130]], "diameter_um": 30},
            {"exit_px": [200, 200]},
        ],
    }
    hairs = truth_from_json(hand)
    assert [h.exit_px for h in hairs] == [(10.0, 20.0), (100.0, 100.0), (200.0, 200.0)]
    assert hairs[0].diameter_um == pytest.approx(60.0) and hairs[0].hair_class == "terminal"
    assert hairs[0].length_um == pytest.approx(150.0)
    assert math.isnan(hairs[2].diameter_um)
    # a points-only truth scores detection and ignores diameters it does not have
    s = score_hairs([_hair(1, (201.0, 200.0), 50.0)], hairs[2:], max_distance_px=5)
    assert s.detection.n_matched == 1 and math.isnan(s.diameter_mae_um)
    again = truth_from_json({"hairs": [h.to_json() for h in hairs[:2]]})
    assert again == hairs[:2]
    with pytest.raises(InputError):
        truth_from_json({"image": "x"})


def _line(i, x0, y0, x1, y1, d=70.0, counted=True):
    h = _hair(i, (x0, y0), d, [(x0, y0), (x1, y1)])
    if counted:
        return h
    return HairRecord(
        id=i, exit_px=None, tip_px=h.tip_px, centerline_px=h.centerline_px,
        diameter_um=d, length_um=h.length_um, hair_class=h.hair_class,
    )  # fmt: skip


def test_explain_errors_names_each_miss_and_false_detection():
    truth = [
        _line(1, 20, 20, 120, 20),  # found
        _line(2, 20, 24, 120, 24),  # 4 px beside hair 1: the one trace serves both
        _line(3, 20, 60, 120, 60),  # traced over its first fifth only
        _line(4, 20, 100, 70, 100),  # hairs 4 and 5 lie in line, traced as one
        _line(5, 75, 100, 125, 100),
        _line(6, 0, 140, 30, 140),  # leaves the field at the left border, not traced
        _line(7, 150, 140, 190, 140),  # nothing on it
        _line(8, 150, 180, 190, 180),  # traced, but its exit was not placed in the image
        _line(9, 150, 20, 199, 20, counted=False),  # enters from outside the field
    ]
    detected = [
        _line(1, 20, 21, 120, 21),
        _line(2, 20, 60, 40, 60),
        _line(3, 20, 100, 125, 100),
        _line(4, 150, 180, 190, 180, counted=False),
        _line(5, 40, 170, 90, 190),  # on no hair
        _line(6, 150, 20, 199, 20),  # counted, along the hair entering from outside
        _line(7, 80, 17, 110, 17),  # a second, short trace along hair 1
    ]
    score = score_hairs(detected, truth, max_distance_px=6.0, by="centreline")
    assert score.matches == ((0, 0),)
    out = explain_errors(detected, truth, score.matches, shape=(200, 200))
    assert dict(out.missed_reason) == {
        1: "beside_found_hair",
        2: "traced_in_part",
        3: "joined_to_another",
        4: "joined_to_another",
        5: "at_border",
        6: "not_found",
        7: "not_counted",
    }
    # counted detections: 0, 1, 2, 4 (no hair), 5 (outside hair), 6 (along hair 1)
    assert dict(out.false_reason) == {
        1: "on_missed_hair",
        2: "on_missed_hair",
        3: "on_no_hair",
        4: "on_uncounted_hair",
        5: "on_found_hair",
    }
    assert set(out.missed) == set(MISSED_REASONS) and set(out.false) == set(FALSE_REASONS)
    assert sum(out.missed.values()) == score.detection.n_true - len(score.matches)
    assert sum(out.false.values()) == score.detection.n_detected - len(score.matches)


def test_explain_errors_with_nothing_wrong_or_nothing_found():
    truth = [_line(1, 20, 20, 120, 20)]
    out = explain_errors(truth, truth, [(0, 0)], shape=(50, 150))
    assert not out.missed_reason and not out.false_reason
    out = explain_errors([], truth, [], shape=(50, 150))
    assert out.missed["not_found"] == 1 and sum(out.false.values()) == 0
    with pytest.raises(InputError):
        explain_errors([], truth, [], shape=(50, 150), reach_px=0.0)


def test_score_exit_ends_hand_worked():
    line = ((0.0, 0.0), (50.0, 0.0))
    truth = [
        _hair(0, (0.0, 0.0), 60.0, line),
        _hair(1, (0.0, 20.0), 60.0, ((0.0, 20.0), (50.0, 20.0))),
        _hair(2, (0.0, 40.0), 60.0, ((0.0, 40.0), (50.0, 40.0))),
    ]
    detected = [
        _hair(10, (1.0, 0.0), 60.0, ((1.0, 0.0), (49.0, 0.0))),  # right end
        _hair(11, (49.0, 20.0), 60.0, ((49.0, 20.0), (1.0, 20.0))),  # ends swapped
        HairRecord(id=12, exit_px=None, tip_px=(0.0, 80.0), centerline_px=((0.0, 80.0),),
                   diameter_um=60.0, length_um=1.0, hair_class="terminal"),  # not counted
        _hair(13, (2.0, 40.0), 60.0, ((2.0, 40.0), (50.0, 40.0))),  # right end
    ]  # fmt: skip
    score = score_hairs(detected, truth, max_distance_px=4.0, by="centreline")
    assert sorted(score.matches) == [(0, 0), (1, 1), (2, 2)]
    plain = score_exit_ends(detected, truth, score.matches)
    assert (plain.n, plain.n_right, plain.bins, plain.wrong) == (3, 2, (), (1,))
    assert plain.right_fraction == pytest.approx(2 / 3)
    sure = score_exit_ends(detected, truth, score.matches, exit_confidence=[0.99, 0.6, 0.5, 1.0])
    filled = [(b.low, b.high, b.n, b.n_right) for b in sure.bins if b.n]
    assert filled == [(0.5, 0.7, 1, 0), (0.99, 1.0, 2, 2)]  # 1.0 falls in the last bin
    assert sure.bins[-1].mean_confidence == pytest.approx(0.995)
    assert math.isnan(sure.bins[1].right_fraction) and math.isnan(sure.bins[1].mean_confidence)
    pooled = sure + sure
    assert (pooled.n, pooled.n_right, pooled.wrong) == (6, 4, ())
    assert (pooled.bins[0].n, pooled.bins[-1].mean_confidence) == (2, pytest.approx(0.995))
    assert (plain + sure).bins == sure.bins
    with pytest.raises(InputError, match="expected 4 values"):
        score_exit_ends(detected, truth, score.matches, exit_confidence=[0.9])
    empty = score_exit_ends([], truth, [])
    assert empty.n == 0 and math.isnan(empty.right_fraction)
