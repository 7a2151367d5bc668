"""The trial database schema: SQLAlchemy 2 typed ORM models.

The schema is created and changed only by the Alembic migrations in
``hairtrial/store/migrations``; a test checks that the migrations produce exactly this
metadata on SQLite and PostgreSQL. Every timestamp is stored as UTC with a time zone
(:class:`UTCDateTime` restores the zone on SQLite, which stores none). Lengths are in µm,
areas in cm², pixel coordinates (x, y) from the top-left pixel's corner.

The site's ``arm`` is sensitive (assessor-blinded trial): it lives in the ``site`` row but
no public dataclass of :mod:`hairtrial.store` carries it by default.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

#: Run states of a measurement run.
RUN_STATUSES = ("pending", "running", "done", "failed")
#: Where an image file lives: copied into the content-addressed store, or left in place.
STORAGE_KINDS = ("store", "in_place")
#: Roles of web-app users: admin (users, trials, unblinding), investigator (sees arms),
#: assessor (blinded: never receives arm labels or visit dates), monitor (read-only, audit).
USER_ROLES = ("admin", "investigator", "assessor", "monitor")
#: Roles that may see a site's arm and the visit dates.
UNBLINDED_ROLES = ("admin", "investigator")
#: States of a review revision: a draft is work in progress, an approved one counts.
REVISION_STATUSES = ("draft", "approved")
CORRECTION_ACTIONS = ("add", "delete", "edit")
#: ``prev_hash`` of the first audit event of a chain.
GENESIS_HASH = "0" * 64

# A 64-bit key on PostgreSQL; SQLite needs INTEGER for its rowid alias (autoincrement).
BigId = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    """Return the current time in UTC, time-zone aware."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A time-zone aware UTC timestamp on every backend.

    Values are converted to UTC before storing; naive values are refused, so a local
    time can never be stored as if it were UTC. SQLite stores no zone, so results get
    UTC attached on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        """Convert an aware datetime to UTC (naive SQLite storage without offset)."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"timestamp {value!r} has no time zone; pass an aware datetime")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        """Return the stored value as an aware UTC datetime."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    """Declarative base with a naming convention, so constraint names are stable."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dt.datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


