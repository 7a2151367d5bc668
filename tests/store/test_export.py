import json

import pandas as pd
import pytest

from hairtrial._validate import InputError
from hairtrial.store import (
    export_tables,
    save_tracks,
)
from tests.store.helpers import ingest_and_measure


@pytest.fixture
def measured(store, tmp_path):
    """8 images: 5 measured (one twice, by two versions), 1 failed, 2 pending."""
    images = ingest_and_measure(store, tmp_path / "m")
    with store.session() as session:
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
    assert set(paths) == {"endpoints", "hairs", "follicle_trajectories", "phototrichograms", "runs"}
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
    latest = hair_table[hair_table["image_id"] == measured[0][0]].sort_values("hair_id")
    assert latest["exit_confidence"].tolist() == pytest.approx([0.5 + 0.05 * k for k in range(10)])
    assert hair_table["exit_confidence"].isna().sum() == len(hair_table) - 10
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
