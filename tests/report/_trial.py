"""Fill a trial database from a small simulated trial, with truth as the measurement.

Measuring images is slow, so each image's measurement run is saved from the simulator's
truth hairs (``*.truth.json``) and each site's follicle tracks from the follicle truth;
the report then sees a database like one the batch runner fills.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select

from hairtrial.records import HairRecord, summarize_hairs
from hairtrial.store import Store, ingest_manifest, mark_failed, save_measurement, save_tracks
from hairtrial.store.models import Image, Site, Visit

VERSION = "0.1.0"
MEASURE_HASH = "measure-truth"
TRACK_HASH = "track-truth"


def fill_store(store: Store, trial_dir: Path, *, trial: str = "report-test", fail: int = 1) -> None:
    """Ingest `trial_dir`'s manifest and save truth measurements and tracks.

    The last `fail` images get a failed run instead of a measurement (for the QC section).
    """
    ingest_manifest(url_or_store=store, manifest_path=trial_dir / "manifest.csv", trial=trial)
    follicles = pd.read_parquet(trial_dir / "follicles.parquet")
    with store.session() as session:
        images = session.execute(
            select(
                Image.id,
                Image.source_path,
                Image.width,
                Image.height,
                Image.um_per_px,
                Visit.site_id,
                Visit.day,
                Site.code,
            )
            .join(Visit, Visit.id == Image.visit_id)
            .join(Site, Site.id == Visit.site_id)
            .order_by(Image.id)
        ).all()
        measured = images[: len(images) - fail]
        by_site: dict[int, list[tuple[int, pd.DataFrame, dict[int, HairRecord]]]] = {}
        for image_id, source, width, height, um, site_id, day, code in measured:
            truth = json.loads(Path(source).with_suffix(".truth.json").read_text("utf-8"))
            hairs = [HairRecord.from_json(h) for h in truth["hairs"]]
            area = width * height * um * um / 1e8
            save_measurement(
                session=session,
                image_id=image_id,
                version=VERSION,
                config_hash=MEASURE_HASH,
                hairs=hairs,
                summary=summarize_hairs(hairs, area_cm2=area),
                timings={"total_s": 0.1},
            )
            where = follicles[(follicles["site"] == code) & (follicles["visit_day"] == day)]
            seen = {int(h.extra["follicle_id"]): h for h in hairs if h.exit_px is not None}
            by_site.setdefault(site_id, []).append((image_id, where.set_index("follicle_id"), seen))
        for image_id, *_ in images[len(images) - fail :]:
            mark_failed(
                session=session,
                image_id=image_id,
                version=VERSION,
                config_hash=MEASURE_HASH,
                error="image too blurred to measure",
            )
        for site_id, visits in by_site.items():
            observations = _observations(visits)
            save_tracks(
                session=session,
                site_id=site_id,
                version=VERSION,
                config_hash=TRACK_HASH,
                observations=observations,
            )


def _observations(
    visits: list[tuple[int, pd.DataFrame, dict[int, HairRecord]]],
) -> list[dict[str, Any]]:
    """Every follicle seen at any visit of a site, observed (present or not) at each one."""
    ids = sorted({fid for _, _, seen in visits for fid in seen})
    rows = []
    for image_id, where, seen in visits:
        for fid in ids:
            hair = seen.get(fid)
            rows.append(
                {
                    "follicle_id": fid,
                    "image_id": image_id,
                    "x_um": float(where.loc[fid, "x_um"]),
                    "y_um": float(where.loc[fid, "y_um"]),
                    "present": hair is not None,
                    "diameter_um": None if hair is None else hair.diameter_um,
                    "length_um": None if hair is None else hair.length_um,
                    "phase": str(where.loc[fid, "phase"]),
                    "hair_id": None if hair is None else hair.id,
                }
            )
    return rows
