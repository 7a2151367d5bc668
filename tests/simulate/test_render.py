import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.ndimage import map_coordinates

from hairtrial._validate import InputError
from hairtrial.records import HairClasses
from hairtrial.simulate.render import (
    HAIR_COLOURS,
    REQUIRED_COLUMNS,
    CameraPose,
    RenderStyle,
    encode_jpeg_roundtrip,
    random_style,
    render_field,
)

UM = 5.0
SHAPE = (240, 320)  # (H, W) px: 1.6 x 1.2 mm at 5 µm/px

# A calm look: no clutter, flat light, mild blur and noise, so checks measure the hairs.
QUIET = RenderStyle(
    skin_rgb=(0.85, 0.74, 0.64),
    skin_texture=0.3,
    skin_sheen=0.1,
    empty_opening_density=0.0,
    yellow_dot_fraction=0.0,
    perifollicular_pigment=0.0,
    scale_flake_density=0.0,
    vignetting=0.0,
    illumination_gradient=0.0,
    blur_sigma_px=0.7,
    blur_edge_gain=0.0,
    noise_sigma=1.0,
    sharpen=0.0,
)


def follicle(
    fid,
    x,
    y,
    *,
    fu=None,
    diameter=70.0,
    length=800.0,
    azimuth=0.0,
    elevation=30.0,
    phase="anagen",
    shaft=True,
    **extra,
):
    row = {
        "follicle_id": fid,
        "fu_id": fid if fu is None else fu,
        "x_um": float(x),
        "y_um": float(y),
        "phase": phase,
        "has_shaft": shaft,
        "diameter_um": diameter if shaft else np.nan,
        "length_um": length if shaft else np.nan,
        "azimuth_deg": azimuth if shaft else np.nan,
        "elevation_deg": elevation if shaft else np.nan,
    }
    row.update(extra)
    return row


def table(rows):
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in REQUIRED_COLUMNS})
    return pd.DataFrame(rows)


def centred_pose(shape=SHAPE, um=UM, **kw):
    return CameraPose(centre_x_um=shape[1] * um / 2, centre_y_um=shape[0] * um / 2, **kw)


def render(df, *, style=QUIET, pose=None, seed=0, shape=SHAPE, um=UM, **kw):
    pose = centred_pose(shape, um) if pose is None else pose
    return render_field(df, um_per_px=um, shape=shape, pose=pose, style=style, seed=seed, **kw)


def grey(image):
    return image.astype(float).mean(axis=2)


def sample(img, x, y):
    """Bilinear samples at corner-origin pixel coordinates."""
    return map_coordinates(img, [np.asarray(y) - 0.5, np.asarray(x) - 0.5], order=1, mode="nearest")


def shaft_and_ring(img, hair, diameter_px):
    """Mean grey level along the middle of the truth centreline and 3-6 diameters beside."""
    pts = np.asarray(hair.centerline_px)
    n = len(pts)
    mid = pts[int(0.25 * n) : max(int(0.9 * n), int(0.25 * n) + 1)]
    tang = np.gradient(pts, axis=0)[int(0.25 * n) : max(int(0.9 * n), int(0.25 * n) + 1)]
    tang /= np.maximum(np.hypot(tang[:, 0], tang[:, 1]), 1e-9)[:, None]
    normal = np.stack([-tang[:, 1], tang[:, 0]], axis=1)
    on = sample(img, mid[:, 0], mid[:, 1]).mean()
    ring = []
    for k in (3.0, 4.0, 5.0, 6.0):
        for sign in (-1.0, 1.0):
            p = mid + sign * k * diameter_px * normal
            ok = (p[:, 0] > 0) & (p[:, 0] < img.shape[1]) & (p[:, 1] > 0) & (p[:, 1] < img.shape[0])
            ring.extend(sample(img, p[ok, 0], p[ok, 1]))
    return on, float(np.mean(ring))


def spread_hairs(n, rng, *, shape=SHAPE, um=UM, **kw):
    """Hairs on a coarse grid (so their rings do not overlap other hairs)."""
    rows = []
    cols = max(1, int(math.sqrt(n * shape[1] / shape[0])))
    for i in range(n):
        gx, gy = i % cols, i // cols
        x = (gx + 0.3) * shape[1] * um / cols
        y = (gy + 0.5) * shape[0] * um / math.ceil(n / cols)
        rows.append(follicle(i, x, y, azimuth=float(rng.uniform(-20, 20)), **kw))
    return table(rows)


