"""Benchmark of the batch runner on a simulated trial (default 100 images).

Usage::

    .venv/bin/python benchmarks/bench_batch.py [--subjects 10] [--field-cm2 0.3] [--pg URL]

Renders a trial with :func:`hairtrial.simulate.trial.write_trial` (``nanfang-2023``:
``subjects`` × 2 sites × 5 visits; 10 subjects → 100 images of 1265 × 949 px at 5 µm/px)
into a temporary folder, then prints:

* bare ``measure_image`` on every image in one process (images/min, s/image): the
  reference with no database and no scheduling, run twice in a fresh process: with the
  libraries' default threading, and single-threaded (``OMP_NUM_THREADS=1`` etc., which
  is what a Dask worker process gets: parallelism comes from worker processes);
* ingest time into a fresh database (SQLite file, or PostgreSQL with ``--pg``);
* ``run_batch`` with 1 and with 2 LocalCluster workers on fresh copies of the ingested
  database: images/min (wall clock, cluster start-up included), the 2-vs-1 ratio, and
  the steady-state rate from the workers' busy time;
* the overhead of ingest + store + scheduling over the bare calls:
  ``(ingest + batch with 1 worker) / bare single-threaded - 1`` (the like-for-like
  comparison), the in-loop share (read + save over measure), and
  ``(ingest + batch with 2 workers) / bare default-threaded - 1`` (whole machine vs
  whole machine);
* peak resident memory per worker process (MiB).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pandas as pd

from hairtrial.batch import BatchSummary, run_batch
from hairtrial.io import read_image
from hairtrial.measure import MeasureConfig, measure_image
from hairtrial.simulate.config import load_preset
from hairtrial.simulate.trial import with_overrides, write_trial
from hairtrial.store import ingest_manifest

#: What a Dask worker process gets (distributed.nanny.pre-spawn-environ).
_ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def _bare(trial: Path) -> float:
    """Measure every image of `trial` with default parameters; return seconds."""
    manifest = pd.read_csv(trial / "manifest.csv")
    config = MeasureConfig()
    start = time.perf_counter()
    for name, um in zip(manifest["image"], manifest["um_per_px"], strict=True):
        measure_image(read_image(trial / name).pixels, um_per_px=float(um), config=config)
    return time.perf_counter() - start


def _bare_in_fresh_process(trial: Path, *, single_thread: bool) -> float:
    env = dict(os.environ, **_ONE_THREAD) if single_thread else dict(os.environ)
    if not single_thread:
        for name in _ONE_THREAD:
            env.pop(name, None)
    done = subprocess.run(
        [sys.executable, __file__, "--bare-only", str(trial)],
        env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return float(done.stdout.strip().splitlines()[-1])


def _pg_database(admin: str) -> tuple[str, str]:
    import psycopg

    name = f"bench_batch_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    base = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{name}", name


def _drop(admin: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


def _batch(
    trial: Path, work: Path, workers: int, pg: str | None, config: MeasureConfig
) -> tuple[float, BatchSummary]:
    """Ingest into a fresh database, then run the batch; return (ingest s, summary)."""
    dropped: list[str] = []
    if pg is None:
        url = f"sqlite:///{work / f'w{workers}' / 'trial.db'}"
    else:
        url, name = _pg_database(pg)
        dropped.append(name)
    root = work / f"w{workers}" / "images"
    try:
        start = time.perf_counter()
        ingest_manifest(url_or_store=url, manifest_path=trial / "manifest.csv", image_root=root)
        ingest_s = time.perf_counter() - start
        summary = run_batch(
            db_url=url, workers=workers, image_root=root, progress=False, config=config,
            track=False,
        )  # fmt: skip
    finally:
        for name in dropped:
            assert pg is not None
            _drop(pg, name)
    return ingest_s, summary


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subjects", type=int, default=10, help="× 10 images each")
    parser.add_argument("--field-cm2", type=float, default=0.3, help="imaged field, cm²")
    parser.add_argument("--pg", default=None, help="PostgreSQL maintenance URL (optional)")
    parser.add_argument("--render-workers", type=int, default=2)
    parser.add_argument("--bare-only", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_only is not None:
        print(_bare(args.bare_only))
        return
    config = MeasureConfig()
    with tempfile.TemporaryDirectory(prefix="bench_batch_") as tmp:
        work = Path(tmp)
        preset = with_overrides(
            load_preset("nanfang-2023"), subjects=args.subjects, field_cm2=args.field_cm2
        )
        start = time.perf_counter()
        out = write_trial(preset, work / "trial", seed=0, workers=args.render_workers)
        print(f"rendered {out.n_images} images in {time.perf_counter() - start:.1f} s")
        n = out.n_images
        bare: dict[str, float] = {}
        for label, single in (("default threads", False), ("single-threaded", True)):
            bare[label] = _bare_in_fresh_process(work / "trial", single_thread=single)
            print(f"bare measure_image, {label}: {bare[label]:.1f} s = "
                  f"{60 * n / bare[label]:.1f} images/min ({bare[label] / n:.3f} s/image, "
                  "1 process)")  # fmt: skip
        results: dict[int, tuple[float, BatchSummary]] = {}
        for workers in (1, 2):
            ingest_s, summary = _batch(work / "trial", work, workers, args.pg, config)
            results[workers] = (ingest_s, summary)
            steady = 60 * n / (summary.busy_s / workers) if summary.busy_s else 0.0
            print(
                f"{workers} worker(s): ingest {ingest_s:.1f} s; batch {summary.elapsed_s:.1f} s "
                f"= {summary.images_per_min:.1f} images/min wall clock "
                f"(steady state {steady:.1f} images/min); measured {summary.measured}, "
                f"failed {len(summary.failed)}; steps {summary.timings}; "
                f"peak worker RSS {summary.peak_worker_rss_mib:.0f} MiB"
            )
            shutil.rmtree(work / f"w{workers}", ignore_errors=True)
        one, two = results[1][1], results[2][1]
        print(f"speed-up 2 vs 1 worker: {two.images_per_min / one.images_per_min:.2f}x "
              "(wall clock, start-up included)")  # fmt: skip
        single, default = bare["single-threaded"], bare["default threads"]
        overhead = (results[1][0] + one.elapsed_s) / single - 1
        steps = one.timings
        in_loop = (steps.get("read_s", 0.0) + steps.get("save_s", 0.0)) / steps["measure_s"]
        fixed = one.elapsed_s - one.busy_s
        whole = (results[2][0] + two.elapsed_s) / default - 1
        print(
            f"overhead, 1 worker vs bare single-threaded: {100 * overhead:.1f} % "
            f"(ingest {results[1][0]:.1f} s, cluster start-up + claims + polling "
            f"{fixed:.1f} s, read + save {100 * in_loop:.1f} % of measure time; "
            f"measure in worker / bare: {steps['measure_s'] / single:.2f})"
        )
        print(f"2 workers (ingest + batch) vs bare default-threaded: {100 * whole:+.1f} %")


if __name__ == "__main__":
    main()
