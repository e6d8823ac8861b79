"""Notebook 09's exercise check: an index on ``users.role`` serves the rare admins only."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from blogdata.bulk import insert_hashed_users
from blogdata.diagnostics import explain, plan_nodes
from blogdata.errors import ExerciseError
from blogdata.models import User
from blogdata.notebook.exercises import check_exercise_09

SOLUTION = {"admin": True, "reader": False}


def _users(count: int, role: str) -> list[dict[str, Any]]:
    return [
        {"email": f"{role}{i}@example.com", "username": f"{role}{i}", "hashed_password": "-",
         "role": role}
        for i in range(count)
    ]  # fmt: skip


@pytest.fixture
async def big_users(db: AsyncSession) -> AsyncSession:
    """10,000 readers and 5 admins, analysed, in the test's rolled-back transaction."""
    await insert_hashed_users(db, _users(10_000, "reader") + _users(5, "admin"))
    await db.execute(text("ANALYZE users"))
    return db


async def _index_role(db: AsyncSession) -> None:
    await db.execute(text("CREATE INDEX ix_users_role ON users (role)"))
    await db.execute(text("ANALYZE users"))


async def uses_index(db: AsyncSession, role: str) -> bool:
    """The notebook's solution."""
    plan = await explain(db, select(User).where(User.role == role))
    return any("Index" in node for node in plan_nodes(plan))


async def index_exists(db: AsyncSession, role: str) -> bool:
    """Right for some roles, wrong technique: asks whether an index exists, not the plan."""
    found = await db.scalar(text("SELECT count(*) FROM pg_indexes WHERE tablename = 'users'"))
    return bool(found)


async def from_the_prompt(db: AsyncSession, role: str) -> bool:
    """Right value, wrong technique: the expected answer written in, no plan read."""
    return SOLUTION.get(role, True)


async def as_text(db: AsyncSession, role: str) -> str:
    plan = await explain(db, select(User).where(User.role == role))
    return " ".join(plan_nodes(plan))


async def test_check_09_accepts_the_solution(
    big_users: AsyncSession, capsys: pytest.CaptureFixture[str]
) -> None:
    await _index_role(big_users)
    await check_exercise_09(uses_index, big_users)
    assert "your function read the plan: the index on role (ix_users_role)" in (
        capsys.readouterr().out
    )


async def test_check_09_rejects_the_right_function_when_there_is_no_index(
    big_users: AsyncSession,
) -> None:
    with pytest.raises(ExerciseError, match="users.role has no index yet"):
        await check_exercise_09(uses_index, big_users)


async def test_check_09_rejects_the_dict_typed_in(big_users: AsyncSession) -> None:
    await _index_role(big_users)
    with pytest.raises(ExerciseError, match="not your async function.*cannot pass"):
        await check_exercise_09(SOLUTION, big_users)


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        pytest.param(from_the_prompt, "without asking PostgreSQL for a plan", id="written-in"),
        pytest.param(index_exists, "without asking PostgreSQL for a plan", id="index-exists"),
        pytest.param(as_text, "return True or False", id="text"),
    ],
)
async def test_check_09_rejects_a_wrong_function_with_a_hint(
    big_users: AsyncSession, answer: Any, hint: str
) -> None:
    await _index_role(big_users)
    with pytest.raises(ExerciseError, match=hint):
        await check_exercise_09(answer, big_users)


async def test_check_09_rejects_a_function_that_reads_the_plan_wrongly(
    big_users: AsyncSession,
) -> None:
    async def any_scan(db: AsyncSession, role: str) -> bool:
        plan = await explain(db, select(User).where(User.role == role))
        return any("Scan" in node for node in plan_nodes(plan))

    await _index_role(big_users)
    with pytest.raises(ExerciseError, match="role == 'reader'.*Seq Scan"):
        await check_exercise_09(any_scan, big_users)


async def test_check_09_asks_for_analyze_when_the_planner_cannot_tell_rare_from_common(
    db: AsyncSession,
) -> None:
    # Never analysed: without statistics both values get the same estimate, so the same plan.
    await insert_hashed_users(db, _users(10_000, "reader") + _users(5, "admin"))
    await db.execute(text("CREATE INDEX ix_users_role ON users (role)"))
    with pytest.raises(ExerciseError, match="run ANALYZE"):
        await check_exercise_09(uses_index, db)
