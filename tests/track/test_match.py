import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hairtrial._validate import InputError
from hairtrial.records import HairRecord
from hairtrial.track import Registration, TrackConfig, match_hairs, match_pair
from hairtrial.track._geometry import compose, invert
from tests.track._synth import make_site, make_visit, pose_matrix

UM = 5.0
SHAPE = (600, 800)
SITE = make_site(800, side_um=9000.0, seed=5)


def _hair(i, x, y, *, angle_deg=90.0, d=60.0, length=500.0, fid=None, reach_px=20.0):
    a = math.radians(angle_deg)
    tip = (x + reach_px * math.cos(a), y + reach_px * math.sin(a))
    return HairRecord(
        id=i,
        exit_px=(x, y),
        tip_px=tip,
        centerline_px=((x, y), tip),
        diameter_um=d,
        length_um=length,
        hair_class="terminal",
        extra={} if fid is None else {"follicle_id": fid},
    )


def test_one_to_one_with_turnover():
    rng = np.random.default_rng(2)
    n = len(SITE.xy_um)
    m0 = pose_matrix(um_per_px=UM, shape=SHAPE, centre_um=(4500, 4500))
    m1 = pose_matrix(um_per_px=UM, shape=SHAPE, centre_um=(4700, 4400), rotation_deg=8, scale=1.04)
    a = make_visit(
        SITE,
        m0,
        shape=SHAPE,
        um_per_px=UM,
        present=rng.random(n) > 0.3,
        jitter_px=1.5,
        diameter_noise_um=3,
        seed=1,
    )
    b = make_visit(
        SITE,
        m1,
        shape=SHAPE,
        um_per_px=UM,
        present=rng.random(n) > 0.3,
        jitter_px=1.5,
        diameter_noise_um=3,
        seed=2,
    )
    truth = compose(m0, invert(m1))
    result = match_hairs(a, b, transform=truth, um_per_px=UM)
    ids_a = [p[0] for p in result.pairs]
    ids_b = [p[1] for p in result.pairs]
    assert len(set(ids_a)) == len(ids_a) and len(set(ids_b)) == len(ids_b)
    fa = {h.id: h.extra["follicle_id"] for h in a}
    fb = {h.id: h.extra["follicle_id"] for h in b}
    correct = sum(fa[i] == fb[j] for i, j in result.pairs)
    n_true = len(set(fa.values()) & set(fb.values()))
    assert correct / len(result.pairs) >= 0.98
    assert correct / n_true >= 0.98
    assert len(result.pairs) + len(result.unmatched_a) == len(a)
    assert len(result.pairs) + len(result.unmatched_b) == len(b)
    assert max(result.distance_um) <= TrackConfig().match_gate_um


def test_direction_separates_hairs_of_one_unit():
    # Two hairs of one follicular unit 6 px (30 µm) apart, pointing different ways.
    a = [_hair(0, 100.0, 100.0, angle_deg=60), _hair(1, 106.0, 100.0, angle_deg=130)]
    # Next visit: shifted by 4 px so that position alone would pair them crosswise.
    b = [_hair(0, 108.0, 100.0, angle_deg=60), _hair(1, 102.0, 100.0, angle_deg=130)]
    identity = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    cfg = TrackConfig(local_radius_um=1.0)  # no neighbours to correct the shift
    result = match_hairs(a, b, transform=identity, um_per_px=UM, config=cfg)
    assert sorted(result.pairs) == [(0, 0), (1, 1)]


def test_shed_and_new_are_not_forced_into_a_pair():
    a = [_hair(0, 100.0, 100.0)]
    b = [_hair(0, 114.0, 100.0)]  # 70 µm away: inside the gate but a poor pair
    identity = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    far = match_hairs(a, b, transform=identity, um_per_px=UM)
    near = match_hairs(a, [_hair(0, 101.0, 100.0)], transform=identity, um_per_px=UM)
    assert near.pairs == ((0, 0),)
    assert far.pairs == () or far.distance_um[0] < TrackConfig().match_gate_um
    beyond = match_hairs(a, [_hair(0, 140.0, 100.0)], transform=identity, um_per_px=UM)
    assert beyond.pairs == () and beyond.unmatched_a == (0,) and beyond.unmatched_b == (0,)


