"""run_batch against a real ``dask scheduler`` and ``dask worker`` started as processes."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hairtrial.batch import run_batch
from hairtrial.cli.main import app
from tests.batch._db import run_counts
from tests.batch.conftest import N_IMAGES as N


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


@pytest.fixture
def dask_cluster(tmp_path: Path) -> Iterator[str]:
    """A scheduler and a worker (1 process × 2 threads) on 127.0.0.1, as subprocesses."""
    from distributed import Client

    dask = str(Path(sys.executable).with_name("dask"))
    address = f"tcp://127.0.0.1:{_free_port()}"
    port = address.rsplit(":", 1)[1]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with (tmp_path / "scheduler.log").open("wb") as log:
            processes.append(subprocess.Popen(
                [dask, "scheduler", "--host", "127.0.0.1", "--port", port,
                 "--dashboard-address", "127.0.0.1:0"],
                stdout=log, stderr=subprocess.STDOUT,
            ))  # fmt: skip
        with (tmp_path / "worker.log").open("wb") as log:
            processes.append(subprocess.Popen(
                [dask, "worker", address, "--host", "127.0.0.1", "--nworkers", "1",
                 "--nthreads", "2", "--no-dashboard"],
                stdout=log, stderr=subprocess.STDOUT,
            ))  # fmt: skip
        with Client(address, timeout=60) as client:  # waits for the scheduler
            client.wait_for_workers(1, timeout=60)
        yield address
    finally:
        for process in reversed(processes):
            _stop(process)


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_run_on_an_existing_scheduler(trial_db: str, image_root: Path, dask_cluster: str) -> None:
    result = CliRunner().invoke(
        app,
        ["run", "--db", trial_db, "--scheduler", dask_cluster, "--image-root", str(image_root),
         "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"measured {N}, skipped 0" in result.output
    assert "on 2 worker(s)" in result.output  # one loop per worker thread: 2 in one process
    assert run_counts(trial_db) == {"pending": 0, "running": 0, "done": N, "failed": 0}

    # The library call against the same cluster: everything is already done.
    summary = run_batch(db_url=trial_db, scheduler=dask_cluster, image_root=image_root,
                        progress=False)  # fmt: skip
    assert (summary.measured, summary.skipped, summary.failed) == (0, N, ())