# ---------------------------------------------------------------------------- truth honesty


def test_pigmented_hairs_are_darker_along_their_truth_centreline():
    rng = np.random.default_rng(0)
    df = spread_hairs(6, rng, diameter=60.0, length=700.0)
    out = render(df)
    img = grey(out.image)
    assert len(out.hairs) == 6
    for hair in out.hairs:
        on, ring = shaft_and_ring(img, hair, hair.diameter_um / UM)
        assert on < ring - 60, (hair.extra, on, ring)


@pytest.mark.parametrize("preset", ["standard", "hard"])
def test_truth_is_honest_under_random_looks(preset):
    rng = np.random.default_rng(1)
    df = spread_hairs(6, rng, diameter=70.0, length=700.0)
    gaps = []
    for k in range(4):
        style = random_style(np.random.default_rng(k), preset=preset)
        if style.hair_colour in ("white", "grey") or style.grey_fraction > 0:
            style = random_style(
                np.random.default_rng(k), preset=preset, hair_colour="black", grey_fraction=0.0
            )
        out = render(df, style=style, seed=k)
        img = grey(out.image)
        for hair in out.hairs:
            on, ring = shaft_and_ring(img, hair, hair.diameter_um / UM)
            gaps.append(ring - on)
    assert np.mean(gaps) > 25
    assert np.mean(np.array(gaps) > 0) > 0.9


def test_white_hair_on_dark_skin_is_brighter():
    style = RenderStyle(
        **{**QUIET.__dict__, "skin_rgb": (0.36, 0.24, 0.17), "hair_colour": "white"}
    )
    df = spread_hairs(4, np.random.default_rng(2), diameter=80.0, length=700.0)
    out = render(df, style=style)
    img = grey(out.image)
    for hair in out.hairs:
        on, ring = shaft_and_ring(img, hair, hair.diameter_um / UM)
        assert on > ring + 15, (on, ring)


def test_grey_pigment_column_makes_hairs_pale():
    df = spread_hairs(4, np.random.default_rng(3), diameter=80.0, length=700.0)
    dark = render(df)
    pale = render(df.assign(pigment=0.05))
    d_img, p_img = grey(dark.image), grey(pale.image)
    for hd, hp in zip(dark.hairs, pale.hairs, strict=True):
        on_d, ring_d = shaft_and_ring(d_img, hd, 16)
        on_p, ring_p = shaft_and_ring(p_img, hp, 16)
        assert ring_p - on_p < 0.5 * (ring_d - on_d)


def cross_profile_width(diameter):
    """Full width at half darkness across a horizontal shaft (px)."""
    df = table([follicle(0, 400.0, 600.0, diameter=diameter, length=1100.0, azimuth=0.0)])
    out = render(df)
    img = grey(out.image)
    cols = img[:, 140:200].mean(axis=1)
    background = np.median(img[:, 140:200])
    dark = background - cols
    half = dark.max() / 2
    above = np.flatnonzero(dark >= half)
    return above[-1] - above[0] + 1, out


def test_darkness_profile_widens_with_diameter():
    widths = [cross_profile_width(d)[0] for d in (25.0, 50.0, 80.0, 110.0)]
    assert widths == sorted(widths)
    assert widths[-1] > widths[0] + 8
    # At 5 µm/px a 110 µm shaft is 22 px wide; the half-darkness width follows it.
    assert abs(widths[-1] - 22) <= 4


