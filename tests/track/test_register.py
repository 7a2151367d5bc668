import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hairtrial._validate import InputError
from hairtrial.records import HairRecord
from hairtrial.track import Registration, TrackConfig, register_visits
from hairtrial.track._geometry import apply, compose, invert
from tests.track._synth import make_site, make_visit, pose_matrix

UM = 5.0
SHAPE = (600, 800)
WIDTH_UM = SHAPE[1] * UM
SITE = make_site(700, side_um=9000.0, seed=11)
CENTRE = (4500.0, 4500.0)


def _pair(dx, dy, rot, scale, *, turnover=0.0, jitter=0.5, seed=0):
    rng = np.random.default_rng(seed)
    m0 = pose_matrix(um_per_px=UM, shape=SHAPE, centre_um=CENTRE)
    m1 = pose_matrix(
        um_per_px=UM,
        shape=SHAPE,
        centre_um=(CENTRE[0] + dx, CENTRE[1] + dy),
        rotation_deg=rot,
        scale=scale,
    )
    n = len(SITE.xy_um)
    p0 = rng.random(n) >= turnover
    p1 = rng.random(n) >= turnover
    v0 = make_visit(SITE, m0, shape=SHAPE, um_per_px=UM, present=p0, jitter_px=jitter, seed=seed)
    v1 = make_visit(
        SITE, m1, shape=SHAPE, um_per_px=UM, present=p1, jitter_px=jitter, seed=seed + 1
    )
    return v0, v1, compose(m0, invert(m1))


def _error_px(reg: Registration, truth: np.ndarray) -> float:
    grid = np.array([[x, y] for x in (0, SHAPE[1] / 2, SHAPE[1]) for y in (0, SHAPE[0])])
    return float(np.hypot(*(reg.apply(grid) - apply(truth, grid)).T).max())


@settings(max_examples=25, deadline=None)
@given(
    fx=st.floats(-0.4, 0.4),
    fy=st.floats(-0.2, 0.2),
    rot=st.floats(-30, 30),
    scale=st.floats(0.9, 1.1),
)
def test_recovers_known_similarity(fx, fy, rot, scale):
    v0, v1, truth = _pair(fx * WIDTH_UM, fy * WIDTH_UM, rot, scale, turnover=0.1)
    reg = register_visits([v0, v1], um_per_px=[UM, UM])[1]
    assert reg.ok, reg.reason
    assert _error_px(reg, truth) < 2.0
    assert reg.rotation_deg == pytest.approx(-rot, abs=0.5)
    assert reg.scale == pytest.approx(1 / scale, rel=0.01)
    assert 0 < reg.score <= 1
    assert reg.residual_px < 2.0


def test_first_visit_is_identity_and_fields():
    v0, v1, _ = _pair(300, 200, 10, 1.0)
    regs = register_visits([v0, v1], um_per_px=[UM, UM], shapes=[SHAPE, SHAPE])
    assert regs[0].ok and regs[0].method == "identity" and regs[0].score == 1.0
    np.testing.assert_allclose(regs[0].matrix, [[1, 0, 0], [0, 1, 0]])
    assert regs[1].method == "hairs" and len(regs[1].pairs) == regs[1].inliers
    info = regs[1].to_json()
    assert np.shape(info["matrix"]) == (2, 3) and info["ok"] is True


def test_stress_shift_rotation_scale_turnover():
    v0, v1, truth = _pair(0.4 * WIDTH_UM, 0.0, -30.0, 1.1, turnover=0.3, jitter=1.5, seed=4)
    reg = register_visits([v0, v1], um_per_px=[UM, UM], shapes=[SHAPE, SHAPE])[1]
    assert reg.ok, reg.reason
    assert _error_px(reg, truth) < 3.0


def test_calibration_difference_is_taken_into_account():
    # Same field, second image at a finer calibration: 1 px there is 4 µm.
    m0 = pose_matrix(um_per_px=UM, shape=SHAPE, centre_um=CENTRE)
    m1 = pose_matrix(um_per_px=4.0, shape=SHAPE, centre_um=(CENTRE[0] + 500, CENTRE[1]))
    v0 = make_visit(SITE, m0, shape=SHAPE, um_per_px=UM)
    v1 = make_visit(SITE, m1, shape=SHAPE, um_per_px=4.0)
    reg = register_visits([v0, v1], um_per_px=[UM, 4.0])[1]
    assert reg.ok
    assert reg.scale == pytest.approx(0.8, rel=0.005)


