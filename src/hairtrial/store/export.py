"""Export tidy tables from the trial database (Parquet or CSV).

Five tables, one row per observation, keyed in the trial's words:

- ``endpoints``: one row per site × visit × image kind, from each image's latest approved
  review revision when there is one, else its latest done measurement run (``source``
  says which: ``review`` with its ``revision_id``, or ``automatic``; ``unusable`` is the
  reviewer's flag): ``hair_count``, ``density_per_cm2`` (hairs/cm²), ``mean_diameter_um``
  (µm), ``terminal_fraction``, ``cumulative_thickness_mm_per_cm2``,
  ``fraction_below_index``, with the run's version and config hash.
  On phototrichogram re-images (kind ``clipped-regrowth``) ``anagen_fraction`` is the
  newest stored phototrichogram result (empty elsewhere).
- ``hairs``: one row per hair of those revisions or runs (pixel coordinates, µm sizes;
  the centreline as JSON text; ``exit_confidence``, how sure the measurement is of the
  exit end, empty where none was stored or a reviewer placed the exit; ``source`` and
  ``revision_id`` as in ``endpoints``).
- ``follicle_trajectories``: one row per follicle × image from tracking.
- ``phototrichograms``: one row per stored phototrichogram result (re-image × version
  × key): the clipped image it re-images, days, registration, anagen / telogen counts,
  hairs not found later or undetermined, and the anagen fraction.
- ``runs``: every measurement run with its status, attempts, error text and timings, so
  failures can be followed up.

Rows stream from the database in chunks, so exports of large trials run in bounded
memory. The arm is left out unless ``include_arm=True`` (unblinded use only).
"""

from __future__ import annotations

import csv
import datetime as dt
import heapq
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Select, Text, cast, func, select

from hairtrial._validate import InputError, check_choice
from hairtrial.store.engine import Store
from hairtrial.store.models import (
    Follicle,
    FollicleObservation,
    Hair,
    Image,
    MeasurementRun,
    Phototrichogram,
    Review,
    Site,
    Subject,
    Trial,
    Visit,
)

log = logging.getLogger(__name__)

ExportFormat = Literal["parquet", "csv"]
EXPORT_FORMATS = ("parquet", "csv")
_CHUNK_ROWS = 50_000

#: Endpoint keys promoted from a run's summary to columns of ``endpoints``.
SUMMARY_COLUMNS = (
    ("hair_count", "int"),
    ("density_per_cm2", "float"),
    ("mean_diameter_um", "float"),
    ("terminal_fraction", "float"),
    ("cumulative_thickness_mm_per_cm2", "float"),
    ("fraction_below_index", "float"),
)
_KEYS = (("trial", "str"), ("subject", "str"), ("site", "str"))
_ARM = (("arm", "str"),)


def _schema(columns: Sequence[tuple[str, str]]) -> Any:
    import pyarrow as pa

    types = {
        "int": pa.int64(),
        "float": pa.float64(),
        "str": pa.string(),
        "bool": pa.bool_(),
        "time": pa.timestamp("us", tz="UTC"),
    }
    return pa.schema([(name, types[kind]) for name, kind in columns])


def _csv_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return "" if value is None else value


def _write_table(
    path: Path, columns: Sequence[tuple[str, str]], rows: Iterable[dict[str, Any]], fmt: str
) -> int:
    """Write `rows` (dicts keyed by column name) in chunks; return the row count."""
    names = [name for name, _ in columns]
    n = 0
    tmp = path.with_name(path.name + ".partial")
    if fmt == "csv":
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(names)
            for row in rows:
                writer.writerow([_csv_value(row.get(c)) for c in names])
                n += 1
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = _schema(columns)
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            chunk: list[dict[str, Any]] = []
            for row in rows:
                chunk.append(row)
                if len(chunk) >= _CHUNK_ROWS:
                    writer.write_table(pa.Table.from_pylist(chunk, schema=schema))
                    n += len(chunk)
                    chunk = []
            writer.write_table(pa.Table.from_pylist(chunk, schema=schema))
            n += len(chunk)
    tmp.replace(path)
    return n


def _latest_done_runs() -> Any:
    """Subquery: the latest done run of each image (by finish time, then id)."""
    rank = (
        func.row_number()
        .over(
            partition_by=MeasurementRun.image_id,
            order_by=(MeasurementRun.finished_at.desc(), MeasurementRun.id.desc()),
        )
        .label("rank")
    )
    ranked = select(MeasurementRun.id.label("run_id"), rank).where(MeasurementRun.status == "done")
    return ranked.subquery("ranked")


def _latest_approved_revisions() -> Any:
    """Subquery: the latest approved review revision of each image (by id)."""
    rank = (
        func.row_number()
        .over(partition_by=Review.image_id, order_by=Review.id.desc())
        .label("rank")
    )
    ranked = select(Review.id.label("revision_id"), Review.image_id, rank).where(
        Review.status == "approved"
    )
    return ranked.subquery("revisions")


