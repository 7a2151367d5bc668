"""Measure every pending image of a trial database on Dask, resumably.

Design: per-worker claim loops
------------------------------
:func:`run_batch` queues a run for every image that lacks a done run for this package
version × measurement config (:func:`hairtrial.store.enqueue_runs`) and then submits *one
long task per worker thread*: :func:`hairtrial.batch.worker.process_pending`, a loop that
claims one image under a database lease, measures it, saves it and claims the next until
none is left. The database, not the Dask scheduler, is the queue. We chose this over
scheduler-side claiming (the driver claims images and submits one task per image)
because:

- **Throughput.** A worker goes from one image to the next without a round trip through
  the scheduler and the driver; per image it costs one claim transaction (a single-row
  ``SELECT ... FOR UPDATE SKIP LOCKED`` + ``UPDATE``) and one save transaction. The
  driver only polls progress. Claiming one image at a time keeps the tail short: no
  worker sits on a prefetched backlog while another is idle.
- **Failure semantics.** The lease lives in the database with the image, so what happens
  on a crash does not depend on which process died: if a worker, the driver or the whole
  cluster is killed (SIGKILL included), the images being measured keep a ``running`` run
  whose lease expires after ``lease_s``; a rerun (or a surviving loop, which waits while
  other runners hold leases) claims them again. Results are written per image in one
  transaction, so no image is ever half-written, and :func:`~hairtrial.store.save_measurement`
  refuses a result whose lease passed to another worker and is a no-op for an image
  already done: an image × version × config is never measured twice into the database.
  With scheduler-side claiming the driver would hold every lease and its death would
  strand all in-flight images the same way, but Dask's own retry of a task on a lost
  worker could also run an image twice; here a retried loop simply claims afresh.
- **Fairness.** Every loop claims the lowest pending run id first, one at a time, so
  images are served in queue order and loops on fast and slow workers each take work
  at their own pace; several runners (two ``hairtrial run`` commands, or two clusters)
  on one PostgreSQL database share the queue without coordination, never on the same
  image (``SKIP LOCKED`` + compare-and-set claim).

The cost of this choice: workers that join the cluster after the batch started get no
loop (the loops are placed when the batch starts), and the lease is not renewed while
an image is measured, so `lease_s` must exceed the slowest image's measurement time
(the default, 300 s, is several hundred times a typical image's ~0.5 s); a crashed
runner's in-flight images wait at most `lease_s` before a rerun takes them over.

Tracking follows measurement in the same batch: one Dask task per site whose visits are
all measured (:mod:`hairtrial.batch.tracking`), and one per phototrichogram re-image
whose pair is measured (:mod:`hairtrial.batch.phototrichogram`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hairtrial.batch.worker import ImageFailure, LoopResult, process_pending, resolve_image_root

if TYPE_CHECKING:
    from distributed import Client

    from hairtrial.measure import MeasureConfig
    from hairtrial.store import Store

log = logging.getLogger(__name__)

#: Default lease on one image, s (far above one image's measurement time).
DEFAULT_LEASE_S = 300.0
#: Seconds between progress polls of the database.
_POLL_S = 0.5
_PRE_SPAWN = "distributed.nanny.pre-spawn-environ"


@dataclass(frozen=True)
class BatchSummary:
    """The outcome of one :func:`run_batch` call.

    Parameters
    ----------
    measured : int
        Images measured and saved by this batch.
    skipped : int
        Images that already had a done run for this version and config (not measured
        again).
    failed : tuple of ImageFailure
        Images whose measurement failed in this batch, with the reason recorded.
    elapsed_s : float, s
        Wall-clock time of the batch, from opening the database to the summary.
    queued : int
        Runs this batch added to the queue (:func:`hairtrial.store.enqueue_runs`).
    not_retried : int
        Images whose earlier runs failed and were left alone (pass ``retry_failed``).
    unfinished : int
        Runs of this version and config still pending or running at the end (0 unless
        a loop stopped early, e.g. a worker was lost).
    lease_lost : int
        Results discarded because another worker had taken the image over.
    workers : int
        Worker loops (threads) the batch ran on.
    version, config_hash : str
        Package version and measurement-config hash of the runs.
    tracked_sites : int
        Sites whose follicles were tracked and saved by this batch.
    track_failures : tuple of str
        Sites whose tracking failed, with the reason.
    phototrichograms : int
        Phototrichogram pairs computed and saved by this batch.
    phototrichogram_failures : tuple of str
        Pairs whose computation failed, with the reason.
    busy_s : float, s
        Worker time spent on images (read + measure + save), summed over loops.
    timings : dict of str to float, s
        Total time per step (``read_s``, ``measure_s``, ``save_s``) over all images.
    peak_worker_rss_mib : float, MiB
        Largest peak resident memory of a worker process (0 where unknown).
    """

    measured: int
    skipped: int
    failed: tuple[ImageFailure, ...]
    elapsed_s: float
    queued: int = 0
    not_retried: int = 0
    unfinished: int = 0
    lease_lost: int = 0
    workers: int = 0
    version: str = ""
    config_hash: str = ""
    tracked_sites: int = 0
    track_failures: tuple[str, ...] = field(default=())
    phototrichograms: int = 0
    phototrichogram_failures: tuple[str, ...] = field(default=())
    busy_s: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    peak_worker_rss_mib: float = 0.0

    @property
    def images_per_min(self) -> float:
        """Images measured or failed per minute of wall-clock time (images/min)."""
        if self.elapsed_s <= 0:
            return 0.0
        return 60.0 * (self.measured + len(self.failed)) / self.elapsed_s

    def describe(self) -> str:
        """Return a short human-readable summary (several lines)."""
        lines = [
            f"measured {self.measured}, skipped {self.skipped} (already done), "
            f"failed {len(self.failed)} in {self.elapsed_s:.1f} s "
            f"({self.images_per_min:.1f} images/min on {self.workers} worker(s))",
        ]
        lines += [f"  image {f.image_id}: {f.error}" for f in self.failed]
        if self.not_retried:
            lines.append(
                f"{self.not_retried} image(s) failed before and were not retried (--retry-failed)"
            )
        if self.unfinished:
            lines.append(f"{self.unfinished} run(s) unfinished: run again to finish them")
        if self.tracked_sites or self.track_failures:
            lines.append(f"tracked {self.tracked_sites} site(s)")
            lines += [f"  {text}" for text in self.track_failures]
        if self.phototrichograms or self.phototrichogram_failures:
            lines.append(f"phototrichogram: {self.phototrichograms} pair(s)")
            lines += [f"  {text}" for text in self.phototrichogram_failures]
        return "\n".join(lines)


@contextlib.contextmanager
def _client(workers: int | None, scheduler: str | None) -> Iterator[Client]:
    """Yield a Dask client: on `scheduler` if given, else on a new LocalCluster."""
    from distributed import Client, LocalCluster

    if scheduler is not None:
        with Client(scheduler) as client:
            yield client
        return
    import dask

    # The scheduler serves HTTP (metrics, dashboard) even without a dashboard; a free port
    # rather than 8787 so that a second cluster on the machine neither fails nor warns.
    # Dask spawns workers with MALLOC_TRIM_THRESHOLD_=65536, which also switches off
    # glibc's adaptive mmap threshold: every large NumPy temporary is then mmapped and
    # zero-faulted afresh, and measure_image ran 1.5-1.9x slower (23x more page faults)
    # in benchmarks/bench_batch.py. Unset it for the workers we start.
    with dask.config.set({f"{_PRE_SPAWN}.MALLOC_TRIM_THRESHOLD_": None}):
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.WARNING,
        )
    try:
        with Client(cluster) as client:
            log.info("LocalCluster: dashboard at %s", client.dashboard_link)
            yield client
    finally:
        cluster.close()


def _worker_threads(client: Client) -> list[str]:
    """Return one worker address per worker thread (a loop is placed on each)."""
    client.wait_for_workers(1, timeout=60)
    info = client.scheduler_info(n_workers=-1)["workers"]
    slots: list[str] = []
    for address, worker in sorted(info.items()):
        slots += [address] * max(1, int(worker.get("nthreads", 1)))
    return slots


def _open_counts(store: Store, version: str, config_hash: str) -> tuple[int, int, int]:
    """Return (images done, runs open, images failed and not done) for this key."""
    from hairtrial.store import run_status

    with store.session() as session:
        status = run_status(session=session, version=version, config_hash=config_hash)
    n_open = status.counts["pending"] + status.counts["running"]
    n_failed = len({f.image_id for f in status.failures})
    return status.n_images_done, n_open, n_failed


@contextlib.contextmanager
def _progress_bar(enabled: bool, total: int) -> Iterator[Any]:
    """Yield a callable ``update(completed)`` drawing a rich progress bar (or nothing)."""
    if not enabled:
        yield lambda completed: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    started = time.monotonic()

    def rate(task: Any) -> str:
        minutes = (time.monotonic() - started) / 60.0
        return f"{task.completed / minutes:.1f} images/min" if minutes > 0 else ""

    with Progress(
        TextColumn("[bold]measuring"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        transient=False,
    ) as bar:
        task = bar.add_task("measuring", total=total, rate="")

        def update(completed: int) -> None:
            bar.update(task, completed=completed, rate=rate(bar.tasks[task]))

        yield update


def run_batch(
    *,
    db_url: str,
    workers: int | None = None,
    scheduler: str | None = None,
    retry_failed: bool = False,
    config: MeasureConfig | None = None,
    image_root: str | Path | None = None,
    progress: bool = True,
    owner: str | None = None,
    lease_s: float = DEFAULT_LEASE_S,
    track: bool = True,
) -> BatchSummary:
    """Measure every image of a trial database that has no done run yet, on Dask.

    Runs are keyed by package version (``hairtrial.__version__``) and
    ``config.config_hash()``: an image with a done run for that key is skipped, so a
    second call is a no-op, and a call after an interruption (SIGKILL included) finishes
    exactly the images left, taking over those whose lease expired. Each image's hairs
    are saved in one transaction; a bad image is marked failed with its reason and the
    batch goes on. Afterwards every site whose visits are all measured is tracked
    (:mod:`hairtrial.batch.tracking`).

    Parameters
    ----------
    db_url : str
        Database URL (``sqlite:///trial.db`` or ``postgresql+psycopg://...``); every
        worker must be able to reach it (for SQLite: the same file system).
    workers : int, optional
        Worker processes of the LocalCluster (one thread each; default: Dask's choice,
        one per core). Ignored with `scheduler`.
    scheduler : str, optional
        Address of an existing ``dask.distributed`` scheduler (``tcp://HOST:PORT``);
        one loop runs on every thread of its workers.
    retry_failed : bool
        Queue images whose earlier runs failed again.
    config : MeasureConfig, optional
        Measurement parameters (default ``MeasureConfig()``).
    image_root : str or Path, optional
        Image store folder (default: the store's, ``images/`` next to a SQLite file).
    progress : bool
        Draw a progress bar (counts, rate, ETA) on the terminal.
    owner : str, optional
        Name of this runner (e.g. ``"alice@laptop"``), shown in the log and put in
        front of every lease owner (``owner/host:pid:dask-worker:random``, one per
        worker loop, always unique).
    lease_s : float, s
        Lease on each claimed image; a crashed runner's images are taken over after it.
    track : bool
        Track the sites whose visits are all measured, and compute the phototrichogram
        of every measured re-image pair, after measuring.

    Returns
    -------
    BatchSummary

    Raises
    ------
    InputError
        If the database cannot be opened or an argument is invalid.
    """
    from hairtrial import __version__
    from hairtrial._validate import InputError
    from hairtrial.measure import MeasureConfig
    from hairtrial.store import enqueue_runs, open_store

    if not (math.isfinite(lease_s) and lease_s > 0):
        raise InputError(f"lease_s: expected a positive duration in seconds, got {lease_s}")
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise InputError(f"workers: expected a positive number of processes, got {workers!r}")
    config = config if config is not None else MeasureConfig()
    if not isinstance(config, MeasureConfig):
        raise InputError(f"config: expected a MeasureConfig, got {type(config).__name__}")
    started = time.monotonic()
    version, config_hash = __version__, config.config_hash()
    root = resolve_image_root(image_root)
    name = owner or "hairtrial run"
    with open_store(db_url, image_root=root) as store:
        done_before, _, failed_before = _open_counts(store, version, config_hash)
        with store.session() as session:
            queued = enqueue_runs(
                session=session,
                version=version,
                config_hash=config_hash,
                retry_failed=retry_failed,
            )
        _, total, _ = _open_counts(store, version, config_hash)
        log.info(
            "%s: %d image(s) done, %d queued now, %d to measure (version %s, config %s)",
            name, done_before, queued, total, version, config_hash[:12],
        )  # fmt: skip
        results: list[LoopResult] = []
        n_loops = 0
        sites: list[int] = []
        tracked, track_failures = 0, list[str]()
        photos, photo_failures = 0, list[str]()
        pairs = []
        if track:
            from hairtrial.batch.phototrichogram import ready_pairs
            from hairtrial.batch.tracking import ready_sites

            sites = ready_sites(store=store, version=version, measure_config=config)
            pairs = ready_pairs(store=store, version=version, measure_config=config)
        if total or sites or pairs:
            worker_root = None if store.image_root is None else str(store.image_root)
            with _client(workers, scheduler) as client:
                slots = _worker_threads(client)
                n_loops = len(slots)
                if total:
                    futures = [
                        client.submit(
                            process_pending,
                            db_url=db_url,
                            image_root=worker_root,
                            version=version,
                            config=config,
                            lease_s=lease_s,
                            owner_prefix=owner,
                            workers=[address],
                            allow_other_workers=True,
                            pure=False,
                            key=f"hairtrial-measure-{k}-{time.time_ns()}",
                        )
                        for k, address in enumerate(slots)
                    ]
                    results = _wait(futures, store, version, config_hash, total, progress)
                if track:
                    (tracked, track_failures), (photos, photo_failures) = _after_measuring(
                        client, store, db_url=db_url, version=version, config=config,
                        image_root=worker_root,
                    )  # fmt: skip
        _, unfinished, _ = _open_counts(store, version, config_hash)
    summary = BatchSummary(
        measured=sum(r.measured for r in results),
        skipped=done_before,
        failed=tuple(f for r in results for f in r.failures),
        elapsed_s=time.monotonic() - started,
        queued=queued,
        not_retried=0 if retry_failed else failed_before,
        unfinished=unfinished,
        lease_lost=sum(r.lease_lost for r in results),
        workers=n_loops,
        version=version,
        config_hash=config_hash,
        tracked_sites=tracked,
        track_failures=tuple(track_failures),
        phototrichograms=photos,
        phototrichogram_failures=tuple(photo_failures),
        busy_s=sum(r.busy_s for r in results),
        timings={
            step: sum(r.timings.get(step, 0.0) for r in results)
            for step in sorted({step for r in results for step in r.timings})
        },
        peak_worker_rss_mib=max((r.peak_rss_mib for r in results), default=0.0),
    )
    log.info("%s: %s", name, summary.describe())
    return summary


def _after_measuring(
    client: Client,
    store: Store,
    *,
    db_url: str,
    version: str,
    config: MeasureConfig,
    image_root: str | None,
) -> tuple[tuple[int, list[str]], tuple[int, list[str]]]:
    """Track every ready site, then compute every ready phototrichogram pair.

    One Dask task per site or pair; a task returns its failure as text rather than
    raising, so one never stops the others.

    Returns
    -------
    tracked, phototrichograms : (int, list of str)
        Items done and the failures, of each step.
    """
    from hairtrial.batch.phototrichogram import phototrichogram_task, ready_pairs
    from hairtrial.batch.tracking import ready_sites, track_site_task

    common = {"db_url": db_url, "image_root": image_root, "version": version,
              "measure_config": config}  # fmt: skip
    sites = ready_sites(store=store, version=version, measure_config=config)
    tracked = _map_tasks(client, track_site_task, sites, what="tracked site(s)", **common)
    pairs = ready_pairs(store=store, version=version, measure_config=config)
    photos = _map_tasks(client, phototrichogram_task, pairs, what="phototrichogram pair(s)",
                        **common)  # fmt: skip
    return tracked, photos


def _map_tasks(
    client: Client, task: Any, items: list[Any], *, what: str, **kwargs: Any
) -> tuple[int, list[str]]:
    """Run `task` on every item on the cluster; return (succeeded, sorted failures)."""
    from distributed import as_completed

    if not items:
        return 0, []
    futures = client.map(task, items, pure=False, **kwargs)
    failures = [error for future in as_completed(futures) if (error := future.result())]
    log.info("%d %s, %d failed", len(items) - len(failures), what, len(failures))
    return len(items) - len(failures), sorted(failures)


def _wait(
    futures: list[Any],
    store: Store,
    version: str,
    config_hash: str,
    total: int,
    progress: bool,
) -> list[LoopResult]:
    """Wait for the loops, drawing progress from the database; return their results."""
    results: list[LoopResult] = []
    with _progress_bar(progress, total) as update:
        pending = list(futures)
        pause = _POLL_S
        while pending:
            time.sleep(pause)
            for future in [f for f in pending if f.done()]:
                pending.remove(future)
                try:
                    results.append(future.result())
                except Exception as exc:  # a lost loop leaves leases that expire
                    log.error("a worker loop stopped: %s: %s", type(exc).__name__, exc)
            polled = time.monotonic()
            _, still_open, _ = _open_counts(store, version, config_hash)
            # Counting runs costs the database more as the queue grows: keep polling
            # below ~5 % of one connection's time.
            pause = max(_POLL_S, 20.0 * (time.monotonic() - polled))
            update(total - still_open)
    return results
