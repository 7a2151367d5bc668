"""What the web API accepts and returns: Base/Create/Update/Public schemas per resource.

Routes never return ORM rows. Blinded roles get :class:`ImageBlinded`, which has no arm,
visit-day or subject-code field at all, so they cannot receive them by accident; only
admin and investigator get :class:`ImageUnblinded`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: Largest row id accepted from a client (a 63-bit database integer).
DB_ID_MAX = 2**62

HairClass = Literal["vellus", "intermediate", "terminal"]
Point = tuple[float, float]


class HairBase(BaseModel):
    """One hair in DESIGN.md JSON form: pixel coordinates, µm sizes."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    id: int = Field(ge=0, le=10_000_000)
    exit_px: Point | None = None
    tip_px: Point
    centerline_px: list[Point] = Field(min_length=1, max_length=2000)
    diameter_um: float = Field(ge=0, le=1000, allow_inf_nan=False)
    length_um: float = Field(ge=0, le=1e6, allow_inf_nan=False)
    hair_class: HairClass = Field(alias="class")
    confidence: float = Field(default=1.0, ge=0, le=1)
    #: How sure the measurement is of the exit end; none once a reviewer has placed it.
    exit_confidence: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)

    def to_record(self) -> dict[str, Any]:
        """Return the DESIGN.md JSON dict (``class`` key; no ``exit_confidence`` if none)."""
        record = self.model_dump(by_alias=True)
        if record["exit_confidence"] is None:
            del record["exit_confidence"]
        return record


class RevisionCreate(BaseModel):
    """A new revision of an image's hair set."""

    model_config = ConfigDict(extra="forbid")

    hairs: list[HairBase] = Field(max_length=5000)
    status: Literal["draft", "approved"] = "draft"
    base_revision_id: int | None = Field(default=None, ge=1, le=DB_ID_MAX)
    unusable: bool = False
    unusable_reason: str | None = Field(default=None, max_length=2000)
    comment: str | None = Field(default=None, max_length=5000)


class RevisionPublic(BaseModel):
    """A stored revision (no arm, no visit day)."""

    id: int
    image_id: int
    run_id: int
    base_revision_id: int | None
    author: str
    status: str
    unusable: bool
    unusable_reason: str | None
    comment: str | None
    summary: dict[str, Any]
    created_at: dt.datetime
    n_added: int
    n_deleted: int
    n_edited: int


class ImageBlinded(BaseModel):
    """An image for review as every role may see it."""

    image_id: int
    subject: str
    width: int
    height: int
    um_per_px: float
    area_cm2: float
    status: str
    auto_summary: dict[str, Any]


class ImageUnblinded(ImageBlinded):
    """An image for unblinded roles: adds subject code, site, arm and visit day."""

    subject_code: str
    site: str
    arm: str
    visit_day: int


class ReviewState(BaseModel):
    """What the review page loads: the image, the hairs to edit and where they came from."""

    image: ImageBlinded | ImageUnblinded
    hairs: list[dict[str, Any]]
    source: Literal["automatic", "revision"]
    revision_id: int | None


class ProgressPublic(BaseModel):
    """Dashboard counts."""

    ingested: int
    measured: int
    reviewed: int
    flagged: int
    failed: int


class AgreementPublic(BaseModel):
    """Agreement of two sets of per-image values (ICC(2,1))."""

    n: int
    mean_difference: float | None
    mean_abs_percent: float | None
    icc: float | None


class AgreementReport(BaseModel):
    """Automatic vs corrected, and between assessors."""

    metric: str
    automatic_vs_corrected: AgreementPublic
    between_assessors: AgreementPublic


class AuditEventPublic(BaseModel):
    """One audit event."""

    id: int
    at: dt.datetime
    user_id: int | None
    actor: str
    action: str
    entity: str
    entity_id: str | None
    detail: dict[str, Any] | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    prev_hash: str
    hash: str


class ChainPublic(BaseModel):
    """Result of verifying the audit chain."""

    ok: bool
    n_events: int
    head_hash: str
    broken_id: int | None
    problem: str | None


class UserBase(BaseModel):
    """Fields shared by the user schemas."""

    username: str = Field(min_length=1, max_length=100, pattern=r"^\S+$")
    display_name: str | None = Field(default=None, max_length=200)
    role: Literal["admin", "investigator", "assessor", "monitor"]


class UserCreate(UserBase):
    """A new user, with the password (only its hash is stored)."""

    password: str = Field(min_length=10, max_length=1000)


class UserPublic(UserBase):
    """A user as returned (never the password hash)."""

    id: int
    active: bool
    created_at: dt.datetime


class UnblindRequest(BaseModel):
    """Unblinding one image's arm (admin only), with the reason recorded."""

    model_config = ConfigDict(extra="forbid")

    image_id: int = Field(ge=1, le=DB_ID_MAX)
    reason: str = Field(min_length=3, max_length=2000)


class UnblindPublic(BaseModel):
    """The unblinded arm of one image."""

    image_id: int
    subject_code: str
    site: str
    arm: str
    visit_day: int
