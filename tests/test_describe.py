"""describe: the tables of a database, and one table's columns, indexes and foreign keys."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from blogdata.describe import TableDescription, describe
from blogdata.errors import InvalidInputError, NotFoundError


async def test_the_tables_are_listed_with_rows_and_sizes(db: AsyncSession) -> None:
    tables = await describe(db)
    assert list(tables.columns) == ["schema", "name", "estimated_rows", "total_bytes", "total_size"]
    blog = tables[tables["schema"] == "public"]
    expected = {"users", "posts", "tags", "post_tags", "accounts", "alembic_version"}
    assert expected <= set(blog["name"])
    assert tables["total_bytes"].dtype == pd.Int64Dtype() and (blog["total_bytes"] > 0).all()


async def test_a_table_shows_its_columns_indexes_and_foreign_keys(db: AsyncSession) -> None:
    posts = await describe(db, "posts")
    assert isinstance(posts, TableDescription)
    columns = posts.columns.set_index("name")
    assert columns.loc["id", "type"] == "integer" and not columns.loc["id", "nullable"]
    assert columns.loc["published_at", "type"] == "timestamp with time zone"
    assert bool(columns.loc["published_at", "nullable"])
    assert "nextval" in str(columns.loc["id", "default"]) or "identity" in repr(posts).lower()
    assert posts.indexes["primary"].sum() == 1
    assert any("REFERENCES users(id)" in d for d in posts.foreign_keys["definition"])
    assert "foreign keys:" in repr(posts) and "<h5>indexes</h5>" in posts._repr_html_()


async def test_an_unknown_table_suggests_a_close_name(db: AsyncSession) -> None:
    with pytest.raises(NotFoundError, match='did you mean "posts"'):
        await describe(db, "postz")


@pytest.mark.parametrize(
    "name",
    ["posts'; DROP TABLE posts; --", 'bad"name', "a.b.c.d"],
    ids=["quote-injection", "bad-quoting", "too-many-dots"],
)
async def test_a_hostile_name_is_only_ever_a_value(db: AsyncSession, name: str) -> None:
    with pytest.raises(NotFoundError):
        await describe(db, name)
    assert await db.scalar(text("SELECT to_regclass('posts') IS NOT NULL"))  # still there


@pytest.mark.parametrize("name", ["", "  ", "x\x00y", 42], ids=["empty", "blank", "nul", "int"])
async def test_a_name_that_is_not_a_name_is_rejected(db: AsyncSession, name: object) -> None:
    with pytest.raises(InvalidInputError, match="table must be"):
        await describe(db, name)  # type: ignore[call-overload]
    assert await db.scalar(text("SELECT 1")) == 1
