"""Resumability: leases of a dead runner are taken over; SIGKILL then rerun == one run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hairtrial import __version__
from hairtrial.batch import process_pending, run_batch
from hairtrial.measure import MeasureConfig
from tests.batch._db import run_counts, snapshot
from tests.batch.conftest import N_IMAGES as N


def test_loop_takes_over_an_expired_lease_of_a_dead_runner(trial_db: str, image_root: Path) -> None:
    from hairtrial.store import claim_pending_images, enqueue_runs, open_store

    config = MeasureConfig()
    with open_store(trial_db, image_root=image_root) as store, store.session() as session:
        queued = enqueue_runs(session=session, version=__version__,
                              config_hash=config.config_hash(), image_ids=[1, 2, 3])  # fmt: skip
        dead = claim_pending_images(session=session, owner="dead-runner", limit=1, lease_s=1.0)
    assert queued == 3 and len(dead) == 1

    result = process_pending(db_url=trial_db, image_root=str(image_root), version=__version__,
                             config=config, lease_s=1.0)  # fmt: skip

    # The two free images first, then (after waiting for the lease) the dead runner's one.
    assert result.measured == 3 and result.failures == () and result.lease_lost == 0
    assert run_counts(trial_db) == {"pending": 0, "running": 0, "done": 3, "failed": 0}


@pytest.fixture
def database_copy(trial_db: str, tmp_path: Path, image_root: Path) -> Iterator[tuple[str, Path]]:
    """An identical copy of the freshly ingested database (URL, image root)."""
    if trial_db.startswith("sqlite"):
        shutil.copytree(tmp_path / "db", tmp_path / "copy")
        yield f"sqlite:///{tmp_path / 'copy' / 'trial.db'}", tmp_path / "copy" / "images"
        return
    from tests.conftest import _admin_execute

    source = trial_db.rsplit("/", 1)[1]
    name = f"test_{uuid.uuid4().hex[:16]}"
    _admin_execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
    try:
        yield f"{trial_db.rsplit('/', 1)[0]}/{name}", image_root
    finally:
        _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _start_runner(db_url: str, image_root: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start ``run_batch`` (the library call behind ``hairtrial run``) in its own process
    group, so that a SIGKILL takes the driver, scheduler and worker processes together."""
    code = (
        "from hairtrial.batch import run_batch\n"
        f"run_batch(db_url={db_url!r}, image_root={str(image_root)!r}, workers=1,"
        " progress=False, lease_s=2.0)\n"
    )
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-c", code], stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


@pytest.mark.slow
def test_sigkill_mid_batch_then_rerun_equals_an_uninterrupted_run(
    trial_db: str,
    image_root: Path,
    database_copy: tuple[str, Path],
    shared_cluster: str,
    tmp_path: Path,
) -> None:
    runner = _start_runner(trial_db, image_root, tmp_path / "runner.log")
    try:
        deadline = time.monotonic() + 60
        while run_counts(trial_db)["done"] < 2:
            assert runner.poll() is None, (tmp_path / "runner.log").read_text()
            assert time.monotonic() < deadline, "the runner measured nothing in 60 s"
            time.sleep(0.05)
        os.killpg(runner.pid, signal.SIGKILL)
    finally:
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
        runner.wait(timeout=30)
    at_kill = run_counts(trial_db)
    assert 2 <= at_kill["done"] < N, at_kill  # killed in the middle of the batch

    # The dead runner's leases were 2 s, so they expire quickly. The reruns take long
    # leases: with 2 s ones, a measurement slowed by a loaded machine outlives its lease and
    # is taken over and measured twice (leases are not renewed while measuring).
    resumed = run_batch(db_url=trial_db, image_root=image_root, scheduler=shared_cluster,
                        progress=False, lease_s=60.0)  # fmt: skip
    copy_url, copy_root = database_copy
    whole = run_batch(db_url=copy_url, image_root=copy_root, scheduler=shared_cluster,
                      progress=False, lease_s=60.0)  # fmt: skip

    assert resumed.measured == N - at_kill["done"], (resumed, at_kill)
    assert resumed.skipped == at_kill["done"] and resumed.lease_lost == 0
    assert whole.measured == N
    assert run_counts(trial_db) == {"pending": 0, "running": 0, "done": N, "failed": 0}
    interrupted, uninterrupted = snapshot(trial_db), snapshot(copy_url)
    assert interrupted["runs"] == uninterrupted["runs"]
    assert interrupted["hairs"] == uninterrupted["hairs"]
    assert interrupted["observations"] == uninterrupted["observations"]


def _broken_hair_measurement(image: object, *, um_per_px: float, config: object) -> object:
    from dataclasses import replace

    from hairtrial.measure.core import ImageMeasurement
    from tests.store.helpers import hairs

    bad = replace(hairs(2)[1], diameter_um=float("nan"))
    return ImageMeasurement(
        hairs=(bad,), summary={"hair_count": 1}, histogram_counts=(), histogram_edges_um=(),
        exit_confidence=(), um_per_px=um_per_px, shape=(2, 2), area_cm2=1.0, psf_sigma_um=0.0,
        config_hash="x",
    )  # fmt: skip


def _crashing_measurement(image: object, *, um_per_px: float, config: object) -> object:
    raise RuntimeError("algorithm bug")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("fake", "reason"),
    [
        (_crashing_measurement, "RuntimeError: algorithm bug"),
        (_broken_hair_measurement, "result not saved: InputError: image"),
    ],
)
def test_a_failing_measurement_or_refused_result_marks_the_image_failed(
    trial_db: str, image_root: Path, monkeypatch: pytest.MonkeyPatch, fake: object, reason: str
) -> None:
    import hairtrial.measure
    from hairtrial.store import enqueue_runs, open_store

    config = MeasureConfig()
    with open_store(trial_db, image_root=image_root) as store, store.session() as session:
        enqueue_runs(session=session, version=__version__, config_hash=config.config_hash(),
                     image_ids=[1, 2])  # fmt: skip
    monkeypatch.setattr(hairtrial.measure, "measure_image", fake)

    result = process_pending(db_url=trial_db, image_root=str(image_root), version=__version__,
                             config=config, lease_s=60.0)  # fmt: skip

    assert result.measured == 0 and [f.image_id for f in result.failures] == [1, 2]
    assert all(f.error.startswith(reason) for f in result.failures)
    assert run_counts(trial_db) == {"pending": 0, "running": 0, "done": 0, "failed": 2}


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_concurrent_runners_never_take_the_same_image(trial_db: str, image_root: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from hairtrial.store import enqueue_runs, open_store

    config = MeasureConfig()
    with open_store(trial_db, image_root=image_root) as store, store.session() as session:
        enqueue_runs(session=session, version=__version__, config_hash=config.config_hash(),
                     image_ids=[1, 2, 3, 4])  # fmt: skip
    kwargs = {"db_url": trial_db, "image_root": str(image_root), "version": __version__,
              "config": config, "lease_s": 60.0}  # fmt: skip
    with ThreadPoolExecutor(2) as pool:
        a, b = pool.map(lambda prefix: process_pending(owner_prefix=prefix, **kwargs), "AB")

    assert a.measured + b.measured == 4 and a.lease_lost == b.lease_lost == 0
    runs = snapshot(trial_db)["runs"]
    assert len(runs) == 4 and len({r[0] for r in runs}) == 4  # one run per image
