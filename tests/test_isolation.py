"""The one-transaction-per-test harness: what a test commits is gone for the next one."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from blogdata.models import User


def _user(name: str) -> User:
    return User(email=f"{name}@example.com", username=name, hashed_password="x")


@pytest.mark.parametrize("run", ["first", "second"])
async def test_a_row_committed_in_a_test_is_absent_from_the_next(
    db: AsyncSession, engine: AsyncEngine, run: str
) -> None:
    # Both runs insert the same unique username: the second would fail if the first leaked.
    db.add(_user("isolated"))
    await db.commit()
    assert await db.scalar(select(func.count()).select_from(User)) == 1
    # Another connection cannot see it: the commit only released a savepoint.
    async with engine.connect() as other:
        assert await other.scalar(select(func.count()).select_from(User)) == 0


async def test_rollback_in_code_under_test_only_undoes_its_own_savepoint(db: AsyncSession) -> None:
    db.add(_user("kept"))
    await db.commit()
    db.add(_user("dropped"))
    await db.flush()
    await db.rollback()
    names = (await db.scalars(select(User.username))).all()
    assert names == ["kept"]
