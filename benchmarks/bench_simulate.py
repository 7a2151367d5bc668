"""Benchmark of the simulator: population model, renderer, whole-trial generation.

Usage::

    .venv/bin/python benchmarks/bench_simulate.py [--repeat N]

One core (thread pools set to 1 before they load). Prints the median wall time of

* the population model for 50 subjects x 2 sites x 270 days of nanfang-2023 (target ≤ 2 s),
  burn-in and building the output table included;
* rendering a 1920x1080 field at 5 µm/px with 200 clipped hairs (target ≤ 1 s), using the
  follicle table of ``bench_render.py``;
* writing a 2-subject nanfang-2023 trial end to end (simulate, render, JPEG, truth JSON),
  per image.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from hairtrial.simulate.config import load_preset  # noqa: E402
from hairtrial.simulate.population import SiteSpec, simulate_population  # noqa: E402
from hairtrial.simulate.render import CameraPose, random_style, render_field  # noqa: E402
from hairtrial.simulate.trial import draw_subjects, with_overrides, write_trial  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from bench_render import SHAPE, UM_PER_PX, case_clipped  # noqa: E402

cv2.setNumThreads(1)


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def report(name: str, times: list[float], target: float | None = None, per: int = 1) -> None:
    med = statistics.median(times) / per
    verdict = (
        "" if target is None else f"  target ≤ {target:g} s: {'met' if med <= target else 'MISSED'}"
    )
    print(f"{name:<46} median {med:7.3f} s  (min {min(times) / per:.3f}){verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    preset = load_preset("nanfang-2023")
    _, sites = draw_subjects(preset, seed=1)
    specs = [
        SiteSpec(
            params=preset.population_params(row.severity),
            area_cm2=1.0,
            arm=row.arm,
            treatment=preset.treatment,
        )
        for row in sites.itertuples()
    ]
    days = list(preset.trial.visit_days)
    simulate_population(specs[:2], days=days, seed=0)  # warm-up
    times = timed(lambda: simulate_population(specs, days=days, seed=1), args.repeat)
    report(f"population: {len(specs)} sites x 270 days", times, target=2.0)

    table = case_clipped(np.random.default_rng(2024))
    pose = CameraPose(SHAPE[1] * UM_PER_PX / 2, SHAPE[0] * UM_PER_PX / 2)
    style = random_style(np.random.default_rng(0), preset="standard")
    render_field(table.head(5), um_per_px=UM_PER_PX, shape=(64, 64), pose=pose, style=style, seed=0)
    times = timed(
        lambda: render_field(
            table, um_per_px=UM_PER_PX, shape=SHAPE, pose=pose, style=style, seed=1
        ),
        args.repeat,
    )
    report("render: 1920x1080, 200 clipped hairs", times, target=1.0)

    small = with_overrides(preset, subjects=2)
    n_images = 2 * 2 * len(preset.trial.visit_days)
    with tempfile.TemporaryDirectory() as tmp:
        times = timed(lambda: write_trial(small, tmp, seed=3), max(1, args.repeat // 2))
    h, w = small.imaging.shape_px()
    report(f"trial: per image ({w}x{h} px, {n_images} images)", times, per=n_images)


if __name__ == "__main__":
    main()
