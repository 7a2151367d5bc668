import numpy as np
import pytest

from hairtrial.measure.overlay import CLASS_COLOURS, draw_overlay, save_overlay, scale_bar_um
from hairtrial.records import HairRecord


def hair(i, d, cls, exit_px, line):
    return HairRecord(
        id=i,
        exit_px=exit_px,
        tip_px=line[-1],
        centerline_px=tuple(line),
        diameter_um=d,
        length_um=500.0,
        hair_class=cls,
    )


def test_overlay_draws_classes_and_leaves_the_input_alone(tmp_path):
    image = np.full((400, 600, 3), 200, np.uint8)
    before = image.copy()
    hairs = [
        hair(0, 80.0, "terminal", (300.5, 100.5), [(300.5, 100.5), (300.5, 250.5)]),
        hair(1, 20.0, "vellus", (400.5, 100.5), [(400.5, 100.5), (400.5, 250.5)]),
        hair(2, 70.0, "terminal", None, [(0.5, 50.5), (120.5, 50.5)]),  # enters from outside
    ]
    out = draw_overlay(image, hairs, um_per_px=5.0)
    np.testing.assert_array_equal(image, before)
    assert out.shape == image.shape and out.dtype == np.uint8
    for x, cls in ((300, "terminal"), (400, "vellus")):
        along = out[150:200, x - 1 : x + 2].reshape(-1, 3).astype(int)
        distance = np.abs(along - np.array(CLASS_COLOURS[cls])).sum(axis=1)
        assert distance.min() < 40  # the line is drawn in the class colour
    grey = out[50, 60]
    assert grey[0] == grey[1] == grey[2] != 200  # not counted: drawn grey
    assert (out[340:395, 5:200] != 200).any()  # legend and scale bar
    path = save_overlay(tmp_path / "o.png", image, hairs, um_per_px=5.0)
    assert path.stat().st_size > 0


def test_overlay_of_greyscale_16_bit_and_tiny_images():
    grey = np.full((40, 30), 30000, np.uint16)
    out = draw_overlay(grey, [], um_per_px=5.0)
    assert out.shape == (40, 30, 3) and out.dtype == np.uint8


@pytest.mark.parametrize(
    ("width", "um", "expected"), [(1000, 5.0, 1000), (1280, 2.0, 500), (200, 5.0, 200)]
)
def test_scale_bar_is_round_and_about_15_percent(width, um, expected):
    assert scale_bar_um(width, um) == expected


def test_text_outline_stays_on_the_text():
    # OpenCV advances each glyph by its stroke weight: an outline drawn bolder drifted
    # off the text along the line (a legend count read "13 3")
    from hairtrial.measure.overlay import _text

    out = np.full((60, 420, 3), 128, np.uint8)
    _text(out, "terminal >= 60 um: 13", (5, 40), 0.66, (255, 255, 255))
    white = np.flatnonzero((out == 255).all(axis=2).any(axis=0))
    black = np.flatnonzero((out <= 10).all(axis=2).any(axis=0))
    assert white.size and black.size
    assert black.max() <= white.max() + 2
    assert black.min() >= white.min() - 2


def test_legend_below_leaves_the_image_uncovered():
    image = np.full((300, 400, 3), 200, np.uint8)
    hairs = [hair(1, 80.0, "terminal", (20.0, 280.0), [(20.0, 280.0), (120.0, 200.0)])]
    inside = draw_overlay(image, hairs, um_per_px=5.0, show_ids=False)
    below = draw_overlay(image, hairs, um_per_px=5.0, show_ids=False, legend_below=True)
    assert inside.shape == (300, 400, 3)
    assert below.shape[0] > 300 and below.shape[1:] == (400, 3)
    # the box darkens the bottom-left corner of the image, the strip does not
    corner = (slice(200, 285), slice(150, 240))  # beside the hair, under the box
    assert np.median(inside[corner]) < 100
    assert (below[:300][corner] == 200).all()
    # the hair is drawn the same way; the strip holds the legend text and the scale bar
    np.testing.assert_array_equal(below[:180], inside[:180])  # above the box
    assert (below[300:] > 200).any()


def _near_colour(pixels, colour, tolerance=40):
    diff = np.abs(pixels.reshape(-1, 3).astype(int) - np.array(colour)).sum(axis=1)
    return diff.min() < tolerance


