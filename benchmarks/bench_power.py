"""Benchmark of the power simulation: the cost of one Monte Carlo draw.

Usage::

    .venv/bin/python benchmarks/bench_power.py [--repeat N] [--subjects 80]

One core (thread pools set to 1 before they load). Prints the median wall time of one
draw of ``power_curve`` at the largest size (simulating the nanfang-2023 trial, adding
measurement error, and testing the nested subsets of 10, 20, 40 and 80 subjects), split
into the simulation and the analysis, and the time this implies for ``--sims 500`` on one
and on two worker processes.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

from hairtrial.analyze import AnalysisConfig, MeasurementError  # noqa: E402
from hairtrial.analyze.power import _one_draw  # noqa: E402
from hairtrial.simulate.config import load_preset  # noqa: E402
from hairtrial.simulate.trial import simulate_trial, with_overrides  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--subjects", type=int, default=80)
    args = parser.parse_args()
    preset = with_overrides(load_preset("nanfang-2023"), subjects=args.subjects)
    config = AnalysisConfig(treated_arm="cells", control_arm="saline")
    sizes = tuple(s for s in (10, 20, 40, 80) if s <= args.subjects)
    job = (preset, 0, sizes, MeasurementError(), config, 30)
    _one_draw(job)  # warm up imports
    draws, sims = [], []
    for seed in range(args.repeat):
        start = time.perf_counter()
        simulate_trial(preset, seed=seed)
        sims.append(time.perf_counter() - start)
        start = time.perf_counter()
        _one_draw((preset, seed, *job[2:]))
        draws.append(time.perf_counter() - start)
    draw, sim = statistics.median(draws), statistics.median(sims)
    print(f"one draw at {args.subjects} subjects: {draw:.2f} s "
          f"(simulation {sim:.2f} s, analysis {draw - sim:.2f} s)")  # fmt: skip
    print(f"--sims 500: about {500 * draw / 60:.1f} min on one process, "
          f"{250 * draw / 60:.1f} min on two")  # fmt: skip


if __name__ == "__main__":
    main()
