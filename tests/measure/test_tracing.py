"""Tracing rules that decide the count: linking across gaps, corners, light shafts."""

import numpy as np
import pytest

from hairtrial.measure import MeasureConfig, measure_image
from hairtrial.measure._ridges import split_at_corners
from tests.measure import _draw as draw

UM = 5.0


@pytest.mark.parametrize("gap_px", [26.0, 40.0])
def test_hairs_end_to_end_across_bare_skin_are_two(gap_px):
    # clipped hairs often lie in line; the link rule bridges gaps this size through a
    # crossing, but here the gap is bare skin
    img = draw.skin((260, 500), seed=21)
    draw.draw_hair(img, draw.straight(40, 130, 0, 170), diameter_px=14, absorb=1.5)
    # the caps of the two shafts are `gap_px` - 14 px apart
    draw.draw_hair(img, draw.straight(210 + gap_px, 130, 0, 170), diameter_px=14, absorb=1.5)
    res = measure_image(draw.finish(img, blur_px=1.0), um_per_px=UM)
    assert res.hair_count == 2
    for h in res.hairs:
        assert abs(h.length_um - 170 * UM) <= 0.15 * 170 * UM


def test_hair_broken_by_a_crossing_hair_is_still_one():
    # the gap a crossing leaves in the crest is covered by the other shaft: linked
    img = draw.skin((400, 400), seed=22)
    draw.draw_hair(img, draw.straight(40, 200, 0, 320), diameter_px=12, absorb=1.5)
    draw.draw_hair(img, draw.straight(200, 40, 90, 320), diameter_px=20, absorb=1.5)
    res = measure_image(draw.finish(img, blur_px=1.0), um_per_px=UM)
    assert res.hair_count == 2
    assert sorted(round(h.length_um / (320 * UM), 1) for h in res.hairs) == [1.0, 1.0]


@pytest.mark.parametrize("turn", [60.0, 90.0])
def test_hairs_meeting_at_a_corner_are_two(turn):
    img = draw.skin((400, 440), seed=23)
    a = draw.straight(60, 300, -30, 200)
    draw.draw_hair(img, a, diameter_px=14, absorb=1.5)
    draw.draw_hair(img, draw.straight(*a[-1], -30 + turn, 180), diameter_px=14, absorb=1.5)
    res = measure_image(draw.finish(img, blur_px=1.0), um_per_px=UM)
    assert res.hair_count == 2
    lengths = sorted(h.length_um / UM for h in res.hairs)
    assert lengths[0] >= 0.7 * 180 and lengths[1] <= 1.15 * 200


def test_split_at_corners_cuts_a_corner_and_keeps_an_arc():
    corner = np.vstack([draw.straight(0, 0, 0, 50, 51), draw.straight(50, 0, 70, 50, 51)[1:]])
    pieces = split_at_corners(corner, chord=6, max_turn_deg=40)
    assert len(pieces) == 2
    assert np.hypot(*(pieces[0][-1] - [50, 0])) < 3
    arc = draw.curved(0, 0, 0, 300, 40)  # a curved long hair: 40° over 300 px
    assert len(split_at_corners(arc, chord=6, max_turn_deg=40)) == 1


def test_white_hair_on_fair_skin_found_by_light_pass():
    # an unpigmented shaft scatters: it replaces the skin's colour by near-white, so its
    # contrast is small in red and large in blue
    img = draw.skin((300, 400), seed=24)
    layer = np.ones_like(img)
    draw.draw_hair(layer, draw.straight(90, 150, 15, 220), diameter_px=14, absorb=2.0)
    cover = 1.0 - layer
    img = img * (1.0 - cover) + 0.9 * cover
    u8 = draw.finish(img, blur_px=1.0)
    assert measure_image(u8, um_per_px=UM).hair_count == 0
    res = measure_image(u8, um_per_px=UM, config=MeasureConfig(light_hairs=True))
    assert res.hair_count == 1
    assert abs(res.hairs[0].length_um - 220 * UM) <= 0.15 * 220 * UM
