"""site_visit_images: what the tracking step reads of each site's measured visits."""

from __future__ import annotations

from sqlalchemy import select

from hairtrial.records import summarize_hairs
from hairtrial.store import enqueue_runs, ingest_manifest, save_measurement
from hairtrial.store.models import Image, Visit
from hairtrial.store.tracks import site_visit_images
from tests.store.helpers import hairs, write_trial_manifest


def test_visit_images_carry_the_rows_a_status_bar_hides(store, tmp_path):
    ingest_manifest(url_or_store=store, manifest_path=write_trial_manifest(tmp_path / "m"))
    with store.session() as session:
        ids = [int(i) for i in session.scalars(select(Image.id).join(Visit).order_by(Image.id))]
        enqueue_runs(session=session, version="1", config_hash="c")
        stored = {ids[0]: [36, 0], ids[1]: None, ids[2]: "top", ids[3]: [0, 24]}
        for image_id, rows in stored.items():
            records = hairs(3, seed=image_id)
            summary = summarize_hairs(records, area_cm2=0.03)
            if rows is not None:
                summary["hidden_rows"] = rows
            save_measurement(
                session=session, image_id=image_id, version="1", config_hash="c",
                hairs=records, summary=summary, timings={"total_s": 1.0},
            )  # fmt: skip
    with store.session() as session:
        visits = site_visit_images(session=session, version="1", config_hash="c")
    by_id = {v.image_id: v for site in visits.values() for v in site}
    assert set(by_id) == set(ids)
    # as the run measured them; a run stored without them (older versions), or with a
    # value that is not two row counts, hides nothing
    assert by_id[ids[0]].hidden_rows == (36, 0)
    assert by_id[ids[1]].hidden_rows == (0, 0)
    assert by_id[ids[2]].hidden_rows == (0, 0)
    assert by_id[ids[3]].hidden_rows == (0, 24)
    assert all(by_id[i].run_id is None and by_id[i].hidden_rows == (0, 0) for i in ids[4:])
