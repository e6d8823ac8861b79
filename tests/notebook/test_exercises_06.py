"""Notebook 06's exercise check: a statement that groups, averages and rounds in SQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from blogdata.errors import ExerciseError
from blogdata.loaders import load_frame
from blogdata.models import Post, User
from blogdata.notebook.exercises import check_exercise_06

MEAN = func.avg(func.length(Post.content))


def _per_role(mean: ColumnElement[Any], *, outer: bool = False) -> Select[Any]:
    stmt = select(User.role, func.count(Post.id).label("posts"), mean.label("mean_length"))
    return (
        stmt.join(Post, Post.author_id == User.id, isouter=outer)
        .group_by(User.role)
        .order_by(User.role)
    )


SOLUTION = _per_role(func.round(MEAN, 1))


async def test_the_solution_passes(
    seeded_db: AsyncSession, capsys: pytest.CaptureFixture[str]
) -> None:
    await check_exercise_06(SOLUTION, seeded_db)
    assert "posts, grouped in SQL" in capsys.readouterr().out


async def test_the_frame_typed_in_or_loaded_is_refused(seeded_db: AsyncSession) -> None:
    frame = await load_frame(seeded_db, SOLUTION)  # the old exercise's answer
    with pytest.raises(ExerciseError, match="not to its result.*cannot pass"):
        await check_exercise_06(frame, seeded_db)


async def test_the_rows_grouped_in_pandas_are_refused(seeded_db: AsyncSession) -> None:
    """Right value, wrong technique: the frame pandas grouped, given instead of a statement."""
    rows = await load_frame(
        seeded_db,
        select(User.role, func.length(Post.content).label("n")).join(
            Post, Post.author_id == User.id
        ),
    )
    frame = rows.groupby("role", observed=True)["n"].agg(posts="size", mean_length="mean")
    with pytest.raises(ExerciseError, match="set it to your statement itself"):
        await check_exercise_06(frame.reset_index(), seeded_db)


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        pytest.param(
            select(User.role, func.count(Post.id).label("posts"), MEAN.label("mean_length"))
            .join(Post, Post.author_id == User.id)
            .group_by(User.role, Post.id)
            .order_by(User.role),
            "expected one row per role",
            id="per-post",
        ),
        pytest.param(_per_role(MEAN), "round it to one decimal in SQL", id="not-rounded"),
        pytest.param(
            _per_role(func.round(MEAN, 1), outer=True),
            "write no posts, so they should not appear",
            id="outer-join",
        ),
        pytest.param(
            _per_role(func.round(func.avg(func.length(Post.title)), 1)),
            "average the length of the content",
            id="title-length",
        ),
    ],
)
async def test_wrong_statements_are_refused_with_a_hint(
    seeded_db: AsyncSession, answer: Select[Any], hint: str
) -> None:
    with pytest.raises(ExerciseError, match=hint):
        await check_exercise_06(answer, seeded_db)
