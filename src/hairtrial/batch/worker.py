"""The worker side of a batch: claim an image, measure it, save it, repeat until none left.

:func:`process_pending` runs inside one Dask worker thread (or in plain Python: it needs
nothing from Dask). It opens its own database connection (engines are per process; a loop
lasts the whole batch, so one engine per loop costs nothing), claims one
pending run at a time under a lease, reads the pixels with their checksum verified,
measures them and saves every hair of the image in one transaction. A bad image is
marked failed with its reason and the loop goes on.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hairtrial.measure import MeasureConfig
    from hairtrial.store import ClaimedImage, Store

log = logging.getLogger(__name__)

#: Longest pause (s) between claim attempts while other runners still hold leases.
_MAX_IDLE_POLL_S = 2.0


@dataclass(frozen=True)
class ImageFailure:
    """One image whose measurement failed in this batch, and why.

    Parameters
    ----------
    image_id : int
        Image row id.
    run_id : int
        The measurement run marked failed.
    error : str
        The reason recorded in the database (exception type and message).
    """

    image_id: int
    run_id: int
    error: str


@dataclass(frozen=True)
class LoopResult:
    """What one worker loop did.

    Parameters
    ----------
    owner : str
        Lease owner name of the loop (``host:pid:worker:uuid``).
    measured : int
        Images measured and saved by this loop.
    failures : tuple of ImageFailure
        Images this loop marked failed.
    lease_lost : int
        Images whose lease passed to another worker before the result was saved (the
        result was discarded; the other worker saves it).
    busy_s : float, s
        Time spent reading, measuring and saving (excluding idle waits).
    timings : dict of str to float, s
        Total time per step over the loop's images (``read_s``, ``measure_s``,
        ``save_s``).
    peak_rss_mib : float, MiB
        Peak resident memory of the worker process so far (0 where unknown).
    """

    owner: str
    measured: int = 0
    failures: tuple[ImageFailure, ...] = ()
    lease_lost: int = 0
    busy_s: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    peak_rss_mib: float = 0.0


def peak_rss_mib() -> float:
    """Return this process's peak resident memory in MiB (0 where the OS cannot tell)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024.0


def owner_name(prefix: str | None = None) -> str:
    """Return a unique lease-owner name: ``[prefix/]host:pid:dask-worker-name:random``.

    Parameters
    ----------
    prefix : str, optional
        Name of the runner (e.g. ``"alice@laptop"``), kept to 100 characters.

    Returns
    -------
    str
        At most 200 characters (the database column's width).
    """
    worker = "main"
    try:
        from distributed import get_worker

        worker = str(get_worker().name)
    except (ImportError, ValueError):
        pass
    name = f"{socket.gethostname()}:{os.getpid()}:{worker[:40]}:{uuid.uuid4().hex[:8]}"
    if prefix:
        name = f"{prefix[:100]}/{name}"
    return name[-200:]


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or repr(exc)
    return f"{type(exc).__name__}: {text}"[:4000]


def _record_failure(
    store: Store, claim: ClaimedImage, *, error: str, timings: dict[str, float], owner: str
) -> None:
    """Mark the claimed image's run failed with `error` (raises LeaseLostError if not ours)."""
    from hairtrial.store import mark_failed

    with store.session() as session:
        mark_failed(
            session=session,
            image_id=claim.image_id,
            version=claim.package_version,
            config_hash=claim.config_hash,
            error=error,
            timings=timings,
            owner=owner,
        )