def test_thin_hair_darkness_is_integrated_correctly_at_any_subpixel_offset():
    style = RenderStyle(
        **{
            **QUIET.__dict__,
            "noise_sigma": 0.0,
            "blur_sigma_px": 0.0,
            "skin_texture": 0.0,
            "skin_sheen": 0.0,
            "follicle_opening_strength": 0.0,
            "subsurface_visibility": 0.0,
        }
    )
    totals = []
    for offset in (0.0, 0.25, 0.5, 0.75):
        y = 600.0 + offset * UM
        df = table([follicle(0, 300.0, y, diameter=15.0, length=1200.0, azimuth=0.0)])
        img = render(df, style=style).image.astype(float)[:, :, 1] / 255.0
        lin = np.where(img <= 0.04045, img / 12.92, ((img + 0.055) / 1.055) ** 2.4)
        band = lin[100:140, 120:200]
        totals.append(float((band.max() - band).sum(axis=0).mean()))
    assert max(totals) / min(totals) < 1.06, totals


# ---------------------------------------------------------------------------- field borders


def test_only_hairs_exiting_inside_the_field_are_counted():
    w_um, h_um = SHAPE[1] * UM, SHAPE[0] * UM
    rows = [
        # Exits left of the field, shafts pointing right into it.
        follicle(0, -150.0, 300.0, length=1500.0, azimuth=0.0, elevation=20.0),
        follicle(1, -60.0, 900.0, length=1500.0, azimuth=10.0, elevation=20.0),
        # Exit below the field, shaft pointing up into it.
        follicle(2, 700.0, h_um + 100.0, length=1500.0, azimuth=-90.0, elevation=20.0),
        # Exits inside.
        follicle(3, 800.0, 500.0, length=700.0, azimuth=45.0),
        follicle(4, w_um - 30.0, 200.0, length=1500.0, azimuth=0.0),  # leaves the field
        # Outside and pointing away: no truth at all.
        follicle(5, -300.0, 500.0, length=800.0, azimuth=180.0),
    ]
    out = render(table(rows))
    by_id = {h.extra["follicle_id"]: h for h in out.hairs}
    assert set(by_id) == {0, 1, 2, 3, 4}
    for fid in (0, 1, 2):
        assert by_id[fid].exit_px is None
    height, width = SHAPE
    for fid in (3, 4):
        x, y = by_id[fid].exit_px
        assert 0 <= x < width and 0 <= y < height
    for hair in out.hairs:
        pts = np.asarray(hair.centerline_px)
        assert np.all((pts[:, 0] >= 0) & (pts[:, 0] <= width))
        assert np.all((pts[:, 1] >= 0) & (pts[:, 1] <= height))
        assert hair.tip_px == hair.centerline_px[-1]
        steps = np.hypot(*np.diff(pts, axis=0).T)
        assert steps.max() <= 2.0 + 1e-9
    # The entering hair starts on the left border; the leaving one ends on the right.
    assert by_id[0].centerline_px[0][0] == pytest.approx(0.0, abs=1e-9)
    assert by_id[4].tip_px[0] == pytest.approx(width, abs=1e-9)
    # length_um is the whole projected shaft, not cut at the border.
    assert by_id[4].length_um == pytest.approx(1500.0 * math.cos(math.radians(30.0)))


def test_truth_record_fields():
    classes = HairClasses(vellus_max_um=25.0, terminal_min_um=55.0)
    rows = [
        follicle(10, 500.0, 400.0, fu=3, diameter=20.0, phase="telogen"),
        follicle(11, 510.0, 405.0, fu=3, diameter=58.0, azimuth=15.0),
        follicle(12, 900.0, 700.0, diameter=40.0, elevation=60.0),
        follicle(13, 1200.0, 300.0, shaft=False, phase="kenogen"),
    ]
    out = render(table(rows), classes=classes)
    assert [h.id for h in out.hairs] == [0, 1, 2]
    assert [h.extra for h in out.hairs] == [
        {"follicle_id": 10, "fu_id": 3, "phase": "telogen"},
        {"follicle_id": 11, "fu_id": 3, "phase": "anagen"},
        {"follicle_id": 12, "fu_id": 12, "phase": "anagen"},
    ]
    assert [h.hair_class for h in out.hairs] == ["vellus", "terminal", "intermediate"]
    assert [h.diameter_um for h in out.hairs] == [20.0, 58.0, 40.0]
    assert out.hairs[2].length_um == pytest.approx(800.0 * 0.5)
    assert all(h.confidence == 1.0 for h in out.hairs)
    # Projected length in the image matches the centreline (short shafts stay inside).
    for hair in out.hairs:
        pts = np.asarray(hair.centerline_px)
        drawn = np.hypot(*np.diff(pts, axis=0).T).sum() * UM
        assert drawn == pytest.approx(hair.length_um, rel=0.01)


