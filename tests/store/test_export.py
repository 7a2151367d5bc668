import json

import pandas as pd
import pytest
from sqlalchemy import select

from hairtrial._validate import InputError
from hairtrial.records import summarize_hairs
from hairtrial.store import (
    enqueue_runs,
    export_tables,
    ingest_manifest,
    mark_failed,
    save_measurement,
    save_tracks,
)
from hairtrial.store.models import Image, Visit
from tests.store.helpers import hairs, write_trial_manifest


@pytest.fixture
def measured(store, tmp_path):
    """8 images: 5 measured (one twice, by two versions), 1 failed, 2 pending."""
    ingest_manifest(url_or_store=store, manifest_path=write_trial_manifest(tmp_path / "m"))
    with store.session() as session:
        images = session.execute(
            select(Image.id, Visit.site_id).join(Visit).order_by(Image.id)
        ).all()
        enqueue_runs(session=session, version="1", config_hash="c")
        for n, (image_id, _) in enumerate(images[:5], start=3):
            records = hairs(n, seed=image_id)
            save_measurement(
                session=session,
                image_id=image_id,
                version="1",
                config_hash="c",
                hairs=records,
                summary=summarize_hairs(records, area_cm2=0.03),
                timings={"total_s": 1.0},
            )
        records = hairs(10, seed=99)
        save_measurement(
            session=session,
            image_id=images[0][0],
            version="2",
            config_hash="c",
            hairs=records,
            summary=summarize_hairs(records, area_cm2=0.03),
            timings={"total_s": 1.0},
        )
        mark_failed(
            session=session, image_id=images[5][0], version="1", config_hash="c", error="blurred"
        )
        site_id = images[0][1]
        site_images = [i for i, s in images if s == site_id]
        observations = [
            {"follicle_id": f, "image_id": i, "x_um": 10.0 * f, "y_um": 5.0, "hair_id": f + 1}
            for f in range(2)
            for i in site_images
        ]
        assert (
            save_tracks(
                session=session,
                site_id=site_id,
                version="1",
                config_hash="t",
                observations=observations,
            )
            == 2
        )
        assert (
            save_tracks(
                session=session,
                site_id=site_id,
                version="1",
                config_hash="t",
                observations=observations,
            )
            == 0
        )
    return images


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export_writes_tidy_tables(store, measured, tmp_path, fmt):
    paths = export_tables(store=store, out_dir=tmp_path / "out", fmt=fmt)
    assert set(paths) == {"endpoints", "hairs", "follicle_trajectories", "runs"}
    read = pd.read_parquet if fmt == "parquet" else pd.read_csv
    tables = {name: read(path) for name, path in paths.items()}
    endpoints = tables["endpoints"]
    assert len(endpoints) == 5
    assert "arm" not in endpoints.columns
    first = endpoints[endpoints["image_id"] == measured[0][0]].iloc[0]
    assert first["package_version"] in ("2", 2) and first["hair_count"] == 9  # latest run
    assert list(endpoints.columns[:4]) == ["trial", "subject", "site", "visit_day"]
    assert {"density_per_cm2", "mean_diameter_um", "terminal_fraction"} <= set(endpoints)
    hair_table = tables["hairs"]
    assert len(hair_table) == 10 + 4 + 5 + 6 + 7
    assert len(json.loads(hair_table["centerline_px"].iloc[0])) == 3
    assert hair_table["counted"].sum() == len(hair_table) - 5
    runs = tables["runs"]
    assert sorted(runs["status"]) == ["done"] * 6 + ["failed"] + ["pending"] * 2
    assert runs.loc[runs["status"] == "failed", "error"].item() == "blurred"
    follicles = tables["follicle_trajectories"]
    assert len(follicles) == 4 and set(follicles["follicle_id"]) == {0, 1}
    assert not any(p.name.endswith(".partial") for p in (tmp_path / "out").iterdir())


def test_export_arm_only_when_asked(store, measured, tmp_path):
    paths = export_tables(store=store, out_dir=tmp_path / "out", include_arm=True)
    endpoints = pd.read_parquet(paths["endpoints"])
    assert set(endpoints["arm"]) == {"cells", "saline"}


def test_export_of_an_empty_database(store, tmp_path):
    paths = export_tables(store=store, out_dir=tmp_path / "out", fmt="parquet")
    assert all(len(pd.read_parquet(p)) == 0 for p in paths.values())
    with pytest.raises(InputError, match="fmt"):
        export_tables(store=store, out_dir=tmp_path / "out", fmt="xlsx")