def test_validation_overlay_shows_matched_false_and_missed_hairs():
    from hairtrial.measure.metrics import explain_errors, score_hairs
    from hairtrial.measure.overlay import VALIDATION_COLOURS, draw_validation

    image = np.full((400, 600, 3), 200, np.uint8)
    before = image.copy()
    truth = [
        hair(0, 80.0, "terminal", (100.5, 80.5), [(100.5, 80.5), (100.5, 300.5)]),
        hair(1, 80.0, "terminal", (300.5, 80.5), [(300.5, 80.5), (300.5, 300.5)]),  # missed
    ]
    detected = [
        hair(1, 80.0, "terminal", (101.5, 80.5), [(101.5, 80.5), (101.5, 300.5)]),
        hair(2, 80.0, "terminal", (480.5, 80.5), [(480.5, 80.5), (480.5, 300.5)]),  # false
        hair(3, 80.0, "terminal", None, [(0.5, 350.5), (150.5, 350.5)]),  # entering
    ]
    score = score_hairs(detected, truth, max_distance_px=6.0, by="centreline")
    errors = explain_errors(detected, truth, score.matches, shape=(400, 600))
    assert score.matches == ((0, 0),)
    out = draw_validation(
        image, detected, matches=score.matches, um_per_px=5.0, truth=truth, errors=errors
    )
    np.testing.assert_array_equal(image, before)
    assert out.shape[0] > 400 and out.shape[1:] == (600, 3)  # the legend strip below
    colours = VALIDATION_COLOURS
    assert _near_colour(out[150:250, 99:104], colours["matched"])
    assert _near_colour(out[150:250, 298:303], colours["missed"])
    assert _near_colour(out[150:250, 478:483], colours["false"])
    assert not _near_colour(out[150:250, 478:483], colours["missed"])
    grey = out[350, 60]
    assert grey[0] == grey[1] == grey[2] != 200  # entering: thin grey, not scored
    # each error's reason is written beside its exit: missed above, false below
    assert errors.missed_reason == ((1, "not_found"),)
    assert _near_colour(out[55:78, 305:400], colours["missed"])
    assert _near_colour(out[82:105, 485:590], colours["false"])
    assert (out[400:] != 0).any()  # the legend and scale bar


def test_validation_overlay_marks_a_matched_hair_with_its_exit_at_the_wrong_end():
    from hairtrial.measure.metrics import score_exit_ends, score_hairs
    from hairtrial.measure.overlay import VALIDATION_COLOURS, draw_validation

    image = np.full((300, 400, 3), 200, np.uint8)
    truth = [
        hair(0, 80.0, "terminal", (100.5, 50.5), [(100.5, 50.5), (100.5, 250.5)]),
        hair(1, 80.0, "terminal", (300.5, 50.5), [(300.5, 50.5), (300.5, 250.5)]),
    ]
    detected = [
        hair(1, 80.0, "terminal", (100.5, 50.5), [(100.5, 50.5), (100.5, 250.5)]),
        hair(2, 80.0, "terminal", (300.5, 250.5), [(300.5, 250.5), (300.5, 50.5)]),  # swapped
    ]
    score = score_hairs(detected, truth, max_distance_px=6.0, by="centreline")
    assert len(score.matches) == 2
    kwargs = {"matches": score.matches, "um_per_px": 5.0, "truth": truth}
    plain = draw_validation(image, detected, **kwargs)
    wrong = score_exit_ends(detected, truth, score.matches).wrong
    assert wrong == (1,)
    marked = draw_validation(image, detected, **kwargs, wrong_ends=wrong)
    vermillion = VALIDATION_COLOURS["false"]
    assert _near_colour(marked[252:275, 305:390], vermillion)  # "wrong end" below the exit
    assert not _near_colour(plain[252:275, 305:390], vermillion)
    assert not _near_colour(marked[52:75, 105:190], vermillion)  # the right one: unmarked
    assert marked.shape[0] > plain.shape[0]  # one more legend row: the count


def test_validation_overlay_against_boxes_marks_the_matched_point():
    from hairtrial.measure.annotations import score_boxes
    from hairtrial.measure.overlay import VALIDATION_COLOURS, draw_validation

    image = np.full((300, 400, 3), 200, np.uint8)
    line = [(100.5, 50.5), (100.5, 150.5), (100.5, 250.5)]
    detected = [hair(1, 80.0, "terminal", (100.5, 50.5), line)]
    boxes = np.array([[90.0, 140.0, 110.0, 160.0], [250.0, 40.0, 300.0, 90.0]])
    scored = score_boxes(detected, boxes, max_distance_px=10.0)
    assert scored.matches == [(0, 0)]
    out = draw_validation(image, detected, matches=scored.matches, um_per_px=5.0, boxes=boxes)
    colours = VALIDATION_COLOURS
    # box edges fall between pixel rows: blended with the skin by the anti-aliasing
    assert _near_colour(out[38:42, 255:295], colours["missed"], 120)  # the missed box
    assert not _near_colour(out[138:142, 92:98], colours["missed"], 120)
    assert _near_colour(out[138:142, 92:98], colours["annotated"], 120)  # matched: white
    # the mid-shaft point that was matched is a dot wider than the line
    dot = out[150, 96:106].reshape(-1, 3).astype(int)
    near = np.abs(dot - np.array(colours["matched"])).sum(axis=1) < 60
    assert near.sum() >= 4


