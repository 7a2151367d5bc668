"""The batch's phototrichogram step: re-image pairs measured, traced, stored, exported."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hairtrial.batch import run_batch
from tests.factories import small_preset


@pytest.fixture(scope="module")
def photo_trial(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1 subject × 2 sites × visits 0 and 30, each re-imaged 3 days later (8 images)."""
    from hairtrial.simulate.trial import write_trial

    out = tmp_path_factory.mktemp("photo")
    write_trial(
        small_preset(subjects=1, visit_days=(0, 30), field_cm2=0.12), out, seed=12,
        phototrichogram=True,
    )  # fmt: skip
    return out


def _truth_fraction(trial: Path, site: str, day: int) -> float:
    """Anagen share of the follicles counted in both the clipped image and its re-image."""
    first = json.loads((trial / "images" / f"{site}_d{day:03d}.truth.json").read_text())
    again = json.loads(
        (trial / "images" / f"{site}_d{day + 3:03d}_regrowth.truth.json").read_text()
    )
    seen = {h["follicle_id"] for h in first["hairs"] if h["exit_px"]}
    phase = {h["follicle_id"]: h["phase"] for h in again["hairs"] if h["exit_px"]}
    return float(np.mean([phase[f] == "anagen" for f in seen & set(phase)]))


def test_run_stores_every_pair_and_analysis_sees_the_anagen_fraction(
    db_url: str, photo_trial: Path, tmp_path: Path, shared_cluster: str
) -> None:
    from hairtrial.analyze.tables import site_visit_table
    from hairtrial.store import ingest_manifest, open_store
    from hairtrial.store.tables import read_tables

    root = tmp_path / "images"
    ingest_manifest(url_or_store=db_url, manifest_path=photo_trial / "manifest.csv",
                    image_root=root)  # fmt: skip
    summary = run_batch(db_url=db_url, image_root=root, progress=False, scheduler=shared_cluster)
    assert summary.failed == () and summary.measured == 8
    assert summary.tracked_sites == 2  # re-images are not visits
    assert summary.phototrichograms == 4 and summary.phototrichogram_failures == ()
    assert "phototrichogram: 4 pair(s)" in summary.describe()

    again = run_batch(db_url=db_url, image_root=root, progress=False, scheduler=shared_cluster)
    assert again.phototrichograms == 0 and again.measured == 0  # a second run is a no-op

    with open_store(db_url, image_root=root) as store:
        tables = read_tables(store=store, include_arm=True)
    photos = tables["phototrichograms"]
    assert len(photos) == 4 and photos["registered"].all()
    assert (photos["days"] == 3.0).all() and (photos["score"] > 0.6).all()
    endpoints = tables["endpoints"]
    regrowth = endpoints[endpoints["kind"] == "clipped-regrowth"]
    assert regrowth["anagen_fraction"].notna().all()
    for row in regrowth.itertuples():
        truth = _truth_fraction(photo_trial, row.site, int(row.visit_day) - 3)
        assert abs(row.anagen_fraction - truth) < 0.2, (row.site, row.visit_day, truth)
    table = site_visit_table(endpoints)
    assert len(table) == 4 and table["anagen_fraction"].notna().all()
    assert table["anagen_fraction_change"].notna().all()
