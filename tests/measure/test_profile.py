"""The blurred-cylinder profile model: analytic derivatives and the fit."""

from __future__ import annotations

import numpy as np
import pytest

from hairtrial.measure import _profile


def test_analytic_jacobian_matches_finite_differences() -> None:
    rng = np.random.default_rng(0)
    h, k = 6, 41
    x = np.tile(np.linspace(-14.0, 14.0, k), (h, 1))
    params = np.column_stack(
        [
            rng.normal(0, 0.5, h),
            rng.uniform(0.8, 7, h),
            rng.uniform(0.05, 4, h),
            rng.uniform(0.4, 1, h),
        ]
    )
    sigma = rng.uniform(0.5, 2.5, h)
    model, jac = _profile._model_jac(params, x, sigma, 64, (0, 1, 2, 3, 4))
    assert np.allclose(model, _profile._model(params, x, sigma, 64))
    for col in range(5):
        step = 1e-6
        p, s = params.copy(), sigma.copy()
        if col < 4:
            p[:, col] += step
        else:
            s += step
        numeric = (_profile._model(p, x, s, 64) - model) / step
        assert np.abs(numeric - jac[:, :, col]).max() < 1e-4 * max(
            1.0, np.abs(jac[:, :, col]).max()
        )


@pytest.mark.parametrize("radius", [1.5, 4.0, 9.0])
def test_fit_recovers_a_blurred_cylinder(radius: float) -> None:
    """A noiseless blurred Beer–Lambert profile is fitted back to its own diameter."""
    h = 3
    half = 1.6 * 2 * radius + 4.0
    offsets = np.tile(np.linspace(-half, half, 2 * _profile._K + 1), (h, 1))
    truth = np.tile([0.0, radius, 1.2, 0.85], (h, 1))
    profiles = _profile._model(truth, offsets, np.full(h, 1.1), 96)
    diam, quality, _, _, _ = _profile.fit_diameters(
        offsets, profiles, np.full(h, 2 * radius * 0.7), psf_sigma_px=1.1
    )
    assert diam == pytest.approx(2 * radius, rel=0.03)
    assert (quality > 0.95).all()


def _shaft_profiles(radius: np.ndarray, density: np.ndarray, sigma: np.ndarray) -> tuple:
    """Offsets and noisy blurred-cylinder profiles, one row per shaft (px)."""
    h = len(radius)
    half = 1.6 * 2 * radius + 4.0
    offsets = half[:, None] * np.linspace(-1.0, 1.0, 2 * _profile._K + 1)[None, :]
    truth = np.column_stack([np.zeros(h), radius, density, np.full(h, 0.85)])
    noise = np.random.default_rng(7).normal(0, 0.004, offsets.shape)
    return offsets, _profile._model(truth, offsets, sigma, 96) + noise


@pytest.mark.parametrize("true_sigma", [0.8, 1.6])
def test_blur_of_shafts_that_share_it_is_found(true_sigma: float) -> None:
    """Every shaft blurred alike: the estimate is near it, and the diameters right."""
    rng = np.random.default_rng(12)
    radius = rng.uniform(2.0, 6.0, 24)
    density = rng.uniform(0.4, 2.5, 24)
    offsets, profiles = _shaft_profiles(radius, density, np.full(24, true_sigma))
    diam, _, blur, _, _ = _profile.fit_diameters(offsets, profiles, 1.3 * radius, psf_sigma_px=None)
    assert blur == pytest.approx(true_sigma, rel=0.15)
    assert np.median(np.abs(diam - 2 * radius) / (2 * radius)) < 0.05


def _cylinder_image(shape: tuple[int, int], row: float, radius: float, sigma: float) -> np.ndarray:
    """Transmittance of a horizontal blurred Beer–Lambert shaft centred on `row` (px)."""
    import cv2

    m, n = shape
    fine = 8
    y = (np.arange(m * fine) + 0.5) / fine - 0.5
    chord = np.sqrt(np.clip(1.0 - ((y - row) / radius) ** 2, 0.0, None))
    column = np.exp(-2.0 * 1.5 * chord).reshape(m, fine).mean(axis=1)
    image = np.tile(column[:, None], (1, n)).astype(np.float32)
    return cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)


