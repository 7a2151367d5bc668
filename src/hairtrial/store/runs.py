"""Measurement runs: queueing, claiming under a lease, saving results, recording failures.

A run of one image by one package version and parameter set (config hash) goes
pending → running → done or failed. :func:`enqueue_runs` queues images that still need a
run; :func:`claim_pending_images` hands pending runs (and runs whose lease expired) to one
worker, atomically: ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL, a write-locked
``BEGIN IMMEDIATE`` transaction on SQLite, and a compare-and-set update on both, so two
workers never hold the same image. :func:`save_measurement` writes all hairs of one image
and marks the run done in one transaction; :func:`mark_failed` records the reason a run
failed. These functions commit the session they are given (each call is one
transaction) and roll it back on any error.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from hairtrial._validate import InputError, check_range
from hairtrial.records import HairRecord
from hairtrial.store.models import RUN_STATUSES, Hair, Image, MeasurementRun, utcnow

log = logging.getLogger(__name__)

#: Hairs inserted per statement by :func:`save_measurement`.
_HAIR_BATCH = 1000
_HAIR_INSERT = insert(Hair.__table__)  # type: ignore[arg-type]
_JSON_COLUMNS = ("centerline_px", "extra")
#: The hair key (``hairtrial measure`` JSON) that becomes the ``exit_confidence`` column.
_EXIT_CONFIDENCE = "exit_confidence"


class LeaseLostError(RuntimeError):
    """The run's lease has passed to another worker; this worker's result is not saved."""


@dataclass(frozen=True)
class ClaimedImage:
    """A run handed to one worker until `lease_expires_at` (UTC).

    Read the pixels with :func:`hairtrial.store.read_stored_image` (checksum verified)
    and measure with calibration `um_per_px` (µm/px).
    """

    run_id: int
    image_id: int
    sha256: str
    um_per_px: float
    package_version: str
    config_hash: str
    lease_owner: str
    lease_expires_at: dt.datetime
    attempts: int


@dataclass(frozen=True)
class FailedRun:
    """A failed run and its reason."""

    run_id: int
    image_id: int
    source_path: str
    package_version: str
    config_hash: str
    error: str | None
    finished_at: dt.datetime | None


@dataclass(frozen=True)
class RunStatus:
    """Progress of the measurement runs.

    Parameters
    ----------
    n_images : int
        Images in the database.
    counts : dict
        Runs per status (``pending``, ``running``, ``done``, ``failed``).
    n_images_done : int
        Images with a done run (for the version and config asked, if any).
    failures : tuple of FailedRun
        Failed runs of images that have no done run, newest first.
    """

    n_images: int
    counts: dict[str, int]
    n_images_done: int
    failures: tuple[FailedRun, ...]


def _open(status: Any) -> ColumnElement[bool]:
    return status.in_(("pending", "running"))


def _same_key(run: Any, image_id: Any, version: str, config_hash: str) -> ColumnElement[bool]:
    return and_(
        run.image_id == image_id, run.package_version == version, run.config_hash == config_hash
    )


def enqueue_runs(
    *,
    session: Session,
    version: str,
    config_hash: str,
    image_ids: Sequence[int] | None = None,
    retry_failed: bool = False,
) -> int:
    """Queue a pending run for every image that needs one; commit.

    An image needs a run when it has no done and no open (pending or running) run for
    this version and config hash, and, unless `retry_failed`, no failed one either.

    Parameters
    ----------
    session : Session
        Open session; committed here.
    version : str
        Package version that will measure.
    config_hash : str
        Hash of the measurement parameters.
    image_ids : sequence of int, optional
        Restrict to these images (default: all).
    retry_failed : bool
        Queue images whose earlier runs failed again (the failed runs stay as history).

    Returns
    -------
    int
        Runs queued.
    """
    run = aliased(MeasurementRun)
    blocking = ("pending", "running", "done") if retry_failed else RUN_STATUSES
    candidates = select(
        Image.id,
        literal(version),
        literal(config_hash),
        literal("pending"),
        literal(0),
        literal(utcnow(), type_=MeasurementRun.created_at.type),
    ).where(
        ~exists().where(_same_key(run, Image.id, version, config_hash), run.status.in_(blocking))
    )
    if image_ids is not None:
        candidates = candidates.where(Image.id.in_(list(image_ids)))
    columns = ["image_id", "package_version", "config_hash", "status", "attempts", "created_at"]
    statement = insert(MeasurementRun).from_select(columns, candidates).returning(MeasurementRun.id)
    try:
        try:
            count = len(session.execute(statement).all())
        except IntegrityError:
            # Another process queued some of the same images at the same moment: the
            # unique index on open runs refused the duplicates and nothing was written.
            session.rollback()
            count = len(session.execute(statement).all())
        session.commit()
    except BaseException:
        session.rollback()
        raise
    log.info("queued %d run(s) for version %s config %s", count, version, config_hash)
    return count


def _begin_write_lock(session: Session) -> None:
    """On SQLite, take the database write lock now (``BEGIN IMMEDIATE``).

    Python's sqlite3 module opens a transaction only before the first data change, so a
    plain select-then-update could read a stale view; taking the lock first makes the
    claim's read and write one serialised step. PostgreSQL uses row locks instead.
    """
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        return
    dbapi = connection.connection.dbapi_connection
    if dbapi is not None and not dbapi.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def claim_pending_images(
    *,
    session: Session,
    owner: str,
    limit: int,
    lease_s: float,
    version: str | None = None,
    config_hash: str | None = None,
) -> list[ClaimedImage]:
    """Claim up to `limit` pending runs (or runs whose lease expired) for `owner`; commit.

    Parameters
    ----------
    session : Session
        Open session with no pending changes; committed here.
    owner : str
        Unique name of the claiming worker (e.g. ``"host:pid:uuid"``).
    limit : int
        Most runs to claim.
    lease_s : float, s
        Lease duration; after it another worker may claim the run again.
    version, config_hash : str, optional
        Claim only runs of this package version / config hash.

    Returns
    -------
    list of ClaimedImage
        The runs now held by `owner`, by run id; empty when none are pending.
    """
    if not owner:
        raise InputError("owner: a non-empty worker name is required")
    if limit < 1:
        raise InputError(f"limit: expected a positive number of images, got {limit}")
    if not (math.isfinite(lease_s) and lease_s > 0):
        raise InputError(f"lease_s: expected a positive duration in seconds, got {lease_s}")
    try:
        _begin_write_lock(session)
        now = utcnow()
        expires = now + dt.timedelta(seconds=lease_s)
        claimable = or_(
            MeasurementRun.status == "pending",
            and_(MeasurementRun.status == "running", MeasurementRun.lease_expires_at < now),
        )
        if version is not None:
            claimable = and_(claimable, MeasurementRun.package_version == version)
        if config_hash is not None:
            claimable = and_(claimable, MeasurementRun.config_hash == config_hash)
        ids = list(
            session.scalars(
                select(MeasurementRun.id)
                .where(claimable)
                .order_by(MeasurementRun.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        if not ids:
            session.commit()
            return []
        session.execute(
            update(MeasurementRun)
            .where(MeasurementRun.id.in_(ids), claimable)  # compare-and-set
            .values(
                status="running",
                lease_owner=owner,
                lease_expires_at=expires,
                started_at=now,
                attempts=MeasurementRun.attempts + 1,
            )
            .execution_options(synchronize_session=False)
        )
        rows = session.execute(
            select(MeasurementRun, Image.sha256, Image.um_per_px)
            .join(Image, Image.id == MeasurementRun.image_id)
            .where(
                MeasurementRun.id.in_(ids),
                MeasurementRun.lease_owner == owner,
                MeasurementRun.lease_expires_at == expires,
            )
            .order_by(MeasurementRun.id)
            .execution_options(populate_existing=True)
        ).all()
        claimed = [
            ClaimedImage(
                run_id=run.id,
                image_id=run.image_id,
                sha256=sha,
                um_per_px=um,
                package_version=run.package_version,
                config_hash=run.config_hash,
                lease_owner=owner,
                lease_expires_at=expires,
                attempts=run.attempts,
            )
            for run, sha, um in rows
        ]
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return claimed


def _jsonable(value: Any, *, name: str) -> Any:
    """Return `value` as plain JSON types (NumPy scalars unwrapped, NaN → None)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, name=f"{name}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v, name=name) for v in value]
    if hasattr(value, "item") and callable(value.item):  # NumPy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise InputError(f"{name}: {value!r} is not JSON-serialisable")


