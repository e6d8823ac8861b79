"""The blog as DataFrames, for analysts who would rather not write SQL.

``users_frame``, ``posts_frame`` and ``tags_frame`` each run one statement and return one row
per user, post or tag, ordered by id, with the columns listed in their docstrings (dtypes as in
:mod:`blogdata.loaders`: ids and counts ``Int64``, text ``string``, timestamps
``datetime64[us, UTC]``). Password hashes are never included.

Each frame is a statement first: ``users_frame_query()``, ``posts_frame_query(content=...)``
and ``tags_frame_query()`` return the ``Select`` the frame function loads, for ``show_sql``,
``explain``, ``stream_frames`` or a ``.where()`` of your own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Select, func, select

from blogdata._types import Db
from blogdata.errors import InvalidInputError
from blogdata.loaders import load_frame
from blogdata.models import Post, Tag, User, post_tags

__all__ = [
    "posts_frame",
    "posts_frame_query",
    "tags_frame",
    "tags_frame_query",
    "users_frame",
    "users_frame_query",
]


def users_frame_query() -> Select[int, str, str, str | None, str, bool, datetime, datetime | None]:
    """Return the statement behind :func:`users_frame`: users without the password hash."""
    return select(
        User.id,
        User.username,
        User.email,
        User.full_name,
        User.role,
        User.is_active,
        User.created_at,
        User.last_login,
    ).order_by(User.id)


async def users_frame(db: Db) -> pd.DataFrame:
    """Load every user, without the password hash.

    Columns: ``id``, ``username``, ``email``, ``full_name``, ``role``, ``is_active``,
    ``created_at``, ``last_login``.
    """
    return await load_frame(db, users_frame_query())


def posts_frame_query(*, content: bool = False) -> Select[*tuple[Any, ...]]:
    """Return the statement behind :func:`posts_frame`: posts with author and tag names."""
    if not isinstance(content, bool):
        raise InvalidInputError(f"content must be True or False, not {content!r}")
    tag_names = (
        select(Tag.name)
        .join(post_tags, post_tags.c.tag_id == Tag.id)
        .where(post_tags.c.post_id == Post.id)
        .order_by(Tag.name)
        .correlate(Post)
        .scalar_subquery()
    )
    columns: list[Any] = [Post.id, Post.title]
    if content:
        columns.append(Post.content)
    columns += [
        Post.author_id,
        User.username.label("author"),
        Post.created_at,
        Post.published_at,
        Post.views,
        func.array(tag_names).label("tags"),
    ]
    return select(*columns).join(User, User.id == Post.author_id).order_by(Post.id)


async def posts_frame(db: Db, *, content: bool = False) -> pd.DataFrame:
    """Load every post with its author's username and its tags.

    Columns: ``id``, ``title``, (``content`` if asked), ``author_id``, ``author`` (username),
    ``created_at``, ``published_at`` (NaT for drafts), ``views`` (NA where not tracked), ``tags``
    (a Python list of tag names, sorted; empty if none).
    """
    return await load_frame(db, posts_frame_query(content=content))


def tags_frame_query() -> Select[int, str, int]:
    """Return the statement behind :func:`tags_frame`: ``id``, ``name``, ``posts``, by id."""
    return (
        select(Tag.id, Tag.name, func.count(post_tags.c.post_id).label("posts"))
        .outerjoin(post_tags, post_tags.c.tag_id == Tag.id)
        .group_by(Tag.id)
        .order_by(Tag.id)
    )


async def tags_frame(db: Db) -> pd.DataFrame:
    """Load every tag with how many posts carry it: ``id``, ``name``, ``posts``."""
    return await load_frame(db, tags_frame_query())
