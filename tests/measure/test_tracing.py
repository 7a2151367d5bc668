"""Tracing rules that decide the count: linking across gaps, corners, light shafts."""

import numpy as np
import pytest
from scipy import ndimage

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


def test_bends_no_shaft_makes_are_cut_where_the_corner_test_cannot_see():
    from hairtrial.measure.core import _split_corners_kinks

    width = 8.0
    # a crest round a follicular opening or a thick shaft's cap: a half circle of 0.8
    # width's radius, too short for the corner test's two-width chords
    ring = draw.curved(0, 0, 0, np.pi * 0.8 * width, 180)
    parts = _split_corners_kinks(ring, width, 6.0)
    assert len(parts) == 2
    assert all(np.hypot(*(p[-1] - p[0])) < 2.2 * width for p in parts)
    # an L of 1.5 + 1.5 widths (a short crest turning into a touching stub)
    hook = np.vstack([draw.straight(0, 0, 90, 12, 13), draw.straight(0, 12, 180, 12, 13)[1:]])
    assert len(_split_corners_kinks(hook, width, 6.0)) == 2
    # a curved hair (radius five widths, 90°) and a short straight one are one shaft each
    arc = draw.curved(0, 0, 0, 0.5 * np.pi * 5 * width, 90)
    assert len(_split_corners_kinks(arc, width, 6.0)) == 1
    assert len(_split_corners_kinks(draw.straight(0, 0, 30, 3 * width, 25), width, 6.0)) == 1


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


def _flake(img, rng, cx, cy, r):
    """A white scale flake: irregular, layered, semi-transparent, with a lifted rim."""
    m, n = img.shape[:2]
    yy, xx = np.mgrid[0:m, 0:n]
    ang = np.arctan2(yy - cy, xx - cx)
    wobble = 1 + 0.15 * np.sin(3 * ang + rng.uniform(0, 6)) + 0.08 * np.sin(5 * ang)
    rho = np.hypot(xx - cx, yy - cy) / (r * wobble)
    body = np.clip((1.0 - rho) / 0.15, 0, 1)
    rim = np.exp(-(((rho - 0.9) / 0.08) ** 2)) * body
    tex = ndimage.gaussian_filter(rng.normal(size=(m, n)), 2.0)
    layered = np.clip(0.55 + 0.35 * tex / tex.std(), 0.1, 1.0)
    alpha = np.clip(0.6 * (body * layered + 0.35 * rim), 0, 0.9)[:, :, None]
    return img * (1 - alpha) + alpha * np.array([0.93, 0.92, 0.9])


@pytest.mark.parametrize("seed", [0, 3])
def test_light_pass_leaves_out_scale_flakes_and_keeps_the_white_hair(seed):
    # the brightest streaks inside a flake (its mottling, its lifted rim) are line-like,
    # but the patch around them is as bright and not elongated
    img = draw.skin((320, 460), seed=25, tone=(0.62, 0.45, 0.36))
    layer = np.ones_like(img)
    draw.draw_hair(layer, draw.straight(60, 250, -10, 200), diameter_px=14, absorb=2.0)
    img = img * layer + 0.9 * (1.0 - layer)  # near-white where the shaft lies
    rng = np.random.default_rng(seed)
    for cx, cy, r in [(330, 80, 26), (390, 220, 30), (130, 90, 22), (250, 150, 28)]:
        img = _flake(img, rng, cx, cy, r)
    res = measure_image(
        draw.finish(img, blur_px=1.0), um_per_px=UM, config=MeasureConfig(light_hairs=True)
    )
    assert res.hair_count == 1
    mid = np.asarray(res.hairs[0].centerline_px).mean(axis=0)
    assert np.hypot(mid[0] - 158.5, mid[1] - 233.5) < 5


def test_light_pass_leaves_out_a_faint_bright_line_and_keeps_the_white_hair():
    # a bright scale line or furrow highlight: a narrow band a fifth of the way from the
    # skin's colour to white, long and straight like a hair; a white shaft goes most of
    # the way to white
    img = draw.skin((320, 460), seed=27, tone=(0.62, 0.45, 0.36))
    hair = np.ones_like(img)
    draw.draw_hair(hair, draw.straight(60, 240, -10, 200), diameter_px=14, absorb=2.0)
    img = img * hair + 0.9 * (1.0 - hair)
    line = np.ones_like(img)
    draw.draw_hair(line, draw.straight(80, 80, 5, 300), diameter_px=6, absorb=2.0)
    cover = 0.2 * (1.0 - line)
    u8 = draw.finish(img * (1.0 - cover) + 0.95 * cover, blur_px=1.0)
    res = measure_image(u8, um_per_px=UM, config=MeasureConfig(light_hairs=True))
    assert res.hair_count == 1
    assert abs(np.asarray(res.hairs[0].centerline_px)[:, 1].mean() - 222.5) < 8
    # the dark pass's own threshold would keep the line as well
    loose = MeasureConfig(light_hairs=True, light_ridge_high_od=0.15)
    assert measure_image(u8, um_per_px=UM, config=loose).hair_count == 2


