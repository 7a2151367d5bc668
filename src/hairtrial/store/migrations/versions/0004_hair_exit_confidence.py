"""Each stored hair keeps how sure the measurement is of its exit end.

Adds the nullable column ``hair.exit_confidence`` (0.5–1 from ``hairtrial measure``; NULL
for rows stored before this revision and for hairs that carry none, such as imported
truth). The column is added in place on both backends (``ALTER TABLE … ADD COLUMN`` with
its check), so no hair row is copied: on SQLite a rebuilt ``hair`` table would have to be
dropped under the follicle observations that refer to it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 15:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.execute(
        "ALTER TABLE hair ADD COLUMN exit_confidence FLOAT "
        "CONSTRAINT ck_hair_exit_confidence_range "
        "CHECK (exit_confidence >= 0 AND exit_confidence <= 1)"
    )


def downgrade() -> None:
    """Revert this revision."""
    op.execute("ALTER TABLE hair DROP COLUMN exit_confidence")