def test_affine_model_refines():
    v0, v1, truth = _pair(500, 100, 12, 1.03)
    reg = register_visits([v0, v1], um_per_px=[UM, UM], config=TrackConfig(model="affine"))[1]
    assert reg.ok and _error_px(reg, truth) < 2.0


def test_non_overlapping_fields_are_refused():
    m0 = pose_matrix(um_per_px=UM, shape=SHAPE, centre_um=(2000, 2000))
    m1 = pose_matrix(um_per_px=UM, shape=SHAPE, centre_um=(7000, 7000), rotation_deg=10)
    v0 = make_visit(SITE, m0, shape=SHAPE, um_per_px=UM)
    v1 = make_visit(SITE, m1, shape=SHAPE, um_per_px=UM, seed=3)
    assert len(v0) > 20 and len(v1) > 20
    reg = register_visits([v0, v1], um_per_px=[UM, UM], shapes=[SHAPE, SHAPE])[1]
    assert not reg.ok
    assert reg.reason
    assert 0 <= reg.score < 0.4


def test_unrelated_sites_are_refused():
    other = make_site(700, side_um=9000.0, seed=99)
    m0 = pose_matrix(um_per_px=UM, shape=SHAPE, centre_um=CENTRE)
    v0 = make_visit(SITE, m0, shape=SHAPE, um_per_px=UM)
    v1 = make_visit(other, m0, shape=SHAPE, um_per_px=UM)
    assert not register_visits([v0, v1], um_per_px=[UM, UM])[1].ok


def test_too_few_hairs_is_refused():
    v0, v1, _ = _pair(0, 0, 0, 1.0)
    reg = register_visits([v0, v1[:3]], um_per_px=[UM, UM])[1]
    assert not reg.ok and "too few" in reg.reason


def test_chains_through_an_intermediate_visit():
    # Visit 2 does not overlap visit 0 enough but overlaps visit 1.
    m0 = pose_matrix(um_per_px=UM, shape=SHAPE, centre_um=(2500, 4500))
    m1 = pose_matrix(um_per_px=UM, shape=SHAPE, centre_um=(4500, 4500), rotation_deg=5)
    m2 = pose_matrix(um_per_px=UM, shape=SHAPE, centre_um=(6500, 4500), rotation_deg=-5)
    visits = [
        make_visit(SITE, m, shape=SHAPE, um_per_px=UM, seed=i) for i, m in enumerate((m0, m1, m2))
    ]
    regs = register_visits(visits, um_per_px=[UM] * 3, shapes=[SHAPE] * 3)
    assert all(r.ok for r in regs), [r.reason for r in regs]
    assert regs[2].via == 1
    truth = compose(m0, invert(m2))
    assert _error_px(regs[2], truth) < 1.0


@pytest.mark.parametrize("seed", [0, 1])
def test_chains_two_visits_turned_opposite_ways(seed):
    # each later visit turns 30° and rescales 10 % against the first, the two opposite
    # ways: against each other 60° and 20 %, beyond the search against the first visit
    rng = np.random.default_rng(seed)
    m0 = pose_matrix(um_per_px=UM, shape=SHAPE, centre_um=(2500, 4500))
    m1 = pose_matrix(um_per_px=UM, shape=SHAPE, centre_um=(4000, 4500), rotation_deg=30, scale=1.1)
    m2 = pose_matrix(um_per_px=UM, shape=SHAPE, centre_um=(5700, 4500), rotation_deg=-30, scale=0.9)
    n = len(SITE.xy_um)
    visits = [
        make_visit(
            SITE,
            m,
            shape=SHAPE,
            um_per_px=UM,
            present=rng.random(n) >= 0.3,
            jitter_px=0.5,
            seed=seed + i,
        )
        for i, m in enumerate((m0, m1, m2))
    ]
    regs = register_visits(visits, um_per_px=[UM] * 3, shapes=[SHAPE] * 3)
    assert all(r.ok for r in regs), [r.reason for r in regs]
    assert regs[2].via == 1
    assert _error_px(regs[1], compose(m0, invert(m1))) < 3.0
    # two registrations composed, each within the 3 px of a single one
    assert _error_px(regs[2], compose(m0, invert(m2))) < 6.0


