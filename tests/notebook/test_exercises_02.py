"""Notebook 02's exercise check: ``newest_posts(db, n)``, limited in SQL, authors loaded."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from blogdata.errors import ExerciseError
from blogdata.models import Post, User
from blogdata.notebook.exercises import check_exercise_02

NEWEST = (Post.created_at.desc(), Post.id.desc())


async def newest_posts(db: AsyncSession, n: int) -> list[tuple[str, str]]:
    """The notebook's solution."""
    stmt = select(Post).options(selectinload(Post.author)).order_by(*NEWEST).limit(n)
    return [(p.author.username, p.title) for p in (await db.scalars(stmt)).all()]


async def three_always(db: AsyncSession, n: int) -> list[tuple[str, str]]:
    """The prompt's 3 written in."""
    return await newest_posts(db, 3)


async def oldest(db: AsyncSession, n: int) -> list[tuple[str, str]]:
    stmt = select(Post).options(selectinload(Post.author)).order_by(Post.created_at, Post.id)
    return [(p.author.username, p.title) for p in (await db.scalars(stmt.limit(n))).all()]


async def sorted_in_python(db: AsyncSession, n: int) -> list[tuple[str, str]]:
    """Right value, wrong technique: every post read, the newest picked in Python."""
    posts = (await db.scalars(select(Post).options(selectinload(Post.author)))).all()
    newest = sorted(posts, key=lambda p: (p.created_at, p.id), reverse=True)[:n]
    return [(p.author.username, p.title) for p in newest]


async def one_author_at_a_time(db: AsyncSession, n: int) -> list[tuple[str, str]]:
    """Right value, wrong technique: N+1, each author fetched by its own query."""
    posts = (await db.scalars(select(Post).order_by(*NEWEST).limit(n))).all()
    pairs = []
    for p in posts:
        name = await db.scalar(select(User.username).where(User.id == p.author_id))
        pairs.append((str(name), p.title))
    return pairs


async def no_loader(db: AsyncSession, n: int) -> list[tuple[str, str]]:
    posts = (await db.scalars(select(Post).order_by(*NEWEST).limit(n))).all()
    return [(p.author.username, p.title) for p in posts]


async def test_the_solution_passes(
    seeded_db: AsyncSession, capsys: pytest.CaptureFixture[str]
) -> None:
    await check_exercise_02(newest_posts, seeded_db)
    assert capsys.readouterr().out.startswith("✓ the 4 newest posts with their authors")


async def test_the_value_typed_in_is_refused(seeded_db: AsyncSession) -> None:
    typed = await newest_posts(seeded_db, 3)  # exactly what the old exercise wanted
    with pytest.raises(ExerciseError, match="not your async function.*cannot pass"):
        await check_exercise_02(typed, seeded_db)


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        pytest.param(three_always, "returned 3 pairs: take n posts", id="fixed-three"),
        pytest.param(oldest, "the \\*oldest\\* posts", id="oldest"),
        pytest.param(sorted_in_python, "picked the newest in Python", id="sorted-in-python"),
        pytest.param(one_author_at_a_time, "one query at a time \\(N\\+1\\)", id="n-plus-one"),
        pytest.param(no_loader, "lazy='raise'.*selectinload", id="no-loader"),
    ],
)
async def test_wrong_functions_are_refused_with_a_hint(
    seeded_db: AsyncSession,
    answer: Callable[[AsyncSession, int], Awaitable[object]],
    hint: str,
) -> None:
    with pytest.raises(ExerciseError, match=hint):
        await check_exercise_02(answer, seeded_db)