def _image_context(query: Select[*tuple[Any, ...]], include_arm: bool) -> Select[*tuple[Any, ...]]:
    query = query.add_columns(Trial.name, Subject.code, Site.code, Visit.day)
    if include_arm:
        query = query.add_columns(Site.arm)
    return (
        query.join(Visit, Visit.id == Image.visit_id)
        .join(Site, Site.id == Visit.site_id)
        .join(Subject, Subject.id == Site.subject_id)
        .join(Trial, Trial.id == Subject.trial_id)
    )


def _context(values: Sequence[Any], include_arm: bool) -> dict[str, Any]:
    out = {"trial": values[0], "subject": values[1], "site": values[2], "visit_day": values[3]}
    if include_arm:
        out["arm"] = values[4]
    return out


def _stream(store: Store, query: Select[*tuple[Any, ...]]) -> Iterator[Any]:
    with store.session() as session:
        yield from session.execute(query.execution_options(yield_per=_CHUNK_ROWS))


def _endpoint_rows(store: Store, include_arm: bool) -> Iterator[dict[str, Any]]:
    from hairtrial.store.phototrichograms import latest_phototrichograms

    with store.session() as session:
        anagen = {
            image_id: row.anagen_fraction
            for image_id, row in latest_phototrichograms(session=session).items()
        }
    ranked = _latest_done_runs()
    revisions = _latest_approved_revisions()
    query = (
        select(
            Image.id,
            Image.kind,
            Image.source_path,
            Image.sha256,
            Image.um_per_px,
            Image.width,
            Image.height,
            MeasurementRun.id,
            MeasurementRun.package_version,
            MeasurementRun.config_hash,
            MeasurementRun.finished_at,
            MeasurementRun.summary,
            Review.id,
            Review.summary,
            Review.unusable,
        )
        .join(MeasurementRun, MeasurementRun.image_id == Image.id)
        .join(ranked, (ranked.c.run_id == MeasurementRun.id) & (ranked.c.rank == 1))
        .outerjoin(revisions, (revisions.c.image_id == Image.id) & (revisions.c.rank == 1))
        .outerjoin(Review, Review.id == revisions.c.revision_id)
    )
    query = _image_context(query, include_arm).order_by(
        Subject.code, Site.code, Visit.day, Image.kind, Image.id
    )
    for row in _stream(store, query):
        image_id, kind, source, sha, um, width, height = row[:7]
        run_id, version, config_hash, finished, summary = row[7:12]
        revision_id, revision_summary, unusable = row[12:15]
        if revision_id is not None:
            summary = revision_summary
        summary = summary or {}
        out = _context(row[15:], include_arm)
        out.update(
            kind=kind,
            image_id=image_id,
            image=Path(source).name,
            sha256=sha,
            um_per_px=um,
            field_area_cm2=width * height * um * um / 1e8,
            run_id=run_id,
            package_version=version,
            config_hash=config_hash,
            finished_at=finished,
        )
        out.update({key: summary.get(key) for key, _ in SUMMARY_COLUMNS})
        out.update(
            anagen_fraction=anagen.get(image_id),
            source="automatic" if revision_id is None else "review",
            revision_id=revision_id,
            unusable=bool(unusable) if revision_id is not None else False,
        )
        yield out


_HAIR_FIELDS = (
    "run_id",
    "hair_id",
    "exit_x_px",
    "exit_y_px",
    "tip_x_px",
    "tip_y_px",
    "diameter_um",
    "length_um",
    "hair_class",
    "confidence",
    "exit_confidence",
    "centerline_px",
)


def _automatic_hair_rows(store: Store, include_arm: bool) -> Iterator[dict[str, Any]]:
    """Hairs of the latest done run of images that have no approved revision."""
    ranked = _latest_done_runs()
    revisions = _latest_approved_revisions()
    query = (
        select(
            Image.id,
            *(getattr(Hair, name) for name in _HAIR_FIELDS[:-1]),
            cast(Hair.centerline_px, Text),  # JSON text as stored: no decode/encode per row
        )
        .join(MeasurementRun, MeasurementRun.image_id == Image.id)
        .join(ranked, (ranked.c.run_id == MeasurementRun.id) & (ranked.c.rank == 1))
        .join(Hair, Hair.run_id == MeasurementRun.id)
        .where(~select(revisions.c.image_id).where(revisions.c.image_id == Image.id).exists())
    )
    query = _image_context(query, include_arm).order_by(
        Subject.code, Site.code, Visit.day, Image.id, Hair.hair_id
    )
    n = len(_HAIR_FIELDS) + 1
    for row in _stream(store, query):
        out = _context(row[n:], include_arm)
        out["image_id"] = row[0]
        out.update(zip(_HAIR_FIELDS, row[1:n], strict=True))
        out["counted"] = out["exit_x_px"] is not None
        out.update(source="automatic", revision_id=None)
        yield out


