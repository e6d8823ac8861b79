"""Notebook 05's exercise check: accepts the solution, rejects plausible wrong statements."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from blogdata.errors import ExerciseError
from blogdata.models import Post, Tag
from blogdata.notebook.exercises import check_exercise_05


async def _tag(db: AsyncSession) -> Select[Tag]:
    """Select the seeded database's first tag (whatever its name), with no loader options."""
    name = await db.scalar(select(Tag.name).order_by(Tag.id).limit(1))
    return select(Tag).where(Tag.name == name)


async def test_the_check_accepts_selectinload_then_joinedload(
    seeded_db: AsyncSession, capsys: pytest.CaptureFixture[str]
) -> None:
    stmt = (await _tag(seeded_db)).options(selectinload(Tag.posts).joinedload(Post.author))
    await check_exercise_05(stmt, seeded_db)
    out = capsys.readouterr().out
    assert out.startswith("✓ tag ")
    assert out.endswith("loaded in 2 statements\n")


@pytest.mark.parametrize(
    ("options", "hint"),
    [
        pytest.param((selectinload(Tag.posts),), "Post.author", id="author-not-loaded"),
        pytest.param((), "Tag.posts", id="posts-not-loaded"),
        pytest.param(
            (selectinload(Tag.posts).selectinload(Post.author),), "3 statements", id="three"
        ),
        pytest.param(
            (joinedload(Tag.posts).joinedload(Post.author),), "one statement", id="joined"
        ),
    ],
)
async def test_the_check_rejects_statements_that_load_too_little_or_too_much(
    seeded_db: AsyncSession, options: tuple[Any, ...], hint: str
) -> None:
    stmt = (await _tag(seeded_db)).options(*options)
    with pytest.raises(ExerciseError, match=hint):
        await check_exercise_05(stmt, seeded_db)


async def test_the_check_rejects_a_result_and_a_statement_for_every_tag(
    seeded_db: AsyncSession,
) -> None:
    stmt = (await _tag(seeded_db)).options(selectinload(Tag.posts).joinedload(Post.author))
    tag = await seeded_db.scalar(stmt)
    with pytest.raises(ExerciseError, match="the statement itself"):
        await check_exercise_05(tag, seeded_db)
    every_tag = select(Tag).options(selectinload(Tag.posts).joinedload(Post.author))
    with pytest.raises(ExerciseError, match="it should return one Tag"):
        await check_exercise_05(every_tag, seeded_db)
