"""Notebook 04's exercise check: ``keyset_pages(db, word, per_page)``, one keyset query a page."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from blogdata.errors import ExerciseError
from blogdata.models import Post
from blogdata.notebook.exercises import check_exercise_04
from blogdata.queries import Keyset, paginate, posts_page

Pages = list[list[int]]


async def keyset_pages(db: AsyncSession, word: str, per_page: int) -> Pages:
    """The notebook's solution."""
    pages: Pages = []
    after = None
    while True:
        stmt = posts_page(after=after, limit=per_page).where(Post.title.ilike(f"%{word}%"))
        rows = (await db.scalars(stmt)).all()
        if rows:
            pages.append([p.id for p in rows])
        if len(rows) < per_page:
            return pages
        after = Keyset(rows[-1].created_at, rows[-1].id)


async def with_offset(db: AsyncSession, word: str, per_page: int) -> Pages:
    """Right value, wrong technique: OFFSET pages."""
    pages: Pages = []
    newest = select(Post).where(Post.title.ilike(f"%{word}%"))
    newest = newest.order_by(Post.created_at.desc(), Post.id.desc())
    while True:
        stmt = paginate(newest, skip=len(pages) * per_page, limit=per_page)
        rows = (await db.scalars(stmt)).all()
        if rows:
            pages.append([p.id for p in rows])
        if len(rows) < per_page:
            return pages


async def chunked_in_python(db: AsyncSession, word: str, per_page: int) -> Pages:
    """Right value, wrong technique: one query for every match, cut into pages in Python."""
    stmt = select(Post.id).where(Post.title.ilike(f"%{word}%"))
    ids = (await db.scalars(stmt.order_by(Post.created_at.desc(), Post.id.desc()))).all()
    return [list(ids[i : i + per_page]) for i in range(0, len(ids), per_page)]


async def case_sensitive(db: AsyncSession, word: str, per_page: int) -> Pages:
    pages: Pages = []
    after = None
    while True:
        stmt = posts_page(after=after, limit=per_page).where(Post.title.like(f"%{word}%"))
        rows = (await db.scalars(stmt)).all()
        if rows:
            pages.append([p.id for p in rows])
        if len(rows) < per_page:
            return pages
        after = Keyset(rows[-1].created_at, rows[-1].id)


async def two_a_page(db: AsyncSession, word: str, per_page: int) -> Pages:
    """The prompt's page size written in."""
    return await keyset_pages(db, word, 2)


async def restarts_at_the_top(db: AsyncSession, word: str, per_page: int) -> Pages:
    """Forgets to move the keyset: the first page twice."""
    first = await keyset_pages(db, word, per_page)
    return [first[0], first[0]]


async def test_the_solution_passes(
    seeded_db: AsyncSession, capsys: pytest.CaptureFixture[str]
) -> None:
    await check_exercise_04(keyset_pages, seeded_db)
    assert "keyset pages of 3, one query each" in capsys.readouterr().out


async def test_pages_typed_in_are_refused(seeded_db: AsyncSession) -> None:
    with pytest.raises(ExerciseError, match="not your async function.*cannot pass"):
        await check_exercise_04([[12, 7], [5]], seeded_db)


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        pytest.param(with_offset, "taken with OFFSET", id="offset"),
        pytest.param(chunked_in_python, "cut them into pages in Python", id="chunked"),
        pytest.param(case_sensitive, "found no posts.*any case", id="case-sensitive"),
        pytest.param(two_a_page, "every page holds per_page posts", id="fixed-two"),
        pytest.param(restarts_at_the_top, "appears on two pages", id="no-keyset"),
    ],
)
async def test_wrong_functions_are_refused_with_a_hint(
    seeded_db: AsyncSession,
    answer: Callable[[AsyncSession, str, int], Awaitable[Pages]],
    hint: str,
) -> None:
    with pytest.raises(ExerciseError, match=hint):
        await check_exercise_04(answer, seeded_db)
