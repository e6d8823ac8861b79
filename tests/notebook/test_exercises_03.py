"""Notebook 03's exercise check: ``deactivate(db, email)`` commits, then counts in SQL."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from blogdata import crud
from blogdata.errors import ExerciseError
from blogdata.models import User
from blogdata.notebook.exercises import check_exercise_03
from blogdata.schemas import UserUpdate

ACTIVE = select(func.count()).select_from(User).where(User.is_active.is_(True))


def _user(name: str, *, active: bool = True) -> User:
    return User(email=f"{name}@example.org", username=name, hashed_password="-", is_active=active)


@pytest.fixture
async def blog(db: AsyncSession) -> AsyncSession:
    """Ada (deactivated, as the learner's run on her left her), two active users, one inactive."""
    db.add_all([_user("ada", active=False), _user("bea"), _user("cal"), _user("dee", active=False)])
    await db.commit()  # in the test fixture: releases a savepoint of the outer transaction
    return db


async def deactivate(db: AsyncSession, email: str) -> int:
    """The notebook's solution."""
    user = await crud.user.get_by_email(db, email=email)
    assert user is not None
    await crud.user.update(db, db_obj=user, obj_in=UserUpdate(is_active=False))
    await db.commit()
    return int(await db.scalar(ACTIVE) or 0)


async def not_committed(db: AsyncSession, email: str) -> int:
    user = await crud.user.get_by_email(db, email=email)
    assert user is not None
    await crud.user.update(db, db_obj=user, obj_in=UserUpdate(is_active=False))
    return int(await db.scalar(ACTIVE) or 0)


async def always_ada(db: AsyncSession, email: str) -> int:
    """The prompt's user written in: ignores email."""
    return await deactivate(db, "ada@example.org")


async def counted_in_python(db: AsyncSession, email: str) -> int:
    """Right value, wrong technique: loads every user to count the active ones."""
    user = await crud.user.get_by_email(db, email=email)
    assert user is not None
    await crud.user.update(db, db_obj=user, obj_in=UserUpdate(is_active=False))
    await db.commit()
    return sum(u.is_active for u in (await db.scalars(select(User))).all())


async def counted_everyone(db: AsyncSession, email: str) -> int:
    await deactivate(db, email)
    return int(await db.scalar(select(func.count()).select_from(User)) or 0)


async def counted_before(db: AsyncSession, email: str) -> int:
    count = int(await db.scalar(ACTIVE) or 0)
    await deactivate(db, email)
    return count


async def test_the_solution_passes_and_the_user_is_active_again(
    blog: AsyncSession, capsys: pytest.CaptureFixture[str]
) -> None:
    before = await blog.scalar(ACTIVE)
    await check_exercise_03(deactivate, blog)
    assert "committed and counted 1 active users in SQL" in capsys.readouterr().out
    assert await blog.scalar(ACTIVE) == before


async def test_the_count_typed_in_is_refused(blog: AsyncSession) -> None:
    with pytest.raises(ExerciseError, match="not your async function.*cannot pass"):
        await check_exercise_03(2, blog)


async def test_ada_not_yet_deactivated_is_refused(db: AsyncSession) -> None:
    db.add_all([_user("ada"), _user("bea")])
    await db.commit()
    with pytest.raises(ExerciseError, match="Ada is still active: run your function on her"):
        await check_exercise_03(deactivate, db)


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        pytest.param(not_committed, "did not commit", id="not-committed"),
        pytest.param(always_ada, "is still active: find the user by the email", id="always-ada"),
        pytest.param(counted_in_python, "counted in Python", id="counted-in-python"),
        pytest.param(counted_everyone, "every user, active or not", id="everyone"),
        pytest.param(counted_before, "still counts that user", id="counted-before"),
    ],
)
async def test_wrong_functions_are_refused_and_the_user_restored(
    blog: AsyncSession, answer: Callable[[AsyncSession, str], Awaitable[int]], hint: str
) -> None:
    before = await blog.scalar(ACTIVE)
    with pytest.raises(ExerciseError, match=hint):
        await check_exercise_03(answer, blog)
    assert await blog.scalar(ACTIVE) == before
