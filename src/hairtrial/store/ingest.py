"""Ingest a manifest of images into the trial database, checking the whole file first.

Every row is checked before anything is written: the manifest's own rules
(:mod:`hairtrial.io.manifest`), then files (missing, unreadable by
:func:`hairtrial.io.read_image`), duplicate rows and identical content (SHA-256), arms,
calibration (plausible, and agreeing with any calibration the file carries), and visit
order within each site (one image per site × day × kind; ``acquired_at`` increasing with
``visit_day``), also against what the database already holds. Every bad row is reported
with its line number. Nothing is written unless all rows are good, or, with
``skip_bad=True``, only the good rows are. Rows already stored (same content for the same
site, day and kind) are left as they are, so ingesting a manifest twice changes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hairtrial._validate import InputError
from hairtrial.io.image import read_image
from hairtrial.io.manifest import check_manifest_row, read_manifest_rows
from hairtrial.store.engine import Store, open_store
from hairtrial.store.images import copy_into_store, sha256_file
from hairtrial.store.models import Image, Site, Subject, Trial, Visit
from hairtrial.store.trials import (
    DEFAULT_ARMS,
    DEFAULT_TRIAL,
    get_or_create_site,
    get_or_create_subject,
    get_or_create_trial,
    get_or_create_visit,
    record_event,
)

log = logging.getLogger(__name__)

#: Plausible calibration range in µm/px (trichoscopes image at ~1–20 µm/px); values outside
#: are almost always a unit slip (px/µm, mm/px) and are refused.
UM_PER_PX_RANGE = (0.1, 100.0)
#: Relative disagreement allowed between the manifest's calibration and the file's own.
CALIBRATION_TOLERANCE = 0.01


@dataclass(frozen=True)
class RowProblem:
    """One problem with one manifest row.

    Parameters
    ----------
    line : int
        CSV line number (the header is line 1).
    image : str
        The row's image path as written in the manifest.
    message : str
        What is wrong.
    """

    line: int
    image: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True)
class IngestReport:
    """What an ingest did.

    Parameters
    ----------
    manifest : Path
        The manifest read.
    database : str
        Database URL (password hidden).
    trial : str
        Trial the images belong to.
    n_rows : int
        Data rows in the manifest.
    added : int
        Images newly stored.
    already_present : int
        Rows whose image was already stored (left unchanged).
    problems : tuple of RowProblem
        Every problem found, in line order; rows with problems were not written.
    written : bool
        Whether the transaction was committed (``False`` when problems stopped the
        ingest, or nothing was new).
    image_root : Path or None
        Image store the files were copied into (``None`` for in-place ingests).
    """

    manifest: Path
    database: str
    trial: str
    n_rows: int
    added: int
    already_present: int
    problems: tuple[RowProblem, ...]
    written: bool
    image_root: Path | None

    @property
    def bad_lines(self) -> tuple[int, ...]:
        """Line numbers of the rows with problems."""
        return tuple(sorted({p.line for p in self.problems}))

    def summary(self) -> str:
        """Return a one-line summary for logs and the command line."""
        return (
            f"{self.manifest}: {self.n_rows} row(s), {self.added} image(s) added, "
            f"{self.already_present} already present, {len(self.bad_lines)} bad row(s) "
            f"skipped -> {self.database}"
        )


class IngestError(InputError):
    """The manifest has bad rows and nothing was written; `report` lists them all."""

    def __init__(self, message: str, report: IngestReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class _Row:
    line: int
    image: str
    path: Path | None = None
    subject: str = ""
    site: str = ""
    arm: str = ""
    day: int | None = None
    um_per_px: float | None = None
    kind: str | None = None
    acquired_at: dt.datetime | None = None
    device: str | None = None
    sha256: str | None = None
    n_bytes: int = 0
    width: int = 0
    height: int = 0
    present: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def site_key(self) -> tuple[str, str]:
        return (self.subject, self.site)


def _parse_time(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text)
    # A naive time is taken as UTC (documented in the manifest contract of the store).
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _read_rows(path: Path) -> list[_Row]:
    _, raw_rows = read_manifest_rows(path)
    base = path.parent.resolve()
    rows = []
    for line_no, raw in raw_rows:
        row = _Row(line=line_no, image=raw.get("image", ""))
        # The manifest's own rules, with "line N: " stripped (RowProblem adds it back).
        row.problems = [p.split(": ", 1)[1] for p in check_manifest_row(raw, line_no)]
        if row.image:
            given = Path(row.image)
            row.path = given if given.is_absolute() else base / given
        row.subject, row.site, row.arm = raw["subject"], raw["site"], raw["arm"]
        row.kind = raw.get("kind") or None
        row.device = raw.get("device") or None
        try:
            day = float(raw["visit_day"])
            row.day = int(day) if day.is_integer() else None
        except ValueError:
            row.day = None
        try:
            um = float(raw["um_per_px"])
            row.um_per_px = um if math.isfinite(um) and um > 0 else None
        except ValueError:
            row.um_per_px = None
        if stamp := raw.get("acquired_at"):
            try:
                row.acquired_at = _parse_time(stamp)
            except ValueError:
                row.problems.append(f"acquired_at {stamp!r} is not an ISO 8601 date-time")
        rows.append(row)
    return rows


def _check_files(rows: list[_Row]) -> None:
    seen_path: dict[Path, int] = {}
    seen_hash: dict[str, int] = {}
    for row in rows:
        if row.path is None:
            continue
        resolved = row.path.resolve()
        if resolved in seen_path:
            row.problems.append(
                f"duplicate row: image {row.image} is also on line {seen_path[resolved]}"
            )
            continue
        seen_path[resolved] = row.line
        try:
            data = read_image(row.path)
        except InputError as exc:
            row.problems.append(f"unreadable image: {exc}")
            continue
        row.height, row.width = int(data.pixels.shape[0]), int(data.pixels.shape[1])
        row.n_bytes = row.path.stat().st_size
        row.sha256 = sha256_file(row.path)
        if row.sha256 in seen_hash:
            row.problems.append(
                f"identical content: {row.image} has the same bytes (sha256) as line "
                f"{seen_hash[row.sha256]}"
            )
        else:
            seen_hash[row.sha256] = row.line
        if row.um_per_px is not None:
            low, high = UM_PER_PX_RANGE
            if not low <= row.um_per_px <= high:
                row.problems.append(
                    f"bad calibration: um_per_px {row.um_per_px:g} is outside the plausible "
                    f"range [{low:g}, {high:g}] µm/px (unit slip?)"
                )
            elif data.um_per_px is not None and (
                abs(data.um_per_px - row.um_per_px) > CALIBRATION_TOLERANCE * row.um_per_px
            ):
                row.problems.append(
                    f"bad calibration: manifest says {row.um_per_px:g} µm/px but the file "
                    f"carries {data.um_per_px:g} µm/px"
                )


@dataclass(frozen=True)
class _Stored:
    sha256: str
    day: int
    kind: str | None
    acquired_at: dt.datetime | None
    um_per_px: float


def _stored_by_site(session: Session, trial_id: int) -> dict[tuple[str, str], list[_Stored]]:
    query = (
        select(
            Subject.code,
            Site.code,
            Visit.day,
            Image.kind,
            Image.acquired_at,
            Image.sha256,
            Image.um_per_px,
        )
        .join(Site, Site.subject_id == Subject.id)
        .join(Visit, Visit.site_id == Site.id)
        .join(Image, Image.visit_id == Visit.id)
        .where(Subject.trial_id == trial_id)
    )
    out: dict[tuple[str, str], list[_Stored]] = defaultdict(list)
    for subject, site, day, kind, at, sha, um in session.execute(query):
        out[(subject, site)].append(
            _Stored(sha256=sha, day=day, kind=kind, acquired_at=at, um_per_px=um)
        )
    return out


def _check_against_database(
    rows: list[_Row], session: Session, trial: Trial | None, arms: tuple[str, ...]
) -> None:
    stored_sites: dict[tuple[str, str], str] = {}
    stored_images: dict[tuple[str, str], list[_Stored]] = {}
    stored_hash: dict[str, tuple[str, str, int, str | None]] = {}
    stored_um: dict[str, float] = {}
    if trial is not None:
        query = (
            select(Subject.code, Site.code, Site.arm)
            .join(Site, Site.subject_id == Subject.id)
            .where(Subject.trial_id == trial.id)
        )
        stored_sites = {(s, c): arm for s, c, arm in session.execute(query)}
        stored_images = _stored_by_site(session, trial.id)
        for key, images in stored_images.items():
            for img in images:
                stored_hash[img.sha256] = (*key, img.day, img.kind)
                stored_um[img.sha256] = img.um_per_px
    for row in rows:
        if row.arm and row.arm not in arms:
            row.problems.append(f"unknown arm {row.arm!r}; allowed: {{{', '.join(arms)}}}")
        stored_arm = stored_sites.get(row.site_key)
        if row.arm and stored_arm is not None and stored_arm != row.arm:
            row.problems.append(
                f"site {row.site} of subject {row.subject} is stored with another arm; "
                "stored rows are never rewritten"
            )
        if row.sha256 is None or row.sha256 not in stored_hash:
            continue
        where = stored_hash[row.sha256]
        if where != (row.subject, row.site, row.day, row.kind):
            row.problems.append(
                f"identical content already stored for subject {where[0]}, site {where[1]}, "
                f"day {where[2]}, kind {where[3] or '(none)'}"
            )
        elif row.um_per_px is not None and not math.isclose(row.um_per_px, stored_um[row.sha256]):
            row.problems.append(
                f"image already stored with um_per_px {stored_um[row.sha256]:g}, manifest says "
                f"{row.um_per_px:g}; stored rows are never rewritten"
            )
        else:
            row.present = True
    _check_sites(rows, stored_images)


def _check_sites(rows: list[_Row], stored: dict[tuple[str, str], list[_Stored]]) -> None:
    by_site: dict[tuple[str, str], list[_Row]] = defaultdict(list)
    for row in rows:
        if row.day is not None and row.subject and row.site:
            by_site[row.site_key].append(row)
    for key, site_rows in by_site.items():
        arms = {r.arm for r in site_rows if r.arm}
        if len(arms) > 1:
            first = next(r for r in site_rows if r.arm)
            for row in site_rows[1:]:
                if row.arm != first.arm:
                    row.problems.append(
                        f"site {row.site} has arm {row.arm!r} here but {first.arm!r} on "
                        f"line {first.line}"
                    )
        slots: dict[tuple[int, str | None], int] = {}
        for row in site_rows:
            assert row.day is not None
            slot = (row.day, row.kind)
            if slot in slots:
                row.problems.append(
                    f"visit out of order: site {row.site} already has day {row.day}"
                    f"{'' if row.kind is None else f' ({row.kind})'} on line {slots[slot]}"
                )
            else:
                slots[slot] = row.line
        for img in stored.get(key, []):
            for row in site_rows:
                if (row.day, row.kind) == (img.day, img.kind) and row.sha256 != img.sha256:
                    row.problems.append(
                        f"site {row.site} day {row.day} already has a different stored image; "
                        "stored rows are never rewritten"
                    )
        _check_acquisition_order(site_rows, stored.get(key, []))


def _check_acquisition_order(site_rows: list[_Row], stored: list[_Stored]) -> None:
    timed = [r for r in site_rows if r.acquired_at is not None and r.day is not None]
    for row in timed:
        assert row.day is not None and row.acquired_at is not None
        for other in timed:
            assert other.day is not None and other.acquired_at is not None
            if other.day < row.day and other.acquired_at >= row.acquired_at:
                row.problems.append(
                    f"visit out of order: acquired_at {row.acquired_at.isoformat()} (day "
                    f"{row.day}) is not after line {other.line}'s "
                    f"{other.acquired_at.isoformat()} (day {other.day})"
                )
                break
        for img in stored:
            if img.acquired_at is None or img.sha256 == row.sha256:
                continue
            if (img.day < row.day and img.acquired_at >= row.acquired_at) or (
                img.day > row.day and img.acquired_at <= row.acquired_at
            ):
                row.problems.append(
                    f"visit out of order: acquired_at {row.acquired_at.isoformat()} (day "
                    f"{row.day}) conflicts with the stored image of day {img.day} "
                    f"({img.acquired_at.isoformat()})"
                )
                break


def validate_manifest(
    *,
    store: Store,
    manifest_path: str | Path,
    trial: str = DEFAULT_TRIAL,
    arms: tuple[str, ...] = DEFAULT_ARMS,
) -> tuple[list[RowProblem], int]:
    """Check a manifest for ingest into `store` without writing anything.

    Parameters
    ----------
    store : Store
        Open trial database (read only here).
    manifest_path : str or Path
        Manifest CSV.
    trial : str
        Trial the images would belong to (its arms apply when it exists).
    arms : tuple of str
        Arms allowed when the trial does not exist yet.

    Returns
    -------
    problems : list of RowProblem
        Every problem, in line order.
    n_rows : int
        Data rows in the manifest.
    """
    rows, problems, _ = _validate(store, Path(manifest_path), trial, tuple(arms))
    return problems, len(rows)


def _validate(
    store: Store, path: Path, trial_name: str, default_arms: tuple[str, ...]
) -> tuple[list[_Row], list[RowProblem], tuple[str, ...]]:
    rows = _read_rows(path)
    _check_files(rows)
    with store.session() as session:
        trial = session.scalar(select(Trial).where(Trial.name == trial_name))
        arms = tuple(trial.arms) if trial is not None else default_arms
        _check_against_database(rows, session, trial, arms)
    problems = [RowProblem(r.line, r.image, msg) for r in rows for msg in r.problems]
    return rows, problems, arms


def _write(
    store: Store,
    rows: list[_Row],
    trial_name: str,
    arms: tuple[str, ...],
    *,
    in_place: bool,
    manifest: Path,
) -> int:
    added = 0
    with store.begin() as session:
        trial = get_or_create_trial(session=session, name=trial_name, arms=arms)
        for row in rows:
            assert row.path is not None and row.sha256 is not None and row.day is not None
            assert row.um_per_px is not None
            subject = get_or_create_subject(session=session, trial_id=trial.id, code=row.subject)
            site = get_or_create_site(
                session=session, subject_id=subject.id, code=row.site, arm=row.arm
            )
            visit_id = get_or_create_visit(session=session, site_id=site.id, day=row.day)
            if in_place:
                storage, stored_path = "in_place", str(row.path.resolve())
            else:
                assert store.image_root is not None  # checked before validation
                storage = "store"
                stored_path = copy_into_store(
                    row.path, image_root=store.image_root, sha256=row.sha256
                )
            session.add(
                Image(
                    trial_id=trial.id,
                    visit_id=visit_id,
                    sha256=row.sha256,
                    storage=storage,
                    stored_path=stored_path,
                    source_path=str(row.path.resolve()),
                    n_bytes=row.n_bytes,
                    um_per_px=row.um_per_px,
                    kind=row.kind,
                    acquired_at=row.acquired_at,
                    device=row.device,
                    width=row.width,
                    height=row.height,
                )
            )
            added += 1
        session.flush()
        record_event(
            session=session,
            actor="ingest",
            action="ingest",
            entity="trial",
            entity_id=trial.id,
            detail={"manifest": str(manifest), "added": added, "in_place": in_place},
        )
    return added


def ingest_manifest(
    *,
    url_or_store: str | Store,
    manifest_path: str | Path,
    skip_bad: bool = False,
    in_place: bool = False,
    trial: str = DEFAULT_TRIAL,
    arms: tuple[str, ...] = DEFAULT_ARMS,
    image_root: str | Path | None = None,
) -> IngestReport:
    """Check a whole manifest, then store its images in one transaction.

    Parameters
    ----------
    url_or_store : str or Store
        Database URL (opened, migrated and closed here) or an open store.
    manifest_path : str or Path
        Manifest CSV (DESIGN.md columns; image paths relative to its folder).
    skip_bad : bool
        Store the good rows and skip the bad ones (still reported) instead of writing
        nothing.
    in_place : bool
        Reference the image files where they are instead of copying them into the
        content-addressed image store.
    trial : str
        Trial the images belong to (created when new).
    arms : tuple of str
        Arms allowed for a new trial; an existing trial's own arms apply otherwise.
    image_root : str or Path, optional
        Image store folder when `url_or_store` is a URL (default for SQLite:
        ``images/`` next to the database file).

    Returns
    -------
    IngestReport

    Raises
    ------
    IngestError
        If any row is bad and `skip_bad` is false; the message lists every bad row with
        its line number and nothing is written.
    InputError
        If the manifest is missing or lacks required columns, or the database cannot be
        opened.
    """
    path = Path(manifest_path)
    own = not isinstance(url_or_store, Store)
    store = (
        url_or_store
        if isinstance(url_or_store, Store)
        else open_store(url_or_store, image_root=image_root)
    )
    try:
        if not in_place and store.image_root is None:
            raise InputError(
                f"{store.describe()}: no image store folder for copies; pass image_root "
                "(required for PostgreSQL) or ingest with in_place=True"
            )
        rows, problems, allowed = _validate(store, path, trial, tuple(arms))
        bad = {p.line for p in problems}
        good = [r for r in rows if r.line not in bad]
        to_add = [r for r in good if not r.present]

        def report(added: int, written: bool) -> IngestReport:
            return IngestReport(
                manifest=path,
                database=store.describe(),
                trial=trial,
                n_rows=len(rows),
                added=added,
                already_present=sum(r.present for r in good),
                problems=tuple(problems),
                written=written,
                image_root=None if in_place else store.image_root,
            )

        if problems and not skip_bad:
            text = "\n  ".join(str(p) for p in problems)
            raise IngestError(
                f"{path}: {len(bad)} bad row(s), nothing written:\n  {text}", report(0, False)
            )
        if not to_add:
            return report(0, False)
        try:
            added = _write(store, to_add, trial, allowed, in_place=in_place, manifest=path)
        except IntegrityError as exc:
            raise InputError(
                f"{path}: the database changed while ingesting (another ingest at the same "
                f"time?); nothing was written, run the ingest again ({exc.orig})"
            ) from None
        log.info("ingested %d image(s) from %s", added, path)
        return report(added, True)
    finally:
        if own:
            store.close()
