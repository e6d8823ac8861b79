"""Notebook 06's exercise check accepts the solution and explains the plausible mistakes."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from blogdata.errors import ExerciseError
from blogdata.loaders import load_frame
from blogdata.models import Post, User
from blogdata.notebook.exercises import check_exercise_06


def solution(mean: Any = None) -> Select[Any]:
    """The notebook's solution; ``mean`` replaces its mean_length expression."""
    if mean is None:
        mean = func.round(func.avg(func.length(Post.content)), 1)
    return (
        select(User.role, func.count(Post.id).label("posts"), mean.label("mean_length"))
        .join(Post, Post.author_id == User.id)
        .group_by(User.role)
        .order_by(User.role)
    )


async def test_the_check_accepts_the_solution(
    seeded_db: AsyncSession, capsys: pytest.CaptureFixture[str]
) -> None:
    await check_exercise_06(await load_frame(seeded_db, solution()), seeded_db)
    assert capsys.readouterr().out.startswith("✓ 3 roles, 1000 posts")


async def test_the_check_asks_for_the_frame_when_given_the_statement(
    seeded_db: AsyncSession,
) -> None:
    with pytest.raises(ExerciseError, match="load it with"):
        await check_exercise_06(solution(), seeded_db)


async def test_the_check_rejects_readers_brought_in_by_an_outer_join(
    seeded_db: AsyncSession,
) -> None:
    stmt = (
        select(
            User.role,
            func.count(Post.id).label("posts"),
            func.round(func.avg(func.length(Post.content)), 1).label("mean_length"),
        )
        .outerjoin(Post, Post.author_id == User.id)
        .group_by(User.role)
        .order_by(User.role)
    )
    with pytest.raises(ExerciseError, match="readers write no posts"):
        await check_exercise_06(await load_frame(seeded_db, stmt), seeded_db)


async def test_the_check_rejects_an_unrounded_mean(seeded_db: AsyncSession) -> None:
    frame = await load_frame(seeded_db, solution(func.avg(func.length(Post.content))))
    with pytest.raises(ExerciseError, match="round it to one decimal"):
        await check_exercise_06(frame, seeded_db)


async def test_the_check_rejects_a_mean_that_counts_empty_drafts_as_zero(
    seeded_db: AsyncSession,
) -> None:
    zero_for_empty = func.round(func.avg(func.coalesce(func.length(Post.content), 0)), 1)
    frame = await load_frame(seeded_db, solution(zero_for_empty))
    with pytest.raises(ExerciseError, match="avg skips empty drafts"):
        await check_exercise_06(frame, seeded_db)


async def test_the_check_rejects_rows_not_ordered_by_role(seeded_db: AsyncSession) -> None:
    frame = await load_frame(seeded_db, solution().order_by(None).order_by(User.role.desc()))
    with pytest.raises(ExerciseError, match="order the rows by role"):
        await check_exercise_06(frame, seeded_db)


async def test_the_check_names_the_columns_it_wants(seeded_db: AsyncSession) -> None:
    frame = await load_frame(seeded_db, solution())
    with pytest.raises(ExerciseError, match=r"columns \['role', 'posts', 'mean_length'\]"):
        await check_exercise_06(frame.rename(columns={"posts": "count"}), seeded_db)