@pytest.mark.parametrize("box", [(30, 30, 36), (235, 235, 235)])
def test_light_pass_finds_a_white_hair_below_a_label_box_and_not_the_box_edges(box):
    # the mask stopped a pixel short of a flat label box (its 7×7-flat patch less 3 px,
    # grown by 2): the box's own edge against the skin was traced as light shafts
    img = draw.skin((320, 460), seed=28, tone=(0.62, 0.45, 0.36))
    layer = np.ones_like(img)
    draw.draw_hair(layer, draw.straight(200, 48, 90, 200), diameter_px=14, absorb=2.0)
    u8 = draw.finish(img * layer + 0.9 * (1.0 - layer), blur_px=1.0)
    u8[4:34, 120:330] = box
    res = measure_image(u8, um_per_px=UM, config=MeasureConfig(light_hairs=True))
    assert res.hair_count == 1
    assert abs(res.hairs[0].length_um - 200 * UM) <= 0.1 * 200 * UM


def test_light_pass_ignores_bright_skin_beside_dark_shafts():
    # with the dark shafts left in the light pass's skin estimate, bare skin between
    # and beside them read as brighter than skin: three or four light "shafts"
    img = draw.skin((300, 420), seed=26)
    for y in (130.0, 180.0):
        draw.draw_hair(img, draw.straight(60, y, 0, 300), diameter_px=16, absorb=1.5)
    u8 = draw.finish(img, blur_px=1.0)
    assert measure_image(u8, um_per_px=UM).hair_count == 2
    assert measure_image(u8, um_per_px=UM, config=MeasureConfig(light_hairs=True)).hair_count == 2


@pytest.mark.parametrize("turn_deg", [0.0, 1.0])
def test_white_hair_touching_a_dark_one_is_kept(turn_deg):
    # a grey and a dark hair of one unit lying side by side, touching: the light shaft
    # does not overlap the dark one, so it is not the dark shaft's bright rim
    img = draw.skin((320, 360), seed=27)
    layer = np.ones_like(img)
    draw.draw_hair(layer, draw.straight(165, 50, 90 - turn_deg, 230), diameter_px=14, absorb=2.0)
    img = img * layer + 0.9 * (1.0 - layer)
    draw.draw_hair(img, draw.straight(150, 50, 90, 230), diameter_px=14, absorb=1.5)
    u8 = draw.finish(img, blur_px=1.0)
    res = measure_image(u8, um_per_px=UM, config=MeasureConfig(light_hairs=True))
    assert len(res.hairs) == 2


def _grey_hair_on_pink_skin(seed):
    """A grey (unpigmented) shaft over pink skin, and white scale flakes beside it."""
    img = draw.skin((320, 460), seed=seed, tone=(0.75, 0.59, 0.56))
    hair = np.ones_like(img)
    draw.draw_hair(hair, draw.straight(60, 250, -10, 200), diameter_px=14, absorb=2.0)
    cover = 1.0 - hair
    img = img * (1.0 - cover) + 0.62 * cover  # neutral grey: darker in red, brighter in blue
    rng = np.random.default_rng(seed)
    for cx, cy, r in [(330, 80, 26), (390, 220, 30), (130, 90, 22)]:
        img = _flake(img, rng, cx, cy, r)
    return draw.finish(img, blur_px=1.0)


@pytest.mark.parametrize("seed", [31, 32])
def test_grey_hair_on_pink_skin_found_by_its_colour(seed):
    u8 = _grey_hair_on_pink_skin(seed)
    # darker than the skin in red only: the smallest-channel absorptance misses it
    assert measure_image(u8, um_per_px=UM).hair_count == 0
    res = measure_image(u8, um_per_px=UM, config=MeasureConfig(grey_hairs=True))
    assert res.hair_count == 1  # the flakes are neutral too, but brighter in every channel
    hair = res.hairs[0]
    mid = np.asarray(hair.centerline_px).mean(axis=0)
    assert np.hypot(mid[0] - 158.5, mid[1] - 233.5) < 5
    assert abs(hair.length_um - 200 * UM) <= 0.15 * 200 * UM


