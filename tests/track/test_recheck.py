"""Image re-check of follicles with no detected hair (hairtrial.track._recheck via track_site).

Three visits of one field are rendered by the simulator with their exact truth; the truth
records play the detections, and the tests take hairs out of (or add false hairs to) the
middle visit's detections to see what the re-check makes of the images.
"""

import json
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from hairtrial._validate import InputError
from hairtrial.records import HairRecord
from hairtrial.simulate.render import CameraPose, RenderStyle, render_field
from hairtrial.track import TrackConfig, track_site

UM = 5.0
SHAPE = (480, 640)  # 2.4 × 3.2 mm at 5 µm/px
STYLE = RenderStyle(skin_rgb=(0.85, 0.74, 0.64), blur_sigma_px=0.8, noise_sigma=1.5)
POSES = (
    CameraPose(centre_x_um=1600.0, centre_y_um=1200.0),
    CameraPose(centre_x_um=1650.0, centre_y_um=1170.0, rotation_deg=3.0),
    CameraPose(centre_x_um=1580.0, centre_y_um=1230.0, rotation_deg=-2.0),
)
DAYS = [0, 30, 90]
NAMES = ["v0.png", "v1.png", "v2.png"]


def _follicles() -> pd.DataFrame:
    """Twenty well separated dark hairs (no two shafts touch), flowing one way."""
    rng = np.random.default_rng(4)
    gx, gy = np.meshgrid(np.arange(350.0, 3200.0, 700.0), np.arange(300.0, 2400.0, 700.0))
    rows = []
    for k, (x, y) in enumerate(zip(gx.ravel(), gy.ravel(), strict=True)):
        rows.append({
            "follicle_id": k, "fu_id": k, "phase": "anagen", "has_shaft": True,
            "x_um": x + rng.uniform(-60, 60), "y_um": y + rng.uniform(-60, 60),
            "diameter_um": rng.uniform(45.0, 90.0), "length_um": rng.uniform(450.0, 600.0),
            "azimuth_deg": rng.normal(100.0, 15.0), "elevation_deg": 30.0,
        })  # fmt: skip
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def rendered():
    df = _follicles()
    return [
        render_field(df, um_per_px=UM, shape=SHAPE, pose=pose, style=STYLE, seed=k)
        for k, pose in enumerate(POSES)
    ]


def _counted(hairs):
    return [h for h in hairs if h.exit_px is not None]


def _renumber(hairs):
    return [replace(h, id=k) for k, h in enumerate(hairs)]


def _isolated(hairs):
    """A counted hair whose exit lies well inside the field, chosen the same way each run."""
    h, w = SHAPE
    inside = [
        x for x in _counted(hairs) if 80 < x.exit_px[0] < w - 160 and 80 < x.exit_px[1] < h - 160
    ]
    return min(inside, key=lambda x: math.hypot(x.exit_px[0] - w / 2, x.exit_px[1] - h / 2))


RECHECK = TrackConfig(recheck=True)


def _track(visits, rendered, config=RECHECK):
    n = len(visits)
    return track_site(
        visits,
        visit_days=DAYS[:n],
        um_per_px=[UM] * n,
        images=[r.image for r in rendered[:n]],
        image_names=NAMES[:n],
        config=config,
    )


def _follicle_of(tracks, visit, hair_id):
    return tracks.follicle_ids(visit)[hair_id]


def test_missed_hair_is_recovered_and_counted(rendered):
    first, second, third = (list(r.hairs) for r in rendered)
    missed = _isolated(second)
    fid = missed.extra["follicle_id"]
    base = next(h for h in first if h.extra["follicle_id"] == fid)
    detected = _renumber([h for h in second if h is not missed])
    images_before = [r.image.copy() for r in rendered]

    tracks = _track([first, detected, third], rendered)

    assert all(np.array_equal(a, r.image) for a, r in zip(images_before, rendered, strict=True))
    assert all(r.ok for r in tracks.registrations)
    f = _follicle_of(tracks, 0, base.id)
    assert tracks.detected[f, 0] and tracks.detected[f, 2]
    assert tracks.recovered[f, 1] and not tracks.detected[f, 1] and tracks.present[f, 1]
    assert int(tracks.recovered.sum()) == 1  # every other hair was detected
    rec = tracks.recheck
    assert rec is not None
    # the recovered shaft is this hair's: near its exit, about its width, about its length
    dist_um = math.dist(rec.exit_px[f, 1], missed.exit_px) * UM
    assert dist_um <= RECHECK.recheck_position_um + 10.0
    assert rec.diameter_um[f, 1] == pytest.approx(missed.diameter_um, rel=0.35)
    assert rec.length_um[f, 1] == pytest.approx(missed.length_um, rel=0.35)

    table = tracks.to_table().set_index(["follicle_id", "visit_day"])
    row = table.loc[(f, 30)]
    assert row["present"] and row["recovered"] and pd.isna(row["hair_id"])
    assert table["recovered"].sum() == 1 and table["recovered"].dtype == bool

    ends = tracks.change_endpoints().set_index("visit_day").loc[30]
    assert ends["recovered_visit"] == 1 and ends["recovered_baseline"] == 0
    assert ends["shed"] == 0  # the miss no longer reads as a shed hair
    without = _track([first, detected, third], rendered, TrackConfig(recheck=False))
    assert without.recheck is None
    plain = without.change_endpoints().set_index("visit_day").loc[30]
    assert plain["shed"] == 1 and plain["count_change"] == ends["count_change"] - 1

    doc = json.loads(json.dumps(tracks.to_json()))
    obs = next(o for o in doc["follicles"][f]["observations"] if o["image"] == "v1.png")
    assert obs["recovered"] is True and obs["hair_id"] is None
    assert obs["diameter_um"] == pytest.approx(rec.diameter_um[f, 1], abs=0.01)
    assert doc["recheck"]["recovered"] == 1


