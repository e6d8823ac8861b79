"""Notebook 03's exercise check: Ada deactivated and committed, then the active users counted."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession

from blogdata.db.engine import create_engine
from blogdata.db.sessions import session_scope
from blogdata.errors import ExerciseError
from blogdata.models import User
from blogdata.notebook.exercises import check_exercise_03

ADA = "ada@example.org"


def _user(name: str, *, active: bool = True) -> User:
    return User(email=f"{name}@example.org", username=name, hashed_password="-", is_active=active)


async def _blog_with_ada(db: AsyncSession, *, ada_active: bool) -> int:
    """Add Ada, two active users and an inactive one; return the number of active users."""
    db.add_all(
        [_user("ada", active=ada_active), _user("bea"), _user("cal"), _user("dee", active=False)]
    )
    await db.commit()  # in the test fixture: releases a savepoint of the outer transaction
    count = select(func.count()).select_from(User).where(User.is_active.is_(True))
    return int(await db.scalar(count) or 0)


async def test_the_solution_passes(db: AsyncSession, capsys: pytest.CaptureFixture[str]) -> None:
    active = await _blog_with_ada(db, ada_active=False)
    await check_exercise_03(active, db)
    assert (
        capsys.readouterr().out
        == f"✓ Ada is deactivated for every session, and {active} users are active\n"
    )


async def test_ada_still_active_is_refused(db: AsyncSession) -> None:
    active = await _blog_with_ada(db, ada_active=True)
    with pytest.raises(ExerciseError, match="Ada is still active"):
        await check_exercise_03(active - 1, db)


@pytest.mark.parametrize(
    ("offset", "hint"),
    [
        pytest.param(1, "still counts Ada", id="counted-before-deactivating"),
        pytest.param(2, "every user, active or not", id="no-filter"),
        pytest.param(-1, "not the number of active users", id="off-by-one"),
    ],
)
async def test_wrong_counts_get_a_hint(db: AsyncSession, offset: int, hint: str) -> None:
    active = await _blog_with_ada(db, ada_active=False)  # 2 active, Ada and Dee inactive
    with pytest.raises(ExerciseError, match=hint):
        await check_exercise_03(active + offset, db)


async def test_a_count_that_is_not_a_number_is_refused(db: AsyncSession) -> None:
    await _blog_with_ada(db, ada_active=False)
    with pytest.raises(ExerciseError, match="not str"):
        await check_exercise_03("2", db)


async def test_a_deactivation_that_was_not_committed_is_refused(committed_url: URL) -> None:
    engine = create_engine(committed_url)
    try:
        async with session_scope(engine) as setup:
            await setup.execute(delete(User).where(User.email == ADA))
            setup.add(_user("ada"))
        async with AsyncSession(engine, expire_on_commit=False) as db:
            ada = await db.scalar(select(User).where(User.email == ADA))
            assert ada is not None
            ada.is_active = False
            await db.flush()  # visible in this session only
            with pytest.raises(ExerciseError, match="`await db.commit\\(\\)`"):
                await check_exercise_03(0, db)
    finally:
        async with session_scope(engine) as cleanup:
            await cleanup.execute(delete(User).where(User.email == ADA))
        await engine.dispose()