def _grey_arc_field(seed: int, bend_deg: float) -> np.ndarray:
    """The grey shaft on pink skin, and a grey band of the same colour bending by `bend_deg`."""
    img = draw.skin((320, 460), seed=seed, tone=(0.75, 0.59, 0.56))
    cover = np.ones_like(img)
    draw.draw_hair(cover, draw.straight(60, 250, -10, 200), diameter_px=14, absorb=2.0)
    # an opening's grey rim or an exit's shadow: as colourless, but curved
    draw.draw_hair(cover, draw.curved(300, 60, 30, 170, bend_deg), diameter_px=10, absorb=1.5)
    cover = 1.0 - cover
    return draw.finish(img * (1.0 - cover) + 0.62 * cover, blur_px=1.0)


@pytest.mark.parametrize(("seed", "bend_deg", "count"), [(31, 0, 2), (31, 90, 1), (32, 150, 1)])
def test_grey_pass_reports_straight_shafts_only(seed, bend_deg, count):
    # seen by its colour alone, a band is a cut shaft only if it runs straight (without
    # that test the 90° and 150° bands were counted as hairs too)
    res = measure_image(
        _grey_arc_field(seed, bend_deg), um_per_px=UM, config=MeasureConfig(grey_hairs=True)
    )
    assert res.hair_count == count
    mids = [np.asarray(h.centerline_px).mean(axis=0) for h in res.hairs]
    assert min(np.hypot(p[0] - 158.5, p[1] - 233.5) for p in mids) < 5


def _stub_field(seed: int) -> np.ndarray:
    """Skin with three long shafts 18 px (90 µm) wide, as dark as clipped terminal hair."""
    img = draw.skin((320, 420), seed=seed)
    for y in (60, 130, 200):
        draw.draw_hair(img, draw.straight(40, y, 8, 150), diameter_px=18, absorb=1.5)
    return img


def test_hair_cut_to_a_stub_is_counted():
    # a stub two shaft widths long: its crest is shorter than the shortest shaft reported
    # and shorter than 1.5 detection widths, yet as dark as the field's hairs and bare
    # skin past both ends
    img = _stub_field(seed=31)
    # 20 px between the cap centres: 38 px (190 µm) long in all, 18 px wide
    draw.draw_hair(img, draw.straight(300, 250, 70, 20), diameter_px=18, absorb=1.5)
    res = measure_image(draw.finish(img, blur_px=1.0), um_per_px=UM)
    assert res.hair_count == 4
    stub = min(res.hairs, key=lambda h: h.length_um)
    centre = draw.straight(300.5, 250.5, 70, 10)[-1]
    assert np.hypot(*(np.mean(stub.centerline_px, axis=0) - centre)) < 4
    assert 70 <= stub.diameter_um <= 110
    assert stub.exit_px is not None


def test_stub_touching_a_status_bar_is_not_counted():
    # a bar cut by a burned-in status bar may run on under it: its length is unknown
    img = _stub_field(seed=33)
    draw.draw_hair(img, draw.straight(300, 262, 70, 20), diameter_px=18, absorb=1.5)
    clear = draw.finish(img, blur_px=1.0)
    assert measure_image(clear, um_per_px=UM).hair_count == 4  # the stub alone
    barred = clear.copy()
    barred[286:] = 245  # a flat light bar over the bottom rows, the stub's end under it
    res = measure_image(barred, um_per_px=UM)
    assert res.hidden_rows[1] >= 34
    assert res.hair_count == 3
    assert all(np.mean(h.centerline_px, axis=0)[0] < 250 for h in res.hairs)


