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
    diam, quality, _ = _profile.fit_diameters(
        offsets, profiles, np.full(h, 2 * radius * 0.7), psf_sigma_px=1.1
    )
    assert diam == pytest.approx(2 * radius, rel=0.03)
    assert (quality > 0.95).all()
