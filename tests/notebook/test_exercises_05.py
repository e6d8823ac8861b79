"""Notebook 05's exercise check: ``tag_with_posts(name)`` loads a tag, posts, authors in two."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from blogdata.errors import ExerciseError
from blogdata.models import Post, Tag
from blogdata.notebook.exercises import check_exercise_05


def tag_with_posts(name: str) -> Select[Any]:
    """The notebook's solution."""
    loaders = selectinload(Tag.posts).joinedload(Post.author)
    return select(Tag).where(Tag.name == name).options(loaders)


def one_join(name: str) -> Select[Any]:
    return (
        select(Tag).where(Tag.name == name).options(joinedload(Tag.posts).joinedload(Post.author))
    )


def three_selects(name: str) -> Select[Any]:
    loaders = selectinload(Tag.posts).selectinload(Post.author)
    return select(Tag).where(Tag.name == name).options(loaders)


def no_authors(name: str) -> Select[Any]:
    return select(Tag).where(Tag.name == name).options(selectinload(Tag.posts))


def first_tag(name: str) -> Select[Any]:
    """A statement for another tag than the one asked for."""
    loaders = selectinload(Tag.posts).joinedload(Post.author)
    return select(Tag).order_by(Tag.name.desc()).limit(1).options(loaders)


async def test_the_solution_passes(
    seeded_db: AsyncSession, capsys: pytest.CaptureFixture[str]
) -> None:
    await check_exercise_05(tag_with_posts, seeded_db)
    assert "in 2 statements" in capsys.readouterr().out


async def test_a_statement_typed_in_for_one_tag_is_refused(seeded_db: AsyncSession) -> None:
    name = await seeded_db.scalar(select(Tag.name).order_by(Tag.name).limit(1))
    with pytest.raises(ExerciseError, match="not your function.*cannot pass"):
        await check_exercise_05(tag_with_posts(str(name)), seeded_db)


async def test_an_async_function_is_refused(seeded_db: AsyncSession) -> None:
    async def statement(name: str) -> Select[Any]:
        return tag_with_posts(name)

    with pytest.raises(ExerciseError, match="an async function"):
        await check_exercise_05(statement, seeded_db)


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        pytest.param(one_join, "one statement: a join brought the collection", id="one-join"),
        pytest.param(three_selects, "3 statements; each post has one author", id="three"),
        pytest.param(no_authors, "lazy='raise'.*a loader option for Post.author", id="raise"),
        pytest.param(first_tag, "filter on the name you are given", id="another-tag"),
    ],
)
async def test_wrong_statements_are_refused_with_a_hint(
    seeded_db: AsyncSession, answer: Callable[[str], Select[Any]], hint: str
) -> None:
    with pytest.raises(ExerciseError, match=hint):
        await check_exercise_05(answer, seeded_db)