def _revision_hair_rows(store: Store, include_arm: bool) -> Iterator[dict[str, Any]]:
    """Hairs of the latest approved revision of each image that has one."""
    revisions = _latest_approved_revisions()
    query = (
        select(Image.id, Review.id, Review.run_id, Review.hairs)
        .join(revisions, (revisions.c.image_id == Image.id) & (revisions.c.rank == 1))
        .join(Review, Review.id == revisions.c.revision_id)
    )
    query = _image_context(query, include_arm).order_by(
        Subject.code, Site.code, Visit.day, Image.id
    )
    with store.session() as session:
        for row in session.execute(query.execution_options(yield_per=100)):
            image_id, revision_id, run_id, hairs = row[:4]
            context = _context(row[4:], include_arm)
            for hair in sorted(hairs, key=lambda h: int(h["id"])):
                exit_px = hair.get("exit_px")
                tip = hair["tip_px"]
                out = dict(context)
                out.update(
                    image_id=image_id,
                    run_id=run_id,
                    hair_id=int(hair["id"]),
                    exit_x_px=None if exit_px is None else exit_px[0],
                    exit_y_px=None if exit_px is None else exit_px[1],
                    tip_x_px=tip[0],
                    tip_y_px=tip[1],
                    diameter_um=hair["diameter_um"],
                    length_um=hair["length_um"],
                    hair_class=hair["class"],
                    confidence=hair.get("confidence", 1.0),
                    exit_confidence=hair.get("exit_confidence"),
                    centerline_px=json.dumps(hair["centerline_px"]),
                    counted=exit_px is not None,
                    source="review",
                    revision_id=revision_id,
                )
                yield out


def _hair_order(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["subject"], row["site"], row["visit_day"], row["image_id"], row["hair_id"])


def _hair_rows(store: Store, include_arm: bool) -> Iterator[dict[str, Any]]:
    """One row per hair: from the latest approved revision if any, else the automatic run."""
    yield from heapq.merge(
        _automatic_hair_rows(store, include_arm),
        _revision_hair_rows(store, include_arm),
        key=_hair_order,
    )


def _follicle_rows(store: Store, include_arm: bool) -> Iterator[dict[str, Any]]:
    query = (
        select(
            Follicle.label,
            Follicle.package_version,
            Follicle.config_hash,
            FollicleObservation,
            Image.id,
        )
        .join(FollicleObservation, FollicleObservation.follicle_id == Follicle.id)
        .join(Image, Image.id == FollicleObservation.image_id)
    )
    query = _image_context(query, include_arm).order_by(
        Subject.code, Site.code, Follicle.package_version, Follicle.label, Visit.day
    )
    for row in _stream(store, query):
        label, version, config_hash, obs, image_id = row[:5]
        out = _context(row[5:], include_arm)
        out.update(
            follicle_id=label,
            package_version=version,
            config_hash=config_hash,
            image_id=image_id,
            present=obs.present,
            x_um=obs.x_um,
            y_um=obs.y_um,
            diameter_um=obs.diameter_um,
            length_um=obs.length_um,
            phase=obs.phase,
        )
        yield out


def _phototrichogram_rows(store: Store, include_arm: bool) -> Iterator[dict[str, Any]]:
    query = select(Image.id, Phototrichogram).join(
        Phototrichogram, Phototrichogram.regrowth_image_id == Image.id
    )
    query = _image_context(query, include_arm).order_by(
        Subject.code, Site.code, Visit.day, Phototrichogram.id
    )
    for row in _stream(store, query):
        image_id, photo = row[:2]
        out = _context(row[2:], include_arm)
        out.update(
            image_id=image_id,
            clipped_image_id=photo.clipped_image_id,
            package_version=photo.package_version,
            config_hash=photo.config_hash,
            days=photo.days,
            registered=photo.registered,
            score=photo.score,
            method=photo.method,
            n_anagen=photo.n_anagen,
            n_telogen=photo.n_telogen,
            n_lost=photo.n_lost,
            n_undetermined=photo.n_undetermined,
            anagen_fraction=photo.anagen_fraction,
            created_at=photo.created_at,
        )
        yield out


