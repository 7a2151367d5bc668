import math

import numpy as np
import pytest

from hairtrial.measure import ImageMeasurement
from hairtrial.records import HairRecord, summarize_hairs
from hairtrial.track.phototrichogram import phototrichogram


def _measurement(exits, lengths_um, um=5.0):
    hairs = tuple(
        HairRecord(
            id=i + 1,
            exit_px=(float(x), float(y)),
            tip_px=(float(x) + 10, float(y)),
            centerline_px=((float(x), float(y)), (float(x) + 10, float(y))),
            diameter_um=70.0,
            length_um=float(length),
            hair_class="terminal",
        )
        for i, ((x, y), length) in enumerate(zip(exits, lengths_um, strict=True))
    )
    area = 600 * 800 * um * um * 1e-8
    return ImageMeasurement(
        hairs=hairs,
        summary=summarize_hairs(hairs, area_cm2=area),
        histogram_counts=(),
        histogram_edges_um=(0.0,),
        exit_confidence=tuple(1.0 for _ in hairs),
        um_per_px=um,
        shape=(600, 800),
        area_cm2=area,
        psf_sigma_um=5.0,
        config_hash="x",
    )


def test_registration_matching_and_growth():
    rng = np.random.default_rng(3)
    n = 40
    exits = rng.uniform([50, 50], [750, 550], size=(n, 2))
    lengths = rng.uniform(500, 900, size=n)
    anagen = rng.random(n) < 0.8
    days = 3.0
    grown = lengths + np.where(anagen, 350.0 * days, 0.0) + rng.normal(0, 15, n)
    a = math.radians(2.0)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    moved = exits @ (1.02 * rot).T + np.array([14.0, -9.0]) + rng.normal(0, 1.0, (n, 2))
    # one hair lost, one new hair in the second image
    second = _measurement(np.vstack([moved[1:], [[400, 300]]]), np.r_[grown[1:], 200.0])
    first = _measurement(exits, lengths)
    res = phototrichogram(first, second, days=days)
    assert len(res.hairs) == n - 1
    assert res.n_unmatched_first == 1 and res.n_unmatched_second == 1
    by_id = {g.id_first: g for g in res.hairs}
    for i in range(1, n):
        g = by_id[i + 1]
        assert g.id_second == i  # hair i+1 of the first is hair i of the second
        assert g.phase == ("anagen" if anagen[i] else "telogen")
    assert res.anagen_fraction == pytest.approx(anagen[1:].mean())
    assert res.registration.ok
    # the registration maps second-image pixels back onto the first image
    m = res.registration.matrix
    back = moved[1:] @ m[:, :2].T + m[:, 2]
    assert np.median(np.hypot(*(back - exits[1:]).T)) < 1.5
    payload = res.to_json()
    assert payload["registered"] and payload["n_anagen"] == res.n_anagen
    assert len(payload["hairs"]) == n - 1


def test_unregistrable_pair_gives_no_matches():
    rng = np.random.default_rng(5)
    a = rng.uniform([50, 50], [750, 550], size=(30, 2))
    b = rng.uniform([50, 50], [750, 550], size=(30, 2))  # unrelated fields
    res = phototrichogram(_measurement(a, [600] * 30), _measurement(b, [900] * 30), days=3)
    assert not res.registration.ok and res.registration.reason
    assert res.hairs == () and res.anagen_fraction is None
    assert res.n_unmatched_first == 30 and res.n_unmatched_second == 30


def test_empty_pair_and_bad_days():
    empty = _measurement(np.zeros((0, 2)), [])
    res = phototrichogram(empty, empty, days=2)
    assert res.anagen_fraction is None and res.hairs == ()
    with pytest.raises(ValueError, match="days"):
        phototrichogram(empty, empty, days=0)


# --------------------------------------------------------------------------- on images