# ---------------------------------------------------------------------------- pose


def test_exit_is_the_pose_transform_of_the_follicle_exactly():
    rows = [follicle(i, 300.0 + 150.0 * i, 250.0 + 90.0 * i, azimuth=30.0 * i) for i in range(6)]
    df = table(rows)
    pose = CameraPose(centre_x_um=820.0, centre_y_um=610.0, rotation_deg=17.0, scale=1.08)
    out = render(df, pose=pose)
    x, y = pose.site_to_px(df["x_um"], df["y_um"], um_per_px=UM, shape=SHAPE)
    for hair in out.hairs:
        i = hair.extra["follicle_id"]
        if hair.exit_px is not None:
            assert hair.exit_px == (x[i], y[i])
            assert hair.centerline_px[0] == hair.exit_px
    assert sum(h.exit_px is not None for h in out.hairs) >= 4


def test_pose_rotation_is_counter_clockwise_on_screen():
    pose = CameraPose(centre_x_um=0.0, centre_y_um=0.0, rotation_deg=90.0)
    x, y = pose.site_to_px(100.0, 0.0, um_per_px=1.0, shape=(100, 100))
    assert (float(x), float(y)) == pytest.approx((50.0, -50.0))


finite = st.floats(-1e5, 1e5, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(
    cx=finite,
    cy=finite,
    rot=st.floats(-720, 720),
    scale=st.floats(0.2, 5.0),
    um=st.floats(0.5, 20.0),
    x=finite,
    y=finite,
    shape=st.tuples(st.integers(8, 4000), st.integers(8, 4000)),
)
def test_px_to_site_inverts_site_to_px(cx, cy, rot, scale, um, x, y, shape):
    pose = CameraPose(centre_x_um=cx, centre_y_um=cy, rotation_deg=rot, scale=scale)
    px, py = pose.site_to_px(x, y, um_per_px=um, shape=shape)
    bx, by = pose.px_to_site(px, py, um_per_px=um, shape=shape)
    assert float(bx) == pytest.approx(x, abs=1e-6 * (1 + abs(x) + abs(cx)))
    assert float(by) == pytest.approx(y, abs=1e-6 * (1 + abs(y) + abs(cy)))
    # Distances scale by scale / um_per_px.
    qx, qy = pose.site_to_px(x + 10.0, y, um_per_px=um, shape=shape)
    assert math.hypot(qx - px, qy - py) == pytest.approx(10.0 * scale / um, rel=1e-6)


def test_pose_rejects_bad_values():
    with pytest.raises(InputError, match="scale"):
        CameraPose(0.0, 0.0, scale=0.0)
    with pytest.raises(InputError, match="rotation_deg"):
        CameraPose(0.0, 0.0, rotation_deg=float("nan"))


# ---------------------------------------------------------------------------- determinism


def mixed_table():
    rng = np.random.default_rng(5)
    rows = []
    for i in range(25):
        rows.append(
            follicle(
                i,
                rng.uniform(-200, 1800),
                rng.uniform(-200, 1400),
                fu=i // 2,
                diameter=float(rng.uniform(20, 100)),
                length=float(rng.uniform(300, 1500)),
                azimuth=float(rng.uniform(0, 360)),
                elevation=float(rng.uniform(10, 70)),
                shaft=bool(i % 7 != 3),
                phase="anagen" if i % 7 != 3 else "kenogen",
            )
        )
    return table(rows)


def test_same_inputs_give_identical_bytes_and_seed_changes_only_pixels():
    df = mixed_table()
    style = random_style(np.random.default_rng(4), preset="hard")
    a = render(df, style=style, seed=11)
    b = render(df, style=style, seed=11)
    c = render(df, style=style, seed=np.random.SeedSequence(12))
    assert a.image.tobytes() == b.image.tobytes()
    assert a.image.dtype == np.uint8 and a.image.shape == (*SHAPE, 3)
    assert not np.array_equal(a.image, c.image)
    assert [h.to_json() for h in a.hairs] == [h.to_json() for h in c.hairs]
    assert a.hairs == c.hairs


def test_seed_sequence_is_not_consumed():
    seq = np.random.SeedSequence(99)
    df = mixed_table()
    first = render(df, seed=seq)
    second = render(df, seed=seq)
    assert first.image.tobytes() == second.image.tobytes()


def site_curve(out, fid, um=UM, shape=SHAPE):
    hair = next(h for h in out.hairs if h.extra["follicle_id"] == fid)
    pts = np.asarray(hair.centerline_px)
    x, y = out.pose.px_to_site(pts[:, 0], pts[:, 1], um_per_px=um, shape=shape)
    return np.stack([x, y], axis=1)


def distance_to_polyline(points, line):
    a, b = line[:-1], line[1:]
    d = b - a
    out = []
    for p in points:
        t = np.clip(((p - a) * d).sum(1) / np.maximum((d * d).sum(1), 1e-12), 0, 1)
        q = a + t[:, None] * d
        out.append(np.hypot(*(p - q).T).min())
    return np.asarray(out)


def test_a_follicle_keeps_its_curvature_across_visits():
    # A long thin shaft curves; it must curve the same way whatever the seed and pose.
    df = table(
        [follicle(7, 600.0, 900.0, diameter=30.0, length=5200.0, elevation=5.0, azimuth=-10.0)]
    )
    shape = (500, 600)
    p1 = CameraPose(centre_x_um=2600.0, centre_y_um=1500.0, scale=0.45)
    p2 = CameraPose(centre_x_um=2550.0, centre_y_um=1550.0, rotation_deg=12.0, scale=0.47)
    a = render(df, pose=p1, seed=1, shape=shape)
    b = render(df, pose=p2, seed=2, shape=shape, style=random_style(np.random.default_rng(8)))
    ca, cb = site_curve(a, 7, shape=shape), site_curve(b, 7, shape=shape)
    # The whole shaft is in both fields: exit and tip inside.
    for out in (a, b):
        tip = np.asarray(out.hairs[0].tip_px)
        assert out.hairs[0].exit_px is not None
        assert np.all((tip > 1) & (tip < np.array(shape[::-1]) - 1))
    chord = ca[-1] - ca[0]
    rel = ca - ca[0]
    sagitta = np.abs(chord[0] * rel[:, 1] - chord[1] * rel[:, 0]) / np.hypot(*chord)
    assert sagitta.max() > 50.0  # it really curves (µm)
    assert distance_to_polyline(ca, cb).max() < 1.0  # µm
    assert np.hypot(*(ca[-1] - cb[-1])) < 1.0


# ---------------------------------------------------------------------------- inputs


def test_missing_columns_are_named():
    df = table([follicle(0, 100.0, 100.0)]).drop(columns=["elevation_deg", "fu_id"])
    with pytest.raises(InputError, match="fu_id, elevation_deg"):
        render(df)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), None, "x"])
