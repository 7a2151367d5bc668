from dataclasses import replace

import numpy as np
import pytest

from hairtrial._validate import InputError
from hairtrial.track import track_site
from hairtrial.track.metrics import (
    change_errors,
    identity_kept,
    pair_scores,
    registration_errors_px,
    truth_labels,
)
from tests.track._synth import make_site, make_visit, pose_matrix

UM = 5.0
SHAPE = (600, 800)
SITE = make_site(600, side_um=9000.0, seed=8)


@pytest.fixture(scope="module")
def tracked():
    n = len(SITE.xy_um)
    rng = np.random.default_rng(0)
    present = rng.random((n, 3)) > 0.1
    change = np.zeros((n, 3))
    change[:, 2] = 4.0
    visits = []
    for v, (dx, rot) in enumerate([(0, 0), (300, 6), (-250, -8)]):
        m = pose_matrix(um_per_px=UM, shape=SHAPE, centre_um=(4500 + dx, 4500), rotation_deg=rot)
        visits.append(
            make_visit(
                SITE,
                m,
                shape=SHAPE,
                um_per_px=UM,
                present=present[:, v],
                diameter_change_um=change[:, v],
                seed=v,
            )
        )
    tracks = track_site(visits, visit_days=[0, 30, 90], um_per_px=[UM] * 3, shapes=[SHAPE] * 3)
    return tracks, visits


def test_perfect_tracking_scores_perfectly(tracked):
    tracks, visits = tracked
    labels = truth_labels(visits)
    scores = pair_scores(tracks, labels)
    assert [(s.visit_a, s.visit_b) for s in scores] == [(0, 1), (0, 2), (1, 2)]
    assert all(s.precision == 1.0 and s.recall == 1.0 for s in scores)
    assert identity_kept(tracks, labels) == 1.0
    errors = registration_errors_px(tracks, visits)
    assert set(errors) == {1, 2} and all(np.median(e) < 0.05 for e in errors.values())
    changes = change_errors(tracks, visits, labels)
    assert list(changes["visit_day"]) == [30, 90]
    assert (changes["count_change_error"] == 0).all()
    assert changes["diameter_change_mae_um"].max() < 1e-9
    ends = tracks.change_endpoints().set_index("visit_day")
    assert ends.loc[90, "diameter_change_um"] == pytest.approx(4.0)


def test_wrong_links_lower_precision_and_identity(tracked):
    tracks, visits = tracked
    index = tracks.hair_index.copy()
    both = np.flatnonzero((index[:, 0] >= 0) & (index[:, 1] >= 0))
    a, b = both[:2]
    index[[a, b], 1] = index[[b, a], 1]  # swap two follicles' hairs at visit 1
    broken = replace(tracks, hair_index=index)
    labels = truth_labels(visits)
    first = pair_scores(broken, labels)[0]
    assert first.n_correct == first.n_predicted - 2
    assert first.precision < 1.0 and first.recall < 1.0
    assert identity_kept(broken, labels) < 1.0


def test_false_hairs_are_labelled_none(tracked):
    _, visits = tracked
    hair = visits[0][0]
    false = replace(hair, extra={"follicle_id": None})
    assert truth_labels([[false]]) == [{hair.id: None}]


def test_metric_inputs_are_checked(tracked):
    tracks, visits = tracked
    with pytest.raises(InputError, match="one per visit"):
        pair_scores(tracks, truth_labels(visits[:2]))
    with pytest.raises(InputError, match="SiteTracks"):
        identity_kept("tracks", truth_labels(visits))  # type: ignore[arg-type]


def test_labels_from_truth_joins_exits(tracked):
    from dataclasses import replace as rep

    from hairtrial.track.metrics import labels_from_truth

    _, visits = tracked
    truth = visits[0]
    shifted = [rep(h, exit_px=(h.exit_px[0] + 2.0, h.exit_px[1]), extra={}) for h in truth[:5]]
    far = rep(truth[5], id=999, exit_px=(truth[5].exit_px[0] + 50.0, truth[5].exit_px[1]), extra={})
    labels = labels_from_truth([[*shifted, far]], [truth])[0]
    assert all(
        labels[h.id] == h2.extra["follicle_id"] for h, h2 in zip(shifted, truth, strict=False)
    )
    assert labels[999] is None
    with pytest.raises(InputError, match="visits"):
        labels_from_truth([[]], [[], []])


def test_labels_from_truth_joins_a_hair_seen_with_its_ends_swapped(tracked):
    from dataclasses import replace as rep

    from hairtrial.track.metrics import labels_from_truth

    _, visits = tracked
    truth = visits[0]
    hair = truth[6]
    swapped = rep(hair, id=500, exit_px=hair.tip_px, tip_px=hair.exit_px, extra={})
    plain = rep(truth[7], id=501, extra={})
    labels = labels_from_truth([[swapped, plain]], [truth])[0]
    assert labels == {500: hair.extra["follicle_id"], 501: truth[7].extra["follicle_id"]}
    assert labels_from_truth([[swapped, plain]], [truth], tips=False)[0][500] is None
    # an exit pair is never given up for a tip pair
    rival = rep(hair, id=502, extra={})
    both = labels_from_truth([[swapped, rival]], [truth])[0]
    assert both == {500: None, 502: hair.extra["follicle_id"]}