def _to_record(hair: HairRecord | Mapping[str, Any]) -> HairRecord:
    return hair if isinstance(hair, HairRecord) else HairRecord.from_json(dict(hair))


def _check_hairs(records: Sequence[HairRecord], image_id: int) -> None:
    seen: set[int] = set()
    for h in records:
        where = f"image {image_id}, hair {h.id}"
        if h.id in seen:
            raise InputError(f"{where}: hair id appears twice")
        seen.add(h.id)
        if not (math.isfinite(h.diameter_um) and h.diameter_um >= 0):
            raise InputError(f"{where}: diameter_um must be finite and ≥ 0, got {h.diameter_um}")
        if not math.isfinite(h.length_um):
            raise InputError(f"{where}: length_um must be finite, got {h.length_um}")
        if not 0.0 <= h.confidence <= 1.0:
            raise InputError(f"{where}: confidence must be in [0, 1], got {h.confidence}")


def _exit_confidences(
    records: Sequence[HairRecord], given: Sequence[float] | None, image_id: int
) -> list[float | None]:
    """One exit confidence per hair (``None``: none known), checked to lie in [0, 1]."""
    if given is not None:
        values: list[Any] = list(given)
        if len(values) != len(records):
            raise InputError(
                f"image {image_id}: {len(values)} exit confidences for {len(records)} hairs"
            )
    else:
        values = [h.extra.get(_EXIT_CONFIDENCE) for h in records]
    return [
        None
        if value is None
        else check_range(
            value, name=f"image {image_id}, hair {h.id}: exit_confidence", low=0, high=1
        )
        for h, value in zip(records, values, strict=True)
    ]