def test_bad_calibration_is_rejected(bad):
    with pytest.raises(InputError, match="um_per_px"):
        render(table([follicle(0, 100.0, 100.0)]), um=bad, pose=centred_pose())


@pytest.mark.parametrize("bad", [(0, 100), (100,), (10.5, 100), (100, -3), "big", (3, 3)])
def test_bad_shape_is_rejected(bad):
    with pytest.raises(InputError, match="shape"):
        render(table([follicle(0, 100.0, 100.0)]), shape=bad, pose=centred_pose())


@pytest.mark.parametrize(
    ("column", "value", "match"),
    [
        ("diameter_um", -5.0, "diameter_um"),
        ("length_um", float("nan"), "length_um"),
        ("elevation_deg", 95.0, "elevation_deg"),
        ("phase", "resting", "phase"),
        ("follicle_id", 1.5, "follicle_id"),
        ("has_shaft", "yes", "has_shaft"),
        ("x_um", float("inf"), "x_um"),
        ("pigment", 2.0, "pigment"),
    ],
)
def test_bad_values_are_named(column, value, match):
    df = table([follicle(0, 100.0, 100.0), follicle(1, 300.0, 300.0)])
    df[column] = df[column].astype(object) if column in df else 1.0
    df.loc[1, column] = value
    with pytest.raises(InputError, match=match):
        render(df)


