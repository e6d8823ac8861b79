"""Notebook 02's exercise check: the three newest posts with their authors' usernames."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from blogdata.errors import ExerciseError
from blogdata.models import Post
from blogdata.notebook.exercises import check_exercise_02

NEWEST = select(Post).order_by(Post.created_at.desc(), Post.id.desc())
OLDEST = select(Post).order_by(Post.created_at, Post.id)


async def _pairs(db: AsyncSession, stmt: Select[Any]) -> list[tuple[str, str]]:
    posts = (await db.scalars(stmt.options(selectinload(Post.author)).limit(3))).all()
    return [(p.author.username, p.title) for p in posts]


async def test_the_solution_passes(
    seeded_db: AsyncSession, capsys: pytest.CaptureFixture[str]
) -> None:
    await check_exercise_02(await _pairs(seeded_db, NEWEST), seeded_db)
    assert capsys.readouterr().out.startswith("✓ the three newest posts")


async def test_the_oldest_posts_are_refused(seeded_db: AsyncSession) -> None:
    with pytest.raises(ExerciseError, match="three \\*oldest\\* posts"):
        await check_exercise_02(await _pairs(seeded_db, OLDEST), seeded_db)


async def test_the_right_posts_in_the_wrong_order_are_refused(seeded_db: AsyncSession) -> None:
    answer = await _pairs(seeded_db, NEWEST)
    with pytest.raises(ExerciseError, match="in the wrong order"):
        await check_exercise_02(answer[::-1], seeded_db)


async def test_the_wrong_authors_are_refused(seeded_db: AsyncSession) -> None:
    answer = await _pairs(seeded_db, NEWEST)
    wrong = [("someone", title) for _, title in answer]
    with pytest.raises(ExerciseError, match="not every username is that post's author"):
        await check_exercise_02(wrong, seeded_db)


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        pytest.param(
            ["a title", "another", "a third"],
            "list of \\(username, title\\) pairs",
            id="titles-only",
        ),
        pytest.param([("a", "b")], "has 1 pairs", id="one-post"),
    ],
)
async def test_malformed_answers_get_a_hint(
    seeded_db: AsyncSession, answer: object, hint: str
) -> None:
    with pytest.raises(ExerciseError, match=hint):
        await check_exercise_02(answer, seeded_db)
