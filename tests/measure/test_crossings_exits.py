"""Shallow crossings traced straight through; the exit of a hair cut by the border."""

import numpy as np
import pytest
from scipy import ndimage

from hairtrial.measure import measure_image
from hairtrial.measure._ridges import link_segments
from tests.measure import _draw as draw

UM = 5.0


@pytest.mark.parametrize("angle", [15.0, 20.0, 30.0])
def test_shallow_crossing_is_two_whole_hairs(angle):
    # two 80 µm shafts crossing at a shallow angle share a dark patch d / sin(angle) long
    # (up to ~310 µm), longer than the ordinary link gap: each must still be traced
    # straight through, not swapped onto the other or cut into pieces
    img = draw.skin((420, 460), seed=31)
    length = 280.0
    draw.draw_hair(img, draw.straight(90, 210, 0, length), diameter_px=16, absorb=1.5)
    a = np.deg2rad(angle)
    cx, cy = 90 + length / 2, 210.0
    start = (cx - 0.5 * length * np.cos(a), cy - 0.5 * length * np.sin(a))
    draw.draw_hair(img, draw.straight(*start, angle, length), diameter_px=16, absorb=1.5)
    res = measure_image(draw.finish(img, blur_px=1.0), um_per_px=UM)
    assert res.hair_count == 2
    for h in res.hairs:
        assert abs(h.length_um - length * UM) <= 0.15 * length * UM
        line = np.asarray(h.centerline_px)
        # a swapped trace would turn by the crossing angle somewhere along it
        first = line[len(line) // 4] - line[0]
        last = line[-1] - line[3 * len(line) // 4]
        cos = first @ last / (np.hypot(*first) * np.hypot(*last))
        assert cos > np.cos(np.deg2rad(0.5 * angle))


def test_long_link_needs_a_crossing_not_bare_skin():
    # two pieces in line 60 px apart, diameter 14 px: bare skin between them is never
    # bridged, however wide the shafts (the crossing allowance needs a dark bridge)
    od = np.zeros((60, 200), np.float32)
    od[25:35, 10:70] = 0.6
    od[25:35, 130:190] = 0.6
    a = draw.straight(10, 30, 0, 59, 30)
    b = draw.straight(130, 30, 0, 59, 30)
    widths = np.array([14.0, 14.0])
    assert len(link_segments([a, b], max_gap=20, max_angle_deg=35, od=od, widths=widths)) == 2
    od[28:32, 70:130] = 0.7  # another shaft lying over the gap, darker than either piece
    assert len(link_segments([a, b], max_gap=20, max_angle_deg=35, od=od, widths=widths)) == 1


def _border_hair(shadow: bool) -> np.ndarray:
    img = draw.skin((300, 420), seed=32)
    # the hair leaves the field on the left; its other end is at x = 220
    draw.draw_hair(img, draw.straight(-30, 150, 0, 250), diameter_px=14, absorb=1.5)
    if shadow:
        # the shaft goes on under the translucent epidermis past its exit: a broad, faint
        # shadow, grey (no colour cast), fading with depth
        layer = np.ones(img.shape)
        for k, x in enumerate(range(222, 300, 6)):
            draw.draw_hair(
                layer,
                draw.straight(x, 150, 0, 6),
                diameter_px=20,
                absorb=0.1 * (1 - k / 20),
            )
        img *= ndimage.gaussian_filter(layer, (3, 3, 0))
    return draw.finish(img, blur_px=1.0)


def test_hair_cut_by_border_counted_when_its_exit_shows_inside():
    res = measure_image(_border_hair(shadow=True), um_per_px=UM)
    assert res.hair_count == 1
    (hair,) = res.hairs
    assert hair.exit_px is not None
    assert abs(hair.exit_px[0] - 220) < 15


def _faint_shadow(img: np.ndarray, x0: float, y: float, absorb: float) -> None:
    """A shaft's faint grey shadow under the skin, from `x0` rightwards along row `y`."""
    layer = np.ones(img.shape)
    for k, x in enumerate(np.arange(x0, x0 + 78, 6)):
        draw.draw_hair(
            layer, draw.straight(x, y, 0, 6), diameter_px=20, absorb=absorb * (1 - k / 20)
        )
    img *= ndimage.gaussian_filter(layer, (3, 3, 0))


@pytest.mark.parametrize("own_hairs", [True, False])
def test_border_exit_judged_against_the_images_own_exits(own_hairs):
    # A hair cut by the left border whose interior end shows a faint shadow, a few per
    # cent of the shaft's absorptance. Alone, that is below the default floor: read as a
    # cut tip, the hair enters the field and is not counted. Beside six whole hairs (far
    # beyond the hair stream's reach) whose exits show the same faint shadow and whose cut
    # ends show bare skin, the image sets its own floor and the border hair is counted.
    img = draw.skin((420, 900), seed=35)
    draw.draw_hair(img, draw.straight(-30, 150, 0, 250), diameter_px=14, absorb=1.5)
    _faint_shadow(img, 222, 150, 0.03)
    if own_hairs:
        for k in range(6):
            x, y = 500 + 180 * (k % 2), 60 + 60 * k
            draw.draw_hair(img, draw.straight(x, y, 0, 110), diameter_px=14, absorb=1.5)
            _faint_shadow(img, x + 112, y, 0.03)
    res = measure_image(draw.finish(img, blur_px=1.0), um_per_px=UM)
    border = min(res.hairs, key=lambda h: np.asarray(h.centerline_px)[:, 0].min())
    if own_hairs:
        assert border.exit_px is not None and abs(border.exit_px[0] - 220) < 15
        assert res.hair_count == 7
    else:
        assert border.exit_px is None
        assert res.hair_count == 0


def test_own_floors_need_clear_pairs():
    from hairtrial.measure.core import _BLUE_MIN, _GREY_MIN, _own_floors

    # (blue start, blue end, near start, near end, grey start, grey end)
    clear = [(0.03, 0.0, 0, 0, 0.06, 0.0)] * 6
    blue, grey = _own_floors(clear)
    assert blue == pytest.approx(0.015) and grey == pytest.approx(0.03)
    # too few clear pairs, or pairs dark at both ends (pieces at crossings): defaults
    assert _own_floors(clear[:4]) == (_BLUE_MIN, _GREY_MIN)
    dark = [(0.03, 0.025, 0, 0, 0.5, 0.4)] * 20
    assert _own_floors(dark) == (_BLUE_MIN, _GREY_MIN)
    # one end unmeasured: not a pair
    assert _own_floors([(0.03, np.nan, 0, 0, 0.06, np.nan)] * 9) == (_BLUE_MIN, _GREY_MIN)
    # a floor stays within a range of the default
    assert _own_floors([(1.0, 0.0, 0, 0, 2.0, 0.0)] * 6) == (2 * _BLUE_MIN, 2 * _GREY_MIN)


def test_hair_cut_by_border_with_bare_skin_past_its_end_is_not_counted():
    # bare skin past the interior end: that end is the cut tip, the exit lies outside
    res = measure_image(_border_hair(shadow=False), um_per_px=UM)
    assert len(res.hairs) == 1
    assert res.hair_count == 0
    assert res.hairs[0].exit_px is None


def test_exit_beside_a_neighbour_near_the_border_keeps_its_shadow():
    # the hair runs down from its exit (a blue-grey shadow above it) 24 px from the left
    # border; the side strip to the left of the exit's strip is outside the field and the
    # one to the right lies on another hair, so "shadow less the fainter side" came out
    # strongly negative and put the exit at the cut end
    img = draw.skin((300, 200), seed=33)
    draw.draw_subsurface(img, draw.straight(24, 100, -90, 60), diameter_px=14)
    draw.draw_hair(img, draw.straight(24, 100, 90, 150), diameter_px=14, absorb=1.5)
    draw.draw_hair(img, draw.straight(68, 10, 90, 82), diameter_px=14, absorb=1.5)
    res = measure_image(draw.finish(img, blur_px=1.0), um_per_px=UM)
    assert res.hair_count == 2
    hair = min(res.hairs, key=lambda h: abs(np.asarray(h.centerline_px)[:, 0].mean() - 24.5))
    assert hair.exit_px is not None
    assert np.hypot(hair.exit_px[0] - 24.5, hair.exit_px[1] - 100) < 10


@pytest.mark.parametrize(("shadow_px", "exit_y"), [(4.0, 80.0), (14.0, 232.0)])
def test_exit_follows_the_neighbours_unless_its_own_shadow_is_clear(shadow_px, exit_y):
    # five parallel hairs; four grow downwards and show their exit's shadow above them.
    # The fifth has none above it, and below its lower end a shadow: a faint one (4 px,
    # a neighbour's exit under the skin) is outvoted by the hair stream, a full one
    # (14 px, as wide as its shaft) is its own exit: a hair growing against the stream
    img = draw.skin((320, 380), seed=34)
    for x in (50, 110, 170, 230):
        draw.draw_subsurface(img, draw.straight(x, 80, -90, 50), diameter_px=14)
        draw.draw_hair(img, draw.straight(x, 80, 90, 150), diameter_px=14, absorb=1.5)
    draw.draw_hair(img, draw.straight(300, 80, 90, 150), diameter_px=14, absorb=1.5)
    draw.draw_subsurface(img, draw.straight(300, 240, 90, 40), diameter_px=shadow_px)
    res = measure_image(draw.finish(img, blur_px=1.0), um_per_px=UM)
    assert res.hair_count == 5
    for hair in res.hairs:
        assert hair.exit_px is not None
        expected = exit_y if hair.exit_px[0] > 270 else 80.0
        assert abs(hair.exit_px[1] - expected) < 10


def test_direction_prior_votes_by_neighbours_sureness():
    from hairtrial.measure.core import _direction_prior

    down = [np.array([[x, 0.0], [x, 100.0]]) for x in (0.0, 30.0, 60.0)]
    up = np.array([[90.0, 100.0], [90.0, 0.0]])
    # three sure neighbours: start is the exit (down); the fourth line runs upwards
    prior = _direction_prior([*down, up], np.array([5.0, 5.0, 5.0, 0.0]), radius_px=200.0)
    assert prior[3] < -3.0  # its end (the top) is the exit, as for the others
    assert np.all(prior[:3] > 0)
    # nobody within reach, or nobody sure: no prior
    assert np.all(_direction_prior([*down, up], np.full(4, 5.0), radius_px=10.0) == 0)
    assert np.all(_direction_prior([*down, up], np.zeros(4), radius_px=200.0) == 0)


def test_direction_prior_reaches_further_along_a_stream_of_parallel_hairs():
    from hairtrial.measure.core import _direction_prior

    # a lone line with no sure neighbour within the near radius (100 px); four sure,
    # parallel lines 150-190 px away all grow downwards
    lone = np.array([[0.0, 100.0], [0.0, 0.0]])  # drawn upwards: its end is the exit
    far = [np.array([[x, 0.0], [x, 100.0]]) for x in (150.0, 160.0, 170.0, 190.0)]
    evidence = np.array([0.0, 5.0, 5.0, 5.0, 5.0])
    assert _direction_prior([lone, *far], evidence, radius_px=100.0)[0] == 0
    prior = _direction_prior([lone, *far], evidence, radius_px=100.0, wide_px=200.0)
    assert prior[0] < -3.0
    # the same four lines lying every way: their axes are not aligned, so the votes
    # from beyond the near radius count for little
    angles = np.radians([0.0, 45.0, 90.0, 135.0])
    mixed = [
        np.array([[x, 50.0], [x + 100 * np.cos(a), 50.0 + 100 * np.sin(a)]])
        for x, a in zip((150.0, 160.0, 170.0, 190.0), angles, strict=True)
    ]
    mixed_prior = _direction_prior([lone, *mixed], evidence, radius_px=100.0, wide_px=250.0)
    assert abs(mixed_prior[0]) < 0.5 * abs(prior[0])


def test_exit_strip_leaves_out_another_hair_lying_past_the_cut_end():
    # hair A runs down from its exit (a faint shadow above it); a unit partner's longer
    # shaft lies in line past A's cut end. Sampled as skin, the partner read as a shadow
    # three times A's own and put A's exit at the cut end
    from hairtrial.measure.core import _Candidate, _end_evidence, _exit_scores

    od = np.zeros((220, 120), np.float32)
    od[40:121, 47:54] = 0.6  # hair A, x = 50, y = 40..120
    od[4:38, 47:54] = 0.2  # the shaft under the skin past A's exit
    od[132:200, 47:54] = 0.6  # the partner, in line past A's cut end
    lines = [draw.straight(50, 40, 90, 80, 81), draw.straight(50, 132, 90, 68, 69)]
    cands = [_Candidate(points=ln, diameter_px=7.0, strength=0.6) for ln in lines]
    blue = np.zeros_like(od)
    (_, _, _, _, g_start, g_end), _ = _exit_scores(cands, lines, blue, od, 5.0)
    assert 0.2 < g_start < 0.5
    assert np.isnan(g_end) or g_end < 0.1
    assert _end_evidence(g_start, g_end, 40.0, 0.1) > 0


def test_exit_strip_sees_a_partner_only_in_front_of_its_end():
    # two hairs of a unit lie on one another from their shared exit (a faint shadow above
    # it) down to where they part; the band's trace ends there, beside the partner's
    # trace, whose body goes on past that end. Read as the skin past the band's end, the
    # partner's body was a shadow darker than the exit's and put the exit at the bottom
    from hairtrial.measure.core import _Candidate, _end_evidence, _exit_scores

    od = np.zeros((220, 120), np.float32)
    od[50:121, 44:57] = 0.6  # the two hairs together, x = 50, y = 50..120
    od[12:48, 44:57] = 0.2  # the shafts under the skin past the exit
    od[116:211, 52:59] = 0.6  # the partner going on alone, x = 55, y = 116..210
    lines = [draw.straight(50, 50, 90, 70, 71), draw.straight(55, 116, 90, 94, 95)]
    cands = [
        _Candidate(points=lines[0], diameter_px=12.0, strength=0.6),
        _Candidate(points=lines[1], diameter_px=7.0, strength=0.6),
    ]
    (_, _, _, _, g_start, g_end), _ = _exit_scores(cands, lines, np.zeros_like(od), od, 5.0)
    assert 0.2 < g_start < 0.5
    assert g_end < 0.1
    assert _end_evidence(g_start, g_end, 40.0, 0.1) > 0


def _thin_over_thick(thin_between: bool) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    # a thin shaft (6 px, along y = 50) crosses a thick one (20 px, at 40° to it); near
    # the thick shaft the thin one's crest is lost over 65 px, more than the ordinary
    # link gap (40 px) or six thin widths (36 px)
    od = np.zeros((100, 220), np.float32)
    yy, xx = np.mgrid[0:100, 0:220]
    a = np.deg2rad(40.0)
    thick = np.abs((xx - 92) * np.sin(a) - (yy - 50) * np.cos(a)) <= 10
    thin = np.abs(yy - 50) <= 3
    if not thin_between:
        thin &= ~((xx > 60) & (xx < 125) & ~thick)
    od[thin] = 0.3
    od[thick] = 0.8
    od[thin & thick] = 1.0
    first = draw.straight(10, 50, 0, 50, 51)
    second = draw.straight(125, 50, 0, 65, 66)
    crossing = draw.straight(92 - 45 * np.cos(a), 50 - 45 * np.sin(a), 40, 90, 91)
    return [first, second, crossing], od, np.array([6.0, 6.0, 20.0])


def test_bridge_across_a_thick_shaft_may_be_longer():
    segments, od, widths = _thin_over_thick(thin_between=True)
    chains = link_segments(segments, max_gap=40, max_angle_deg=35, od=od, widths=widths)
    # the thin shaft is one chain from x = 10 to 190; the thick one stays apart
    assert len(chains) == 2
    spans = sorted(float(np.ptp(c[:, 0])) for c in chains)
    assert spans[1] == pytest.approx(180, abs=3)
    # without the crossing shaft's crest nothing explains the lost stretch
    alone = link_segments(segments[:2], max_gap=40, max_angle_deg=35, od=od, widths=widths[:2])
    assert len(alone) == 2


def test_bridge_across_a_thick_shaft_still_needs_the_thin_one():
    # two thin pieces in line on either side of a thick shaft, bare skin between them and
    # it: two hairs ending near a third, not one crossing it
    segments, od, widths = _thin_over_thick(thin_between=False)
    chains = link_segments(segments, max_gap=40, max_angle_deg=35, od=od, widths=widths)
    assert len(chains) == 3


@pytest.mark.parametrize(("visible", "diameter"), [(16.0, 8.0), (18.0, 8.0)])
def test_stub_cut_by_the_border_is_traced(visible, diameter):
    # a 40 µm hair leaving the field after 80-90 µm, shorter than `min_length_um` (100
    # µm): the border, not the hair, ends it, so it is still a shaft (not a blob: its
    # length is twice its width); a round dot of that size at the border is not
    img = draw.skin((300, 420), seed=36)
    draw.draw_hair(img, draw.straight(-30, 150, 0, 30 + visible), diameter_px=diameter, absorb=1.5)
    yy, xx = np.mgrid[0:300, 0:420]
    img[np.hypot(xx - 2, yy - 60) <= 5] *= 0.3
    res = measure_image(draw.finish(img, blur_px=1.0), um_per_px=UM)
    stubs = [np.asarray(h.centerline_px) for h in res.hairs]
    assert len(stubs) == 1
    assert stubs[0][:, 0].max() == pytest.approx(visible, abs=3)
    assert abs(stubs[0][:, 1].mean() - 150) < 2


@pytest.mark.parametrize("visible", [19.0, 22.0, 25.0])
def test_wide_stub_whose_crest_stops_short_of_the_border_is_traced(visible):
    # a 60 µm shaft (12 px) leaving through the bottom edge after ~100-125 µm: its crest
    # ends about half its width short of the border, beyond the fixed 3-px reach
    img = draw.skin((200, 300), seed=31)
    hair = draw.straight(150, 200 - visible, 80, visible + 40)
    draw.draw_hair(img, hair, diameter_px=12, absorb=1.5)
    res = measure_image(draw.finish(img, blur_px=1.0), um_per_px=UM)
    assert len(res.hairs) == 1


@pytest.mark.parametrize(("diameter", "visible"), [(16, 18.0), (18, 20.0)])
def test_thick_hair_leaving_the_field_just_past_its_exit_is_counted(diameter, visible):
    # an 80-90 µm hair leaving through the bottom edge 90-100 µm past its exit: its crest
    # is barely longer than the shaft is wide, which for a crest inside the field is a
    # blob (an opening, a dot). The border, not the hair, ends it. A dot of the same
    # size cut by the border is still not a hair.
    img = draw.skin((200, 300), seed=31)
    exit_y = 200 - visible
    draw.draw_subsurface(img, draw.straight(150, exit_y, -90, 40), diameter_px=diameter)
    draw.draw_hair(
        img, draw.straight(150, exit_y, 90, visible + 40), diameter_px=diameter, absorb=1.5
    )
    yy, xx = np.mgrid[0:200, 0:300]
    img[np.hypot(xx - 60, yy - 197) <= diameter / 2] *= 0.3
    res = measure_image(draw.finish(img, blur_px=1.0), um_per_px=UM)
    assert res.hair_count == 1
    (hair,) = res.hairs
    assert hair.exit_px is not None
    assert abs(hair.exit_px[0] - 150.5) < 3 and abs(hair.exit_px[1] - exit_y) < 6


def _shaft_from_blue_grey_shadow(shadow: float, shaft_colour=(1.0, 1.0, 1.0)) -> np.ndarray:
    """A hair leaving the skin at x = 150 and running right, its buried part to the left.

    The buried part's shadow is blue-grey (absorbing red more than blue) and, for a strong
    `shadow`, as dark in every channel as the shaft itself: the absorptance alone does not
    tell where the visible shaft begins.
    """
    img = draw.skin((200, 400), seed=41)
    layer = np.ones(img.shape)
    draw.draw_hair(
        layer,
        draw.straight(140, 100, 180, 60),
        diameter_px=14,
        absorb=shadow,
        color=(1.0, 0.75, 0.6),
    )
    img *= ndimage.gaussian_filter(layer, (1.5, 1.5, 0))
    draw.draw_hair(
        img, draw.straight(150, 100, 0, 200), diameter_px=14, absorb=0.4, color=shaft_colour
    )
    return draw.finish(img, blur_px=1.0)


@pytest.mark.parametrize("shadow", [0.4, 0.8])
def test_trace_stops_where_the_hue_turns_blue_grey(shadow):
    # Without the hue, the trace ran on over the whole shadow (to x = 82), and a dark one
    # put the exit at the far, cut end.
    res = measure_image(_shaft_from_blue_grey_shadow(shadow), um_per_px=UM)
    assert res.hair_count == 1
    (hair,) = res.hairs
    assert hair.exit_px is not None and abs(hair.exit_px[0] - 150) < 10
    assert abs(hair.tip_px[0] - 349) < 5


def test_hue_edge_needs_a_run_at_the_end():
    from hairtrial.measure.core import _hue_edge

    def edge(hue, end, step):
        return _hue_edge(hue, end, step, float(np.median(hue[12:48])))  # the middle 3/5

    shaft = np.zeros(60)
    run = shaft.copy()
    run[:10] = 0.6  # blue-grey for 10 samples, then the shaft's own hue
    assert edge(run, 0, 1) == 10
    assert edge(run, 59, -1) == 59
    # a hair blue-shifted all along (grey on pink skin) keeps its ends
    assert edge(shaft + 0.6, 0, 1) == 0
    # a blip of two samples is noise, not a run
    blip = shaft.copy()
    blip[:2] = 0.6
    assert edge(blip, 0, 1) == 0
    # never more than a third of the length
    long_run = shaft.copy()
    long_run[:25] = 0.6
    assert edge(long_run, 0, 1) == 20


def test_the_same_hair_beyond_a_crossing_is_not_a_unit_partner():
    from hairtrial.measure.core import _not_in_line

    # hair 0 ends at (100, 50), pointing right (outward). Across a crossing, hair 1 (the
    # same hair going on) ends 22 px ahead, pointing back. Hair 2, a unit partner, ends
    # beside it converging from below; hair 3 ends ahead but points onwards (another hair
    # leaving there). Only hair 1's end is left out; the piece's own other end stays.
    ends = np.array(
        [
            [100.0, 50.0], [10.0, 50.0],  # hair 0
            [122.0, 52.0], [300.0, 55.0],  # hair 1
            [104.0, 58.0], [90.0, 150.0],  # hair 2
            [121.0, 49.0], [250.0, 40.0],  # hair 3
        ]
    )  # fmt: skip
    direction = np.array(
        [
            [1.0, 0.0],
            [-1.0, 0.0],
            [-1.0, 0.0],
            [1.0, 0.0],
            [-0.3, -0.95],
            [0.0, 1.0],
            [1.0, 0.0],
            [1.0, 0.0],
        ]
    )
    assert _not_in_line(0, [0, 1, 2, 4, 6], ends, direction) == [0, 1, 4, 6]
    # seen from the continuation, the piece is the same hair too
    assert _not_in_line(2, [2, 0], ends, direction) == [2]