def test_tracking_overlay_labels_followed_new_and_absent_follicles():
    from hairtrial.measure.overlay import TRACK_COLOURS, draw_tracks
    from hairtrial.track import track_site
    from hairtrial.track._geometry import apply, invert
    from tests.track._synth import make_site, make_visit, pose_matrix

    um, shape = 5.0, (600, 800)
    site = make_site(700, side_um=9000.0, seed=21)
    n = len(site.xy_um)
    present = np.ones((n, 2), dtype=bool)
    rng = np.random.default_rng(4)
    gone, new = rng.choice(n, size=(2, n // 8), replace=False)
    present[gone, 1] = False  # shed by the second visit
    present[new, 0] = False  # first seen at the second visit
    mats = [
        pose_matrix(um_per_px=um, shape=shape, centre_um=(4500, 4500)),
        pose_matrix(um_per_px=um, shape=shape, centre_um=(4800, 4300), rotation_deg=5.0),
    ]
    visits = [
        make_visit(site, m, shape=shape, um_per_px=um, present=present[:, v], seed=v)
        for v, m in enumerate(mats)
    ]
    tracks = track_site(visits, visit_days=[0, 30], um_per_px=[um, um], shapes=[shape, shape])
    assert all(r.ok for r in tracks.registrations)
    image = np.full((*shape, 3), 200, np.uint8)
    before = image.copy()
    out = draw_tracks(image, tracks, 1)
    np.testing.assert_array_equal(image, before)
    assert out.shape[0] > shape[0] and out.shape[1:] == (shape[1], 3)
    detected = tracks.hair_index >= 0
    both = np.flatnonzero(detected[:, 0] & detected[:, 1])
    only_second = np.flatnonzero(~detected[:, 0] & detected[:, 1])
    absent = np.flatnonzero(tracks.in_field[:, 1] & detected[:, 0] & ~detected[:, 1])
    assert both.size and only_second.size and absent.size

    def colour_near(point, colour, radius=2):
        x, y = (round(float(v) - 0.5) for v in point)
        patch = out[y - radius : y + radius + 1, x - radius : x + radius + 1]
        return _near_colour(patch, colour, 60)

    def inside(points):
        pts = np.asarray(points, dtype=float).reshape(-1, 2)
        return pts[(pts.min(axis=1) > 8) & (pts[:, 0] < shape[1] - 8) & (pts[:, 1] < shape[0] - 8)]

    def middle(f):
        hair = tracks.hairs[1][int(tracks.hair_index[f, 1])]
        line = np.asarray(hair.centerline_px)
        return 0.5 * (line[0] + line[-1])

    # most hairs' middles carry their state's colour (a crossing hair may cover a few)
    followed = inside([middle(f) for f in both])
    first_seen = inside([middle(f) for f in only_second])
    assert len(followed) and len(first_seen)
    assert np.mean([colour_near(p, TRACK_COLOURS["followed"]) for p in followed]) > 0.8
    assert np.mean([colour_near(p, TRACK_COLOURS["only_here"]) for p in first_seen]) > 0.8
    # an absent follicle is a ring where it should be: its edge, 4 px from its place
    places = inside(apply(invert(tracks.registrations[1].matrix), tracks.position_px[absent]))
    assert len(places)
    rings = [colour_near(p + np.array([4.0, 0.0]), TRACK_COLOURS["absent"]) for p in places]
    assert np.mean(rings) > 0.8
    with pytest.raises(ValueError, match="visit 2"):
        draw_tracks(image, tracks, 2)


def test_phototrichogram_overlay_colours_hairs_by_phase():
    from hairtrial.measure.overlay import PHASE_COLOURS, draw_phototrichogram
    from hairtrial.track.phototrichogram import HairGrowth, PhototrichogramResult
    from hairtrial.track.register import Registration

    image = np.full((300, 400, 3), 200, np.uint8)
    hairs = [
        hair(1, 80.0, "terminal", (50.5, 50.5), [(50.5, 50.5), (50.5, 200.5)]),  # grew
        hair(2, 80.0, "terminal", (150.5, 50.5), [(150.5, 50.5), (150.5, 200.5)]),  # did not
        hair(3, 80.0, "terminal", (250.5, 50.5), [(250.5, 50.5), (250.5, 200.5)]),  # lost
        hair(4, 80.0, "terminal", None, [(399.5, 100.5), (330.5, 100.5)]),  # entering
    ]
    registered = Registration(np.eye(2, 3), score=0.9, inliers=3, residual_px=0.5, ok=True)
    result = PhototrichogramResult(
        hairs=(HairGrowth(1, 7, 320.0, "anagen", "tip"), HairGrowth(2, 8, 4.0, "telogen")),
        n_anagen=1, n_telogen=1, anagen_fraction=0.5, n_unmatched_first=1,
        n_unmatched_second=0, registration=registered, days=3.0,
    )  # fmt: skip
    out = draw_phototrichogram(image, hairs, result, um_per_px=5.0)
    assert out.shape[0] > 300 and out.shape[1:] == (400, 3)
    assert _near_colour(out[100:150, 49:52], PHASE_COLOURS["anagen"])
    assert _near_colour(out[100:150, 149:152], PHASE_COLOURS["telogen"])
    assert not _near_colour(out[100:150, 149:152], PHASE_COLOURS["anagen"])
    lost = out[100:150, 249:252].reshape(-1, 3).astype(int)
    assert (lost.min(axis=1) > 230).any()  # thin and white: not followed
    # the growth is written beside the exit, in the phase's colour
    assert _near_colour(out[30:50, 55:90], PHASE_COLOURS["anagen"])
    refused = PhototrichogramResult(
        hairs=(), n_anagen=0, n_telogen=0, anagen_fraction=None, n_unmatched_first=3,
        n_unmatched_second=3, days=3.0,
        registration=Registration(np.eye(2, 3), score=0.1, inliers=0, residual_px=0.0,
                                  ok=False, reason="too few hairs agree"),
    )  # fmt: skip
    out = draw_phototrichogram(image, hairs, refused, um_per_px=5.0)
    assert not _near_colour(out[:300], PHASE_COLOURS["anagen"])


def test_validation_and_phototrichogram_overlays_of_tiny_greyscale_images_without_hairs():
    from hairtrial.measure.overlay import draw_phototrichogram, draw_validation
    from hairtrial.track.phototrichogram import PhototrichogramResult
    from hairtrial.track.register import Registration

    grey = np.full((40, 30), 30000, np.uint16)
    out = draw_validation(grey, [], matches=[], um_per_px=5.0)
    assert out.shape[1:] == (30, 3) and out.shape[0] >= 40 and out.dtype == np.uint8
    out = draw_validation(grey, [], matches=[], um_per_px=5.0, boxes=np.zeros((0, 4)))
    assert out.shape[1:] == (30, 3)
    # an error label at the image's edge stays inside it
    edge = hair(1, 60.0, "terminal", (29.5, 0.5), [(29.5, 0.5), (29.5, 39.5)])
    out = draw_validation(grey, [edge], matches=[], um_per_px=5.0)
    assert out.shape[1:] == (30, 3)
    empty = PhototrichogramResult(
        hairs=(), n_anagen=0, n_telogen=0, anagen_fraction=None, n_unmatched_first=0,
        n_unmatched_second=0, days=3.0,
        registration=Registration(np.eye(2, 3), score=1.0, inliers=0, residual_px=0.0, ok=True),
    )  # fmt: skip
    assert draw_phototrichogram(grey, [], empty, um_per_px=5.0).shape[1:] == (30, 3)


def test_labels_at_one_point_are_written_clear_of_each_other(monkeypatch):
    import cv2

    from hairtrial.measure import overlay

    canvas = overlay._Canvas(np.full((200, 300, 3), 200, np.uint8))
    for text in ("on missed", "beside", "duplicate", "joined"):
        canvas.label((150.5, 100.5), text, (213, 94, 0))
    canvas.label((295.5, 3.5), "at the corner", (213, 94, 0), below=True)
    written: list[tuple[str, tuple[int, int]]] = []
    monkeypatch.setattr(overlay, "_text", lambda out, text, org, size, colour: written.append(
        (text, org)))  # fmt: skip
    canvas.with_legend([], 5.0)
    written = written[:5]  # then the scale bar's label, in the strip
    assert [t for t, _ in written] == [
        "on missed",
        "beside",
        "duplicate",
        "joined",
        "at the corner",
    ]
    boxes = []
    for text, (x, y) in written:
        (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.33, 1)
        assert 0 <= x and x + w <= 300 and 0 <= y - h and y + base <= 200  # inside the image
        boxes.append((x, y - h, x + w, y + base))
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert min(a[2], b[2]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[1], b[1])
    # the first label takes the usual place: right of the point, above it
    assert written[0][1][0] > 150 and written[0][1][1] < 100