def test_bare_skin_is_not_recovered_but_reported(rendered):
    first, second, third = (list(r.hairs) for r in rendered)
    shafts = np.concatenate([np.asarray(h.centerline_px) for h in first])
    # the bare spot farthest from every shaft, inside the field of both visits
    ys, xs = np.mgrid[120:360:4, 120:520:4]
    grid = np.column_stack([xs.ravel(), ys.ravel()]).astype(float)
    gap = np.min(np.hypot(*(grid[:, None, :] - shafts[None, ::4, :]).transpose(2, 0, 1)), axis=1)
    x, y = grid[int(np.argmax(gap))]
    assert gap.max() * UM > 150.0
    tip = (x + 10.0, y + 100.0)  # a 0.5 mm "hair" where the image shows skin
    false = HairRecord(
        id=len(first), exit_px=(x, y), tip_px=tip, centerline_px=((x, y), tip),
        diameter_um=70.0, length_um=500.0, hair_class="terminal", extra={},
    )  # fmt: skip

    tracks = _track([[*first, false], second, third], rendered)

    f = _follicle_of(tracks, 0, false.id)
    assert tracks.in_field[f, 1:].all() and not tracks.present[f, 1:].any()
    assert tracks.bare_skin[f, 1:].all()  # reported, and the detection is kept
    assert tracks.detected[f, 0]
    assert int(tracks.recovered.sum()) == 0
    doc = tracks.to_json()
    assert {"follicle_id": f, "image": "v1.png"} in doc["recheck"]["bare_skin"]
    # even when single detections may be recovered, skin stays skin
    eager = replace(RECHECK, recheck_min_visits=1)
    eager_tracks = _track([[*first, false], second, third], rendered, eager)
    assert int(eager_tracks.recovered.sum()) == 0 and eager_tracks.bare_skin[f, 1]
    ends = tracks.change_endpoints().iloc[0]
    assert ends["shed"] == 1  # a detection is never removed


def test_shaft_of_a_detected_hair_is_not_claimed(rendered):
    """A hair detected with its exit misplaced along the shaft is that hair, not a new one."""
    first, second, third = (list(r.hairs) for r in rendered)
    moved = _isolated(second)
    line = np.asarray(moved.centerline_px)
    # the detection starts 30 px (150 µm) down the shaft: too far to be matched
    arc = np.r_[0.0, np.cumsum(np.hypot(*np.diff(line, axis=0).T))]
    rest = line[arc >= 30.0]
    short = replace(
        moved, exit_px=tuple(rest[0]), centerline_px=tuple(map(tuple, rest)),
        length_um=moved.length_um - 150.0,
    )  # fmt: skip
    detected = [short if h is moved else h for h in second]
    base = next(h for h in first if h.extra["follicle_id"] == moved.extra["follicle_id"])

    tracks = _track([first, detected, third], rendered)

    f = _follicle_of(tracks, 0, base.id)
    assert not tracks.detected[f, 1]
    assert not tracks.recovered[f, 1]


def test_shaft_of_another_width_is_not_taken(rendered):
    first, second, third = (list(r.hairs) for r in rendered)
    missed = _isolated(second)
    fid = missed.extra["follicle_id"]
    # the follicle was measured 2.5× thicker elsewhere than the shaft now in its place
    first, third = (
        [replace(h, diameter_um=h.diameter_um * 2.5) if h.extra["follicle_id"] == fid else h
         for h in hairs]
        for hairs in (first, third)
    )  # fmt: skip
    detected = _renumber([h for h in second if h is not missed])

    tracks = _track([first, detected, third], rendered)

    assert int(tracks.recovered.sum()) == 0
    loose = _track([first, detected, third], rendered, replace(RECHECK, recheck_width_ratio=5.0))
    assert int(loose.recovered.sum()) == 1


def test_follicle_seen_once_is_only_recovered_when_asked(rendered):
    first, second, _ = (list(r.hairs) for r in rendered)
    missed = _isolated(second)
    detected = _renumber([h for h in second if h is not missed])
    tracks = _track([first, detected], rendered)  # two visits: the follicle is seen once
    assert int(tracks.recovered.sum()) == 0
    eager = _track([first, detected], rendered, replace(RECHECK, recheck_min_visits=1))
    assert int(eager.recovered.sum()) == 1


def test_no_images_or_off_no_recheck(rendered):
    first, second, third = (list(r.hairs) for r in rendered)
    assert not TrackConfig().recheck  # opt-in (docs/track.md)
    default = _track([first, _renumber(second[1:]), third], rendered, config=None)
    assert default.recheck is None
    tracks = track_site(
        [first, second[1:], third],
        visit_days=DAYS,
        um_per_px=[UM] * 3,
        shapes=[SHAPE] * 3,
        config=RECHECK,
    )
    assert tracks.recheck is None
    assert not tracks.recovered.any() and not tracks.bare_skin.any()
    assert (tracks.present == tracks.detected).all()
    assert tracks.to_json()["recheck"] is None
    assert not tracks.to_table()["recovered"].any()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"recheck": 1}, "recheck"),
        ({"recheck_position_um": 0.0}, "recheck_position_um"),
        ({"recheck_angle_deg": 120.0}, "recheck_angle_deg"),
        ({"recheck_contrast_share": 1.5}, "recheck_contrast_share"),
        ({"recheck_width_ratio": 0.5}, "recheck_width_ratio"),
    ],
)
def test_recheck_config_is_checked(kwargs, match):
    with pytest.raises(InputError, match=match):
        TrackConfig(**kwargs)
