"""Small synthetic images and manifests for the store tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hairtrial.io import write_image, write_manifest
from hairtrial.records import HairRecord


def make_image(path: Path, seed: int, *, shape: tuple[int, int] = (24, 32)) -> Path:
    """Write a small random RGB PNG whose bytes depend on `seed`."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(*shape, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_image(path, pixels)


def trial_rows(folder: Path, *, subjects: int = 2, days: Sequence[int] = (0, 30)) -> list[dict]:
    """Manifest rows of a split-site trial: two sites per subject, one image per visit."""
    rows: list[dict[str, Any]] = []
    seed = 0
    for s in range(1, subjects + 1):
        for side, arm in (("L", "cells"), ("R", "saline")):
            for day in days:
                seed += 1
                name = f"images/S{s:03d}-{side}_d{day:03d}.png"
                make_image(folder / name, seed)
                rows.append(
                    {
                        "image": name,
                        "subject": f"S{s:03d}",
                        "site": f"S{s:03d}-{side}",
                        "arm": arm,
                        "visit_day": day,
                        "um_per_px": 5.0,
                        "kind": "clipped",
                        "acquired_at": f"2025-01-{1 + day // 30 + s:02d}T10:00:00+00:00",
                    }
                )
    return rows


def write_trial_manifest(folder: Path, **kwargs: Any) -> Path:
    """Write images and a manifest for a tiny trial; return the manifest path."""
    return write_manifest(folder / "manifest.csv", trial_rows(folder, **kwargs))


def hairs(n: int, *, seed: int = 0) -> list[HairRecord]:
    """`n` plausible hair records (the first one enters from outside the field)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        x, y = (float(v) for v in rng.uniform(0, 100, size=2))
        diameter = float(rng.uniform(20, 100))
        out.append(
            HairRecord(
                id=i + 1,
                exit_px=None if i == 0 else (x, y),
                tip_px=(x + 10.0, y + 5.0),
                centerline_px=((x, y), (x + 5.0, y + 2.5), (x + 10.0, y + 5.0)),
                diameter_um=diameter,
                length_um=float(rng.uniform(200, 900)),
                hair_class="terminal" if diameter >= 60 else "intermediate",
                confidence=0.9,
            )
        )
    return out


def ingest_and_measure(store: Any, folder: Path) -> list[tuple[int, int]]:
    """Ingest the tiny trial and give it a mix of runs; return ``(image_id, site_id)`` rows.

    Of its 8 images, 5 are measured by version "1" (the first also by version "2", whose
    10 hairs carry exit confidences 0.5, 0.55, ... 0.95), the sixth failed ("blurred")
    and the last two stay pending.
    """
    from sqlalchemy import select

    from hairtrial.records import summarize_hairs
    from hairtrial.store import enqueue_runs, ingest_manifest, mark_failed, save_measurement
    from hairtrial.store.models import Image, Visit

    ingest_manifest(url_or_store=store, manifest_path=write_trial_manifest(folder))
    with store.session() as session:
        images = [
            (int(i), int(s))
            for i, s in session.execute(
                select(Image.id, Visit.site_id).join(Visit).order_by(Image.id)
            ).all()
        ]
        enqueue_runs(session=session, version="1", config_hash="c")
        runs = [(image_id, "1", hairs(n, seed=image_id)) for n, (image_id, _) in
                enumerate(images[:5], start=3)]  # fmt: skip
        runs.append((images[0][0], "2", hairs(10, seed=99)))
        for image_id, version, records in runs:
            save_measurement(
                session=session,
                image_id=image_id,
                version=version,
                config_hash="c",
                hairs=records,
                summary=summarize_hairs(records, area_cm2=0.03),
                timings={"total_s": 1.0},
                exit_confidence=[0.5 + 0.05 * k for k in range(10)] if version == "2" else None,
            )
        mark_failed(
            session=session, image_id=images[5][0], version="1", config_hash="c", error="blurred"
        )
    return images
