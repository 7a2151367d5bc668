"""Shaft diameter from intensity profiles across the shaft, blur taken into account.

Light passing through a cylindrical shaft of radius ``r`` is attenuated along the chord
``2 sqrt(r² - x²)`` (Beer–Lambert), so the transmittance across the shaft is
``T(x) = exp(-2 k sqrt(1 - (x/r)²))`` with ``k = μ r``: a faint shaft gives a half-ellipse
dip, an opaque one a flat-bottomed box. The optics blur ``T`` with a Gaussian point-spread
function of width ``σ`` before the sensor samples it. Fitting this model (centre, radius,
density, skin level) to the median of many perpendicular profiles gives a diameter that is
sub-pixel and does not grow with blur, unlike the width of a thresholded mask. ``σ`` is one
property of the image, estimated jointly on the clearest shafts and then held fixed.

A shaft not much wider than the blur cannot tell its width from its density: a narrower,
darker shaft blurs into nearly the same profile as a wider, fainter one, and the free fit
slides along that valley with the noise (on a real image, half of its thin shafts came
out narrow and nearly opaque, at 10-100 times the density per unit radius of its
resolved shafts). The density per unit radius ``μ = k / r`` is the shaft's pigment, which
the hairs of one scalp share within a spread; the resolved shafts of the image measure
its median and spread (:class:`Pigment`), and the unresolved ones are fitted again with
that as a prior.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np
from numpy.typing import NDArray

from hairtrial.measure import _ridges

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]

#: Profile samples per side, in units of the half-window.
_K = 20
#: A shaft whose fitted radius is at least this many blur σ is resolved: its profile
#: fixes its width and its density apart. Thinner shafts take the pigment prior.
_RESOLVED_SIGMAS = 2.5
#: Densities (optical depth at the axis, ``k``) at which a resolved shaft measures its
#: pigment: below, it hardly absorbs; above, it is opaque and ``k`` is not measured.
_PIGMENT_K_RANGE = (0.05, 2.5)
#: Resolved shafts needed to measure an image's pigment (fewer: no prior).
_PIGMENT_MIN_SHAFTS = 5
#: Bounds of the prior's spread in ln μ (a factor of 1.35 to 4.5).
_PIGMENT_SPREAD_RANGE = (0.3, 1.5)


@dataclass(frozen=True)
class Pigment:
    """How densely an image's shafts absorb per unit radius: a prior for thin ones.

    Attributes
    ----------
    log_density : float
        Median of ``ln(k / r)`` (``k / r`` in 1/px) over the image's resolved shafts.
    spread : float
        Their robust standard deviation of ``ln(k / r)`` (1.4826 × the median absolute
        deviation), within :data:`_PIGMENT_SPREAD_RANGE`.
    noise : float
        Residual per profile sample of their fits (transmittance). The prior's residual
        is ``noise / spread`` per unit of ``ln μ``: with the samples' squared residuals,
        the cost is that of the most probable shaft when samples scatter by ``noise``
        and ``ln μ`` by ``spread``.
    """

    log_density: float
    spread: float
    noise: float


class ShaftFits(NamedTuple):
    """Diameters fitted to shaft profiles (:func:`fit_diameters`).

    Attributes
    ----------
    diameter_px : (H,) ndarray, px
        Fitted diameters, with the pigment prior for unresolved shafts; NaN where an edge
        of the fitted shaft lies beyond the samples seen.
    quality : (H,) ndarray
        Fit quality in [0, 1] (1 - relative residual of the data).
    psf_sigma_px : float, px
        Blur used (given or estimated).
    pigment : Pigment or None
        The prior used (given or measured), None where there was none.
    free_diameter_px : (H,) ndarray, px
        Diameters as the data alone give them (no prior): a line thinner than the blur
        (drawn graphics) stays thin here.
    """

    diameter_px: F64
    quality: F64
    psf_sigma_px: float
    pigment: Pigment | None
    free_diameter_px: F64


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
    centre = np.empty((h * n_along, 2))
    normal = np.empty((h * n_along, 2))
    for i, pts in enumerate(centrelines):
        rows = slice(i * n_along, (i + 1) * n_along)
        _, centre[rows], normal[rows] = profile_frames(pts, float(trim_px[i]), n_along)
    # every profile's sample points at once (the same products as profile by profile)
    across = np.repeat(offsets, n_along, axis=0)
    map_x = (centre[:, :1] + normal[:, :1] * across).astype(np.float32)
    map_y = (centre[:, 1:] + normal[:, 1:] * across).astype(np.float32)
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
    s = _ridges.linspace(lo, hi, n_along)
    ds = max(1.5, 0.05 * total)
    # the centres and the points ds either side, one interpolation per coordinate
    at = np.concatenate([s, s + ds, s - ds])
    x = np.interp(at, dist, pts[:, 0]).reshape(3, -1)
    y = np.interp(at, dist, pts[:, 1]).reshape(3, -1)
    tx = x[1] - x[2]
    ty = y[1] - y[2]
    norm = np.hypot(tx, ty) + 1e-12
    return s, np.column_stack([x[0], y[0]]), np.column_stack([-ty / norm, tx / norm])


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
    a = x[:, :, None] - x0[:, :, None] - (r * sin[None, :])[:, None, :]
    a /= sig[:, :, None]
    # exp(-0.5 a²), the same operations made in one array
    g = np.multiply(a, -0.5)
    g *= a
    np.exp(g, out=g)
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
    prior: tuple[float, F64] | None = None,
) -> tuple[F64, F64]:
    """Batched Levenberg-Marquardt over independent profiles (analytic Jacobian).

    With `prior` ``(centre, gain)`` (`gain` per profile) one more residual,
    ``gain · (ln k - ln r - centre)``, pulls each shaft's density per unit radius
    towards ``exp(centre)``; the cost returned is that of the data alone.
    """
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
        res = (model - y) * weight
        if prior is None:
            return res, jac
        centre, gain = prior
        r, k = prm[:, 1], prm[:, 2]
        row = np.zeros((h, 1, len(free)))
        for col, j in enumerate(free):
            if j == 1:
                row[:, 0, col] = -gain / r
            elif j == 2:
                row[:, 0, col] = gain / k
        extra = gain * (np.log(k) - np.log(r) - centre)
        return np.concatenate([res, extra[:, None]], axis=1), np.concatenate([jac, row], axis=1)

    res, jac = evaluate(p)
    cost = np.sum(res**2, axis=1)
    for _ in range(iters):
        # batched products (matmul: ~10× faster than the equivalent einsum here)
        jac_t = jac.transpose(0, 2, 1)
        jtj = np.matmul(jac_t, jac)
        jtr = np.matmul(jac_t, res[:, :, None])[:, :, 0]
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
    if prior is not None:
        cost = np.sum(res[:, :-1] ** 2, axis=1)
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
    pigment: Pigment | bool = True,
) -> ShaftFits:
    """Fit the blurred-cylinder model to each profile.

    Shafts resolved well above the blur (radius at least :data:`_RESOLVED_SIGMAS` σ)
    are fitted freely. The others are fitted again with a prior on their density per
    unit radius: `pigment` if one is given, else (``True``) the one the resolved shafts
    of this call measure (:func:`measure_pigment`; none if too few are resolved).

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
    pigment : Pigment or bool
        The image's pigment, measured on other shafts of the same image; ``True`` to
        measure it on these shafts, ``False`` for none (free fits only).

    Returns
    -------
    ShaftFits
        Diameters (px; NaN where an edge of the fitted shaft lies beyond the samples
        seen: a band cut by the image border or an overlay is not measured), fit quality
        in [0, 1], the blur and the pigment prior used, and the free diameters.
    """
    h = profiles.shape[0]
    if h == 0:
        given = pigment if isinstance(pigment, Pigment) else None
        return ShaftFits(np.zeros(0), np.zeros(0), float(psf_sigma_px or 0.0), given, np.zeros(0))
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
    # the edges of the shaft must lie among the samples seen: a band cut by the image
    # border or an overlay could be any width beyond the cut
    rows, any_seen = np.arange(h), seen.any(axis=1)
    first = np.where(any_seen, offsets[rows, np.argmax(seen, axis=1)], np.inf)
    last_col = seen.shape[1] - 1 - np.argmax(seen[:, ::-1], axis=1)
    last = np.where(any_seen, offsets[rows, last_col], -np.inf)

    def blind(params: F64) -> NDArray[np.bool_]:
        return np.asarray(
            (params[:, 0] - params[:, 1] < first) | (params[:, 0] + params[:, 1] > last), bool
        )

    measured = ~blind(fit)
    free_diameter = np.where(measured, 2.0 * fit[:, 1], np.nan)
    prior: Pigment | None
    if isinstance(pigment, Pigment):
        prior = pigment
    elif pigment:
        prior = measure_pigment(fit[measured], cost[measured], weight[measured], sigma_used)
    else:
        prior = None
    thin = fit[:, 1] < _RESOLVED_SIGMAS * max(sigma_used, 0.3)
    if prior is not None and thin.any():
        gain = prior.noise / prior.spread
        for b in np.unique(bucket[thin]):
            idx = np.flatnonzero(thin & (bucket == b))
            reach = max(float(r0[idx].max()), float(fit[idx, 1].max()))
            nodes = _node_count(1.5 * reach, max(sigma_used, 1.0))
            start = fit[idx].copy()
            # from the free fit, at the prior's density per unit radius
            start[:, 2] = np.clip(np.exp(prior.log_density) * start[:, 1], 0.005, 8.0)
            fit[idx], cost[idx] = _lm_fit(
                offsets[idx],
                profiles[idx],
                weight[idx],
                start,
                np.full(len(idx), sigma_used),
                [0, 1, 2, 3],
                lower[idx, :4],
                upper[idx, :4],
                iters=iterations,
                nodes=nodes,
                prior=(prior.log_density, np.full(len(idx), gain)),
            )
    scale = np.sum(((profiles - fit[:, 3:4]) * weight) ** 2, axis=1) + 1e-12
    quality = np.clip(1.0 - cost / scale, 0.0, 1.0)
    diameter = 2.0 * fit[:, 1]
    unseen = blind(fit)
    diameter[unseen] = np.nan
    quality[unseen] = 0.0
    return ShaftFits(diameter, quality, sigma_used, prior, free_diameter)


def measure_pigment(fit: F64, cost: F64, weight: F64, sigma_px: float) -> Pigment | None:
    """Return the pigment that an image's resolved shafts show, or None if too few are.

    Parameters
    ----------
    fit : (H, 4) ndarray
        Free fits ``(x0, r, k, s)`` of the image's shafts (px, px, optical depth, level).
    cost : (H,) ndarray
        Their weighted squared residuals.
    weight : (H, K) ndarray
        Their sample weights.
    sigma_px : float, px
        The image's blur.

    Returns
    -------
    Pigment or None
        None with fewer than :data:`_PIGMENT_MIN_SHAFTS` shafts of radius at least
        :data:`_RESOLVED_SIGMAS` σ and density within :data:`_PIGMENT_K_RANGE`.
    """
    r, k = fit[:, 1], fit[:, 2]
    resolved = (
        (r >= _RESOLVED_SIGMAS * max(sigma_px, 0.3))
        & (k > _PIGMENT_K_RANGE[0])
        & (k < _PIGMENT_K_RANGE[1])
        & np.isfinite(cost)
    )
    if int(resolved.sum()) < _PIGMENT_MIN_SHAFTS:
        return None
    log_mu = np.log(k[resolved] / r[resolved])
    centre = float(np.median(log_mu))
    spread = float(np.clip(1.4826 * np.median(np.abs(log_mu - centre)), *_PIGMENT_SPREAD_RANGE))
    # a median profile's samples, weighted: (cost / Σ w²) is the residual variance
    weighted = np.sum(weight[resolved] ** 2, axis=1)
    noise = float(np.sqrt(np.median(cost[resolved] / np.maximum(weighted - 4.0, 1.0))))
    return Pigment(centre, spread, max(noise, 1e-4))