class Trial(Base):
    """A clinical trial; `arms` lists the arm labels its sites may carry."""

    __tablename__ = "trial"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    arms: Mapped[list[str]] = mapped_column(JSON)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Subject(Base):
    """A trial participant, known only by a pseudonymised code."""

    __tablename__ = "subject"
    __table_args__ = (UniqueConstraint("trial_id", "code"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trial.id", ondelete="RESTRICT"))
    code: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Site(Base):
    """A marked recipient area of one subject; `arm` is sensitive (blinding)."""

    __tablename__ = "site"
    __table_args__ = (
        UniqueConstraint("subject_id", "code"),
        CheckConstraint("area_cm2 IS NULL OR area_cm2 > 0", name="area_positive"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subject.id", ondelete="RESTRICT"))
    code: Mapped[str] = mapped_column(String(100))
    location: Mapped[str | None] = mapped_column(String(200))
    area_cm2: Mapped[float | None] = mapped_column(Float)
    arm: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Visit(Base):
    """One visit of a site, `day` days after the site's first treatment (baseline 0)."""

    __tablename__ = "visit"
    __table_args__ = (UniqueConstraint("site_id", "day"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="RESTRICT"))
    day: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Image(Base):
    """One trichoscopy image file, identified by its SHA-256 content hash within a trial."""

    __tablename__ = "image"
    __table_args__ = (
        UniqueConstraint("trial_id", "sha256"),
        Index(None, "visit_id"),
        CheckConstraint("um_per_px > 0", name="um_per_px_positive"),
        CheckConstraint(_in("storage", STORAGE_KINDS), name="storage_kind"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trial.id", ondelete="RESTRICT"))
    visit_id: Mapped[int] = mapped_column(ForeignKey("visit.id", ondelete="RESTRICT"))
    sha256: Mapped[str] = mapped_column(String(64))
    storage: Mapped[str] = mapped_column(String(16))
    stored_path: Mapped[str] = mapped_column(Text)
    source_path: Mapped[str] = mapped_column(Text)
    n_bytes: Mapped[int] = mapped_column(BigInteger)
    um_per_px: Mapped[float] = mapped_column(Float)
    kind: Mapped[str | None] = mapped_column(String(32))
    acquired_at: Mapped[dt.datetime | None]
    device: Mapped[str | None] = mapped_column(String(200))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class MeasurementRun(Base):
    """One measurement of one image by one package version and parameter set.

    A run goes pending → running (claimed under a lease) → done or failed. Failed runs
    stay as history; a retry is a new run. At most one done run and at most one open
    (pending or running) run exist per image × version × config hash.
    """

    __tablename__ = "measurement_run"
    __table_args__ = (
        CheckConstraint(_in("status", RUN_STATUSES), name="status"),
        Index(
            "uq_measurement_run_done",
            "image_id",
            "package_version",
            "config_hash",
            unique=True,
            sqlite_where=text("status = 'done'"),
            postgresql_where=text("status = 'done'"),
        ),
        Index(
            "uq_measurement_run_open",
            "image_id",
            "package_version",
            "config_hash",
            unique=True,
            sqlite_where=text("status IN ('pending', 'running')"),
            postgresql_where=text("status IN ('pending', 'running')"),
        ),
        Index(None, "status", "lease_expires_at"),
        Index(None, "image_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="RESTRICT"))
    package_version: Mapped[str] = mapped_column(String(64))
    config_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    timings: Mapped[dict[str, Any] | None]
    summary: Mapped[dict[str, Any] | None]
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[dt.datetime | None]


class Hair(Base):
    """One hair of one run: the DESIGN.md hair record (pixel coordinates, µm sizes)."""

    __tablename__ = "hair"
    __table_args__ = (
        UniqueConstraint("run_id", "hair_id"),
        CheckConstraint("diameter_um >= 0", name="diameter_nonnegative"),
        CheckConstraint("confidence >= 0 AND confidence <= 1", name="confidence_range"),
        CheckConstraint(
            "exit_confidence >= 0 AND exit_confidence <= 1", name="exit_confidence_range"
        ),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("measurement_run.id", ondelete="RESTRICT"))
    hair_id: Mapped[int] = mapped_column(Integer)
    exit_x_px: Mapped[float | None] = mapped_column(Float)
    exit_y_px: Mapped[float | None] = mapped_column(Float)
    tip_x_px: Mapped[float] = mapped_column(Float)
    tip_y_px: Mapped[float] = mapped_column(Float)
    centerline_px: Mapped[list[list[float]]] = mapped_column(JSON)
    diameter_um: Mapped[float] = mapped_column(Float)
    length_um: Mapped[float] = mapped_column(Float)
    hair_class: Mapped[str] = mapped_column(String(16))
    confidence: Mapped[float] = mapped_column(Float)
    #: How sure the measurement is that `exit` is the exit end (0.5–1); NULL when the
    #: hair carries none (stored before revision 0004, imported truth).
    exit_confidence: Mapped[float | None] = mapped_column(Float)
    extra: Mapped[dict[str, Any] | None]


class Follicle(Base):
    """A follicle followed across the visits of one site by one tracking run."""

    __tablename__ = "follicle"
    __table_args__ = (UniqueConstraint("site_id", "package_version", "config_hash", "label"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="RESTRICT"))
    package_version: Mapped[str] = mapped_column(String(64))
    config_hash: Mapped[str] = mapped_column(String(64))
    label: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class FollicleObservation(Base):
    """A follicle seen (or found empty) in one image; position in µm in the site frame."""

    __tablename__ = "follicle_observation"
    __table_args__ = (UniqueConstraint("follicle_id", "image_id"), Index(None, "image_id"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    follicle_id: Mapped[int] = mapped_column(ForeignKey("follicle.id", ondelete="RESTRICT"))
    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="RESTRICT"))
    hair_pk: Mapped[int | None] = mapped_column(ForeignKey("hair.id", ondelete="RESTRICT"))
    x_um: Mapped[float] = mapped_column(Float)
    y_um: Mapped[float] = mapped_column(Float)
    present: Mapped[bool] = mapped_column(Boolean)
    diameter_um: Mapped[float | None] = mapped_column(Float)
    length_um: Mapped[float | None] = mapped_column(Float)
    phase: Mapped[str | None] = mapped_column(String(16))


class Phototrichogram(Base):
    """Growth of a clipped image's hairs, seen again in a re-image days later.

    One row per re-image (kind ``clipped-regrowth``) × package version × key (the
    measurement config and phototrichogram parameters), from the two images' done runs.
    ``result`` holds :meth:`hairtrial.track.phototrichogram.PhototrichogramResult.to_json`
    (registration, per-hair growth in µm/day, phase and cut end).
    """

    __tablename__ = "phototrichogram"
    __table_args__ = (
        UniqueConstraint("regrowth_image_id", "package_version", "config_hash"),
        Index(None, "clipped_image_id"),
        CheckConstraint("days > 0", name="days_positive"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    regrowth_image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="RESTRICT"))
    clipped_image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="RESTRICT"))
    regrowth_run_id: Mapped[int] = mapped_column(
        ForeignKey("measurement_run.id", ondelete="RESTRICT")
    )
    clipped_run_id: Mapped[int] = mapped_column(
        ForeignKey("measurement_run.id", ondelete="RESTRICT")
    )
    package_version: Mapped[str] = mapped_column(String(64))
    config_hash: Mapped[str] = mapped_column(String(64))
    days: Mapped[float] = mapped_column(Float)
    registered: Mapped[bool] = mapped_column(Boolean)
    score: Mapped[float] = mapped_column(Float)
    method: Mapped[str] = mapped_column(String(16))
    n_anagen: Mapped[int] = mapped_column(Integer)
    n_telogen: Mapped[int] = mapped_column(Integer)
    n_lost: Mapped[int] = mapped_column(Integer)
    n_undetermined: Mapped[int] = mapped_column(Integer)
    anagen_fraction: Mapped[float | None] = mapped_column(Float)
    result: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class User(Base):
    """A web-app user; only ``admin`` and ``investigator`` may see the arm."""

    __tablename__ = "user_account"
    __table_args__ = (CheckConstraint(_in("role", USER_ROLES), name="role"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str | None] = mapped_column(String(300))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Review(Base):
    """One revision of an image's hair set by one reviewer.

    The automatic run's hairs (``hair`` rows) are never modified: a correction is a new
    revision holding the full corrected hair list (DESIGN.md JSON form) and its endpoints,
    based on the run and on an earlier revision (``base_revision_id``), if any. A draft
    is work in progress; endpoints use the latest approved revision of each image.
    """

    __tablename__ = "review"
    __table_args__ = (
        CheckConstraint(_in("status", REVISION_STATUSES), name="status"),
        CheckConstraint("NOT unusable OR unusable_reason IS NOT NULL", name="unusable_reason"),
        Index(None, "image_id", "status"),
        Index(None, "author_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="RESTRICT"))
    run_id: Mapped[int] = mapped_column(ForeignKey("measurement_run.id", ondelete="RESTRICT"))
    base_revision_id: Mapped[int | None] = mapped_column(
        ForeignKey("review.id", ondelete="RESTRICT")
    )
    author_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="RESTRICT"))
    status: Mapped[str] = mapped_column(String(16))
    unusable: Mapped[bool] = mapped_column(Boolean, default=False)
    unusable_reason: Mapped[str | None] = mapped_column(Text)
    comment: Mapped[str | None] = mapped_column(Text)
    hairs: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    summary: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Correction(Base):
    """One hair changed by a revision against its base (the diff, for the history)."""

    __tablename__ = "correction"
    __table_args__ = (
        CheckConstraint(_in("action", CORRECTION_ACTIONS), name="action"),
        Index(None, "review_id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("review.id", ondelete="RESTRICT"))
    hair_id: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(16))
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]


class AuditEvent(Base):
    """An append-only record of who did what to which entity, and when (UTC).

    Each event carries the SHA-256 ``hash`` of its canonical JSON, which includes the
    previous event's hash (``prev_hash``), so editing, deleting or reordering an event
    breaks the chain (:func:`hairtrial.store.audit.verify_audit_chain`). On PostgreSQL a
    trigger refuses UPDATE and DELETE on this table.
    """

    __tablename__ = "audit_event"
    __table_args__ = (Index(None, "entity", "entity_id"), Index(None, "at"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="RESTRICT"))
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any] | None]
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)
