"""Notebook 10's exercise check: a savepoint-joined session's rollback undoes only its own work."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from blogdata.errors import ExerciseError
from blogdata.models import User
from blogdata.notebook.exercises import check_exercise_10

NAMES = ["kept", "dropped"]


async def _by_hand(
    engine: AsyncEngine, *, join: Any = "create_savepoint", roll_back: bool = True
) -> list[str]:
    """Do the exercise as the solution does; return what the session sees."""
    async with engine.connect() as conn:
        outer = await conn.begin()
        db = AsyncSession(bind=conn, join_transaction_mode=join, expire_on_commit=False)
        db.add(User(email="kept@example.com", username="kept", hashed_password="-"))
        await db.commit()
        db.add(User(email="dropped@example.com", username="dropped", hashed_password="-"))
        await db.flush()
        if roll_back:
            await db.rollback()
        seen = sorted(await db.scalars(select(User.username).where(User.username.in_(NAMES))))
        await db.close()
        if outer.is_active:
            await outer.rollback()
    return seen


async def test_check_10_accepts_the_solution(
    engine: AsyncEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = await _by_hand(engine)
    assert answer == ["kept"]
    await check_exercise_10(answer, engine)
    assert capsys.readouterr().out.startswith("✓ the session's rollback() undid only 'dropped'")


async def test_check_10_points_to_create_savepoint_when_the_rollback_undid_everything(
    engine: AsyncEngine,
) -> None:
    answer = await _by_hand(engine, join="conditional_savepoint")  # the default mode
    assert answer == []
    with pytest.raises(ExerciseError, match='join_transaction_mode="create_savepoint"'):
        await check_exercise_10(answer, engine)


async def test_check_10_asks_for_the_rollback_when_dropped_is_still_seen(
    engine: AsyncEngine,
) -> None:
    answer = await _by_hand(engine, roll_back=False)
    assert answer == ["dropped", "kept"]
    with pytest.raises(ExerciseError, match="'dropped' should be gone"):
        await check_exercise_10(answer, engine)


@pytest.mark.parametrize(
    "answer", [pytest.param("kept", id="a-string"), pytest.param([1], id="not-names")]
)
async def test_check_10_rejects_an_answer_that_is_not_a_list_of_names(
    engine: AsyncEngine, answer: object
) -> None:
    with pytest.raises(ExerciseError, match="sorted list of usernames"):
        await check_exercise_10(answer, engine)


async def test_check_10_asks_to_finish_when_the_connection_is_still_open(
    engine: AsyncEngine,
) -> None:
    conn = await engine.connect()
    try:
        with pytest.raises(ExerciseError, match="still checked out"):
            await check_exercise_10(["kept"], engine)
    finally:
        await conn.close()


async def test_check_10_notices_rows_committed_for_everyone(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            insert(User).values(email="kept@example.com", username="kept", hashed_password="-")
        )
    try:
        with pytest.raises(ExerciseError, match=r"\['kept'\] committed for everyone"):
            await check_exercise_10(["kept"], engine)
    finally:
        async with engine.begin() as conn:
            await conn.execute(delete(User).where(User.username.in_(NAMES)))