def _texture(seed: int = 0) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    noise = rng.random((500, 500)).astype(np.float32)
    img = cv2.GaussianBlur(noise, (0, 0), 3) * 0.6 + cv2.GaussianBlur(noise, (0, 0), 1) * 0.4
    img = (img - img.min()) / (img.max() - img.min()) * 255
    return img.astype(np.uint8)


def test_image_features_register_when_hairs_cannot():
    import cv2

    ref = _texture()
    theta, s, tx, ty = math.radians(12.0), 1.05, 30.0, -20.0
    centre_m = np.array(
        [
            [s * math.cos(theta), -s * math.sin(theta), tx],
            [s * math.sin(theta), s * math.cos(theta), ty],
        ]
    )
    mov = cv2.warpAffine(ref, centre_m, (500, 500))
    mov_before = mov.copy()
    regs = register_visits([[], []], um_per_px=[UM, UM], images=[ref, mov])
    reg = regs[1]
    assert reg.ok and reg.method == "image", reg.reason
    # warpAffine maps ref (pixel centres) to mov; ours maps mov → ref with corner origin.
    to_centre = np.array([[1.0, 0, -0.5], [0, 1.0, -0.5]])
    to_corner = np.array([[1.0, 0, 0.5], [0, 1.0, 0.5]])
    truth = compose(to_corner, compose(invert(centre_m), to_centre))
    grid = np.array([[100.0, 100.0], [400.0, 100.0], [250.0, 400.0]])
    assert np.hypot(*(reg.apply(grid) - apply(truth, grid)).T).max() < 2.0
    np.testing.assert_array_equal(mov, mov_before)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"um_per_px": 5.0}, "one calibration"),
        ({"um_per_px": [5.0]}, "expected 2"),
        ({"um_per_px": [5.0, None]}, "calibration"),
        ({"um_per_px": [5.0, -1.0]}, "positive"),
        ({"um_per_px": [5.0, 5.0], "shapes": [(10, 10)]}, "shapes"),
        ({"um_per_px": [5.0, 5.0], "images": [np.zeros((4, 4))]}, "images"),
        ({"um_per_px": [5.0, 5.0], "config": {"inlier_um": 3}}, "TrackConfig"),
    ],
)
def test_bad_inputs(kwargs, match):
    v0, v1, _ = _pair(0, 0, 0, 1.0)
    with pytest.raises(InputError, match=match):
        register_visits([v0, v1], **kwargs)


def test_bad_records():
    v0, _, _ = _pair(0, 0, 0, 1.0)
    with pytest.raises(InputError, match="HairRecord"):
        register_visits([v0, ["not a hair"]], um_per_px=[UM, UM])
    dup = [v0[0], v0[0]]
    with pytest.raises(InputError, match="twice"):
        register_visits([v0, dup], um_per_px=[UM, UM])
    with pytest.raises(InputError, match="at least one visit"):
        register_visits([], um_per_px=[])
    bad = HairRecord(
        id=0,
        exit_px=(1.0, 2.0),
        tip_px=(3.0, 4.0),
        centerline_px=(),
        diameter_um=float("nan"),
        length_um=1.0,
        hair_class="vellus",
    )
    with pytest.raises(InputError, match="diameter_um"):
        register_visits([v0, [bad]], um_per_px=[UM, UM])


def test_config_validation():
    with pytest.raises(InputError, match="model"):
        TrackConfig(model="projective")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="neighbours"):
        TrackConfig(neighbours=0)
    with pytest.raises(InputError, match="inlier_um"):
        TrackConfig(inlier_um=-1.0)
    with pytest.raises(InputError, match="along_stretch"):
        TrackConfig(along_stretch=0.5)
    assert TrackConfig().config_hash() == TrackConfig().config_hash()
    assert TrackConfig().config_hash() != TrackConfig(inlier_um=30.0).config_hash()


def test_low_detection_recall_still_registers():
    # 40 % of hairs missed independently in each image: a precise fit passes on a lower score.
    v0, v1, truth = _pair(400.0, 150.0, 12.0, 1.04, turnover=0.4, jitter=1.0, seed=9)
    reg = register_visits([v0, v1], um_per_px=[UM, UM], shapes=[SHAPE, SHAPE])[1]
    assert reg.ok, reg.reason
    assert reg.tight_share >= 0.75
    assert _error_px(reg, truth) < 2.0
