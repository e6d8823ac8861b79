"""The blog's tables as typed SQLAlchemy 2.x declarative models.

Fixes over the guide: ``role`` and ``last_login`` exist (the guide queries both but never defines
them), every timestamp is ``timestamptz``, money is ``Numeric(12, 2)`` with a CHECK (not negative,
not NaN) instead of a float, and relationships say how they load: ``User.posts`` is ``selectin``
as in the guide, every other relationship is ``raise``, so a forgotten eager load fails loudly
instead of doing hidden IO.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Literal, get_args

from sqlalchemy import (
    CheckConstraint,
    Column,
    Computed,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    func,
    inspect,
    text,
)
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "ROLES",
    "USER_COLUMNS",
    "Account",
    "Base",
    "Post",
    "Role",
    "Tag",
    "User",
    "post_tags",
]

#: The roles a user can have, least privileged first (the one list: schemas and the CHECK use it).
Role = Literal["reader", "author", "editor", "admin"]
ROLES: tuple[str, ...] = get_args(Role)
_ROLE_WORDS = f"{', '.join(ROLES[:-1])} or {ROLES[-1]}"

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(AsyncAttrs, DeclarativeBase):
    """Declarative base: stable constraint names, and a repr that only shows safe columns."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: DateTime(timezone=True)}

    #: Columns shown by ``repr``; secrets are never listed.
    __repr_attrs__: ClassVar[tuple[str, ...]] = ("id",)

    def __repr__(self) -> str:
        state = inspect(self)
        shown = []
        for name in self.__repr_attrs__:
            # Never trigger a load from repr: unloaded or expired attributes show as "...".
            value = "..." if name in state.unloaded else repr(getattr(self, name))
            shown.append(f"{name}={value}")
        return f"{type(self).__name__}({', '.join(shown)})"