@pytest.mark.parametrize("row", [9.0, 60.0])
def test_shaft_along_the_border_is_fitted_from_the_samples_inside(row: float) -> None:
    """Profiles that leave the image on one side still measure the shaft.

    A 16 px shaft 9 px from the top edge: every perpendicular profile (half-length
    ~29 px) has samples above the image. They are left out, not the whole profile.
    """
    radius = 8.0
    image = _cylinder_image((120, 200), row, radius, 1.0)
    line = np.column_stack([np.linspace(20.0, 180.0, 40), np.full(40, row)])
    guess = np.array([12.0])
    half = 1.6 * guess + 4.0
    offsets, stack = _profile.sample_profile_stack(image, [line], half, trim_px=0.5 * half + 2)
    profiles = _profile.column_medians(stack)
    if row < half[0]:
        assert np.isnan(profiles).any()
    diam, quality, _, _, _ = _profile.fit_diameters(offsets, profiles, guess, psf_sigma_px=1.0)
    assert diam[0] == pytest.approx(2 * radius, rel=0.05)
    assert quality[0] > 0.9


def test_profile_wholly_outside_the_image_gives_no_diameter() -> None:
    offsets = np.tile(np.linspace(-10.0, 10.0, 2 * _profile._K + 1), (2, 1))
    profiles = np.vstack([np.full(2 * _profile._K + 1, np.nan), np.ones(2 * _profile._K + 1)])
    profiles[1, 18:23] = 0.4
    diam, quality, _, _, _ = _profile.fit_diameters(
        offsets, profiles, np.full(2, 4.0), psf_sigma_px=1.0
    )
    assert np.isnan(diam[0]) and quality[0] == 0.0
    assert np.isfinite(diam[1])


def test_column_medians_ignore_missing_samples() -> None:
    rng = np.random.default_rng(3)
    sampled = rng.normal(size=(4, 7, 5))
    sampled[0, :3, 1] = np.nan
    sampled[2, :, 4] = np.nan
    got = _profile.column_medians(sampled)
    for h in range(4):
        for k in range(5):
            vals = sampled[h, :, k][np.isfinite(sampled[h, :, k])]
            want = np.median(vals) if vals.size else np.nan
            assert got[h, k] == pytest.approx(want, nan_ok=True)


