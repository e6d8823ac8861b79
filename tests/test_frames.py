"""The analysts' frames against the raw seeded tables."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from blogdata import frames
from blogdata.diagnostics import explain, render_sql
from blogdata.frames import posts_frame, tags_frame, users_frame
from blogdata.loaders import load_frame, stream_frames
from blogdata.models import Post, Tag, User, post_tags
from blogdata.seed import seed

USER_COLUMNS = [
    "id",
    "username",
    "email",
    "full_name",
    "role",
    "is_active",
    "created_at",
    "last_login",
]
POST_COLUMNS = ["id", "title", "author_id", "author", "created_at", "published_at", "views", "tags"]


async def test_users_frame_is_the_users_table_without_password_hashes(
    seeded_db: AsyncSession,
) -> None:
    frame = await users_frame(seeded_db)
    raw = await load_frame(seeded_db, select(User).order_by(User.id))
    assert list(frame.columns) == USER_COLUMNS
    assert "hashed_password" not in frame.columns
    pd.testing.assert_frame_equal(frame, raw[USER_COLUMNS], check_exact=True)


async def test_posts_frame_carries_author_names_and_sorted_tag_lists(
    seeded_db: AsyncSession,
) -> None:
    frame = await posts_frame(seeded_db)
    assert list(frame.columns) == POST_COLUMNS
    posts = await load_frame(seeded_db, select(Post).order_by(Post.id))
    users = await load_frame(seeded_db, select(User.id, User.username))
    links = await load_frame(
        seeded_db, select(post_tags.c.post_id, Tag.name).join(Tag, Tag.id == post_tags.c.tag_id)
    )
    assert frame["id"].tolist() == posts["id"].tolist()
    for column in ("title", "author_id", "created_at", "published_at", "views"):
        pd.testing.assert_series_equal(frame[column], posts[column], check_exact=True)
    author = posts["author_id"].map(users.set_index("id")["username"])
    assert frame["author"].tolist() == author.tolist()
    expected = links.groupby("post_id")["name"].agg(sorted)
    tags = frame.set_index("id")["tags"]
    assert tags[expected.index].tolist() == expected.tolist()
    untagged = tags.drop(expected.index)
    assert len(untagged) > 0 and all(t == [] for t in untagged)


async def test_posts_frame_adds_content_after_the_title_when_asked(
    seeded_db: AsyncSession,
) -> None:
    frame = await posts_frame(seeded_db, content=True)
    assert list(frame.columns) == ["id", "title", "content", *POST_COLUMNS[2:]]
    assert frame["content"].isna().any() and frame["content"].str.len().mean() > 300


async def test_tags_frame_counts_the_posts_of_each_tag(seeded_db: AsyncSession) -> None:
    frame = await tags_frame(seeded_db)
    assert list(frame.columns) == ["id", "name", "posts"]
    links = await load_frame(seeded_db, select(post_tags))
    used = links.groupby("tag_id").size()
    assert frame["posts"].tolist() == frame["id"].map(used).fillna(0).astype(int).tolist()
    assert frame["id"].is_monotonic_increasing


async def test_frames_of_an_empty_blog_are_empty_with_their_columns(db: AsyncSession) -> None:
    assert list((await users_frame(db)).columns) == USER_COLUMNS
    assert (await posts_frame(db)).empty
    await seed(db, users=2, posts_per_user=0, tags=2)
    assert (await tags_frame(db))["posts"].tolist() == [0, 0]


BUILDERS: dict[str, dict[str, Any]] = {
    "users_frame": {},
    "posts_frame": {},
    "posts_frame-content": {"content": True},
    "tags_frame": {},
}


@pytest.mark.parametrize("case", list(BUILDERS), ids=list(BUILDERS))
async def test_each_frame_is_the_load_of_its_builders_select(
    seeded_db: AsyncSession, case: str
) -> None:
    name, kwargs = case.split("-")[0], BUILDERS[case]
    stmt = getattr(frames, f"{name}_query")(**kwargs)
    assert isinstance(stmt, Select)
    frame = await getattr(frames, name)(seeded_db, **kwargs)
    pd.testing.assert_frame_equal(await load_frame(seeded_db, stmt), frame, check_exact=True)
    streamed = [chunk async for chunk in stream_frames(seeded_db, stmt, chunk_size=500)]
    pd.testing.assert_frame_equal(pd.concat(streamed, ignore_index=True), frame, check_exact=True)
    assert render_sql(stmt).startswith("SELECT")
    assert (await explain(seeded_db, stmt))["Plan"]["Plan Rows"] > 0


async def test_a_frames_builder_can_be_narrowed_before_loading(seeded_db: AsyncSession) -> None:
    author = await seeded_db.scalar(select(Post.author_id).order_by(Post.id).limit(1))
    frame = await load_frame(seeded_db, frames.posts_frame_query().where(Post.author_id == author))
    assert list(frame.columns) == POST_COLUMNS
    assert len(frame) > 0 and set(frame["author_id"]) == {author}
    assert len(frame) == await seeded_db.scalar(
        select(func.count()).select_from(Post).where(Post.author_id == author)
    )
