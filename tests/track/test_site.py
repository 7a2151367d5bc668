import json
import math

import numpy as np
import pandas as pd
import pytest

from hairtrial._validate import InputError
from hairtrial.records import HairRecord
from hairtrial.track import TrackConfig, track_site
from hairtrial.track.metrics import identity_kept, pair_scores, registration_errors_px, truth_labels
from tests.factories import small_preset
from tests.track._synth import make_site, make_visit, pose_matrix

UM = 5.0
SHAPE = (600, 800)
SITE = make_site(700, side_um=9000.0, seed=21)
DAYS = [0, 30, 90, 210, 270]


def _sequence(present: np.ndarray, *, diameter_change=None, seed=0):
    rng = np.random.default_rng(seed)
    visits, mats = [], []
    for v in range(present.shape[1]):
        if v == 0:
            m = pose_matrix(um_per_px=UM, shape=SHAPE, centre_um=(4500, 4500))
        else:
            m = pose_matrix(
                um_per_px=UM,
                shape=SHAPE,
                centre_um=(4500 + rng.uniform(-600, 600), 4500 + rng.uniform(-400, 400)),
                rotation_deg=rng.uniform(-10, 10),
                scale=rng.uniform(0.95, 1.05),
            )
        change = None if diameter_change is None else diameter_change[:, v]
        visits.append(
            make_visit(
                SITE,
                m,
                shape=SHAPE,
                um_per_px=UM,
                present=present[:, v],
                jitter_px=1.0,
                diameter_change_um=change,
                seed=v,
            )
        )
        mats.append(m)
    return visits, mats


def _fid_tracks(tracks, visits):
    """truth follicle id → set of tracked ids over visits."""
    out = {}
    for v, hairs in enumerate(visits):
        ids = tracks.follicle_ids(v)
        for h in hairs:
            out.setdefault(h.extra["follicle_id"], set()).add(ids.get(h.id))
    return out


