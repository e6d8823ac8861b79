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


async def test_check_09_accepts_the_solution(
    big_users: AsyncSession, capsys: pytest.CaptureFixture[str]
) -> None:
    await _index_role(big_users)
    answer = {}
    for role in ("admin", "reader"):
        plan = await explain(big_users, select(User).where(User.role == role))
        answer[role] = any("Index" in node for node in plan_nodes(plan))
    assert answer == SOLUTION
    await check_exercise_09(answer, big_users)
    assert capsys.readouterr().out.startswith("✓ the index on role (ix_users_role)")


async def test_check_09_rejects_the_right_answer_when_there_is_no_index(
    big_users: AsyncSession,
) -> None:
    with pytest.raises(ExerciseError, match="users.role has no index yet"):
        await check_exercise_09(SOLUTION, big_users)


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        pytest.param({"admin": True, "reader": True}, "role == 'reader'", id="reader-indexed"),
        pytest.param({"admin": False, "reader": False}, "role == 'admin'", id="admin-seq-scan"),
        pytest.param(["admin"], "should be a dict", id="not-a-dict"),
        pytest.param({"admin": "Index Scan", "reader": "Seq Scan"}, "True or False", id="strings"),
    ],
)
async def test_check_09_rejects_a_wrong_answer_with_a_hint(
    big_users: AsyncSession, answer: object, hint: str
) -> None:
    await _index_role(big_users)
    with pytest.raises(ExerciseError, match=hint):
        await check_exercise_09(answer, big_users)


async def test_check_09_asks_for_analyze_when_the_planner_cannot_tell_rare_from_common(
    db: AsyncSession,
) -> None:
    # Never analysed: without statistics both values get the same estimate, so the same plan.
    await insert_hashed_users(db, _users(10_000, "reader") + _users(5, "admin"))
    await db.execute(text("CREATE INDEX ix_users_role ON users (role)"))
    with pytest.raises(ExerciseError, match="run ANALYZE"):
        await check_exercise_09(SOLUTION, db)
