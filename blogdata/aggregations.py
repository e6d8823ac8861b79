"""Counts and group-bys over the blog, computed by PostgreSQL and returned as DataFrames.

Every aggregation is a statement first: ``posts_per_author_query()`` returns the SQLAlchemy
``Select`` that ``posts_per_author(db)`` runs, and so for each ``name``/``name_query`` pair
(builders take the same keyword arguments and check them the same way). Hand a builder's
statement to ``blogdata.notebook.show_sql``, ``blogdata.diagnostics.explain``, ``load_frame`` or
``stream_frames``, or refine it with ``.where()``/``.limit()`` first.

Every function takes the session (or connection) first and runs one statement: the grouping
happens in the database, and only the (small) result travels. Each returns a DataFrame with the
documented columns, in that order, sorted by a documented key with a tie-breaker so the same
data always gives the same frame. Dtypes follow :mod:`blogdata.loaders`: counts are ``Int64``,
names ``string``, timestamps ``datetime64[us, UTC]``, means ``Float64``.

Months are calendar months in UTC, whatever the session's ``TimeZone`` setting. Names are
compared and sorted by code point (``COLLATE "C"``), so the order is the same on every server.

The guide's group-by on ``User.role`` failed because its model had no ``role`` column; here
:func:`users_by_role` runs it on the real column.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import pandas as pd
from sqlalchemy import (
    BigInteger,
    Double,
    Integer,
    Interval,
    Select,
    String,
    case,
    column,
    func,
    literal,
    literal_column,
    select,
    true,
    values,
)
from sqlalchemy.orm import aliased

from blogdata._checks import (
    INT8_MAX,
    MAX_DAYS,
    check_aware_datetime,
    check_count,
    check_days_before,
)
from blogdata._types import Db
from blogdata.errors import InvalidInputError
from blogdata.loaders import load_frame
from blogdata.models import ROLES, Post, Tag, User, post_tags

__all__ = [
    "active_authors",
    "active_authors_query",
    "author_activity",
    "author_activity_query",
    "count_users",
    "count_users_query",
    "posts_per_author",
    "posts_per_author_query",
    "posts_per_month",
    "posts_per_month_query",
    "posts_per_tag",
    "posts_per_tag_query",
    "tag_cooccurrence",
    "tag_cooccurrence_query",
    "top_tags",
    "top_tags_query",
    "users_by_role",
    "users_by_role_query",
]


def count_users_query(*, active: bool | None = None) -> Select[int]:
    """Return the statement behind :func:`count_users`: one row, one column ``users``."""
    if active is not None and not isinstance(active, bool):
        raise InvalidInputError(f"active must be True, False or None, not {active!r}")
    stmt = select(func.count().label("users")).select_from(User)
    if active is not None:
        stmt = stmt.where(User.is_active.is_(active))
    return stmt


async def count_users(db: Db, *, active: bool | None = None) -> int:
    """Return the number of users (only active or inactive ones if ``active`` is given)."""
    count = await db.scalar(count_users_query(active=active))
    return int(count or 0)


def users_by_role_query() -> Select[str, int]:
    """Return the statement behind :func:`users_by_role`: ``role``, ``users``; every known role."""
    roles = values(column("role", String), column("rank", Integer), name="roles").data(
        [(role, rank) for rank, role in enumerate(ROLES)]
    )
    # Group the users first (a handful of rows), then give every known role its count or 0.
    counts = select(User.role, func.count().label("users")).group_by(User.role).subquery()
    return (
        select(roles.c.role.label("role"), func.coalesce(counts.c.users, 0).label("users"))
        .select_from(roles)
        .outerjoin(counts, counts.c.role == roles.c.role)
        .order_by(roles.c.rank)
    )


async def users_by_role(db: Db) -> pd.DataFrame:
    """Count users per role: columns ``role``, ``users``; every known role, least privileged first.

    A role nobody has is listed with 0 users.
    """
    return await load_frame(db, users_by_role_query())


def posts_per_author_query() -> Select[int, str, int]:
    """Return the statement behind :func:`posts_per_author`: posts counted per author."""
    # Count first, join the names after: the count can read the author_id index alone.
    counts = select(Post.author_id, func.count().label("posts")).group_by(Post.author_id).subquery()
    return (
        select(User.id.label("author_id"), User.username.label("username"), counts.c.posts)
        .join(counts, counts.c.author_id == User.id)
        .order_by(counts.c.posts.desc(), User.id)
    )


async def posts_per_author(db: Db) -> pd.DataFrame:
    """Count posts per author: ``author_id``, ``username``, ``posts``; most posts first.

    Only users with at least one post are listed; ties are ordered by ``author_id``.
    """
    return await load_frame(db, posts_per_author_query())


def posts_per_tag_query() -> Select[str, int]:
    """Return the statement behind :func:`posts_per_tag`: ``tag``, ``posts``; unused tags as 0."""
    counts = (
        select(post_tags.c.tag_id, func.count().label("posts"))
        .group_by(post_tags.c.tag_id)
        .subquery()
    )
    posts = func.coalesce(counts.c.posts, 0).label("posts")
    return (
        select(Tag.name.label("tag"), posts)
        .outerjoin(counts, counts.c.tag_id == Tag.id)
        .order_by(posts.desc(), Tag.name.collate("C"))
    )


async def posts_per_tag(db: Db) -> pd.DataFrame:
    """Count posts per tag: ``tag``, ``posts``; most used first, then by name; unused tags as 0."""
    return await load_frame(db, posts_per_tag_query())


def top_tags_query(*, n: int = 10) -> Select[str, int]:
    """Return the statement behind :func:`top_tags`: :func:`posts_per_tag_query`'s first ``n``."""
    check_count(n, "n", minimum=1, maximum=INT8_MAX)
    return posts_per_tag_query().limit(n)