def test_exit_misjudged_along_its_shaft_still_matches():
    # A field of sharp exits narrows the final gate to its floor (30 µm); one exit then
    # lies 40 µm further down its own shaft (a trace stopped short of the opening),
    # another 40 µm to the side (another hair): only the first is the same follicle.
    grid = [(60.0 + 40 * (k % 6), 60.0 + 40 * (k // 6)) for k in range(30)]
    a = [_hair(k, x, y, angle_deg=90) for k, (x, y) in enumerate(grid)]
    moved = {7: (0.0, 8.0), 14: (8.0, 0.0)}
    b = [
        _hair(k, x + moved.get(k, (0.0, 0.0))[0], y + moved.get(k, (0.0, 0.0))[1], angle_deg=90)
        for k, (x, y) in enumerate(grid)
    ]
    identity = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    result = match_hairs(a, b, transform=identity, um_per_px=UM)
    assert (7, 7) in result.pairs
    assert 14 in result.unmatched_a and 14 in result.unmatched_b
    assert len(result.pairs) == 29
    round_gate = match_hairs(
        a, b, transform=identity, um_per_px=UM, config=TrackConfig(along_stretch=1.0)
    )
    assert 7 in round_gate.unmatched_a and 14 in round_gate.unmatched_a


def _swapped(hair):
    """The same hair measured with its exit and tip the other way round."""
    return HairRecord(
        id=hair.id,
        exit_px=hair.tip_px,
        tip_px=hair.exit_px,
        centerline_px=tuple(reversed(hair.centerline_px)),
        diameter_um=hair.diameter_um,
        length_um=hair.length_um,
        hair_class=hair.hair_class,
    )


@pytest.mark.parametrize("side", ["a", "b"])
def test_hair_measured_with_its_ends_swapped_is_still_paired(side):
    # a field of hairs 20 px long that have grown to 35 px by the second image; hair 9
    # is measured the wrong way round in one image (the exit stays put, the tip moves on)
    grid = [(60.0 + 80 * (k % 6), 60.0 + 80 * (k // 6)) for k in range(30)]
    a = [_hair(k, x, y, angle_deg=70) for k, (x, y) in enumerate(grid)]
    b = [_hair(k, x + 0.5, y, angle_deg=70, reach_px=35.0) for k, (x, y) in enumerate(grid)]
    if side == "a":
        a[9] = _swapped(a[9])
    else:
        b[9] = _swapped(b[9])
    identity = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    result = match_hairs(a, b, transform=identity, um_per_px=UM)
    assert sorted(result.pairs) == [(k, k) for k in range(30)]
    assert (result.swapped_a, result.swapped_b) == (((9,), ()) if side == "a" else ((), (9,)))
    # the distance is between the ends that meet: the real exit and the swapped tip
    dist = dict(zip(result.pairs, result.distance_um, strict=True))[(9, 9)]
    assert dist == pytest.approx(0.5 * UM, abs=0.1)
    plain = match_hairs(
        a, b, transform=identity, um_per_px=UM, config=TrackConfig(swapped_ends=False)
    )
    assert len(plain.pairs) == 29 and 9 in plain.unmatched_a and 9 in plain.unmatched_b
    assert plain.swapped_a == plain.swapped_b == ()


def test_hairs_without_exit_are_ignored():
    a = [
        _hair(0, 100.0, 100.0),
        HairRecord(
            id=1,
            exit_px=None,
            tip_px=(5.0, 5.0),
            centerline_px=((0.0, 5.0), (5.0, 5.0)),
            diameter_um=50,
            length_um=10,
            hair_class="intermediate",
        ),
    ]
    result = match_hairs(a, [_hair(7, 100.5, 100.0)], transform=np.eye(2, 3), um_per_px=UM)
    assert result.pairs == ((0, 7),) and result.unmatched_a == ()


def test_bad_transforms():
    a = [_hair(0, 1.0, 1.0)]
    refused = Registration(
        matrix=np.eye(2, 3), score=0.1, inliers=2, residual_px=1.0, ok=False, reason="too few"
    )
    with pytest.raises(InputError, match="refused"):
        match_hairs(a, a, transform=refused, um_per_px=UM)
    with pytest.raises(InputError, match="2×3"):
        match_hairs(a, a, transform=np.eye(3), um_per_px=UM)
    with pytest.raises(InputError, match="singular"):
        match_hairs(a, a, transform=np.zeros((2, 3)), um_per_px=UM)
    with pytest.raises(InputError, match="um_per_px"):
        match_hairs(a, a, transform=np.eye(2, 3), um_per_px=0)


def test_phototrichogram_pair_growth():
    rng = np.random.default_rng(0)
    m0 = pose_matrix(um_per_px=UM, shape=SHAPE, centre_um=(4500, 4500))
    m1 = pose_matrix(um_per_px=UM, shape=SHAPE, centre_um=(4600, 4550), rotation_deg=-4)
    before = make_visit(SITE, m0, shape=SHAPE, um_per_px=UM, jitter_px=1.0)
    after = make_visit(SITE, m1, shape=SHAPE, um_per_px=UM, jitter_px=1.0, seed=1)
    growing = {h.extra["follicle_id"]: bool(rng.random() < 0.8) for h in after}
    after = [
        HairRecord(
            id=h.id,
            exit_px=h.exit_px,
            tip_px=h.tip_px,
            centerline_px=h.centerline_px,
            diameter_um=h.diameter_um,
            length_um=h.length_um + (1000.0 if growing[h.extra["follicle_id"]] else 0.0),
            hair_class=h.hair_class,
            extra=h.extra,
        )
        for h in after
    ]
    pair = match_pair(before, after, um_per_px=(UM, UM), shapes=(SHAPE, SHAPE))
    assert pair.registration.ok
    table = pair.to_table()
    assert list(table.columns) == [
        "hair_id_before",
        "hair_id_after",
        "length_before_um",
        "length_after_um",
        "growth_um",
        "diameter_before_um",
        "diameter_after_um",
        "distance_um",
    ]
    fb = {h.id: h.extra["follicle_id"] for h in before}
    fa = {h.id: h.extra["follicle_id"] for h in after}
    assert all(
        fb[i] == fa[j] for i, j in zip(table.hair_id_before, table.hair_id_after, strict=True)
    )
    expected = [1000.0 if growing[fa[j]] else 0.0 for j in table.hair_id_after]
    np.testing.assert_allclose(table["growth_um"], expected)


def test_phototrichogram_pair_refused():
    m0 = pose_matrix(um_per_px=UM, shape=SHAPE, centre_um=(2000, 2000))
    m1 = pose_matrix(um_per_px=UM, shape=SHAPE, centre_um=(7000, 7000))
    before = make_visit(SITE, m0, shape=SHAPE, um_per_px=UM)
    after = make_visit(SITE, m1, shape=SHAPE, um_per_px=UM)
    pair = match_pair(before, after, um_per_px=(UM, UM))
    assert not pair.registration.ok
    assert pair.match.pairs == () and len(pair.to_table()) == 0


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(0, 60),
    keep=st.floats(0.5, 1.0),
    jitter=st.floats(0.0, 1.5),
    seed=st.integers(0, 2**16),
)
def test_matching_is_one_to_one_and_finds_isolated_hairs(n, keep, jitter, seed):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 800, size=(n, 2))
    angles = rng.uniform(0, 360, size=n)
    a = [_hair(i, *xy[i], angle_deg=angles[i], fid=i) for i in range(n)]
    kept = np.flatnonzero(rng.random(n) < keep)
    moved = xy[kept] + rng.normal(0, jitter, size=(len(kept), 2)) if len(kept) else xy[kept]
    b = [_hair(k, *moved[k], angle_deg=angles[i], fid=int(i)) for k, i in enumerate(kept)]
    result = match_hairs(a, b, transform=np.eye(2, 3), um_per_px=UM)
    ids_a = [p[0] for p in result.pairs]
    ids_b = [p[1] for p in result.pairs]
    assert len(set(ids_a)) == len(ids_a) and len(set(ids_b)) == len(ids_b)
    assert set(ids_a).isdisjoint(result.unmatched_a) and set(ids_b).isdisjoint(result.unmatched_b)
    assert len(ids_a) + len(result.unmatched_a) == n
    assert all(d <= TrackConfig().match_gate_um for d in result.distance_um)
    # A hair with no other hair within 2 gates in either image must be found.
    gate_px = 2 * TrackConfig().match_gate_um / UM
    for k, i in enumerate(kept):
        others = np.delete(xy, i, axis=0)
        if len(others) == 0 or np.hypot(*(others - xy[i]).T).min() > gate_px:
            assert (int(i), k) in result.pairs