post_tags = Table(
    "post_tags",
    Base.metadata,
    Column(
        "post_id",
        ForeignKey("posts.id", ondelete="CASCADE"),
        primary_key=True,
        comment="the tagged post; the row goes when the post goes",
    ),
    Column(
        "tag_id",
        ForeignKey("tags.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
        comment="the tag; the row goes when the tag goes",
    ),
    comment="which tags each post carries (many-to-many)",
)


class User(Base):
    """A registered user: reader, author, editor or admin."""

    __tablename__ = "users"
    __repr_attrs__ = ("id", "username", "email", "role", "is_active")
    __table_args__ = (
        CheckConstraint(f"role IN ({', '.join(repr(r) for r in ROLES)})", name="role_known"),
        Index("idx_user_created", "created_at", postgresql_using="btree"),
        Index("idx_user_email_username", "email", "username"),
        {"comment": "registered users"},
    )

    id: Mapped[int] = mapped_column(primary_key=True, comment="surrogate key")
    email: Mapped[str] = mapped_column(
        String(255), unique=True, index=True, comment="login address, unique"
    )
    username: Mapped[str] = mapped_column(
        String(50), unique=True, index=True, comment="public handle, unique"
    )
    full_name: Mapped[str | None] = mapped_column(String(100), comment="display name, optional")
    hashed_password: Mapped[str] = mapped_column(
        String(255), comment="argon2 hash (pwdlib); the plain password is never stored"
    )
    is_active: Mapped[bool] = mapped_column(
        default=True, server_default=text("true"), comment="false once deactivated"
    )
    role: Mapped[str] = mapped_column(
        String(20),
        default=ROLES[0],
        server_default=ROLES[0],
        comment=_ROLE_WORDS,
    )
    created_at: Mapped[datetime] = mapped_column(
        server_default=func.now(), comment="when the account was created (UTC)"
    )
    updated_at: Mapped[datetime | None] = mapped_column(
        onupdate=func.now(), comment="last change through the ORM (UTC)"
    )
    last_login: Mapped[datetime | None] = mapped_column(comment="last successful login (UTC)")

    posts: Mapped[list[Post]] = relationship(
        back_populates="author", lazy="selectin", passive_deletes=True
    )
    accounts: Mapped[list[Account]] = relationship(
        back_populates="owner", lazy="raise", passive_deletes=True
    )


#: Every ``users`` column, in table order: the one user column list (seed writes them all,
#: ``blogdata.bulk`` rows may set all but ``id``).
USER_COLUMNS: tuple[str, ...] = tuple(User.__table__.columns.keys())


class Post(Base):
    """A blog post written by a user; a draft until it has ``published_at``."""

    __tablename__ = "posts"
    __repr_attrs__ = ("id", "title", "author_id")
    __table_args__ = (
        # author_id rides along so "who wrote in this window" reads the index alone.
        Index("idx_post_created_id", "created_at", "id", postgresql_include=["author_id"]),
        # Per-author summaries (count, first/last post, mean length) read this index alone.
        Index(
            "ix_posts_author_created",
            "author_id",
            "created_at",
            postgresql_include=["content_length"],
        ),
        Index(
            "idx_post_published",
            "published_at",
            postgresql_where=text("published_at IS NOT NULL"),
        ),
        CheckConstraint("views >= 0", name="views_not_negative"),
        {"comment": "blog posts"},
    )

    id: Mapped[int] = mapped_column(primary_key=True, comment="surrogate key")
    title: Mapped[str] = mapped_column(String(255), comment="headline, 1 to 255 characters")
    content: Mapped[str | None] = mapped_column(Text, comment="body text; null for an empty draft")
    author_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True, comment="the writing user"
    )
    created_at: Mapped[datetime] = mapped_column(
        server_default=func.now(), comment="when the post was written (UTC)"
    )
    updated_at: Mapped[datetime | None] = mapped_column(
        onupdate=func.now(), comment="last change through the ORM (UTC)"
    )
    published_at: Mapped[datetime | None] = mapped_column(
        comment="when it went public (UTC); null for drafts"
    )
    views: Mapped[int | None] = mapped_column(Integer, comment="page views; null where not tracked")
    # Stored, so aggregations need not detoast ~430 MB of text; deferred (and raising if read
    # unloaded) so select(Post) and the frames keep their columns and no access does hidden IO.
    content_length: Mapped[int | None] = mapped_column(
        Integer,
        Computed("length(content)", persisted=True),
        deferred=True,
        deferred_raiseload=True,
        comment="characters of content, kept by PostgreSQL (generated); null when content is",
    )

    author: Mapped[User] = relationship(back_populates="posts", lazy="raise")
    tags: Mapped[list[Tag]] = relationship(
        secondary=post_tags,
        back_populates="posts",
        lazy="raise",
        passive_deletes=True,
        order_by="Tag.name",  # a post's tags always come back in the same order
    )


class Tag(Base):
    """A label that posts carry; names are stored trimmed and lower-case."""

    __tablename__ = "tags"
    __repr_attrs__ = ("id", "name")
    __table_args__ = ({"comment": "post labels"},)

    id: Mapped[int] = mapped_column(primary_key=True, comment="surrogate key")
    name: Mapped[str] = mapped_column(String(50), unique=True, comment="lower-case label, unique")

    posts: Mapped[list[Post]] = relationship(
        secondary=post_tags, back_populates="tags", lazy="raise", passive_deletes=True
    )


class Account(Base):
    """A money account owned by a user, for the transfer pattern."""

    __tablename__ = "accounts"
    __repr_attrs__ = ("id", "owner_id", "balance")
    __table_args__ = (
        # numeric admits 'NaN', and 'NaN' >= 0 is true: refuse it by name (migration 0003).
        CheckConstraint("balance >= 0 AND balance <> 'NaN'", name="balance_not_negative"),
        {"comment": "money accounts; balances in exact decimal"},
    )

    id: Mapped[int] = mapped_column(primary_key=True, comment="surrogate key")
    owner_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True, comment="the owning user"
    )
    balance: Mapped[Decimal] = mapped_column(
        Numeric(12, 2),
        default=Decimal("0.00"),
        server_default=text("0"),
        comment="exact amount, never negative",
    )
    created_at: Mapped[datetime] = mapped_column(
        server_default=func.now(), comment="when the account was opened (UTC)"
    )

    owner: Mapped[User] = relationship(back_populates="accounts", lazy="raise")
