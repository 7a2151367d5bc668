"""A small measured trial in a store, shared by the review, audit and web tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from hairtrial.records import summarize_hairs
from hairtrial.store import enqueue_runs, ingest_manifest, mark_failed, save_measurement
from hairtrial.store.models import Image
from tests.store.helpers import hairs, write_trial_manifest


def measured_trial(store: Any, folder: Path, *, subjects: int = 1, n_failed: int = 0) -> list[int]:
    """Ingest a split-site trial and measure all but `n_failed` images; return image ids.

    Each image of 24 × 32 px at 5 µm/px gets 3 + i hairs (the first one uncounted), each
    with an exit confidence of 0.99 but the last, whose exit is unsure (0.62).
    """
    ingest_manifest(
        url_or_store=store, manifest_path=write_trial_manifest(folder, subjects=subjects)
    )
    with store.session() as session:
        ids = list(session.scalars(select(Image.id).order_by(Image.id)))
        enqueue_runs(session=session, version="1", config_hash="c")
        area = 24 * 32 * 25 / 1e8
        for i, image_id in enumerate(ids[: len(ids) - n_failed]):
            records = hairs(3 + i, seed=image_id)
            save_measurement(
                session=session,
                image_id=image_id,
                version="1",
                config_hash="c",
                hairs=records,
                summary=summarize_hairs(records, area_cm2=area),
                timings={"total_s": 1.0},
                exit_confidence=[0.99] * (len(records) - 1) + [0.62],
            )
        for image_id in ids[len(ids) - n_failed :]:
            mark_failed(
                session=session, image_id=image_id, version="1", config_hash="c", error="blur"
            )
    return ids
