"""Review revisions, user roles and the hash-chained, append-only audit trail.

- ``user_account.role``: admin, investigator, assessor, monitor.
- ``review`` becomes one revision of an image's hair set (full hair list, endpoints,
  status draft/approved, flag unusable with reason); ``correction`` holds each revision's
  per-hair diff. Both tables had no data functions before this revision and are rebuilt.
- ``audit_event`` gains ``before``, ``after``, ``prev_hash`` and ``hash``; existing events
  are chained in id order. On PostgreSQL a trigger refuses UPDATE and DELETE on it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 13:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_ROLES = "role IN ('admin', 'assessor', 'monitor', 'statistician', 'unblinded')"
_NEW_ROLES = "role IN ('admin', 'investigator', 'assessor', 'monitor')"
_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_TRIGGER_SQL = """
CREATE FUNCTION audit_event_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_event is append-only: % refused', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_event_append_only
    BEFORE UPDATE OR DELETE ON audit_event
    FOR EACH ROW EXECUTE FUNCTION audit_event_append_only();
CREATE TRIGGER audit_event_no_truncate
    BEFORE TRUNCATE ON audit_event
    FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only();
"""


def _create_review_tables() -> None:
    op.create_table(
        "review",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("base_revision_id", sa.Integer(), nullable=True),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("unusable", sa.Boolean(), nullable=False),
        sa.Column("unusable_reason", sa.Text(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("hairs", sa.JSON(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('draft', 'approved')", name=op.f("ck_review_status")),
        sa.CheckConstraint(
            "NOT unusable OR unusable_reason IS NOT NULL", name=op.f("ck_review_unusable_reason")
        ),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["user_account.id"],
            name=op.f("fk_review_author_id_user_account"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["base_revision_id"],
            ["review.id"],
            name=op.f("fk_review_base_revision_id_review"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["image_id"], ["image.id"], name=op.f("fk_review_image_id_image"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["measurement_run.id"],
            name=op.f("fk_review_run_id_measurement_run"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review")),
    )
    with op.batch_alter_table("review", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_review_author_id"), ["author_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_review_image_id_status"), ["image_id", "status"], unique=False
        )
    op.create_table(
        "correction",
        sa.Column("id", _BigId, nullable=False),
        sa.Column("review_id", sa.Integer(), nullable=False),
        sa.Column("hair_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.CheckConstraint(
            "action IN ('add', 'delete', 'edit')", name=op.f("ck_correction_action")
        ),
        sa.ForeignKeyConstraint(
            ["review_id"],
            ["review.id"],
            name=op.f("fk_correction_review_id_review"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_correction")),
    )
    with op.batch_alter_table("correction", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_correction_review_id"), ["review_id"], unique=False)


def _chain_existing_events() -> None:
    from hairtrial.store.audit import event_hash
    from hairtrial.store.models import GENESIS_HASH, UTCDateTime

    events = sa.table(
        "audit_event",
        sa.column("id", sa.Integer()),
        sa.column("at", UTCDateTime()),
        sa.column("user_id", sa.Integer()),
        sa.column("actor", sa.String()),
        sa.column("action", sa.String()),
        sa.column("entity", sa.String()),
        sa.column("entity_id", sa.String()),
        sa.column("detail", sa.JSON()),
        sa.column("prev_hash", sa.String()),
        sa.column("hash", sa.String()),
    )
    bind = op.get_bind()
    prev = GENESIS_HASH
    for row in bind.execute(sa.select(events).order_by(events.c.id)).mappings().all():
        fields = {k: row[k] for k in ("id", "at", "user_id", "actor", "action", "entity")}
        fields.update(entity_id=row["entity_id"], detail=row["detail"], before=None, after=None)
        digest = event_hash(**fields, prev_hash=prev)
        # The one rewrite of audit rows ever made: chaining events written before 0002.
        bind.execute(
            events.update().where(events.c.id == row["id"]).values(prev_hash=prev, hash=digest)
        )
        prev = digest


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_user_account_role"), type_="check")
        batch_op.create_check_constraint(op.f("ck_user_account_role"), _NEW_ROLES)

    with op.batch_alter_table("correction", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_correction_run_id"))
    op.drop_table("correction")
    with op.batch_alter_table("review", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_run_id"))
    op.drop_table("review")
    _create_review_tables()

    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("before", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("after", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
    _chain_existing_events()
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_audit_event_prev_hash"), ["prev_hash"])
        batch_op.create_unique_constraint(batch_op.f("uq_audit_event_hash"), ["hash"])

    if op.get_bind().dialect.name == "postgresql":
        op.execute(_TRIGGER_SQL)


def downgrade() -> None:
    """Revert this revision (the audit trigger and chain columns are dropped)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_event")
        op.execute("DROP TRIGGER IF EXISTS audit_event_append_only ON audit_event")
        op.execute("DROP FUNCTION IF EXISTS audit_event_append_only()")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_audit_event_hash"), type_="unique")
        batch_op.drop_constraint(batch_op.f("uq_audit_event_prev_hash"), type_="unique")
        batch_op.drop_column("hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("after")
        batch_op.drop_column("before")
    with op.batch_alter_table("correction", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_correction_review_id"))
    op.drop_table("correction")
    with op.batch_alter_table("review", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_image_id_status"))
        batch_op.drop_index(batch_op.f("ix_review_author_id"))
    op.drop_table("review")
    op.create_table(
        "review",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("reviewer_id", sa.Integer(), nullable=False),
        sa.Column("verdict", sa.String(length=32), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "verdict IN ('approved', 'rejected', 'needs_correction')",
            name=op.f("ck_review_verdict"),
        ),
        sa.ForeignKeyConstraint(
            ["reviewer_id"],
            ["user_account.id"],
            name=op.f("fk_review_reviewer_id_user_account"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["measurement_run.id"],
            name=op.f("fk_review_run_id_measurement_run"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review")),
    )
    with op.batch_alter_table("review", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_review_run_id"), ["run_id"], unique=False)
    op.create_table(
        "correction",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("review_id", sa.Integer(), nullable=True),
        sa.Column("hair_pk", _BigId, nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "action IN ('add', 'delete', 'edit')", name=op.f("ck_correction_action")
        ),
        sa.ForeignKeyConstraint(
            ["hair_pk"], ["hair.id"], name=op.f("fk_correction_hair_pk_hair"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["review_id"],
            ["review.id"],
            name=op.f("fk_correction_review_id_review"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["measurement_run.id"],
            name=op.f("fk_correction_run_id_measurement_run"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_correction_user_id_user_account"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_correction")),
    )
    with op.batch_alter_table("correction", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_correction_run_id"), ["run_id"], unique=False)
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_user_account_role"), type_="check")
        batch_op.create_check_constraint(op.f("ck_user_account_role"), _OLD_ROLES)