def _hair_row(run_id: int, hair: HairRecord, exit_confidence: float | None) -> dict[str, Any]:
    exit_px = hair.exit_px
    extra = {k: v for k, v in hair.extra.items() if k != _EXIT_CONFIDENCE}
    return {
        "run_id": run_id,
        "hair_id": int(hair.id),
        "exit_x_px": None if exit_px is None else float(exit_px[0]),
        "exit_y_px": None if exit_px is None else float(exit_px[1]),
        "tip_x_px": float(hair.tip_px[0]),
        "tip_y_px": float(hair.tip_px[1]),
        "centerline_px": [[float(x), float(y)] for x, y in hair.centerline_px],
        "diameter_um": float(hair.diameter_um),
        "length_um": float(hair.length_um),
        "hair_class": hair.hair_class,
        "confidence": float(hair.confidence),
        "exit_confidence": exit_confidence,
        "extra": _jsonable(extra, name="extra") if extra else None,
    }


def _batches(
    run_id: int, hairs: Sequence[HairRecord], exit_confidence: Sequence[float | None]
) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for hair, sure in zip(hairs, exit_confidence, strict=True):
        batch.append(_hair_row(run_id, hair, sure))
        if len(batch) >= _HAIR_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _insert_hairs(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert hair rows in the session's transaction (COPY on PostgreSQL: ~5× faster)."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        connection.execute(_HAIR_INSERT, rows)
        return
    columns = list(rows[0])
    dbapi = connection.connection.dbapi_connection
    assert dbapi is not None
    with dbapi.cursor() as cursor:  # type: ignore[attr-defined]
        with cursor.copy(f"COPY hair ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(
                    [
                        json.dumps(row[c]) if c in _JSON_COLUMNS and row[c] is not None else row[c]
                        for c in columns
                    ]
                )


def _find_run(
    session: Session, image_id: int, version: str, config_hash: str, owner: str | None
) -> tuple[MeasurementRun, bool]:
    """Return the run to finish and whether it is already done."""
    _begin_write_lock(session)
    if session.get(Image, image_id) is None:
        raise InputError(f"image_id {image_id}: no such image")
    key = _same_key(MeasurementRun, image_id, version, config_hash)
    done = session.scalar(select(MeasurementRun).where(key, MeasurementRun.status == "done"))
    if done is not None:
        return done, True
    run = session.scalar(
        select(MeasurementRun).where(key, _open(MeasurementRun.status)).with_for_update()
    )
    now = utcnow()
    if run is None:
        run = MeasurementRun(
            image_id=image_id,
            package_version=version,
            config_hash=config_hash,
            status="running",
            attempts=1,
            started_at=now,
            lease_owner=owner,
        )
        session.add(run)
        session.flush()
    elif (
        owner is not None
        and run.lease_owner not in (None, owner)
        and run.lease_expires_at is not None
        and run.lease_expires_at > now
    ):
        raise LeaseLostError(
            f"image {image_id}: run {run.id} is leased to {run.lease_owner} until "
            f"{run.lease_expires_at.isoformat()}, not to {owner}"
        )
    return run, False


def save_measurement(
    *,
    session: Session,
    image_id: int,
    version: str,
    config_hash: str,
    hairs: Sequence[HairRecord | Mapping[str, Any]],
    summary: Mapping[str, Any],
    timings: Mapping[str, float],
    owner: str | None = None,
    exit_confidence: Sequence[float] | None = None,
) -> int:
    """Store all hairs of one image and mark its run done, in one transaction; commit.

    If a done run already exists for this image, version and config hash, nothing is
    written (re-running is a no-op). On any error the whole transaction is rolled back:
    no hair of this image is stored and the run keeps its earlier state.

    Parameters
    ----------
    session : Session
        Open session; committed here.
    image_id : int
        Image row id.
    version : str
        Package version that measured.
    config_hash : str
        Hash of the measurement parameters.
    hairs : sequence of HairRecord or dict
        Hair records, or their DESIGN.md JSON form (``class`` key).
    summary : mapping
        Per-image endpoints (``hair_count``, ``density_per_cm2`` (hairs/cm²),
        ``mean_diameter_um`` (µm), ``terminal_fraction``...), stored as JSON.
    timings : mapping of str to float, s
        Step durations.
    owner : str, optional
        Worker that claimed the run; if the lease has passed to another worker,
        :class:`LeaseLostError` is raised and nothing is written.
    exit_confidence : sequence of float, optional
        How sure the measurement is of each hair's exit end (0–1; ``hairtrial measure``
        gives 0.5–1), one per hair in the order of `hairs`
        (:attr:`~hairtrial.measure.ImageMeasurement.exit_confidence`). Without it, a
        hair's own ``exit_confidence`` key (the ``hairtrial measure`` JSON) is used, and
        a hair with neither stores NULL.

    Returns
    -------
    int
        The run id.
    """
    try:
        records = [_to_record(h) for h in hairs]
        _check_hairs(records, image_id)
        sure = _exit_confidences(records, exit_confidence, image_id)
        summary_json = _jsonable(dict(summary), name="summary")
        timings_json = _jsonable(dict(timings), name="timings")
        run, already_done = _find_run(session, image_id, version, config_hash, owner)
        if already_done:
            session.rollback()
            log.info("image %d already measured by run %d: nothing written", image_id, run.id)
            return run.id
        for batch in _batches(run.id, records, sure):
            _insert_hairs(session, batch)
        run.status = "done"
        run.error = None
        run.summary = summary_json
        run.timings = timings_json
        run.finished_at = utcnow()
        run.lease_owner = None
        run.lease_expires_at = None
        session.commit()
    except IntegrityError:
        session.rollback()
        # A concurrent save of the same image won the race (one done run per image ×
        # version × config): this result is a duplicate, so saving it is a no-op.
        done = _done_run_id(session, image_id, version, config_hash)
        if done is None:
            raise
        log.info("image %d was saved concurrently by run %d: nothing written", image_id, done)
        return done
    except BaseException:
        session.rollback()
        raise
    return run.id


def _done_run_id(session: Session, image_id: int, version: str, config_hash: str) -> int | None:
    key = _same_key(MeasurementRun, image_id, version, config_hash)
    found = session.scalar(select(MeasurementRun.id).where(key, MeasurementRun.status == "done"))
    session.rollback()
    return found


def mark_failed(
    *,
    session: Session,
    image_id: int,
    version: str,
    config_hash: str,
    error: str,
    timings: Mapping[str, float] | None = None,
    owner: str | None = None,
) -> int:
    """Record that measuring an image failed, with the reason; commit.

    Parameters
    ----------
    session : Session
        Open session; committed here.
    image_id : int
        Image row id.
    version : str
        Package version that measured.
    config_hash : str
        Hash of the measurement parameters.
    error : str
        Why it failed (shown by ``hairtrial status``).
    timings : mapping of str to float, optional, s
        Step durations up to the failure.
    owner : str, optional
        Worker that claimed the run (see :func:`save_measurement`).

    Returns
    -------
    int
        The run id (a done run is left as it is and its id returned).
    """
    try:
        run, already_done = _find_run(session, image_id, version, config_hash, owner)
        if already_done:
            session.rollback()
            log.warning("image %d: run %d is already done; failure not recorded", image_id, run.id)
            return run.id
        run.status = "failed"
        run.error = str(error) or "unknown error"
        run.timings = None if timings is None else _jsonable(dict(timings), name="timings")
        run.finished_at = utcnow()
        run.lease_owner = None
        run.lease_expires_at = None
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return run.id


def run_status(
    *, session: Session, version: str | None = None, config_hash: str | None = None
) -> RunStatus:
    """Count runs per status and list unresolved failures.

    Parameters
    ----------
    session : Session
        Open session (read only).
    version, config_hash : str, optional
        Restrict to one package version / config hash.

    Returns
    -------
    RunStatus
    """
    where: list[ColumnElement[bool]] = []
    if version is not None:
        where.append(MeasurementRun.package_version == version)
    if config_hash is not None:
        where.append(MeasurementRun.config_hash == config_hash)
    counts = dict.fromkeys(RUN_STATUSES, 0)
    query = select(MeasurementRun.status, func.count()).where(*where)
    for status, n in session.execute(query.group_by(MeasurementRun.status)):
        counts[status] = int(n)
    n_images = int(session.scalar(select(func.count()).select_from(Image)) or 0)
    done_images = select(MeasurementRun.image_id).where(MeasurementRun.status == "done", *where)
    n_done = int(
        session.scalar(select(func.count()).select_from(done_images.distinct().subquery())) or 0
    )
    failed = session.execute(
        select(MeasurementRun, Image.source_path)
        .join(Image, Image.id == MeasurementRun.image_id)
        .where(MeasurementRun.status == "failed", MeasurementRun.image_id.not_in(done_images))
        .where(*where)
        .order_by(MeasurementRun.finished_at.desc(), MeasurementRun.id.desc())
    ).all()
    failures = tuple(
        FailedRun(
            run_id=run.id,
            image_id=run.image_id,
            source_path=source,
            package_version=run.package_version,
            config_hash=run.config_hash,
            error=run.error,
            finished_at=run.finished_at,
        )
        for run, source in failed
    )
    return RunStatus(n_images=n_images, counts=counts, n_images_done=n_done, failures=failures)