@pytest.mark.parametrize("what", ["opening", "ragged patch", "faint stub", "at border"])
def test_blobs_and_faint_bars_are_not_stubs(what):
    # a round dark opening; a dark patch as long as a stub but with ragged edges (a large
    # and a small disc, as pigment or a shadow pools); a stub-shaped grey shadow (well
    # below the hairs' darkness); a stub cut by the image border (its length unknown)
    img = _stub_field(seed=32)
    if what == "opening":
        draw.draw_hair(img, draw.straight(300, 255, 0, 1), diameter_px=26, absorb=1.5)
    elif what == "ragged patch":
        draw.draw_hair(img, draw.straight(300, 240, 0, 1), diameter_px=26, absorb=1.5)
        x, y = draw.straight(300, 240, 70, 18)[-1]
        draw.draw_hair(img, draw.straight(x, y, 0, 1), diameter_px=12, absorb=1.5)
    elif what == "faint stub":
        draw.draw_hair(img, draw.straight(300, 250, 70, 20), diameter_px=18, absorb=0.35)
    else:
        draw.draw_hair(img, draw.straight(400, 250, 0, 20), diameter_px=18, absorb=1.5)
    res = measure_image(draw.finish(img, blur_px=1.0), um_per_px=UM)
    shafts = [h for h in res.hairs if np.mean(h.centerline_px, axis=0)[0] < 250]
    others = [h for h in res.hairs if np.mean(h.centerline_px, axis=0)[0] >= 250]
    assert len(shafts) == 3 and all(h.exit_px is not None for h in shafts)
    if what != "at border":
        assert not others
    else:
        # no stub standing on its own: only the shaft the border cuts, which reaches it
        # (counted or not by where the hair stream puts its exit)
        assert len(others) <= 1
        assert all(max(p[0] for p in h.centerline_px) > 415 for h in others)


def _crossing_od(lines, width_px, shape=(260, 360)):
    import cv2

    od = np.zeros(shape, np.float32)
    for line in lines:
        cv2.polylines(od, [np.round(line).astype(np.int32)], False, 0.6, int(width_px))
    return cv2.GaussianBlur(od, (0, 0), 1.0)


def test_a_crest_run_into_a_crossing_hair_is_joined_to_its_own_continuation():
    # the crest of one hair bends at a crossing into the other hair's crest (no
    # junction): the corner cut parts them, and the first hair's own continuation past
    # the crossing joins the part it was cut from
    from hairtrial.measure.core import _relink_cut_ends, _split_corners_kinks

    own = draw.straight(20, 40, 30, 150, 151)  # the hair, up to the crossing
    bent = np.vstack([own, draw.straight(*own[-1], 65, 110, 111)[1:]])  # into the other
    beyond = draw.straight(
        *(own[-1] + 16 * np.array([np.cos(np.pi / 6), np.sin(np.pi / 6)])), 30, 100, 101
    )
    other = draw.straight(*own[-1], 65, 110, 111)
    od = _crossing_od([np.vstack([own, beyond]), other], 9)
    scale = np.full(od.shape, 9.0, np.float32)
    parts = _split_corners_kinks(bent, 9.0, 6.0)
    assert len(parts) == 2
    traces = [*parts, beyond]
    out = _relink_cut_ends(traces, np.array([[1, 2]]), od, scale, max_gap=50.0, corner_chord=6.0)
    assert len(out) == 2
    joined = max(out, key=len)
    assert np.hypot(*(joined[0] - own[0])) < 3 and np.hypot(*(joined[-1] - beyond[-1])) < 3
    # with bare skin between them (two clipped hairs in line), they stay apart
    od_gap = _crossing_od([own, beyond, other[30:]], 9)
    out = _relink_cut_ends(
        traces, np.array([[1, 2]]), od_gap, scale, max_gap=50.0, corner_chord=6.0
    )
    assert len(out) == 3


def _cap_od(depth_px, level=0.8, slant_deg=0.0, width_px=16.0):
    # a shaft as dark as `level` leaving the image through its bottom edge (row 119),
    # showing `depth_px` inside it along its axis, `slant_deg` off the edge's normal
    od = np.zeros((120, 160), np.float32)
    a = np.radians(slant_deg)
    axis = np.array([np.sin(a), -np.cos(a)])  # inward (up), tilted
    normal = np.array([axis[1], -axis[0]])
    yy, xx = np.mgrid[0:120, 0:160]
    rel = np.stack([xx - 80.0, yy - 119.0], axis=-1)
    along = rel @ axis
    across = rel @ normal
    od[(along <= depth_px) & (np.abs(across) <= width_px / 2) & (yy <= 119)] = level
    return od


@pytest.mark.parametrize("slant_deg", [0.0, 35.0])
def test_border_cap_is_a_hair_with_its_axis_and_width(slant_deg):
    from hairtrial.measure.core import _border_caps

    caps = _border_caps(_cap_od(12.0, slant_deg=slant_deg), None, 0.8, (2.0, 30.0))
    assert len(caps) == 1
    line, d = caps[0].points, caps[0].diameter_px
    assert abs(d - 16.0) < 3.0
    assert abs(line[0, 1] - 119.0) < 1.0  # from the border ...
    step = line[-1] - line[0]
    assert np.degrees(abs(np.arctan2(step[0], -step[1]))) == pytest.approx(slant_deg, abs=8.0)
    assert 6.0 <= np.hypot(*step) <= 12.5  # ... inwards over the visible cap