async def top_tags(db: Db, *, n: int = 10) -> pd.DataFrame:
    """Return the ``n`` most used tags: ``tag``, ``posts``; ties broken by name."""
    return await load_frame(db, top_tags_query(n=n))


_MONTH_COLUMNS: dict[str, Any] = {"created_at": Post.created_at, "published_at": Post.published_at}


def posts_per_month_query(
    *, by: Literal["created_at", "published_at"] = "created_at"
) -> Select[datetime, int]:
    """Return the statement behind :func:`posts_per_month`: ``month`` (UTC), ``posts``."""
    if not isinstance(by, str) or by not in _MONTH_COLUMNS:
        raise InvalidInputError(f"by must be 'created_at' or 'published_at', not {by!r}")
    stamp = _MONTH_COLUMNS[by]
    one_month = literal_column("interval '1 month'", Interval)
    # Months are UTC wall-clock timestamps, turned into instants with AT TIME ZONE (timezone()),
    # so the session's TimeZone never matters; one range count per month reads an index alone.
    bounds = select(
        func.date_trunc("month", func.timezone("UTC", func.min(stamp))).label("first_month"),
        func.date_trunc("month", func.timezone("UTC", func.max(stamp))).label("last_month"),
    ).cte("bounds")
    months = (
        select(
            func.generate_series(bounds.c.first_month, bounds.c.last_month, one_month).label(
                "month"
            )
        )
        .where(bounds.c.first_month.is_not(None))
        .cte("months")
    )
    start = func.timezone("UTC", months.c.month)
    posts = (
        select(func.count())
        .select_from(Post)
        .where(stamp >= start, stamp < func.timezone("UTC", months.c.month + one_month))
        .scalar_subquery()
    )
    return select(start.label("month"), posts.label("posts")).order_by(months.c.month)


async def posts_per_month(
    db: Db, *, by: Literal["created_at", "published_at"] = "created_at"
) -> pd.DataFrame:
    """Count posts per calendar month in UTC: ``month`` (its first instant, UTC), ``posts``.

    Every month from the first post's to the last post's is present, with 0 where no post falls;
    no posts give an empty frame. ``by="published_at"`` counts publications (drafts left out).
    """
    return await load_frame(db, posts_per_month_query(by=by))


def active_authors_query(*, days: int, now: datetime) -> Select[int, str, int, datetime]:
    """Return the statement behind :func:`active_authors`: who wrote in the window."""
    check_count(days, "days", minimum=1, maximum=MAX_DAYS)
    check_aware_datetime(now, "now")
    since = check_days_before(now, days)
    recent = (
        select(
            Post.author_id,
            func.count().label("posts"),
            func.max(Post.created_at).label("last_post"),
        )
        .where(Post.created_at > since, Post.created_at <= now)
        .group_by(Post.author_id)
        .subquery()
    )
    return (
        select(
            User.id.label("author_id"),
            User.username.label("username"),
            recent.c.posts,
            recent.c.last_post,
        )
        .join(recent, recent.c.author_id == User.id)
        .order_by(recent.c.posts.desc(), User.id)
    )


async def active_authors(db: Db, *, days: int, now: datetime) -> pd.DataFrame:
    """List authors who wrote a post in the ``days`` before ``now``.

    Columns ``author_id``, ``username``, ``posts`` (in the window), ``last_post``; most posts
    first, then by ``author_id``. The window is ``now - days < created_at <= now``.
    """
    return await load_frame(db, active_authors_query(days=days, now=now))


