"""Shaft diameter from intensity profiles across the shaft, blur taken into account.

Light passing through a cylindrical shaft of radius ``r`` is attenuated along the chord
``2 sqrt(r² - x²)`` (Beer–Lambert), so the transmittance across the shaft is
``T(x) = exp(-2 k sqrt(1 - (x/r)²))`` with ``k = μ r``: a faint shaft gives a half-ellipse
dip, an opaque one a flat-bottomed box. The optics blur ``T`` with a Gaussian point-spread
function of width ``σ`` before the sensor samples it. Fitting this model (centre, radius,
density, skin level) to the median of many perpendicular profiles gives a diameter that is
sub-pixel and does not grow with blur, unlike the width of a thresholded mask. ``σ`` is one
property of the image, estimated jointly on the clearest shafts and then held fixed.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np
from numpy.typing import NDArray

from hairtrial.measure import _ridges

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]

#: Profile samples per side, in units of the half-window.
_K = 20


def sample_profile_stack(
    transmittance: NDArray[np.float32] | NDArray[np.uint16],
    centrelines: list[F64],
    half_width_px: F64,
    *,
    n_along: int = 24,
    trim_px: F64 | None = None,
    nearest: bool = False,
) -> tuple[F64, F64]:
    """Perpendicular profiles at `n_along` evenly spaced points along each shaft.

    Their median over the shaft (:func:`column_medians` of `stack`) is what
    :func:`fit_diameters` fits; medians over consecutive runs of `stack` measure
    sections of the shaft.

    Parameters
    ----------
    transmittance : (M, N) ndarray of float32
        Image of ``I / I_skin`` (1 on bare skin); or, with `nearest`, any image of
        labels (float32 or uint16; 0 outside the image for uint16).
    centrelines : list of (P, 2) ndarray, px
        Centrelines (x, y) at the resolution of `transmittance`.
    half_width_px : (H,) ndarray, px
        Half-length of each profile.
    n_along : int
        Number of profiles taken along each shaft.
    trim_px : (H,) ndarray, px, optional
        Length left out at each end (blunt cut end, exit), default one window.
    nearest : bool
        Take the nearest pixel instead of interpolating (for an image of labels).

    Returns
    -------
    offsets : (H, 2K+1) ndarray, px
        Position of each sample across the shaft.
    stack : (H, n_along, 2K+1) ndarray
        Transmittance samples, proximal to distal along the shaft; NaN outside the image
        and wherever `transmittance` is NaN.
    """
    h = len(centrelines)
    u = np.linspace(-1.0, 1.0, 2 * _K + 1)
    offsets = half_width_px[:, None] * u[None, :]
    if h == 0:
        return offsets, np.zeros((0, n_along, 2 * _K + 1))
    if trim_px is None:
        trim_px = half_width_px
    map_x = np.zeros((h * n_along, 2 * _K + 1), dtype=np.float32)
    map_y = np.zeros_like(map_x)
    for i, pts in enumerate(centrelines):
        _, centre, normal = profile_frames(pts, float(trim_px[i]), n_along)
        rows = slice(i * n_along, (i + 1) * n_along)
        map_x[rows] = (centre[:, :1] + normal[:, :1] * offsets[i][None, :]).astype(np.float32)
        map_y[rows] = (centre[:, 1:] + normal[:, 1:] * offsets[i][None, :]).astype(np.float32)
    sampled = cv2.remap(
        transmittance,
        map_x,
        map_y,
        cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=np.nan,
    )
    return offsets, sampled.reshape(h, n_along, 2 * _K + 1).astype(np.float64)


def profile_frames(pts: F64, trim_px: float, n_along: int) -> tuple[F64, F64, F64]:
    """Where :func:`sample_profile_stack` takes a shaft's profiles, and which way across.

    Parameters
    ----------
    pts : (P, 2) ndarray, px
        Centreline (x, y).
    trim_px : float, px
        Length left out at each end (the middle 40 % if the shaft is shorter than that).
    n_along : int
        Number of profiles.

    Returns
    -------
    along : (n_along,) ndarray, px
        Arc length of each profile's centre from the first point.
    centre : (n_along, 2) ndarray, px
        Profile centres.
    normal : (n_along, 2) ndarray
        Unit vectors across the shaft: a profile's sample at offset `o` lies at
        ``centre + o * normal``.
    """
    dist = _ridges.arc_lengths(pts)
    total = float(dist[-1])
    lo, hi = trim_px, total - trim_px
    if hi <= lo:
        lo, hi = 0.3 * total, 0.7 * total
    s = np.linspace(lo, hi, n_along)
    cx = np.interp(s, dist, pts[:, 0])
    cy = np.interp(s, dist, pts[:, 1])
    ds = max(1.5, 0.05 * total)
    tx = np.interp(s + ds, dist, pts[:, 0]) - np.interp(s - ds, dist, pts[:, 0])
    ty = np.interp(s + ds, dist, pts[:, 1]) - np.interp(s - ds, dist, pts[:, 1])
    norm = np.hypot(tx, ty) + 1e-12
    return s, np.column_stack([cx, cy]), np.column_stack([-ty / norm, tx / norm])


def column_medians(sampled: F64) -> F64:
    """Median over axis 1 of the finite values only; NaN where a column has none.

    A shaft lying along the image border has samples outside the image on one side of
    many of its profiles: each offset takes the median of the profiles that see it, so the
    inner side and the shaft itself still come from every profile. The median is taken
    by sorting (NaN sorts last) rather than with ``np.nanmedian``, whose all-NaN warning
    could only be silenced with ``warnings.catch_warnings``, which is not thread-safe (the
    batch measures in threads).

    Parameters
    ----------
    sampled : (H, A, K) ndarray
        Samples (transmittance), NaN where not seen.

    Returns
    -------
    (H, K) ndarray
        Median over the A axis of the finite samples.
    """
    count = np.isfinite(sampled).sum(axis=1, keepdims=True)  # (H, 1, K)
    ordered = np.sort(sampled, axis=1)
    lo = np.take_along_axis(ordered, np.maximum(count - 1, 0) // 2, axis=1)
    hi = np.take_along_axis(ordered, np.minimum(count // 2, sampled.shape[1] - 1), axis=1)
    return np.where(count > 0, 0.5 * (lo + hi), np.nan)[:, 0, :]


@functools.lru_cache(maxsize=64)
def _nodes(count: int) -> tuple[F64, F64, F64]:
    """Gauss–Legendre nodes over θ in [-π/2, π/2]: (sin θ, cos θ, weights)."""
    z, w = np.polynomial.legendre.leggauss(count)
    theta = 0.5 * np.pi * z
    return np.sin(theta), np.cos(theta), 0.5 * np.pi * w


def _model(params: F64, x: F64, sigma: F64, nodes: int = 32) -> F64:
    """Blurred Beer–Lambert cylinder; params columns (x0, r, k, s); shapes (H, K).

    The Gaussian blur of ``T - 1`` (zero outside the shaft) is integrated over the shaft
    with ``t = r sin θ`` and Gauss–Legendre nodes in θ: the nodes move with the radius and
    the integrand is smooth, so the model is smooth in every parameter (a fixed quadrature
    of the blur would put kinks wherever an edge passes a node).
    """
    return _model_jac(params, x, sigma, nodes, ())[0]


def _node_weights(r: F64, k: F64, nodes: int) -> tuple[F64, F64]:
    """Per-node ``exp(-2 k cos θ)`` and quadrature weights of ``T - 1``; shapes (H, N)."""
    _sin, cos, w = _nodes(nodes)
    decay = np.exp(-2.0 * k * cos[None, :])  # (H, N)
    return decay, (decay - 1.0) * r * (cos * w)[None, :]


def _node_kernel(x0: F64, r: F64, x: F64, sigma: F64, nodes: int) -> tuple[F64, F64]:
    """Normalised distances ``a`` and Gaussian blur ``g`` from each node; (H, K, N) each.

    `x0` and `r` are (H, 1) columns, `x` the (H, K) offsets, `sigma` the (H,) blur.
    """
    sin, _cos, _w = _nodes(nodes)
    sig = sigma[:, None]  # (H, 1)
    a = (x[:, :, None] - x0[:, :, None] - (r * sin[None, :])[:, None, :]) / sig[:, :, None]
    g = np.exp(-0.5 * a * a)
    g *= (1.0 / (sig * np.sqrt(2.0 * np.pi)))[:, :, None]
    return a, g


def _node_sum(values: F64, coef: F64) -> F64:
    """Sum over nodes of ``values`` (H, K, N) weighted by ``coef`` (H, N): (H, K)."""
    return np.matmul(values, coef[:, :, None])[:, :, 0]


def _model_jac(
    params: F64, x: F64, sigma: F64, nodes: int, free: tuple[int, ...]
) -> tuple[F64, F64]:
    """Evaluate the model of :func:`_model` and its derivatives in the `free` parameters.

    Parameters 0–3 are (x0, r, k, s), 4 is the blur σ; the Jacobian is analytic (the
    quadrature's integrand differentiated under the sum), shape (H, K, len(free)).
    Sums over the nodes are batched matrix–vector products.
    """
    x0, r, k, s = (params[:, j : j + 1] for j in range(4))  # (H, 1)
    sin, cos, w = _nodes(nodes)
    decay, f = _node_weights(r, k, nodes)
    sig = sigma[:, None]  # (H, 1)
    a, g = _node_kernel(x0, r, x, sigma, nodes)
    blur_sum = _node_sum(g, f)
    model = s * (1.0 + blur_sum)
    jac = np.empty((*x.shape, len(free)))
    ga = g * a if any(j in (0, 1, 4) for j in free) else g
    for col, j in enumerate(free):
        if j == 0:  # x0: dg/dx0 = g a / σ
            jac[:, :, col] = s * _node_sum(ga, f) / sig
        elif j == 1:  # r: f is linear in r, and the nodes move with it
            jac[:, :, col] = s * (blur_sum / r + _node_sum(ga, f * sin[None, :]) / sig)
        elif j == 2:  # k
            jac[:, :, col] = s * _node_sum(g, -2.0 * decay * r * (cos * cos * w)[None, :])
        elif j == 3:  # s
            jac[:, :, col] = 1.0 + blur_sum
        else:  # σ: dg/dσ = g (a² - 1) / σ
            jac[:, :, col] = s * (_node_sum(ga * a, f) - blur_sum) / sig
    return model, jac


def _node_count(radius_max: float, sigma: float) -> int:
    """Quadrature nodes so that their spacing across the shaft stays below the blur."""
    return int(np.clip(np.ceil(2.0 * radius_max / max(sigma, 0.3)), 16, 160))


def _lm_fit(
    x: F64,
    y: F64,
    weight: F64,
    p0: F64,
    sigma: F64,
    free: list[int],
    lower: F64,
    upper: F64,
    iters: int = 10,
    nodes: int = 32,
) -> tuple[F64, F64]:
    """Batched Levenberg-Marquardt over independent profiles (analytic Jacobian)."""
    h = p0.shape[0]
    p = p0.copy()
    lam = np.full(h, 1e-2)

    def full_params(q: F64) -> tuple[F64, F64]:
        sig = q[:, 4] if q.shape[1] > 4 else sigma
        return q[:, :4], sig

    def evaluate(q: F64) -> tuple[F64, F64]:
        # the model and its weighted Jacobian come together: a step that is taken needs
        # no second evaluation at the new point, one that is refused keeps the old
        prm, sig = full_params(q)
        model, jac = _model_jac(prm, x, sig, nodes, tuple(free))
        jac *= weight[:, :, None]
        return (model - y) * weight, jac

    res, jac = evaluate(p)
    cost = np.sum(res**2, axis=1)
    for _ in range(iters):
        jtj = np.einsum("hki,hkj->hij", jac, jac)
        jtr = np.einsum("hki,hk->hi", jac, res)
        diag = np.einsum("hii->hi", jtj)
        # Marquardt scaling with a floor: a saturated parameter (opaque shaft: density)
        # must still be damped, or its steps are huge and always rejected
        floor = 1e-3 * diag.max(axis=1, keepdims=True) + 1e-12
        a = jtj + lam[:, None, None] * np.eye(len(free))[None] * (diag + floor)[:, :, None]
        try:
            delta = np.linalg.solve(a, -jtr[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            break
        q = p.copy()
        q[:, free] = np.clip(q[:, free] + delta, lower[:, free], upper[:, free])
        new_res, new_jac = evaluate(q)
        new_cost = np.sum(new_res**2, axis=1)
        better = new_cost < cost
        p[better] = q[better]
        res[better] = new_res[better]
        jac[better] = new_jac[better]
        cost[better] = new_cost[better]
        lam = np.where(better, lam * 0.3, lam * 4.0)
    return p, cost


def _grid_start(offsets: F64, profiles: F64, weight: F64, p0: F64, sigma: F64, nodes: int) -> F64:
    """Best (radius, density) on a coarse grid, as the start of the local fit.

    The cost surface of a thin shaft is long and ragged along the valley where a narrower,
    darker shaft looks like a wider, fainter one; a grid lands in the right basin.
    """
    step = max(1, offsets.shape[1] // 41)
    x = offsets[:, ::step]
    y = profiles[:, ::step]
    w = weight[:, ::step]
    radii = np.geomspace(0.3, 2.0, 5)
    dens = np.array([0.1, 0.5, 2.0])
    best_cost = np.full(len(p0), np.inf)
    out = p0.copy()
    for f in radii:
        radius = np.maximum(p0[:, 1:2] * f, 0.3)
        # the blur kernel depends on the radius, not on the density: made once per radius
        _a, g = _node_kernel(p0[:, 0:1], radius, x, sigma, nodes)
        for k in dens:
            _decay, weights = _node_weights(radius, np.full_like(radius, k), nodes)
            model = p0[:, 3:4] * (1.0 + _node_sum(g, weights))
            cost = np.sum(((model - y) * w) ** 2, axis=1)
            better = cost < best_cost
            best_cost[better] = cost[better]
            out[better, 1] = radius[better, 0]
            out[better, 2] = k
    return out


def fit_diameters(
    offsets: F64,
    profiles: F64,
    guess_diameter_px: F64,
    *,
    psf_sigma_px: float | None,
    iterations: int = 10,
) -> tuple[F64, F64, float]:
    """Fit the blurred-cylinder model to each profile.

    Parameters
    ----------
    offsets : (H, K) ndarray, px
        Sample positions across each shaft.
    profiles : (H, K) ndarray
        Transmittance profiles; NaN samples (outside the image) are left out.
    guess_diameter_px : (H,) ndarray, px
        Starting diameters (from the detection scale).
    psf_sigma_px : float or None, px
        Blur; ``None`` estimates it from the clearest shafts.
    iterations : int
        Levenberg–Marquardt iterations of the final fit (fewer for a refit of shafts
        already measured once).

    Returns
    -------
    diameter_px : (H,) ndarray, px
        Fitted shaft diameters; NaN where an edge of the fitted shaft lies beyond the
        samples seen (a band cut by the image border or an overlay: not measured).
    quality : (H,) ndarray
        Fit quality in [0, 1] (1 - relative residual).
    psf_sigma_px : float, px
        Blur used (given or estimated).
    """
    h = profiles.shape[0]
    if h == 0:
        return np.zeros(0), np.zeros(0), float(psf_sigma_px or 0.0)
    seen = np.isfinite(profiles)
    kq = offsets.shape[1] // 4
    tails = np.concatenate([profiles[:, :kq], profiles[:, -kq:]], axis=1)
    s0 = column_medians(tails[:, :, None])[:, 0]
    s0 = np.maximum(np.where(np.isfinite(s0), s0, 1.0), 1e-3)
    # samples outside the image take no part in the fit (weight 0 below)
    profiles = np.where(seen, profiles, s0[:, None])
    depth = np.clip(1.0 - profiles.min(axis=1) / s0, 0.02, 0.98)
    k0 = np.clip(-0.5 * np.log(1.0 - depth), 0.02, 5.0)
    r0 = np.maximum(0.5 * guess_diameter_px, 0.7)
    half = np.abs(offsets[:, -1])
    p0 = np.column_stack([np.zeros(h), r0, k0, s0, np.full(h, 0.8)])
    lower = np.tile([0.0, 0.3, 0.005, 0.05, 0.3], (h, 1))
    upper = np.tile([0.0, 1e4, 8.0, 4.0, 50.0], (h, 1))
    lower[:, 0], upper[:, 0] = -0.3 * half, 0.3 * half
    # down-weight far tails: neighbouring shafts live there
    weight = np.exp(-0.5 * (offsets / (0.8 * half[:, None])) ** 4) * seen
    sigma_guess = 0.8 if psf_sigma_px is None else float(psf_sigma_px)
    sigma_used: float
    if psf_sigma_px is None:
        order = np.argsort(-depth * r0)
        pick = order[: min(h, 24)]
        pick = pick[(r0[pick] > 1.0) & (depth[pick] > 0.1)]
        if len(pick) >= 1:
            nodes = _node_count(1.5 * float(r0[pick].max()), 1.0)
            start = _grid_start(
                offsets[pick], profiles[pick], weight[pick], p0[pick],
                np.full(len(pick), sigma_guess), nodes,
            )  # fmt: skip
            fit, _ = _lm_fit(
                offsets[pick],
                profiles[pick],
                weight[pick],
                start,
                np.zeros(len(pick)),
                [0, 1, 2, 3, 4],
                lower[pick],
                upper[pick],
                nodes=nodes,
            )
            sigma_used = float(np.median(fit[:, 4]))
        else:
            sigma_used = sigma_guess
    else:
        sigma_used = float(psf_sigma_px)
    # final fit with the blur fixed, in groups of similar radius so that thin shafts do not
    # pay for the quadrature a thick one needs
    fit = np.zeros((h, 4))
    cost = np.zeros(h)
    bucket = np.digitize(r0, [3.0, 6.0, 12.0, 24.0])
    for b in np.unique(bucket):
        idx = np.flatnonzero(bucket == b)
        nodes = _node_count(1.5 * float(r0[idx].max()), max(sigma_used, 1.0))
        sig = np.full(len(idx), sigma_used)
        start = _grid_start(offsets[idx], profiles[idx], weight[idx], p0[idx], sig, nodes)
        fit[idx], cost[idx] = _lm_fit(
            offsets[idx],
            profiles[idx],
            weight[idx],
            start[:, :4],
            sig,
            [0, 1, 2, 3],
            lower[idx, :4],
            upper[idx, :4],
            iters=iterations,
            nodes=nodes,
        )
    scale = np.sum(((profiles - fit[:, 3:4]) * weight) ** 2, axis=1) + 1e-12
    quality = np.clip(1.0 - cost / scale, 0.0, 1.0)
    diameter = 2.0 * fit[:, 1]
    # a shaft is measured only where both its edges lie among the samples seen: a band
    # cut by the image border or an overlay could be any width beyond the cut
    rows, any_seen = np.arange(h), seen.any(axis=1)
    first = np.where(any_seen, offsets[rows, np.argmax(seen, axis=1)], np.inf)
    last_col = seen.shape[1] - 1 - np.argmax(seen[:, ::-1], axis=1)
    last = np.where(any_seen, offsets[rows, last_col], -np.inf)
    blind = (fit[:, 0] - fit[:, 1] < first) | (fit[:, 0] + fit[:, 1] > last)
    diameter[blind] = np.nan
    quality[blind] = 0.0
    return diameter, quality, sigma_used