@pytest.mark.parametrize("what", ["long", "faint", "sliver", "overlay"])
def test_border_cap_leaves_out_what_is_no_cap(what):
    from hairtrial.measure.core import _border_caps

    od = _cap_od({"long": 70.0, "sliver": 4.0}.get(what, 12.0), 0.4 if what == "faint" else 0.8)
    exclude = None
    if what == "overlay":
        exclude = np.zeros(od.shape, bool)
        exclude[110:, 60:100] = True
    assert _border_caps(od, exclude, 0.8, (2.0, 30.0)) == []


@pytest.mark.parametrize("what", ["exit", "tip", "faint"])
def test_hair_showing_its_exit_cap_on_the_border_is_counted(what):
    # four hairs grow downwards, their exits' shadows above them. A fifth leaves the
    # skin 10 px above the bottom edge and grows out of the field: only its exit cap
    # and the shadow above it show; it is counted. A hair whose cut tip reaches 12 px
    # into the field from the top edge is a hair of the field's neighbour (not counted),
    # and a faint patch on the edge is none
    img = draw.skin((320, 380), seed=35)
    for x in (50, 110, 170, 230):
        draw.draw_subsurface(img, draw.straight(x, 80, -90, 50), diameter_px=14)
        draw.draw_hair(img, draw.straight(x, 80, 90, 150), diameter_px=14, absorb=1.5)
    if what == "exit":
        draw.draw_subsurface(img, draw.straight(300, 310, -90, 50), diameter_px=14)
        draw.draw_hair(img, draw.straight(300, 310, 90, 60), diameter_px=14, absorb=1.5)
    elif what == "tip":
        draw.draw_hair(img, draw.straight(300, -60, 90, 72), diameter_px=14, absorb=1.5)
    else:
        draw.draw_hair(img, draw.straight(300, 312, 90, 30), diameter_px=14, absorb=0.2)
    res = measure_image(draw.finish(img, blur_px=1.0), um_per_px=UM)
    fifth = [h for h in res.hairs if np.mean(h.centerline_px, axis=0)[0] > 270]
    if what == "exit":
        assert res.hair_count == 5
        assert len(fifth) == 1 and fifth[0].exit_px is not None
        assert np.hypot(fifth[0].exit_px[0] - 300.5, fifth[0].exit_px[1] - 310.5) < 6
        assert 50 <= fifth[0].diameter_um <= 100
    elif what == "tip":
        assert res.hair_count == 4
        assert all(h.exit_px is None for h in fifth)
    else:
        assert res.hair_count == 4 and not fifth


def test_round_field_of_view_frame_is_no_hair_and_its_edge_a_border():
    # a dermatoscope's round stop: skin inside a disc of radius 190 px, black outside.
    # Three hairs grow downwards inside it, a fourth leaves the skin inside and runs out
    # under the frame (counted), a fifth comes in from under the frame, its cut tip
    # inside (its exit hidden: not counted). The blurred rim is no hair, and the
    # density is per imaged area
    img = draw.skin((400, 500), seed=37)
    for x in (170, 240, 310):
        draw.draw_subsurface(img, draw.straight(x, 130, -90, 40), diameter_px=14)
        draw.draw_hair(img, draw.straight(x, 130, 90, 140), diameter_px=14, absorb=1.5)
    draw.draw_subsurface(img, draw.straight(250, 300, -90, 40), diameter_px=14)
    draw.draw_hair(img, draw.straight(250, 300, 90, 120), diameter_px=14, absorb=1.5)
    draw.draw_hair(img, draw.straight(380, -20, 90, 120), diameter_px=14, absorb=1.5)
    yy, xx = np.mgrid[0:400, 0:500]
    inside = np.hypot(xx - 250, yy - 200) <= 190
    img[~inside] *= 0.02
    res = measure_image(draw.finish(img, blur_px=1.5), um_per_px=UM)
    assert res.hair_count == 4
    assert len(res.hairs) <= 5
    leaving = [h for h in res.hairs if abs(np.mean(h.centerline_px, axis=0)[0] - 250.5) < 6]
    assert len(leaving) == 1 and leaving[0].exit_px is not None
    assert abs(leaving[0].exit_px[1] - 300.5) < 8
    entering = [h for h in res.hairs if abs(np.mean(h.centerline_px, axis=0)[0] - 380.5) < 6]
    assert all(h.exit_px is None for h in entering)
    field_cm2 = np.pi * 190**2 * (UM * 1e-4) ** 2
    assert res.area_cm2 == pytest.approx(field_cm2, rel=0.02)