def test_duplicate_follicle_ids_and_bad_arguments_are_rejected():
    df = table([follicle(0, 100.0, 100.0), follicle(0, 300.0, 300.0)])
    with pytest.raises(InputError, match="unique"):
        render(df)
    good = table([follicle(0, 100.0, 100.0)])
    with pytest.raises(InputError, match="follicles"):
        render(good.to_dict())
    with pytest.raises(InputError, match="seed"):
        render(good, seed=-1)
    with pytest.raises(InputError, match="pose"):
        render(good, pose=(0, 0))
    with pytest.raises(InputError, match="style"):
        render(good, style={})


def test_callers_frame_is_not_modified():
    df = mixed_table()
    df["phase"] = df["phase"].astype("category")
    before = df.copy(deep=True)
    render(df)
    pd.testing.assert_frame_equal(df, before)


def test_without_hairs_the_image_is_valid_and_has_no_truth():
    empty = render(table([]))
    assert empty.image.shape == (*SHAPE, 3) and empty.image.dtype == np.uint8
    assert empty.hairs == ()
    assert 60 < empty.image.mean() < 250
    only_empty = render(
        table([follicle(i, 200.0 + 300 * i, 600.0, shaft=False, phase="kenogen") for i in range(4)])
    )
    assert only_empty.hairs == ()
    zero_length = render(table([follicle(0, 600.0, 600.0, length=0.0)]))
    assert zero_length.hairs == ()


# ---------------------------------------------------------------------------- styles


def test_random_style_presets_and_overrides():
    for preset in ("standard", "hard"):
        for k in range(20):
            style = random_style(np.random.default_rng(k), preset=preset)
            assert style.hair_colour in HAIR_COLOURS
    standard = [random_style(np.random.default_rng(k)) for k in range(30)]
    assert {s.hair_colour for s in standard} <= {"black", "dark_brown", "brown"}
    assert all(0.5 <= s.blur_sigma_px <= 1.2 and s.jpeg_quality >= 85 for s in standard)
    hard = [random_style(np.random.default_rng(k), preset="hard") for k in range(30)]
    assert all(60 <= s.jpeg_quality <= 80 for s in hard)
    assert len({s.hair_colour for s in hard}) >= 4
    a = random_style(np.random.default_rng(3), preset="hard")
    b = random_style(np.random.default_rng(3), preset="hard", hair_colour="white")
    assert b.hair_colour == "white" and b.skin_rgb == a.skin_rgb
    with pytest.raises(InputError, match="preset"):
        random_style(np.random.default_rng(0), preset="extreme")
    with pytest.raises(InputError, match="hair_color"):
        random_style(np.random.default_rng(0), hair_color="black")
    with pytest.raises(InputError, match="hair_colour"):
        RenderStyle(hair_colour="purple")
    with pytest.raises(InputError, match="blur_sigma_px"):
        RenderStyle(blur_sigma_px=-1.0)
    with pytest.raises(InputError, match="jpeg_quality"):
        RenderStyle(jpeg_quality=101)


def test_text_overlay_burns_the_top_rows_only():
    df = mixed_table()
    plain = render(df, seed=3)
    text = render(df, seed=3, style=RenderStyle(**{**QUIET.__dict__, "text_overlay": True}))
    differs = np.any(plain.image != text.image, axis=(1, 2))
    assert differs[:8].any()
    assert not differs[40:].any()


def test_jpeg_roundtrip():
    img = render(mixed_table(), style=random_style(np.random.default_rng(2))).image
    hi = encode_jpeg_roundtrip(img, 95)
    lo = encode_jpeg_roundtrip(img, 30)
    assert hi.shape == img.shape and hi.dtype == np.uint8
    err_hi = np.abs(hi.astype(int) - img).mean()
    err_lo = np.abs(lo.astype(int) - img).mean()
    assert 0 < err_hi < err_lo
    with pytest.raises(InputError, match="quality"):
        encode_jpeg_roundtrip(img, 0)
    with pytest.raises(InputError, match="image"):
        encode_jpeg_roundtrip(img[:, :, 0], 90)
