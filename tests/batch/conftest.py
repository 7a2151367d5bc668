"""Fixtures for the batch tests: one tiny simulated trial, ingested per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.factories import small_preset

#: Subjects × 2 sites × visits: 2 × 2 × 2 = 8 images of about 200 × 150 px.
VISIT_DAYS = (0, 30)
N_IMAGES = 8


@pytest.fixture(scope="session")
def trial_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A rendered tiny trial (manifest + images), written once per session."""
    from hairtrial.simulate.trial import write_trial

    out = tmp_path_factory.mktemp("trial")
    write_trial(small_preset(subjects=2, visit_days=VISIT_DAYS), out, seed=3)
    return out


@pytest.fixture
def image_root(tmp_path: Path) -> Path:
    """The image store folder of the test's database."""
    return tmp_path / "db" / "images"


@pytest.fixture
def trial_db(db_url: str, trial_dir: Path, image_root: Path) -> str:
    """`db_url` with the tiny trial ingested (images copied into `image_root`)."""
    from hairtrial.store import ingest_manifest

    report = ingest_manifest(
        url_or_store=db_url, manifest_path=trial_dir / "manifest.csv", image_root=image_root
    )
    assert report.written and report.added == N_IMAGES
    return db_url


@pytest.fixture(scope="session")
def shared_cluster() -> Iterator[str]:
    """A LocalCluster (2 processes × 1 thread) shared by the tests that only need *a*
    cluster, so they pay its start-up once; its scheduler address."""
    from distributed import LocalCluster

    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()
