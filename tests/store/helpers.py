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
