"""Notebook 04's exercise check: keyset pages of 2 over the posts whose title says "data"."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from blogdata.errors import ExerciseError
from blogdata.models import Post, User
from blogdata.notebook.exercises import check_exercise_04
from blogdata.queries import Keyset, posts_page

START = datetime(2025, 6, 1, tzinfo=UTC)
TITLES = ["Big Data", "no match", "data pipelines", "Metadata", "other", "raw data", "DATA day"]


async def _blog(db: AsyncSession) -> list[int]:
    """Add posts an hour apart (the last newest); return every matching id, newest first."""
    author = User(email="kim@example.org", username="kim", hashed_password="-")
    db.add_all(
        Post(title=title, author=author, created_at=START + timedelta(hours=hour))
        for hour, title in enumerate(TITLES)
    )
    await db.flush()
    return await _matches(db, Post.title.ilike("%data%"))


async def _matches(db: AsyncSession, condition: ColumnElement[bool]) -> list[int]:
    stmt = posts_page(limit=1000).where(condition)
    return [p.id for p in (await db.scalars(stmt)).all()]


async def _solution(db: AsyncSession) -> list[list[int]]:
    pages: list[list[int]] = []
    after = None
    while True:
        stmt = posts_page(after=after, limit=2).where(Post.title.ilike("%data%"))
        rows = (await db.scalars(stmt)).all()
        pages.append([p.id for p in rows])  # may collect a final empty page
        if len(rows) < 2:
            return pages
        after = Keyset(rows[-1].created_at, rows[-1].id)


async def test_the_solution_passes(db: AsyncSession, capsys: pytest.CaptureFixture[str]) -> None:
    matching = await _blog(db)
    answer = await _solution(db)
    await check_exercise_04(answer, db)
    assert capsys.readouterr().out.startswith(f"✓ {len(matching)} posts in ")
    assert [i for page in answer for i in page] == matching


async def test_a_final_empty_page_is_accepted(
    db: AsyncSession, capsys: pytest.CaptureFixture[str]
) -> None:
    matching = await _blog(db)
    pages = [matching[k : k + 2] for k in range(0, len(matching), 2)]
    await check_exercise_04([*pages, []], db)
    assert capsys.readouterr().out.startswith("✓ ")


async def test_offset_pages_that_repeat_a_post_are_refused(db: AsyncSession) -> None:
    matching = await _blog(db)
    overlapping = [matching[0:2], matching[1:3], matching[3:5]]  # "after" not moved on
    with pytest.raises(ExerciseError, match=f"post {matching[1]} appears on two pages"):
        await check_exercise_04(overlapping, db)


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        pytest.param(lambda m: [m[:2], m[2:4]], "matching posts are missing", id="stopped-early"),
        pytest.param(
            lambda m: [m[::-1][:2], m[::-1][2:4], m[::-1][4:]], "wrong order", id="oldest-first"
        ),
        pytest.param(lambda m: [m[:3], m[3:]], "every page holds 2 posts", id="pages-of-3"),
    ],
)
async def test_plausible_wrong_pages_get_a_hint(
    db: AsyncSession, wrong: Callable[[list[int]], list[list[int]]], hint: str
) -> None:
    matching = await _blog(db)
    with pytest.raises(ExerciseError, match=hint):
        await check_exercise_04(wrong(matching), db)


async def test_a_case_sensitive_search_is_refused(db: AsyncSession) -> None:
    await _blog(db)
    lower_only = await _matches(db, Post.title.like("%data%"))
    pages = [lower_only[k : k + 2] for k in range(0, len(lower_only), 2)]
    with pytest.raises(ExerciseError, match="ilike"):
        await check_exercise_04(pages, db)


async def test_a_flat_list_of_ids_is_refused(db: AsyncSession) -> None:
    matching = await _blog(db)
    with pytest.raises(ExerciseError, match="a list of pages"):
        await check_exercise_04(matching, db)
