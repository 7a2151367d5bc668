"""Read a trial database back as plain rows, for comparing two databases in tests."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import create_engine, select

from hairtrial.store import parse_url
from hairtrial.store.models import (
    Follicle,
    FollicleObservation,
    Hair,
    Image,
    MeasurementRun,
    Site,
)


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Runs, hairs and tracks keyed by content (image sha256, site code), sorted.

    Row ids, timestamps, timings, lease fields and attempt counts are left out: they
    legitimately differ between an interrupted-and-resumed run and an uninterrupted one.
    """
    engine = create_engine(parse_url(url))
    try:
        with engine.connect() as conn:
            runs = sorted(
                (r.sha256, r.package_version, r.config_hash, r.status, r.error, _canon(r.summary))
                for r in conn.execute(
                    select(MeasurementRun.__table__, Image.sha256).join(
                        Image, Image.id == MeasurementRun.image_id
                    )
                )
            )
            hair_rows = conn.execute(
                select(Hair.__table__, Image.sha256)
                .join(MeasurementRun, MeasurementRun.id == Hair.run_id)
                .join(Image, Image.id == MeasurementRun.image_id)
            )
            hairs = sorted(
                (
                    h.sha256,
                    h.hair_id,
                    h.exit_x_px,
                    h.exit_y_px,
                    h.tip_x_px,
                    h.tip_y_px,
                    _canon(h.centerline_px),
                    h.diameter_um,
                    h.length_um,
                    h.hair_class,
                    h.confidence,
                    h.exit_confidence,
                )
                for h in hair_rows
            )
            observations = sorted(
                (code, label, sha, round(x, 6), round(y, 6), present, diameter)
                for code, label, sha, x, y, present, diameter in conn.execute(
                    select(
                        Site.code,
                        Follicle.label,
                        Image.sha256,
                        FollicleObservation.x_um,
                        FollicleObservation.y_um,
                        FollicleObservation.present,
                        FollicleObservation.diameter_um,
                    )
                    .join(Follicle, Follicle.id == FollicleObservation.follicle_id)
                    .join(Site, Site.id == Follicle.site_id)
                    .join(Image, Image.id == FollicleObservation.image_id)
                )
            )
    finally:
        engine.dispose()
    return {"runs": runs, "hairs": hairs, "observations": observations}


def run_counts(url: str) -> dict[str, int]:
    """Runs per status."""
    engine = create_engine(parse_url(url))
    try:
        with engine.connect() as conn:
            statuses = list(conn.scalars(select(MeasurementRun.status)))
    finally:
        engine.dispose()
    return {s: statuses.count(s) for s in ("pending", "running", "done", "failed")}