def _draw(shape, segments, *, width_px=12.0):
    """RGB skin with dark straight shafts (x0, y0, x1, y1) drawn anti-aliased."""
    import cv2

    img = np.full((*shape, 3), (200, 160, 150), dtype=np.uint8)
    for x0, y0, x1, y1 in segments:
        start, stop = (round(x0 * 16), round(y0 * 16)), (round(x1 * 16), round(y1 * 16))
        cv2.line(img, start, stop, (40, 30, 30), round(width_px), cv2.LINE_AA, shift=4)
    return img


def _hairs_of(segments, um=5.0):
    return tuple(
        HairRecord(
            id=i + 1,
            exit_px=(float(x0), float(y0)),
            tip_px=(float(x1), float(y1)),
            centerline_px=tuple(
                (float(x0 + t * (x1 - x0)), float(y0 + t * (y1 - y0)))
                for t in np.linspace(0, 1, 12)
            ),
            diameter_um=60.0,
            length_um=float(np.hypot(x1 - x0, y1 - y0) * um),
            hair_class="terminal",
        )
        for i, (x0, y0, x1, y1) in enumerate(segments)
    )


def _as_measurement(hairs, shape, um=5.0):
    area = shape[0] * shape[1] * um * um * 1e-8
    return ImageMeasurement(
        hairs=hairs, summary=summarize_hairs(hairs, area_cm2=area), histogram_counts=(),
        histogram_edges_um=(0.0,), exit_confidence=tuple(1.0 for _ in hairs), um_per_px=um,
        shape=shape, area_cm2=area, psf_sigma_um=5.0, config_hash="x",
    )  # fmt: skip


def _field(rng, n, shape):
    """Clipped hairs (exits, directions, lengths in px) in rows, pointing roughly one way.

    Real scalp hairs of one region lie roughly parallel; rows far enough apart keep
    every hair's regrowth clear of the others, so each growth is known exactly.
    """
    cols = int(np.ceil(n / 2))
    xs = np.linspace(120, shape[1] - 120, cols)
    exits = np.array([(x, y) for y in (90.0, 390.0) for x in xs])[:n]
    exits = exits + rng.uniform(-15, 15, size=exits.shape)
    angle = np.radians(rng.uniform(75, 105, n))
    length = rng.uniform(40, 90, n)
    return exits, np.column_stack([np.cos(angle), np.sin(angle)]), length


def test_shaft_growth_recovers_drawn_regrowth():
    """Hairs drawn again days later, the anagen ones longer, in a shifted, rotated field."""
    rng = np.random.default_rng(11)
    shape = (700, 900)
    exits, direction, length = _field(rng, 12, shape)
    anagen = np.arange(12) % 3 != 0
    growth_px = np.where(anagen, 150.0, 0.0)  # 250 µm/day over 3 days at 5 µm/px
    first = [(*e, *(e + d * L)) for e, d, L in zip(exits, direction, length, strict=True)]
    a = math.radians(4.0)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    offset = np.array([25.0, -18.0])

    def move(p):
        return rot @ (p - np.array([450.0, 350.0])) + np.array([450.0, 350.0]) + offset

    second = [
        (*move(e), *move(e + d * (L + g)))
        for e, d, L, g in zip(exits, direction, length, growth_px, strict=True)
    ]
    img1, img2 = _draw(shape, first), _draw(shape, second)
    m1 = _as_measurement(_hairs_of(first), shape)
    m2 = _as_measurement(_hairs_of(second), shape)
    res = phototrichogram(m1, m2, days=3.0, images=(img1, img2))
    assert res.method == "shaft" and res.registration.ok
    assert res.registration.score > 0.8
    # the registration maps the second image back onto the first within a pixel
    back = res.registration.apply(np.array([move(e) for e in exits]))
    assert np.median(np.hypot(*(back - exits).T)) < 1.5
    got = {g.id_first: g for g in res.hairs}
    assert sorted(got) == list(range(1, 13)) and res.n_lost == res.n_undetermined == 0
    for i in range(12):
        g = got[i + 1]
        assert g.phase == ("anagen" if anagen[i] else "telogen"), (i, g)
        assert g.growth_um_per_day == pytest.approx(growth_px[i] * 5.0 / 3.0, abs=20.0)
        assert g.cut_end == ("tip" if anagen[i] else "")
    assert res.anagen_fraction == pytest.approx(np.mean([anagen[i - 1] for i in got]), abs=1e-9)


