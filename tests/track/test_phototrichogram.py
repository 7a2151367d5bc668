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