def test_identity_kept_through_a_gap_and_new_ids_for_new_follicles():
    n = len(SITE.xy_um)
    rng = np.random.default_rng(1)
    present = np.ones((n, 5), dtype=bool)
    gap = rng.choice(n, size=n // 5, replace=False)
    present[gap, 1] = False  # telogen or a missed detection at visit 1
    present[gap[: n // 10], 2] = False  # a two-visit gap for half of them
    late = rng.choice(np.setdiff1d(np.arange(n), gap), size=n // 10, replace=False)
    present[late, :3] = False  # new follicles from visit 3 on
    visits, _ = _sequence(present)
    tracks = track_site(visits, visit_days=DAYS, um_per_px=[UM] * 5, shapes=[SHAPE] * 5)
    assert all(r.ok for r in tracks.registrations)
    by_fid = _fid_tracks(tracks, visits)
    gapped = [f for f in gap if f in by_fid and None not in by_fid[f]]
    assert gapped, "some gapped follicles are in every field"
    assert all(len(by_fid[f]) == 1 for f in gapped)
    labels = truth_labels(visits)
    assert identity_kept(tracks, labels) >= 0.99
    # Late follicles: new ids, not an earlier follicle's id.
    first_ids = set(tracks.follicle_ids(0).values())
    late_seen = [f for f in late if f in by_fid]
    assert late_seen
    assert all(not (by_fid[f] & first_ids) for f in late_seen)


def test_table_json_and_endpoints():
    n = len(SITE.xy_um)
    present = np.ones((n, 3), dtype=bool)
    rng = np.random.default_rng(3)
    shed = rng.choice(n, size=n // 10, replace=False)
    present[shed, 1:] = False
    change = np.zeros((n, 3))
    change[:, 1:] = 5.0  # every hair thickens by 5 µm
    visits, _ = _sequence(present, diameter_change=change)
    before = [list(v) for v in visits]
    tracks = track_site(
        visits,
        visit_days=[0, 30, 90],
        um_per_px=[UM] * 3,
        shapes=[SHAPE] * 3,
        image_names=["a.jpg", "b.jpg", "c.jpg"],
    )
    assert [list(v) for v in visits] == before  # inputs untouched
    table = tracks.to_table()
    assert list(table.columns)[:8] == [
        "follicle_id",
        "visit_day",
        "present",
        "diameter_um",
        "class",
        "length_um",
        "image",
        "hair_id",
    ]
    assert table["hair_id"].dtype == "Int64" and table["present"].dtype == bool
    assert set(table["image"]) == {"a.jpg", "b.jpg", "c.jpg"}
    absent = table[~table["present"]]
    assert absent["diameter_um"].isna().all() and absent["hair_id"].isna().all()
    assert not table.duplicated(["follicle_id", "visit_day"]).any()

    ends = tracks.change_endpoints(baseline_day=0)
    assert list(ends["visit_day"]) == [30, 90]
    row = ends.iloc[0]
    assert row["registered"]
    assert row["count_change"] == row["new"] - row["shed"]
    assert row["new"] == 0
    assert row["shed"] >= 1
    assert row["diameter_change_um"] == pytest.approx(5.0, abs=0.01)
    assert row["diameter_change_below_index_um"] == pytest.approx(5.0, abs=0.01)
    assert row["to_terminal"] >= 1 and row["from_terminal"] == 0

    doc = tracks.to_json()
    text = json.dumps(doc)  # serialisable
    assert json.loads(text)["images"][0]["image"] == "a.jpg"
    assert set(doc["images"][1]) >= {"image", "matrix", "score"}
    assert np.shape(doc["images"][1]["matrix"]) == (2, 3)
    first = doc["follicles"][0]
    assert set(first) == {"follicle_id", "observations"}
    assert set(first["observations"][0]) == {"image", "hair_id", "exit_px"}
    with pytest.raises(InputError, match="baseline_day"):
        tracks.change_endpoints(baseline_day=5)


def test_refused_visit_is_not_tracked():
    n = len(SITE.xy_um)
    present = np.ones((n, 2), dtype=bool)
    visits, _ = _sequence(present)
    far = pose_matrix(um_per_px=UM, shape=SHAPE, centre_um=(1200, 1200))
    elsewhere = make_visit(make_site(700, side_um=9000.0, seed=77), far, shape=SHAPE, um_per_px=UM)
    tracks = track_site(
        [visits[0], visits[1], elsewhere],
        visit_days=[0, 30, 60],
        um_per_px=[UM] * 3,
        shapes=[SHAPE] * 3,
    )
    assert tracks.registrations[1].ok and not tracks.registrations[2].ok
    assert tracks.follicle_ids(2) == {}
    table = tracks.to_table()
    assert 60 not in set(table["visit_day"])
    ends = tracks.change_endpoints()
    assert not ends.set_index("visit_day").loc[60, "registered"]
    assert tracks.to_json()["images"][2]["ok"] is False


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"visit_days": [0]}, "visit_days"),
        ({"visit_days": [0, 0]}, "increasing"),
        ({"visit_days": [0, 1.5]}, "whole days"),
        ({"visit_days": [0, 30], "um_per_px": [UM]}, "um_per_px"),
        ({"visit_days": [0, 30], "image_names": ["a"]}, "image_names"),
        ({"visit_days": [0, 30], "hidden_rows": [(0, 0)]}, r"hidden_rows: expected 2"),
        ({"visit_days": [0, 30], "hidden_rows": [(0, 0), (-1, 0)]}, r"hidden_rows\[1\]"),
        ({"visit_days": [0, 30], "hidden_rows": [(0, 0), (2.5, 0)]}, r"hidden_rows\[1\]"),
        ({"visit_days": [0, 30], "hidden_rows": [(0, 0), "ab"]}, r"hidden_rows\[1\]"),
        ({"visit_days": [0, 30], "hidden_rows": "00"}, "one .top, bottom. pair"),
    ],
)
def test_bad_inputs(kwargs, match):
    visits, _ = _sequence(np.ones((len(SITE.xy_um), 2), dtype=bool))
    args = {"um_per_px": [UM, UM], **kwargs}
    with pytest.raises(InputError, match=match):
        track_site(visits, **args)


def test_empty_visits():
    empty: list[HairRecord] = []
    tracks = track_site([empty, empty], visit_days=[0, 30], um_per_px=[UM, UM])
    assert tracks.n_follicles == 0
    assert not tracks.registrations[1].ok
    assert len(tracks.to_table()) == 0
    assert tracks.to_json()["follicles"] == []


@pytest.fixture(scope="module")
def written_trial(tmp_path_factory):
    from hairtrial.simulate.trial import write_trial

    out = tmp_path_factory.mktemp("trial")
    write_trial(small_preset(subjects=1, field_cm2=0.3), out, seed=3)
    return out


def _load_site(folder, site):
    manifest = pd.read_csv(folder / "manifest.csv")
    rows = manifest[manifest["site"] == site].sort_values("visit_day")
    shape = json.loads((folder / "trial.json").read_text())["imaging"]["shape_px"]
    hairs, days, cal, names = [], [], [], []
    for row in rows.itertuples():
        truth = json.loads((folder / row.image).with_suffix(".truth.json").read_text())
        hairs.append([HairRecord.from_json(h) for h in truth["hairs"]])
        days.append(int(row.visit_day))
        cal.append(float(row.um_per_px))
        names.append(str(row.image))
    return hairs, days, cal, names, (int(shape[0]), int(shape[1]))


@pytest.mark.slow
@pytest.mark.parametrize("site", ["S001-L", "S001-R"])
def test_simulated_trial_truth_tracked(written_trial, site):
    hairs, days, cal, names, shape = _load_site(written_trial, site)
    assert len(days) == 5 and all(len(h) > 20 for h in hairs)
    tracks = track_site(
        hairs, visit_days=days, um_per_px=cal, shapes=[shape] * len(days), image_names=names
    )
    assert all(r.ok for r in tracks.registrations)
    labels = truth_labels(hairs)
    scores = pair_scores(tracks, labels)
    assert all(s.precision >= 0.98 and s.recall >= 0.98 for s in scores)
    assert identity_kept(tracks, labels) >= 0.95
    errors = np.concatenate(list(registration_errors_px(tracks, hairs).values()))
    assert np.median(errors) < 1.0
    # The registration agrees with the simulator's camera poses.
    truth0 = json.loads((written_trial / names[0]).with_suffix(".truth.json").read_text())
    truth1 = json.loads((written_trial / names[1]).with_suffix(".truth.json").read_text())
    # CameraPose turns the field counter-clockwise on screen; rotation_deg goes from +x
    # towards +y (clockwise on screen), so undoing visit 1's turn relative to visit 0 is +turn.
    turn = truth1["pose"]["rotation_deg"] - truth0["pose"]["rotation_deg"]
    assert tracks.registrations[1].rotation_deg == pytest.approx(turn, abs=0.3)
    ends = tracks.change_endpoints()
    assert len(ends) == 4 and ends["registered"].all()
    assert not math.isnan(ends["diameter_change_um"].iloc[0])


def test_config_is_used():
    visits, _ = _sequence(np.ones((len(SITE.xy_um), 2), dtype=bool))
    strict = TrackConfig(min_inliers=10_000)
    tracks = track_site(visits, visit_days=[0, 30], um_per_px=[UM, UM], config=strict)
    assert not tracks.registrations[1].ok
    assert tracks.config_hash == strict.config_hash()


def _swap_ends(hair: HairRecord) -> HairRecord:
    """The same hair measured with its exit and tip the wrong way round."""
    return HairRecord(
        id=hair.id, exit_px=hair.tip_px, tip_px=hair.exit_px,
        centerline_px=tuple(reversed(hair.centerline_px)), diameter_um=hair.diameter_um,
        length_um=hair.length_um, hair_class=hair.hair_class, extra=dict(hair.extra),
    )  # fmt: skip


def _swapped_sequence(visit_swapped: int):
    present = np.ones((len(SITE.xy_um), 3), dtype=bool)
    visits, _ = _sequence(present, seed=4)
    # a hair well inside every field, its tip too
    inner = [
        h.extra["follicle_id"] for h in visits[visit_swapped]
        if 150 < h.exit_px[0] < 650 and 150 < h.exit_px[1] < 450
        and 100 < h.tip_px[0] < 700 and 100 < h.tip_px[1] < 500
    ]  # fmt: skip
    fid = inner[len(inner) // 2]
    visits[visit_swapped] = [
        _swap_ends(h) if h.extra["follicle_id"] == fid else h for h in visits[visit_swapped]
    ]
    return visits, fid


@pytest.mark.parametrize("visit_swapped", [0, 1, 2])
def test_hair_measured_with_its_ends_swapped_keeps_its_follicle(visit_swapped):
    """A hair whose exit was judged at the wrong end at one visit (the first, a middle
    one or the last) stays with its follicle; the tracking marks the swap and reports
    the real exit."""
    visits, fid = _swapped_sequence(visit_swapped)
    days = DAYS[:3]
    on = track_site(visits, visit_days=days, um_per_px=[UM] * 3, shapes=[SHAPE] * 3)
    ids = _fid_tracks(on, visits)
    assert len(ids[fid]) == 1
    f = next(iter(ids[fid]))
    assert on.ends_swapped is not None
    assert on.ends_swapped[f].tolist() == [v == visit_swapped for v in range(3)]
    assert on.ends_swapped.sum() == 1
    obs = on.to_json()["follicles"][f]["observations"][visit_swapped]
    real = next(h for h in visits[visit_swapped] if h.extra["follicle_id"] == fid).tip_px
    assert obs["ends_swapped"] is True and obs["exit_px"] == pytest.approx(real, abs=0.01)
    # the other follicles are untouched
    assert all(len(v) == 1 for k, v in ids.items() if k != fid)
    off = track_site(visits, visit_days=days, um_per_px=[UM] * 3, shapes=[SHAPE] * 3,
                     config=TrackConfig(swapped_ends=False))  # fmt: skip
    assert len(_fid_tracks(off, visits)[fid]) == 2


def test_hairs_without_a_tip_are_tracked_by_their_exits():
    """Points-only records (no tip known) take no part in the swapped-ends try."""
    from dataclasses import replace as rep

    present = np.ones((len(SITE.xy_um), 2), dtype=bool)
    visits, _ = _sequence(present, seed=6)
    points_only = [[rep(h, tip_px=(math.nan, math.nan), centerline_px=(h.exit_px,))
                    for h in hairs] for hairs in visits]  # fmt: skip
    tracks = track_site(points_only, visit_days=DAYS[:2], um_per_px=[UM] * 2,
                        shapes=[SHAPE] * 2)  # fmt: skip
    ids = _fid_tracks(tracks, points_only)
    assert sum(len(v) == 1 for v in ids.values()) >= 0.95 * len(ids)
    assert tracks.ends_swapped is not None and not tracks.ends_swapped.any()


def test_rows_under_a_status_bar_are_not_part_of_the_field():
    # the second visit's image has a burned-in bar over its top 40 rows: a follicle whose
    # exit lies there cannot be seen, so it is neither present nor absent at that visit
    n = len(SITE.xy_um)
    present = np.ones((n, 2), dtype=bool)
    visits, _ = _sequence(present, seed=5)
    rng = np.random.default_rng(0)
    skin = np.clip(rng.normal((200, 160, 140), 4, (*SHAPE, 3)), 0, 255).astype(np.uint8)
    barred = skin.copy()
    barred[:40] = 20
    kwargs = {"visit_days": [0, 30], "um_per_px": [UM, UM]}
    plain = track_site(visits, shapes=[SHAPE, SHAPE], **kwargs)
    tracks = track_site(visits, images=[skin, barred], **kwargs)
    hidden = 42  # the bar and the mask's rows past its edge
    margin = TrackConfig().field_margin_um / UM
    assert tracks.fields[1].contains(np.array([[400.0, hidden + margin + 1]]))[0]
    assert not tracks.fields[1].contains(np.array([[400.0, hidden - 1.0]]))[0]
    # where each follicle's exit lies in the second image
    second = np.full(tracks.n_follicles, np.nan)
    for h, f in tracks.follicle_ids(1).items():
        second[f] = visits[1][h].exit_px[1]
    under = (second > margin + 2) & (second < hidden + margin - 2)
    assert under.sum() >= 5
    assert plain.in_field[under, 1].all() and not tracks.in_field[under, 1].any()
    clear = second > hidden + margin + 2
    assert np.array_equal(tracks.in_field[clear], plain.in_field[clear])
    # the hidden strip leaves the count change: fewer follicles are judged at both visits
    both = tracks.change_endpoints(0).iloc[0]
    assert both["count_change"] == 0
    assert tracks.in_field[:, 0].sum() == plain.in_field[:, 0].sum()
    assert (tracks.in_field.all(axis=1)).sum() < (plain.in_field.all(axis=1)).sum()
    assert tracks.hair_index.tolist() == plain.hair_index.tolist()  # matching unchanged
    # the rows as the measurement reports them (ImageMeasurement.hidden_rows) do the same
    given = track_site(visits, shapes=[SHAPE, SHAPE], hidden_rows=[(0, 0), (42, 0)], **kwargs)
    assert np.array_equal(given.in_field, tracks.in_field)