def _run_rows(store: Store, include_arm: bool) -> Iterator[dict[str, Any]]:
    query = select(Image.id, Image.source_path, MeasurementRun).join(
        MeasurementRun, MeasurementRun.image_id == Image.id
    )
    query = _image_context(query, include_arm).order_by(MeasurementRun.id)
    for row in _stream(store, query):
        image_id, source, run = row[:3]
        out = _context(row[3:], include_arm)
        duration = (
            (run.finished_at - run.started_at).total_seconds()
            if run.finished_at is not None and run.started_at is not None
            else None
        )
        out.update(
            image_id=image_id,
            image=Path(source).name,
            run_id=run.id,
            package_version=run.package_version,
            config_hash=run.config_hash,
            status=run.status,
            attempts=run.attempts,
            error=run.error,
            created_at=run.created_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
            duration_s=duration,
            timings=None if run.timings is None else json.dumps(run.timings, sort_keys=True),
        )
        yield out


def _columns(include_arm: bool, *rest: tuple[str, str]) -> list[tuple[str, str]]:
    return [*_KEYS, *(_ARM if include_arm else ()), ("visit_day", "int"), *rest]


#: The exported tables: name → (columns after the trial/subject/site/[arm]/visit_day keys,
#: as ``(name, type)``; the row source).
TABLES: dict[
    str, tuple[tuple[tuple[str, str], ...], Callable[[Store, bool], Iterator[dict[str, Any]]]]
] = {
    "endpoints": (
        (
            ("kind", "str"),
            ("image_id", "int"),
            ("image", "str"),
            ("sha256", "str"),
            ("um_per_px", "float"),
            ("field_area_cm2", "float"),
            ("run_id", "int"),
            ("package_version", "str"),
            ("config_hash", "str"),
            ("finished_at", "time"),
            *SUMMARY_COLUMNS,
            ("anagen_fraction", "float"),
            ("source", "str"),
            ("revision_id", "int"),
            ("unusable", "bool"),
        ),
        _endpoint_rows,
    ),
    "hairs": (
        (
            ("image_id", "int"),
            ("run_id", "int"),
            ("hair_id", "int"),
            ("exit_x_px", "float"),
            ("exit_y_px", "float"),
            ("tip_x_px", "float"),
            ("tip_y_px", "float"),
            ("diameter_um", "float"),
            ("length_um", "float"),
            ("hair_class", "str"),
            ("confidence", "float"),
            ("exit_confidence", "float"),
            ("counted", "bool"),
            ("centerline_px", "str"),
            ("source", "str"),
            ("revision_id", "int"),
        ),
        _hair_rows,
    ),
    "follicle_trajectories": (
        (
            ("follicle_id", "int"),
            ("package_version", "str"),
            ("config_hash", "str"),
            ("image_id", "int"),
            ("present", "bool"),
            ("x_um", "float"),
            ("y_um", "float"),
            ("diameter_um", "float"),
            ("length_um", "float"),
            ("phase", "str"),
        ),
        _follicle_rows,
    ),
    "phototrichograms": (
        (
            ("image_id", "int"),
            ("clipped_image_id", "int"),
            ("package_version", "str"),
            ("config_hash", "str"),
            ("days", "float"),
            ("registered", "bool"),
            ("score", "float"),
            ("method", "str"),
            ("n_anagen", "int"),
            ("n_telogen", "int"),
            ("n_lost", "int"),
            ("n_undetermined", "int"),
            ("anagen_fraction", "float"),
            ("created_at", "time"),
        ),
        _phototrichogram_rows,
    ),
    "runs": (
        (
            ("image_id", "int"),
            ("image", "str"),
            ("run_id", "int"),
            ("package_version", "str"),
            ("config_hash", "str"),
            ("status", "str"),
            ("attempts", "int"),
            ("error", "str"),
            ("created_at", "time"),
            ("started_at", "time"),
            ("finished_at", "time"),
            ("duration_s", "float"),
            ("timings", "str"),
        ),
        _run_rows,
    ),
}


def export_tables(
    *,
    store: Store,
    out_dir: str | Path,
    fmt: ExportFormat = "parquet",
    include_arm: bool = False,
) -> dict[str, Path]:
    """Write the tidy tables of a trial database to `out_dir`.

    Parameters
    ----------
    store : Store
        Open trial database.
    out_dir : str or Path
        Output folder (created). Each table is written to a temporary name and renamed,
        so a reader never sees a half-written file.
    fmt : {'parquet', 'csv'}
        File format.
    include_arm : bool
        Add the ``arm`` column (unblinded use only: statisticians after database lock).

    Returns
    -------
    dict of str to Path
        ``endpoints``, ``hairs``, ``follicle_trajectories``, ``phototrichograms`` and
        ``runs`` → file written.
    """
    fmt = check_choice(fmt, name="fmt", choices=EXPORT_FORMATS)  # type: ignore[assignment]
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: output path exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name, (columns, rows) in TABLES.items():
        path = out / f"{name}.{fmt}"
        n = _write_table(path, _columns(include_arm, *columns), rows(store, include_arm), fmt)
        log.info("wrote %s (%d rows)", path, n)
        written[name] = path
    return written
