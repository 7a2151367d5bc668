"""Benchmark of the trial database: ingest, queue/claim, saving hairs, export.

Usage::

    .venv/bin/python benchmarks/bench_store.py [--images N] [--hairs H] [--pg URL]

On SQLite (a temporary file) and, when reachable, PostgreSQL (a temporary database made
through the ``postgres`` maintenance database and dropped afterwards), prints:

* ingest rate (images/s) for N small PNG images, whole-manifest validation included
  (decode, SHA-256, checks) and copies into the content-addressed store;
* enqueue + claim rate (runs/s), claiming 10 at a time;
* save_measurement rate (images/s and hairs/s) with H hairs per image, one transaction
  per image;
* export of the four tidy tables to Parquet (s);
* database size per image and per hair (bytes), for capacity arithmetic.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from hairtrial.io import write_image, write_manifest
from hairtrial.records import HairRecord, summarize_hairs
from hairtrial.store import (
    claim_pending_images,
    enqueue_runs,
    export_tables,
    ingest_manifest,
    open_store,
    save_measurement,
)

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _manifest(folder: Path, n: int) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        name = f"images/{i:05d}.png"
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        write_image(path, rng.integers(0, 256, size=(150, 200, 3), dtype=np.uint8))
        subject, rest = divmod(i, 10)
        site, visit = divmod(rest, 5)
        rows.append(
            {
                "image": name,
                "subject": f"S{subject:04d}",
                "site": f"S{subject:04d}-{'LR'[site]}",
                "arm": ("cells", "saline")[site],
                "visit_day": (0, 30, 90, 210, 270)[visit],
                "um_per_px": 5.0,
            }
        )
    return write_manifest(folder / "manifest.csv", rows)


def _hairs(n: int, seed: int) -> list[HairRecord]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        x, y = (float(v) for v in rng.uniform(0, 1000, size=2))
        line = tuple((x + k, y + 0.5 * k) for k in range(0, 40, 4))
        d = float(rng.uniform(20, 100))
        out.append(
            HairRecord(
                id=i + 1,
                exit_px=(x, y),
                tip_px=line[-1],
                centerline_px=line,
                diameter_um=d,
                length_um=400.0,
                hair_class="terminal" if d >= 60 else "intermediate",
                confidence=0.9,
            )
        )
    return out


def _size_bytes(store: object, url: str, folder: Path) -> int:
    if url.startswith("sqlite"):
        return sum(p.stat().st_size for p in folder.glob("trial.db*"))
    from sqlalchemy import text

    with store.engine.connect() as c:  # type: ignore[attr-defined]
        return int(c.execute(text("SELECT pg_database_size(current_database())")).scalar())


def bench(url: str, folder: Path, manifest: Path, n_hairs: int) -> None:
    """Run the store benchmark on one database URL."""
    with open_store(url, image_root=folder / "images") as store:
        t0 = time.perf_counter()
        report = ingest_manifest(url_or_store=store, manifest_path=manifest)
        t_ingest = time.perf_counter() - t0
        n = report.added
        with store.session() as session:
            t0 = time.perf_counter()
            enqueue_runs(session=session, version="bench", config_hash="c")
            claimed = []
            while batch := claim_pending_images(session=session, owner="b", limit=10, lease_s=600):
                claimed.extend(batch)
            t_claim = time.perf_counter() - t0
            records = _hairs(n_hairs, 0)
            summary = summarize_hairs(records, area_cm2=0.0075)
            t0 = time.perf_counter()
            for c in claimed:
                save_measurement(
                    session=session,
                    image_id=c.image_id,
                    version="bench",
                    config_hash="c",
                    hairs=records,
                    summary=summary,
                    timings={"total_s": 0.0},
                    owner="b",
                )
            t_save = time.perf_counter() - t0
        t0 = time.perf_counter()
        export_tables(store=store, out_dir=folder / "export", fmt="parquet")
        t_export = time.perf_counter() - t0
        size = _size_bytes(store, url, folder)
    backend = url.split(":", 1)[0].split("+")[0]
    print(
        f"{backend:>10}: ingest {n / t_ingest:7.1f} images/s | claim {n / t_claim:7.1f} runs/s | "
        f"save {n / t_save:6.1f} images/s = {n * n_hairs / t_save:8.0f} hairs/s | "
        f"export {t_export:5.2f} s | {size / n / 1024:6.1f} KiB/image "
        f"({size / (n * n_hairs):.0f} B/hair)"
    )


def main() -> None:
    """Parse arguments and run the benchmark on SQLite and PostgreSQL."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--hairs", type=int, default=300)
    parser.add_argument("--pg", default=ADMIN, help="PostgreSQL maintenance database URL")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        manifest = _manifest(folder / "input", args.images)
        bench(
            f"sqlite:///{folder / 'sqlite' / 'trial.db'}", folder / "sqlite", manifest, args.hairs
        )
        try:
            import psycopg

            name = f"bench_{uuid.uuid4().hex[:12]}"
            with psycopg.connect(args.pg, autocommit=True, connect_timeout=3) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
        except Exception as exc:
            print(f"postgresql: skipped ({exc})")
            return
        base = args.pg.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        try:
            bench(f"{base}/{name}", folder / "pg", manifest, args.hairs)
        finally:
            with psycopg.connect(args.pg, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