def _measure_one(
    store: Store,
    claim: ClaimedImage,
    *,
    owner: str,
    config: MeasureConfig,
) -> tuple[str, dict[str, float], str | None]:
    """Measure and save one claimed image; return (outcome, timings, error)."""
    from hairtrial.measure import measure_image
    from hairtrial.store import LeaseLostError, read_stored_image, save_measurement

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    try:
        data = read_stored_image(store=store, image_id=claim.image_id)
        timings["read_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        result = measure_image(data.pixels, um_per_px=claim.um_per_px, config=config)
        timings["measure_s"] = time.perf_counter() - t1
    except Exception as exc:  # a bad image must not stop the batch
        error = _describe(exc)
        log.warning("image %d failed: %s", claim.image_id, error)
        try:
            _record_failure(store, claim, error=error, timings=timings, owner=owner)
        except LeaseLostError:
            return "lease_lost", timings, None
        return "failed", timings, error
    t2 = time.perf_counter()
    try:
        with store.session() as session:
            save_measurement(
                session=session,
                hairs=result.hairs,
                exit_confidence=result.exit_confidence,
                # the rows a status bar hides travel with the run, for the tracking step
                summary={**result.summary, "hidden_rows": list(result.hidden_rows)},
                timings=timings,
                image_id=claim.image_id,
                version=claim.package_version,
                config_hash=claim.config_hash,
                owner=owner,
            )
    except LeaseLostError as exc:
        log.warning("image %d: %s; result discarded", claim.image_id, exc)
        return "lease_lost", timings, None
    except Exception as exc:
        # The result itself can be bad (a record the store refuses): record that as the
        # image's failure. If even that cannot be written (database gone), stop the
        # loop: the run keeps its lease, which expires, and a rerun takes it over.
        error = f"result not saved: {_describe(exc)}"
        log.warning("image %d failed: %s", claim.image_id, error)
        try:
            _record_failure(store, claim, error=error, timings=timings, owner=owner)
        except LeaseLostError:
            return "lease_lost", timings, None
        except Exception:
            raise exc from None
        return "failed", timings, error
    timings["save_s"] = time.perf_counter() - t2
    return "measured", timings, None


def process_pending(
    *,
    db_url: str,
    image_root: str | None,
    version: str,
    config: MeasureConfig,
    lease_s: float,
    deadline_s: float | None = None,
    owner_prefix: str | None = None,
) -> LoopResult:
    """Claim and measure pending images of one version × config until none is left.

    When no run is claimable but runs of this version and config are still held by
    other runners, the loop waits (polling, at most ``min(lease_s / 4, 2 s)`` apart) so
    that runs of a crashed runner are taken over as soon as their lease expires, and
    returns only when every queued run is done or failed.

    Parameters
    ----------
    db_url : str
        Database URL.
    image_root : str or None
        Image store folder (``None``: the store's default).
    version : str
        Package version measuring (runs of other versions are left alone).
    config : MeasureConfig
        Measurement parameters; their hash selects the runs.
    lease_s : float, s
        Lease taken on each image; must comfortably exceed one image's measurement
        time (otherwise another worker may take the image over and this result is
        discarded, never saved twice).
    deadline_s : float, optional, s
        Stop claiming after this many seconds (for tests and benchmarks).
    owner_prefix : str, optional
        Runner name put in front of this loop's lease-owner name (:func:`owner_name`).

    Returns
    -------
    LoopResult
    """
    from hairtrial.store import open_store

    # The driver has migrated the schema already: skip Alembic in every worker.
    with open_store(db_url, image_root=image_root, migrate=False) as store:
        return _loop(store, version=version, config=config, lease_s=lease_s,
                     deadline_s=deadline_s, owner=owner_name(owner_prefix))  # fmt: skip


def _loop(
    store: Store,
    *,
    version: str,
    config: MeasureConfig,
    lease_s: float,
    deadline_s: float | None,
    owner: str,
) -> LoopResult:
    from hairtrial.store import claim_pending_images, run_status

    config_hash = config.config_hash()
    if os.environ.get("MALLOC_TRIM_THRESHOLD_"):
        log.warning(
            "%s: MALLOC_TRIM_THRESHOLD_ is set (Dask's default for nanny-spawned workers): "
            "measurement runs up to ~1.9x slower; start workers with it unset "
            "(see docs/scaling.md)",
            owner,
        )
    start = time.monotonic()
    measured = lease_lost = 0
    busy = 0.0
    totals: dict[str, float] = {}
    failures: list[ImageFailure] = []
    poll_s = min(lease_s / 4.0, _MAX_IDLE_POLL_S)
    while deadline_s is None or time.monotonic() - start < deadline_s:
        with store.session() as session:
            claimed = claim_pending_images(
                session=session,
                owner=owner,
                limit=1,
                lease_s=lease_s,
                version=version,
                config_hash=config_hash,
            )
        if not claimed:
            with store.session() as session:
                counts = run_status(session=session, version=version, config_hash=config_hash)
            if counts.counts["pending"] + counts.counts["running"] == 0:
                break
            time.sleep(poll_s)  # other runners hold leases: wait to take over expired ones
            continue
        for claim in claimed:
            t0 = time.perf_counter()
            outcome, timings, error = _measure_one(store, claim, owner=owner, config=config)
            busy += time.perf_counter() - t0
            for name, value in timings.items():
                totals[name] = totals.get(name, 0.0) + value
            if outcome == "measured":
                measured += 1
            elif outcome == "failed":
                assert error is not None
                failures.append(ImageFailure(claim.image_id, claim.run_id, error))
            else:
                lease_lost += 1
    log.info("%s: measured %d, failed %d", owner, measured, len(failures))
    return LoopResult(
        owner=owner,
        measured=measured,
        failures=tuple(failures),
        lease_lost=lease_lost,
        busy_s=busy,
        timings=totals,
        peak_rss_mib=peak_rss_mib(),
    )


def resolve_image_root(image_root: str | Path | None) -> str | None:
    """Return `image_root` as an absolute path string (workers may run elsewhere)."""
    return None if image_root is None else str(Path(image_root).resolve())