def tag_cooccurrence_query(*, min_posts: int = 1) -> Select[str, str, int]:
    """Return the statement behind :func:`tag_cooccurrence`: ``tag_a``, ``tag_b``, ``posts``."""
    check_count(min_posts, "min_posts", minimum=1, maximum=INT8_MAX)
    # Group the posts by their set of tags first (one ordered index-only scan, one array per
    # post with two tags or more), count the posts per distinct set, and expand the pairs of the
    # distinct sets only, each weighted by its count: far fewer rows than a self-join of the
    # links. A pair is counted once per set whatever the order of its array (position i with
    # every later position, then least/greatest), so the answer never depends on that order.
    tag_ids = func.array_agg(post_tags.c.tag_id)
    per_post = (
        select(tag_ids.label("tag_ids"))
        .group_by(post_tags.c.post_id)
        .having(func.cardinality(tag_ids) >= 2)
        .subquery("per_post")
    )
    tag_sets = (
        select(per_post.c.tag_ids, func.count().label("weight"))
        .group_by(per_post.c.tag_ids)
        .subquery("tag_sets")
    )
    first = (
        func.unnest(tag_sets.c.tag_ids)
        .table_valued("tag_id", with_ordinality="i")
        .render_derived(name="first_tag")
    )
    later = tag_sets.c.tag_ids[first.c.i + 1 : func.cardinality(tag_sets.c.tag_ids)]
    second = func.unnest(later).table_valued("tag_id").render_derived(name="later_tag")
    x = func.least(first.c.tag_id, second.c.tag_id)
    y = func.greatest(first.c.tag_id, second.c.tag_id)
    weight = func.sum(tag_sets.c.weight)
    pairs = (
        select(x.label("x"), y.label("y"), weight.cast(BigInteger).label("posts"))
        .select_from(tag_sets)
        .join(first, true())
        .join(second, true())
        .group_by(x, y)
        .having(weight >= literal(min_posts))
        .subquery("pairs")
    )
    # Name each pair with the names in code-point order.
    tag_x, tag_y = aliased(Tag, name="tag_x"), aliased(Tag, name="tag_y")
    x_first = tag_x.name.collate("C") < tag_y.name.collate("C")
    tag_a = case((x_first, tag_x.name), else_=tag_y.name).label("tag_a")
    tag_b = case((x_first, tag_y.name), else_=tag_x.name).label("tag_b")
    return (
        select(tag_a, tag_b, pairs.c.posts)
        .join(tag_x, tag_x.id == pairs.c.x)
        .join(tag_y, tag_y.id == pairs.c.y)
        .order_by(pairs.c.posts.desc(), tag_a.collate("C"), tag_b.collate("C"))
    )


async def tag_cooccurrence(db: Db, *, min_posts: int = 1) -> pd.DataFrame:
    """Count posts carrying each pair of tags: ``tag_a``, ``tag_b`` (``tag_a < tag_b``), ``posts``.

    Only pairs on at least ``min_posts`` posts are listed; most frequent first, then by names.
    """
    return await load_frame(db, tag_cooccurrence_query(min_posts=min_posts))


def author_activity_query() -> Select[int, str, str, int, datetime, datetime, float]:
    """Return the statement behind :func:`author_activity`: one row per author."""
    # Integer sum over count in float8: one correctly rounded division, as pandas' mean does.
    mean_length = func.sum(Post.content_length).cast(Double()) / func.nullif(
        func.count(Post.content_length), 0
    )
    # Aggregate posts alone (a parallel scan), then join the 1-per-author rows to their users.
    per_author = (
        select(
            Post.author_id,
            func.count().label("posts"),
            func.min(Post.created_at).label("first_post"),
            func.max(Post.created_at).label("last_post"),
            mean_length.label("mean_length"),
        )
        .group_by(Post.author_id)
        .subquery()
    )
    return (
        select(
            User.id.label("author_id"),
            User.username.label("username"),
            User.role.label("role"),
            per_author.c.posts,
            per_author.c.first_post,
            per_author.c.last_post,
            per_author.c.mean_length,
        )
        .join(per_author, per_author.c.author_id == User.id)
        .order_by(per_author.c.posts.desc(), User.id)
    )


async def author_activity(db: Db) -> pd.DataFrame:
    """Summarise each author's writing, most posts first (ties by ``author_id``).

    Columns: ``author_id``, ``username``, ``role``, ``posts``, ``first_post``, ``last_post``
    (``created_at`` bounds, UTC), ``mean_length`` (mean characters of content, posts without
    content left out; NA if none has content). Only users with at least one post are listed.
    """
    return await load_frame(db, author_activity_query())
