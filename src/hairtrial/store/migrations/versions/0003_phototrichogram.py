"""Phototrichogram results: growth of a clipped image's hairs in its re-image.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 17:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "phototrichogram",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("regrowth_image_id", sa.Integer(), nullable=False),
        sa.Column("clipped_image_id", sa.Integer(), nullable=False),
        sa.Column("regrowth_run_id", sa.Integer(), nullable=False),
        sa.Column("clipped_run_id", sa.Integer(), nullable=False),
        sa.Column("package_version", sa.String(length=64), nullable=False),
        sa.Column("config_hash", sa.String(length=64), nullable=False),
        sa.Column("days", sa.Float(), nullable=False),
        sa.Column("registered", sa.Boolean(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("n_anagen", sa.Integer(), nullable=False),
        sa.Column("n_telogen", sa.Integer(), nullable=False),
        sa.Column("n_lost", sa.Integer(), nullable=False),
        sa.Column("n_undetermined", sa.Integer(), nullable=False),
        sa.Column("anagen_fraction", sa.Float(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("days > 0", name=op.f("ck_phototrichogram_days_positive")),
        sa.ForeignKeyConstraint(
            ["clipped_image_id"],
            ["image.id"],
            name=op.f("fk_phototrichogram_clipped_image_id_image"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["clipped_run_id"],
            ["measurement_run.id"],
            name=op.f("fk_phototrichogram_clipped_run_id_measurement_run"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["regrowth_image_id"],
            ["image.id"],
            name=op.f("fk_phototrichogram_regrowth_image_id_image"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["regrowth_run_id"],
            ["measurement_run.id"],
            name=op.f("fk_phototrichogram_regrowth_run_id_measurement_run"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_phototrichogram")),
        sa.UniqueConstraint(
            "regrowth_image_id",
            "package_version",
            "config_hash",
            name=op.f("uq_phototrichogram_regrowth_image_id_package_version_config_hash"),
        ),
    )
    with op.batch_alter_table("phototrichogram", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_phototrichogram_clipped_image_id"), ["clipped_image_id"], unique=False
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("phototrichogram", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_phototrichogram_clipped_image_id"))
    op.drop_table("phototrichogram")
