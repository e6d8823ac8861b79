"""Create users, posts, tags, post_tags and accounts.

The guide's schema with its gaps filled: users get ``role`` (CHECKed against the known roles) and
``last_login``, every timestamp is timestamptz, accounts keep money in NUMERIC(12, 2) with a
non-negative CHECK, and deleting a post or user cascades to the rows that depend on it.

Revision ID: bcdb6a14a975
Revises:
Create Date: 2026-11-25 19:48:57.396568
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "bcdb6a14a975"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the five tables and their indexes."""
    op.create_table(
        "tags",
        sa.Column("id", sa.Integer(), nullable=False, comment="surrogate key"),
        sa.Column("name", sa.String(length=50), nullable=False, comment="lower-case label, unique"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tags")),
        sa.UniqueConstraint("name", name=op.f("uq_tags_name")),
        comment="post labels",
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False, comment="surrogate key"),
        sa.Column("email", sa.String(length=255), nullable=False, comment="login address, unique"),
        sa.Column(
            "username", sa.String(length=50), nullable=False, comment="public handle, unique"
        ),
        sa.Column(
            "full_name", sa.String(length=100), nullable=True, comment="display name, optional"
        ),
        sa.Column(
            "hashed_password",
            sa.String(length=255),
            nullable=False,
            comment="argon2 hash (pwdlib); the plain password is never stored",
        ),
        sa.Column(
            "is_active",
            sa.Boolean(),
            server_default=sa.text("true"),
            nullable=False,
            comment="false once deactivated",
        ),
        sa.Column(
            "role",
            sa.String(length=20),
            server_default="reader",
            nullable=False,
            comment="reader, author, editor or admin",
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
            comment="when the account was created (UTC)",
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="last change through the ORM (UTC)",
        ),
        sa.Column(
            "last_login",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="last successful login (UTC)",
        ),
        sa.CheckConstraint(
            "role IN ('reader', 'author', 'editor', 'admin')", name=op.f("ck_users_role_known")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        comment="registered users",
    )
    op.create_index(
        "idx_user_created", "users", ["created_at"], unique=False, postgresql_using="btree"
    )
    op.create_index("idx_user_email_username", "users", ["email", "username"], unique=False)
    op.create_index(op.f("ix_users_email"), "users", ["email"], unique=True)
    op.create_index(op.f("ix_users_username"), "users", ["username"], unique=True)
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), nullable=False, comment="surrogate key"),
        sa.Column("owner_id", sa.Integer(), nullable=False, comment="the owning user"),
        sa.Column(
            "balance",
            sa.Numeric(precision=12, scale=2),
            server_default=sa.text("0"),
            nullable=False,
            comment="exact amount, never negative",
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
            comment="when the account was opened (UTC)",
        ),
        sa.CheckConstraint("balance >= 0", name=op.f("ck_accounts_balance_not_negative")),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_accounts_owner_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        comment="money accounts; balances in exact decimal",
    )
    op.create_index(op.f("ix_accounts_owner_id"), "accounts", ["owner_id"], unique=False)
    op.create_table(
        "posts",
        sa.Column("id", sa.Integer(), nullable=False, comment="surrogate key"),
        sa.Column(
            "title", sa.String(length=255), nullable=False, comment="headline, 1 to 255 characters"
        ),
        sa.Column(
            "content", sa.Text(), nullable=True, comment="body text; null for an empty draft"
        ),
        sa.Column("author_id", sa.Integer(), nullable=False, comment="the writing user"),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
            comment="when the post was written (UTC)",
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="last change through the ORM (UTC)",
        ),
        sa.Column(
            "published_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="when it went public (UTC); null for drafts",
        ),
        sa.Column(
            "views", sa.Integer(), nullable=True, comment="page views; null where not tracked"
        ),
        sa.CheckConstraint("views >= 0", name=op.f("ck_posts_views_not_negative")),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_posts_author_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_posts")),
        comment="blog posts",
    )
    op.create_index("idx_post_created_id", "posts", ["created_at", "id"], unique=False)
    op.create_index(op.f("ix_posts_author_id"), "posts", ["author_id"], unique=False)
    op.create_table(
        "post_tags",
        sa.Column(
            "post_id",
            sa.Integer(),
            nullable=False,
            comment="the tagged post; the row goes when the post goes",
        ),
        sa.Column(
            "tag_id",
            sa.Integer(),
            nullable=False,
            comment="the tag; the row goes when the tag goes",
        ),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name=op.f("fk_post_tags_post_id_posts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tag_id"], ["tags.id"], name=op.f("fk_post_tags_tag_id_tags"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("post_id", "tag_id", name=op.f("pk_post_tags")),
        comment="which tags each post carries (many-to-many)",
    )
    op.create_index(op.f("ix_post_tags_tag_id"), "post_tags", ["tag_id"], unique=False)


def downgrade() -> None:
    """Drop everything, dependants first."""
    op.drop_index(op.f("ix_post_tags_tag_id"), table_name="post_tags")
    op.drop_table("post_tags")
    op.drop_index(op.f("ix_posts_author_id"), table_name="posts")
    op.drop_index("idx_post_created_id", table_name="posts")
    op.drop_table("posts")
    op.drop_index(op.f("ix_accounts_owner_id"), table_name="accounts")
    op.drop_table("accounts")
    op.drop_index(op.f("ix_users_username"), table_name="users")
    op.drop_index(op.f("ix_users_email"), table_name="users")
    op.drop_index("idx_user_email_username", table_name="users")
    op.drop_index("idx_user_created", table_name="users", postgresql_using="btree")
    op.drop_table("users")
    op.drop_table("tags")