def test_shaft_growth_finds_the_cut_end_when_exits_are_swapped():
    rng = np.random.default_rng(2)
    shape = (800, 800)
    exits, direction, length = _field(rng, 10, shape)
    first = [(*e, *(e + d * L)) for e, d, L in zip(exits, direction, length, strict=True)]
    second = [
        (*e, *(e + d * (L + 120.0))) for e, d, L in zip(exits, direction, length, strict=True)
    ]
    swapped = [(x1, y1, x0, y0) for x0, y0, x1, y1 in first]  # the detector got the ends wrong
    res = phototrichogram(
        _as_measurement(_hairs_of(swapped), shape), _as_measurement(_hairs_of(second), shape),
        days=2.0, images=(_draw(shape, first), _draw(shape, second)),
    )  # fmt: skip
    assert res.n_anagen == 10 and res.n_telogen == 0
    assert {g.cut_end for g in res.hairs} == {"exit"}


def test_shaft_method_refuses_unrelated_fields():
    rng = np.random.default_rng(4)
    shape = (600, 800)
    segs = []
    for seed in (1, 2):
        exits, direction, length = _field(np.random.default_rng(seed), 25, shape)
        segs.append([(*e, *(e + d * L)) for e, d, L in zip(exits, direction, length, strict=True)])
    res = phototrichogram(
        _as_measurement(_hairs_of(segs[0]), shape), _as_measurement(_hairs_of(segs[1]), shape),
        days=3.0, images=(_draw(shape, segs[0]), _draw(shape, segs[1])),
    )  # fmt: skip
    assert not res.registration.ok and "hair" in res.registration.reason
    assert res.hairs == () and res.anagen_fraction is None
    del rng


def test_shaft_method_needs_two_images():
    empty = _measurement(np.zeros((0, 2)), [])
    with pytest.raises(ValueError, match="two images"):
        phototrichogram(empty, empty, days=2, images=(np.zeros((10, 10)),))


def test_shaft_method_on_a_simulated_pair(tmp_path):
    """Rendered clipped field and its regrowth: the anagen fraction against the truth."""
    import json

    from hairtrial.io import read_image
    from hairtrial.measure import measure_image
    from hairtrial.simulate.trial import write_trial
    from tests.factories import small_preset

    write_trial(
        small_preset(subjects=1, visit_days=(0, 90), field_cm2=0.25), tmp_path, seed=21,
        phototrichogram=True,
    )  # fmt: skip
    errors = []
    for first in sorted((tmp_path / "images").glob("*_d0[09]0.jpg")):
        day = int(first.stem[-3:])
        second = first.with_name(f"{first.stem[:-3]}{day + 3:03d}_regrowth.jpg")
        t1 = json.loads(first.with_suffix(".truth.json").read_text())
        t2 = json.loads(second.with_suffix(".truth.json").read_text())
        a1, a2 = read_image(first).pixels, read_image(second).pixels
        m1 = measure_image(a1, um_per_px=t1["um_per_px"])
        m2 = measure_image(a2, um_per_px=t2["um_per_px"])
        res = phototrichogram(m1, m2, days=3.0, images=(a1, a2))
        assert res.registration.ok, res.registration.reason
        seen = {h["follicle_id"] for h in t1["hairs"] if h["exit_px"]}
        phase = {h["follicle_id"]: h["phase"] for h in t2["hairs"] if h["exit_px"]}
        truth = np.mean([phase[f] == "anagen" for f in seen & set(phase)])
        assert res.anagen_fraction is not None
        # hairs the detector missed in the clipped image are not followed
        assert len(res.hairs) >= 0.5 * len(seen)
        errors.append(res.anagen_fraction - truth)
    assert len(errors) == 4
    assert np.mean(np.abs(errors)) < 0.12, errors
