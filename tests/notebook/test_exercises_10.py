"""Notebook 10's exercise check: a savepoint-joined session's rollback undoes only its own work."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from blogdata.errors import ExerciseError
from blogdata.models import User
from blogdata.notebook.exercises import check_exercise_10


def _user(name: str) -> User:
    return User(email=f"{name}@example.com", username=name, hashed_password="-")


async def _by_hand(
    engine: AsyncEngine,
    kept: str,
    dropped: str,
    *,
    join: Any = "create_savepoint",
    roll_back_outer: bool = True,
) -> list[str]:
    """Do the exercise as the solution does; return what the session sees."""
    async with engine.connect() as conn:
        outer = await conn.begin()
        db = AsyncSession(bind=conn, join_transaction_mode=join, expire_on_commit=False)
        db.add(_user(kept))
        await db.commit()
        db.add(_user(dropped))
        await db.flush()
        await db.rollback()
        names = select(User.username).where(User.username.in_([kept, dropped]))
        seen = sorted(await db.scalars(names))
        await db.close()
        if outer.is_active:
            await (outer.rollback() if roll_back_outer else outer.commit())
    return seen


async def rollback_keeps_commits(engine: AsyncEngine, kept: str, dropped: str) -> list[str]:
    """The notebook's solution."""
    return await _by_hand(engine, kept, dropped)


async def default_join_mode(engine: AsyncEngine, kept: str, dropped: str) -> list[str]:
    return await _by_hand(engine, kept, dropped, join="conditional_savepoint")


async def commits_the_outer(engine: AsyncEngine, kept: str, dropped: str) -> list[str]:
    return await _by_hand(engine, kept, dropped, roll_back_outer=False)


async def the_prompt_names(engine: AsyncEngine, kept: str, dropped: str) -> list[str]:
    """Ignores the names it is given."""
    await _by_hand(engine, "kept", "dropped")
    return [kept]


async def nothing_rolled_back(engine: AsyncEngine, kept: str, dropped: str) -> list[str]:
    """Right value, wrong technique: never writes dropped, so the rollback undoes nothing."""
    async with engine.connect() as conn:
        outer = await conn.begin()
        db = AsyncSession(bind=conn, join_transaction_mode="create_savepoint")
        db.add(_user(kept))
        await db.flush()
        seen = sorted(await db.scalars(select(User.username).where(User.username == kept)))
        await db.close()
        await outer.rollback()
    return seen


async def leaks_the_connection(engine: AsyncEngine, kept: str, dropped: str) -> list[str]:
    conn = await engine.connect()
    await conn.begin()
    leaked.append(conn)
    return [kept]


leaked: list[Any] = []


async def test_check_10_accepts_the_solution(
    engine: AsyncEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    await check_exercise_10(rollback_keeps_commits, engine)
    assert capsys.readouterr().out.startswith("✓ the session's rollback() undid only the second")


async def test_check_10_refuses_the_names_typed_in(engine: AsyncEngine) -> None:
    with pytest.raises(ExerciseError, match="not your async function.*cannot pass"):
        await check_exercise_10(["kept"], engine)


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        pytest.param(default_join_mode, "should survive the session's rollback", id="default"),
        pytest.param(commits_the_outer, "committed for everyone \\(the check deleted", id="commit"),
        pytest.param(the_prompt_names, "use the names you are given", id="prompt-names"),
        pytest.param(nothing_rolled_back, "1 user\\(s\\) inserted", id="no-rollback"),
    ],
)
async def test_check_10_refuses_wrong_functions_and_leaves_nothing(
    engine: AsyncEngine, answer: Any, hint: str
) -> None:
    with pytest.raises(ExerciseError, match=hint):
        await check_exercise_10(answer, engine)
    async with engine.connect() as conn:
        names = User.username.in_(["kept_by_check", "dropped_by_check", "kept", "dropped"])
        assert (await conn.scalars(select(User.username).where(names))).all() == []


async def test_check_10_refuses_a_connection_left_checked_out(engine: AsyncEngine) -> None:
    try:
        with pytest.raises(ExerciseError, match="1 connection\\(s\\) still checked out"):
            await check_exercise_10(leaks_the_connection, engine)
    finally:
        for conn in leaked:
            await conn.close()
