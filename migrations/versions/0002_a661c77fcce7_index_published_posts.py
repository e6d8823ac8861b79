"""Index published posts by publication time.

Analysts group and filter posts by ``published_at`` (posts per month, recent activity); drafts
have no publication time, so a partial index over published posts only is smaller and enough.
Data-only safe: upgrade and downgrade keep every row.

Revision ID: a661c77fcce7
Revises: bcdb6a14a975
Create Date: 2026-11-25 19:52:10.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a661c77fcce7"
down_revision: str | Sequence[str] | None = "bcdb6a14a975"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the partial index on posts.published_at."""
    op.create_index(
        "idx_post_published",
        "posts",
        ["published_at"],
        unique=False,
        postgresql_where=sa.text("published_at IS NOT NULL"),
    )


def downgrade() -> None:
    """Drop the index; rows are untouched."""
    op.drop_index(
        "idx_post_published",
        table_name="posts",
        postgresql_where=sa.text("published_at IS NOT NULL"),
    )
