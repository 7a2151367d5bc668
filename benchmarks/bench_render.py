"""Benchmark: time to render trichoscopy fields with :func:`hairtrial.simulate.render.render_field`.

Usage::

    .venv/bin/python benchmarks/bench_render.py [--repeat N] [--save DIR]

Runs on one core (OpenMP, BLAS and OpenCV threads set to 1 before they load) and prints the
median wall time over ``--repeat`` renders of

* a 1920x1080 field at 5 µm/px with 200 clipped hairs (target: at most 1 s), and
* a 1920x1080 field at 5 µm/px with uncut long hair (3-15 mm shafts from follicles around
  the field, most of them entering from outside and crossing each other),

both with the ``standard`` random look (the style and seed vary per repeat). The follicle
tables are synthetic and built here, so the benchmark does not depend on the population
model. ``--save DIR`` also writes the last image of each case as PNG for a look.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from hairtrial.simulate.render import CameraPose, random_style, render_field  # noqa: E402

cv2.setNumThreads(1)

SHAPE = (1080, 1920)
UM_PER_PX = 5.0
UNIT_SIZES = (1, 2, 3, 4)
UNIT_SHARES = (0.35, 0.45, 0.15, 0.05)


def follicle_table(
    rng: np.random.Generator,
    *,
    n_hairs: int,
    box_um: tuple[float, float, float, float],
    length_mm: tuple[float, float],
) -> pd.DataFrame:
    """Follicular units of 1-4 shafts scattered over `box_um` (x0, x1, y0, y1), one stream."""
    x0, x1, y0, y1 = box_um
    stream = rng.uniform(0.0, 360.0)
    rows: list[dict[str, object]] = []
    fu = 0
    while len(rows) < n_hairs:
        size = int(rng.choice(UNIT_SIZES, p=UNIT_SHARES))
        x, y = rng.uniform(x0, x1), rng.uniform(y0, y1)
        unit_azimuth = stream + rng.normal(0.0, 20.0)
        for _ in range(min(size, n_hairs - len(rows))):
            terminal = rng.random() < 0.8
            rows.append(
                {
                    "follicle_id": len(rows),
                    "fu_id": fu,
                    "x_um": x + rng.normal(0.0, 12.0),
                    "y_um": y + rng.normal(0.0, 12.0),
                    "phase": "anagen" if rng.random() < 0.88 else "telogen",
                    "has_shaft": True,
                    "diameter_um": rng.uniform(60, 105) if terminal else rng.uniform(15, 55),
                    "length_um": rng.uniform(*length_mm) * 1000.0,
                    "azimuth_deg": unit_azimuth + rng.normal(0.0, 8.0),
                    "elevation_deg": rng.uniform(15.0, 55.0),
                }
            )
        fu += 1
    return pd.DataFrame(rows)


def case_clipped(rng: np.random.Generator) -> pd.DataFrame:
    """200 clipped shafts (0.5-1.2 mm) with exits in the field."""
    h_um, w_um = SHAPE[0] * UM_PER_PX, SHAPE[1] * UM_PER_PX
    return follicle_table(rng, n_hairs=200, box_um=(0, w_um, 0, h_um), length_mm=(0.5, 1.2))


def case_long(rng: np.random.Generator) -> pd.DataFrame:
    """Uncut 3-15 mm shafts at ~150 hairs/cm² over the field and a 6 mm margin around it."""
    h_um, w_um = SHAPE[0] * UM_PER_PX, SHAPE[1] * UM_PER_PX
    pad = 6000.0
    area_cm2 = (w_um + 2 * pad) * (h_um + 2 * pad) / 1e8
    return follicle_table(
        rng,
        n_hairs=int(150 * area_cm2),
        box_um=(-pad, w_um + pad, -pad, h_um + pad),
        length_mm=(3.0, 15.0),
    )


def run(name: str, table: pd.DataFrame, repeat: int, save: Path | None) -> None:
    pose = CameraPose(SHAPE[1] * UM_PER_PX / 2, SHAPE[0] * UM_PER_PX / 2)
    times = []
    out = None
    for k in range(repeat):
        style = random_style(np.random.default_rng(k), preset="standard")
        start = time.perf_counter()
        out = render_field(table, um_per_px=UM_PER_PX, shape=SHAPE, pose=pose, style=style, seed=k)
        times.append(time.perf_counter() - start)
    assert out is not None
    counted = sum(h.exit_px is not None for h in out.hairs)
    print(
        f"{name:<28} median {statistics.median(times):6.3f} s  "
        f"(min {min(times):.3f}, max {max(times):.3f}; {len(table)} follicles, "
        f"{len(out.hairs)} shafts in view, {counted} counted)"
    )
    if save is not None:
        from PIL import Image

        save.mkdir(parents=True, exist_ok=True)
        Image.fromarray(out.image).save(save / f"{name.split()[0]}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--save", type=Path, default=None)
    args = parser.parse_args()
    rng = np.random.default_rng(2024)
    clipped, long_hair = case_clipped(rng), case_long(rng)
    # Warm up imports and caches outside the timing.
    render_field(
        clipped.head(5), um_per_px=UM_PER_PX, shape=(64, 64), pose=CameraPose(160.0, 160.0),
        style=random_style(np.random.default_rng(0)), seed=0,
    )  # fmt: skip
    print(f"render_field, {SHAPE[1]}x{SHAPE[0]} px at {UM_PER_PX} µm/px, one core")
    run("clipped (200 hairs)", clipped, args.repeat, args.save)
    run("long uncut hair", long_hair, args.repeat, args.save)


if __name__ == "__main__":
    main()
