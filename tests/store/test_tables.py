"""read_tables and friends: the export's tables in memory, on SQLite and PostgreSQL."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import select

from hairtrial.store import (
    export_tables,
    save_tracks,
)
from hairtrial.store.tables import read_corrections, read_images, read_tables, read_trial_arms
from tests.store.helpers import ingest_and_measure


@pytest.fixture
def filled(store, tmp_path):
    """8 images: 5 measured (one twice), 1 failed, 2 pending; one site tracked."""
    images = ingest_and_measure(store, tmp_path / "m")
    with store.session() as session:
        site_images = [i for i, s in images if s == images[0][1]]
        observations = [
            {
                "follicle_id": f,
                "image_id": i,
                "x_um": 10.0 * f,
                "y_um": 5.0,
                "hair_id": f + 1,
                "present": f == 0 or i == site_images[0],
                "diameter_um": 50.0 + f,
            }
            for f in range(2)
            for i in site_images
        ]
        save_tracks(
            session=session,
            site_id=images[0][1],
            version="1",
            config_hash="t",
            observations=observations,
        )
    return images


@pytest.mark.parametrize("include_arm", [False, True])
def test_read_tables_equals_the_parquet_export(store, filled, tmp_path, include_arm):
    tables = read_tables(store=store, include_arm=include_arm)
    paths = export_tables(store=store, out_dir=tmp_path / "out", include_arm=include_arm)
    assert (
        set(tables)
        == set(paths)
        == {"endpoints", "hairs", "follicle_trajectories", "phototrichograms", "runs"}
    )
    for name, path in paths.items():
        exported = pd.read_parquet(path)
        pd.testing.assert_frame_equal(tables[name], exported, obj=name)
    assert ("arm" in tables["endpoints"]) is include_arm
    assert len(tables["endpoints"]) == 5 and len(tables["runs"]) == 9
    if include_arm:
        assert set(tables["endpoints"]["arm"]) == {"cells", "saline"}


def test_read_tables_of_an_empty_database(store):
    tables = read_tables(store=store)
    assert all(frame.empty for frame in tables.values())
    assert list(tables["endpoints"].columns[:4]) == ["trial", "subject", "site", "visit_day"]
    assert "hair_count" in tables["endpoints"] and "error" in tables["runs"]
    assert read_images(store=store).empty and read_corrections(store=store).empty


def test_read_images_lists_unmeasured_images_too(store, filled):
    images = read_images(store=store, include_arm=True)
    assert len(images) == 8
    assert list(images.columns) == [
        "trial",
        "subject",
        "site",
        "arm",
        "visit_day",
        "kind",
        "image_id",
        "image",
    ]
    assert sorted(images["image_id"]) == sorted(i for i, _ in filled)
    assert images["image"].str.endswith(".png").all()
    assert "arm" not in read_images(store=store)
    assert read_trial_arms(store=store) == {"trial": ("cells", "saline", "untreated")}


def test_read_corrections_counts_each_revisions_changes(store, filled):
    from hairtrial.store.reviews import save_revision
    from hairtrial.store.users import create_user

    image_id = filled[1][0]
    with store.begin() as session:
        user = create_user(
            session=session, username="rita", password="a long passphrase", role="assessor"
        )
        automatic = _automatic_hairs(session, image_id)
        edited = [dict(automatic[1], diameter_um=99.0), *automatic[2:]]  # delete one, edit one
        save_revision(
            session=session, image_id=image_id, author_id=user.id, hairs=edited, status="approved"
        )
        save_revision(
            session=session,
            image_id=filled[2][0],
            author_id=user.id,
            hairs=[],
            unusable=True,
            unusable_reason="out of focus",
        )
    corrections = read_corrections(store=store)
    assert len(corrections) == 2
    first, second = corrections.iloc[0], corrections.iloc[1]
    assert (first["image_id"], first["status"], first["author"]) == (image_id, "approved", "rita")
    assert (first["added"], first["deleted"], first["edited"]) == (0, 1, 1)
    assert bool(second["unusable"]) and second["unusable_reason"] == "out of focus"
    assert second["deleted"] == len(automatic_hairs_of(store, filled[2][0]))


def _automatic_hairs(session, image_id):
    from hairtrial.store.models import MeasurementRun
    from hairtrial.store.reviews import automatic_hairs

    run_id = session.scalar(
        select(MeasurementRun.id)
        .where(MeasurementRun.image_id == image_id, MeasurementRun.status == "done")
        .order_by(MeasurementRun.id.desc())
    )
    return automatic_hairs(session=session, run_id=run_id)


def automatic_hairs_of(store, image_id):
    with store.session() as session:
        return _automatic_hairs(session, image_id)
