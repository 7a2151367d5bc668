"""run_batch on a LocalCluster: a whole tiny trial, failures, retries, re-runs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hairtrial import __version__
from hairtrial.batch import BatchSummary, run_batch
from hairtrial.measure import MeasureConfig
from tests.batch._db import run_counts, snapshot
from tests.batch.conftest import N_IMAGES as N


def test_run_measures_every_image_once_and_tracks_sites(
    trial_db: str, image_root: Path, request: pytest.FixtureRequest
) -> None:
    # run_batch starts its own LocalCluster in the SQLite case (and in the SIGKILL test);
    # the PostgreSQL case reuses the session's LocalCluster to keep the suite short.
    if trial_db.startswith("sqlite"):
        where: dict[str, object] = {"workers": 2}
    else:
        where = {"scheduler": request.getfixturevalue("shared_cluster")}
    summary = run_batch(db_url=trial_db, image_root=image_root, progress=False, **where)  # type: ignore[arg-type]

    assert isinstance(summary, BatchSummary)
    assert (summary.measured, summary.skipped, summary.failed) == (N, 0, ())
    assert (summary.queued, summary.unfinished, summary.lease_lost) == (N, 0, 0)
    assert summary.workers == 2
    assert summary.version == __version__
    assert summary.config_hash == MeasureConfig().config_hash()
    assert summary.images_per_min > 0
    assert summary.tracked_sites == 4 and summary.track_failures == ()
    assert run_counts(trial_db) == {"pending": 0, "running": 0, "done": N, "failed": 0}
    first = snapshot(trial_db)
    assert len({run[0] for run in first["runs"]}) == N  # one done run per image
    # each run keeps the rows a status bar hides, for the tracking step
    for run in first["runs"]:
        rows = json.loads(run[5])["hidden_rows"]
        assert len(rows) == 2 and all(isinstance(r, int) and r >= 0 for r in rows)
    assert first["hairs"] and first["observations"]
    # every measured hair keeps how sure its exit end is (0.5–1)
    assert all(0.5 <= h[-1] <= 1 for h in first["hairs"])

    again = run_batch(db_url=trial_db, image_root=image_root, progress=False, **where)  # type: ignore[arg-type]

    assert (again.measured, again.skipped, again.failed, again.queued) == (0, N, (), 0)
    assert again.workers == 0  # nothing to do: no cluster was started
    assert again.tracked_sites == 0
    assert snapshot(trial_db) == first


def _corrupt_one(image_root: Path) -> tuple[Path, bytes]:
    path = sorted(p for p in image_root.rglob("*") if p.is_file())[0]
    original = path.read_bytes()
    path.chmod(0o644)
    path.write_bytes(original[:100] + b"\0" * 64 + original[164:])
    return path, original


def test_corrupt_image_fails_with_reason_the_rest_succeed_then_retry(
    trial_db: str, image_root: Path, shared_cluster: str
) -> None:
    path, original = _corrupt_one(image_root)
    sha = path.parent.name + path.stem

    summary = run_batch(
        db_url=trial_db, scheduler=shared_cluster, image_root=image_root, progress=False
    )

    assert summary.measured == N - 1
    assert len(summary.failed) == 1
    reason = summary.failed[0].error
    assert "checksum mismatch" in reason and str(path) in reason
    assert "failed 1" in summary.describe() and reason in summary.describe()
    runs = snapshot(trial_db)["runs"]
    failed = [r for r in runs if r[3] == "failed"]
    assert [(r[0], r[4]) for r in failed] == [(sha, reason)]
    assert sum(r[3] == "done" for r in runs) == N - 1

    path.write_bytes(original)
    no_retry = run_batch(
        db_url=trial_db, scheduler=shared_cluster, image_root=image_root, progress=False
    )
    assert (no_retry.measured, no_retry.skipped, no_retry.queued) == (0, N - 1, 0)
    assert no_retry.not_retried == 1 and "not retried" in no_retry.describe()

    retried = run_batch(
        db_url=trial_db,
        scheduler=shared_cluster,
        image_root=image_root,
        progress=True,  # the rich progress bar's code path, once
        retry_failed=True,
    )

    assert (retried.measured, retried.skipped, retried.failed, retried.queued) == (1, N - 1, (), 1)
    assert retried.not_retried == 0
    assert run_counts(trial_db) == {"pending": 0, "running": 0, "done": N, "failed": 1}
    assert retried.tracked_sites == 1  # the site of the repaired image is complete now


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_other_config_is_measured_separately(
    trial_db: str, image_root: Path, shared_cluster: str
) -> None:
    # Different parameters give a different config hash: a new run per image, while
    # the runs of the first config stay as they are.
    other = MeasureConfig(min_length_um=150.0)
    first = run_batch(db_url=trial_db, scheduler=shared_cluster, image_root=image_root,
                      progress=False, config=other, track=False)  # fmt: skip
    assert first.measured == N and first.config_hash == other.config_hash()
    # Measured but not tracked (as after a kill between the two steps): the next run
    # measures nothing and tracks every site.
    again = run_batch(db_url=trial_db, scheduler=shared_cluster, image_root=image_root,
                      progress=False, config=other)  # fmt: skip
    assert (again.measured, again.skipped, again.tracked_sites) == (0, N, 4)


@pytest.mark.parametrize("kwargs", [{"lease_s": 0.0}, {"workers": 0}, {"config": "default"}])
def test_bad_arguments_are_refused(tmp_path: Path, kwargs: dict[str, object]) -> None:
    from hairtrial._validate import InputError

    url = f"sqlite:///{tmp_path / 'trial.db'}"
    with pytest.raises(InputError):
        run_batch(db_url=url, progress=False, **kwargs)  # type: ignore[arg-type]
    assert not os.path.exists(tmp_path / "trial.db")  # refused before opening anything


def test_lease_owner_names_are_unique_prefixed_and_fit_the_column() -> None:
    from hairtrial.batch.worker import owner_name

    names = {owner_name("alice@laptop") for _ in range(100)}
    assert len(names) == 100
    assert all(n.startswith("alice@laptop/") and len(n) <= 200 for n in names)
    assert len(owner_name("x" * 500)) <= 200