def _plain_grid_start(offsets, profiles, weight, p0, sigma, nodes):
    """The grid start as first written: the full model at every (radius, density)."""
    step = max(1, offsets.shape[1] // 41)
    x, y, w = offsets[:, ::step], profiles[:, ::step], weight[:, ::step]
    best = np.full(len(p0), np.inf)
    out = p0.copy()
    for f in np.geomspace(0.3, 2.0, 5):
        for k in (0.1, 0.5, 2.0):
            trial = p0[:, :4].copy()
            trial[:, 1] = np.maximum(p0[:, 1] * f, 0.3)
            trial[:, 2] = k
            cost = np.sum(((_profile._model(trial, x, sigma, nodes) - y) * w) ** 2, axis=1)
            better = cost < best
            best[better] = cost[better]
            out[better, 1] = trial[better, 1]
            out[better, 2] = k
    return out


def _plain_lm(x, y, weight, p0, sigma, free, lower, upper, iters, nodes):
    """Levenberg–Marquardt as first written: Jacobian at the point, model at the trial."""
    p = p0.copy()
    lam = np.full(len(p), 1e-2)
    res = (_profile._model(p[:, :4], x, sigma, nodes) - y) * weight
    cost = np.sum(res**2, axis=1)
    for _ in range(iters):
        _, jac = _profile._model_jac(p[:, :4], x, sigma, nodes, tuple(free))
        jac *= weight[:, :, None]
        jtj = np.einsum("hki,hkj->hij", jac, jac)
        jtr = np.einsum("hki,hk->hi", jac, res)
        diag = np.einsum("hii->hi", jtj)
        floor = 1e-3 * diag.max(axis=1, keepdims=True) + 1e-12
        a = jtj + lam[:, None, None] * np.eye(len(free))[None] * (diag + floor)[:, :, None]
        delta = np.linalg.solve(a, -jtr[:, :, None])[:, :, 0]
        q = p.copy()
        q[:, free] = np.clip(q[:, free] + delta, lower[:, free], upper[:, free])
        new_res = (_profile._model(q[:, :4], x, sigma, nodes) - y) * weight
        new_cost = np.sum(new_res**2, axis=1)
        better = new_cost < cost
        p[better], res[better], cost[better] = q[better], new_res[better], new_cost[better]
        lam = np.where(better, lam * 0.3, lam * 4.0)
    return p, cost


def test_grid_start_and_fit_match_the_plain_versions() -> None:
    # both were rewritten to evaluate the model less often; the answers must not move
    rng = np.random.default_rng(3)
    h, k, nodes = 8, 61, 48
    x = np.tile(np.linspace(-15.0, 15.0, k), (h, 1))
    truth = np.column_stack(
        [rng.normal(0, 0.6, h), rng.uniform(1, 6, h), rng.uniform(0.1, 3, h), np.ones(h)]
    )
    sigma = rng.uniform(0.7, 2.0, h)
    y = _profile._model(truth, x, sigma, 96) + rng.normal(0, 0.01, (h, k))
    weight = np.ones_like(y)
    p0 = np.column_stack([np.zeros(h), np.full(h, 3.0), np.full(h, 0.5), np.ones(h)])
    start = _profile._grid_start(x, y, weight, p0, sigma, nodes)
    assert np.array_equal(start, _plain_grid_start(x, y, weight, p0, sigma, nodes))
    free = [0, 1, 2, 3]
    lower = np.tile([-5.0, 0.3, 0.0, 0.2], (h, 1))
    upper = np.tile([5.0, 20.0, 8.0, 1.5], (h, 1))
    got = _profile._lm_fit(x, y, weight, start, sigma, free, lower, upper, 8, nodes)
    want = _plain_lm(x, y, weight, start, sigma, free, lower, upper, 8, nodes)
    # the normal equations are summed in another order (matmul, not einsum): near the
    # minimum, where the cost is flat, the parameters agree to ~1e-9 px, the cost to 1e-12
    assert np.allclose(got[0], want[0], rtol=0, atol=1e-7)
    assert np.allclose(got[1], want[1], rtol=0, atol=1e-12)
    assert np.abs(got[0][:, 1] - truth[:, 1]).max() < 0.3  # and the fit is a fit


def test_labels_are_sampled_without_mixing() -> None:
    # an image of labels: the nearest pixel, never a blend of two labels; 0 off the image
    labels = np.zeros((50, 60), dtype=np.uint16)
    labels[20:30, :] = 7
    labels[30:34, :] = 9
    line = np.array([[5.0, 25.0], [55.0, 25.0]])
    _, got = _profile.sample_profile_stack(labels, [line], np.array([30.0]), nearest=True)
    assert set(np.unique(got)) == {0.0, 7.0, 9.0}


def test_profile_frames_lie_along_the_shaft_and_across_it() -> None:
    """Profiles of an L-shaped centreline: centres evenly spaced between the trimmed ends,
    unit normals at right angles to the local direction, and the stack sampled there."""
    pts = np.array([[10.0, 10.0], [60.0, 10.0], [60.0, 60.0]])
    along, centre, normal = _profile.profile_frames(pts, 5.0, 11)
    assert along == pytest.approx(np.linspace(5.0, 95.0, 11))
    assert centre[0] == pytest.approx([15.0, 10.0])
    assert centre[-1] == pytest.approx([60.0, 55.0])
    assert np.hypot(normal[:, 0], normal[:, 1]) == pytest.approx(np.ones(11))
    assert normal[0] == pytest.approx([0.0, 1.0])  # across a shaft running along +x
    assert normal[-1] == pytest.approx([-1.0, 0.0])  # across one running along +y
    # the stack samples each profile at centre + offset * normal
    xx = np.tile(np.arange(80, dtype=np.float32), (80, 1))  # each pixel holds its column
    offsets, stack = _profile.sample_profile_stack(
        xx, [pts], np.array([4.0]), n_along=11, trim_px=np.array([5.0])
    )
    expected = centre[:, :1] + normal[:, :1] * offsets[0][None, :]
    assert stack[0] == pytest.approx(expected, abs=1e-3)


def _pigmented_shafts(radius: np.ndarray, mu: np.ndarray, sigma: float, noise: float) -> tuple:
    """Offsets and noisy profiles of shafts with density ``k = mu * radius`` (px)."""
    h = len(radius)
    half = 1.6 * 2 * radius + 4.0
    offsets = half[:, None] * np.linspace(-1.0, 1.0, 2 * _profile._K + 1)[None, :]
    truth = np.column_stack([np.zeros(h), radius, mu * radius, np.full(h, 0.85)])
    profiles = _profile._model(truth, offsets, np.full(h, sigma), 96)
    return offsets, profiles + np.random.default_rng(3).normal(0, noise, offsets.shape)


def _one_scalp(resolved: int, thin: int) -> tuple:
    """`resolved` shafts of radius 5-8 px and `thin` of 2.2 px, blur 1.6 px, one pigment."""
    rng = np.random.default_rng(1)
    radius = np.r_[rng.uniform(5.0, 8.0, resolved), np.full(thin, 2.2)]
    mu = 0.12 * np.exp(rng.normal(0.0, 0.2, len(radius)))  # per px, ~20 % from hair to hair
    offsets, profiles = _pigmented_shafts(radius, mu, 1.6, 0.01)
    return offsets, profiles, radius


def test_pigment_prior_steadies_shafts_thinner_than_the_blur() -> None:
    """Thin shafts fitted freely slide to narrow opaque lines; the image's pigment holds them.

    Eight resolved shafts (radius 5-8 px, 3-5 blur σ) and thirty of radius 2.2 px
    (1.4 σ), all of one pigment (``k / r`` = 0.12 / px within ~20 %), noise 0.01.
    """
    offsets, profiles, radius = _one_scalp(8, 30)
    fits = _profile.fit_diameters(offsets, profiles, 1.6 * radius, psf_sigma_px=1.6)
    assert fits.pigment is not None
    assert np.exp(fits.pigment.log_density) == pytest.approx(0.12, rel=0.15)
    assert fits.pigment.noise == pytest.approx(0.01, rel=0.3)
    thin = slice(8, None)
    with_prior = np.abs(fits.diameter_px[thin] / (2 * radius[thin]) - 1)
    free = np.abs(fits.free_diameter_px[thin] / (2 * radius[thin]) - 1)
    assert np.median(with_prior) < 0.06 and np.quantile(with_prior, 0.9) < 0.15
    assert np.quantile(free, 0.9) > 0.3  # the free fit's failure the prior is for
    # the resolved shafts are fitted freely, and right
    assert np.array_equal(fits.diameter_px[:8], fits.free_diameter_px[:8])
    assert fits.diameter_px[:8] == pytest.approx(2 * radius[:8], rel=0.03)


def test_no_pigment_prior_without_enough_resolved_shafts() -> None:
    offsets, profiles, radius = _one_scalp(_profile._PIGMENT_MIN_SHAFTS - 1, 10)
    fits = _profile.fit_diameters(offsets, profiles, 1.6 * radius, psf_sigma_px=1.6)
    assert fits.pigment is None
    assert np.array_equal(fits.diameter_px, fits.free_diameter_px, equal_nan=True)


def test_pigment_of_the_image_serves_a_refit_of_some_shafts() -> None:
    """Shafts fitted again on their own (masked samples) take the whole image's pigment."""
    offsets, profiles, radius = _one_scalp(8, 30)
    whole = _profile.fit_diameters(offsets, profiles, 1.6 * radius, psf_sigma_px=1.6)
    some = slice(20, None)
    alone = _profile.fit_diameters(
        offsets[some], profiles[some], 1.6 * radius[some], psf_sigma_px=1.6
    )
    assert alone.pigment is None  # no resolved shaft among them
    given = _profile.fit_diameters(
        offsets[some],
        profiles[some],
        1.6 * radius[some],
        psf_sigma_px=1.6,
        pigment=whole.pigment,
    )
    assert given.pigment == whole.pigment
    assert given.diameter_px == pytest.approx(whole.diameter_px[some], rel=1e-3)
    none = _profile.fit_diameters(offsets, profiles, 1.6 * radius, psf_sigma_px=1.6, pigment=False)
    assert none.pigment is None
    assert np.array_equal(none.diameter_px, whole.free_diameter_px, equal_nan=True)


def test_pigment_spread_is_bounded() -> None:
    """All resolved shafts alike would make the prior a constraint: its spread has a floor."""
    fit = np.column_stack([np.zeros(6), np.full(6, 6.0), np.full(6, 0.6), np.ones(6)])
    pigment = _profile.measure_pigment(fit, np.full(6, 1e-4), np.ones((6, 41)), 1.0)
    assert pigment is not None
    assert pigment.log_density == pytest.approx(np.log(0.1))
    assert pigment.spread == _profile._PIGMENT_SPREAD_RANGE[0]
    opaque = fit.copy()
    opaque[:, 2] = 4.0  # k not measured on opaque shafts
    assert _profile.measure_pigment(opaque, np.full(6, 1e-4), np.ones((6, 41)), 1.0) is None
