"""Synthetic hair constellations for track tests: known poses, turnover and noise."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hairtrial.records import DEFAULT_CLASSES, HairRecord


@dataclass(frozen=True)
class SynthSite:
    """Follicles of a site in µm (x, y), with direction (radians) and diameter (µm)."""

    xy_um: np.ndarray
    direction: np.ndarray
    diameter_um: np.ndarray


def make_site(n: int, *, side_um: float = 8000.0, seed: int = 0) -> SynthSite:
    """Follicular units of 1–3 hairs spread uniformly, hairs flowing in one direction."""
    rng = np.random.default_rng(seed)
    n_units = max(1, int(n / 1.7))
    centres = rng.uniform(0, side_um, size=(n_units, 2))
    sizes = rng.choice([1, 2, 3], size=n_units, p=[0.45, 0.4, 0.15])
    xy = np.repeat(centres, sizes, axis=0) + rng.normal(0, 40, size=(int(sizes.sum()), 2))
    xy = xy[:n]
    direction = rng.normal(math.radians(100), math.radians(22), size=len(xy))
    diameter = np.clip(rng.normal(62, 18, size=len(xy)), 12, 110)
    return SynthSite(xy_um=xy, direction=direction, diameter_um=diameter)


def pose_matrix(
    *,
    um_per_px: float,
    shape: tuple[int, int],
    centre_um: tuple[float, float],
    rotation_deg: float = 0.0,
    scale: float = 1.0,
) -> np.ndarray:
    """2×3 matrix site µm → image px: centre_um at the image centre, rotated and scaled."""
    h, w = shape
    k = scale / um_per_px
    c, s = math.cos(math.radians(rotation_deg)), math.sin(math.radians(rotation_deg))
    lin = k * np.array([[c, -s], [s, c]])
    t = np.array([w / 2, h / 2]) - lin @ np.asarray(centre_um)
    return np.hstack([lin, t[:, None]])


def make_visit(
    site: SynthSite,
    matrix: np.ndarray,
    *,
    shape: tuple[int, int],
    um_per_px: float,
    present: np.ndarray | None = None,
    jitter_px: float = 0.0,
    diameter_noise_um: float = 0.0,
    diameter_change_um: np.ndarray | None = None,
    seed: int = 0,
) -> list[HairRecord]:
    """Hair records of the follicles of `site` seen through `matrix` (µm → px)."""
    rng = np.random.default_rng(seed)
    h, w = shape
    xy = site.xy_um @ matrix[:, :2].T + matrix[:, 2]
    xy = xy + rng.normal(0, jitter_px, size=xy.shape) if jitter_px else xy
    turn = math.atan2(matrix[1, 0], matrix[0, 0])
    keep = (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
    if present is not None:
        keep &= present
    hairs = []
    for f in np.flatnonzero(keep):
        d = float(site.diameter_um[f])
        if diameter_change_um is not None:
            d += float(diameter_change_um[f])
        d = max(5.0, d + (rng.normal(0, diameter_noise_um) if diameter_noise_um else 0.0))
        a = float(site.direction[f]) + turn
        length_px = 600.0 / um_per_px
        x0, y0 = float(xy[f, 0]), float(xy[f, 1])
        tip = (x0 + length_px * math.cos(a), y0 + length_px * math.sin(a))
        hairs.append(
            HairRecord(
                id=len(hairs),
                exit_px=(x0, y0),
                tip_px=tip,
                centerline_px=((x0, y0), tip),
                diameter_um=d,
                length_um=600.0,
                hair_class=DEFAULT_CLASSES.classify(d),
                extra={"follicle_id": int(f)},
            )
        )
    return hairs
