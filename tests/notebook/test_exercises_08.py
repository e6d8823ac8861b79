"""Notebook 08's exercise check: accepts a CHECK-constraint guard, rejects partial ones."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import CheckConstraint, inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from blogdata.db import migrate
from blogdata.errors import ExerciseError
from blogdata.models import Base
from blogdata.notebook.exercises import check_exercise_08

DECLARED: set[str] = {
    str(constraint.name)  # named by the metadata's naming convention
    for table in Base.metadata.tables.values()
    for constraint in table.constraints
    if isinstance(constraint, CheckConstraint)
}


def _database_checks(sync_connection: Connection, tables: Any = None) -> set[str]:
    inspector = inspect(sync_connection)
    names = Base.metadata.tables if tables is None else tables
    return {
        str(check["name"])  # CHECKs here are all named (naming convention)
        for name in names
        for check in inspector.get_check_constraints(name)
    }


async def missing_checks(conn: AsyncConnection) -> set[str]:
    """The notebook's solution: declared CHECK names minus the database's, over every table."""
    return DECLARED - await conn.run_sync(_database_checks)


async def accounts_only(conn: AsyncConnection) -> set[str]:
    """Looks at one table: misses a CHECK dropped from posts."""
    found = await conn.run_sync(_database_checks, ["accounts"])
    return {name for name in DECLARED if name.startswith("ck_accounts")} - found


async def the_wrong_way_round(conn: AsyncConnection) -> set[str]:
    """Database minus models: never reports a missing CHECK."""
    return await conn.run_sync(_database_checks) - DECLARED


async def as_a_list(conn: AsyncConnection) -> list[str]:
    return sorted(await missing_checks(conn))


async def test_the_check_accepts_the_solution_and_leaves_the_constraint_in_place(
    engine: AsyncEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    await check_exercise_08(missing_checks, engine)
    assert capsys.readouterr().out.startswith("✓ with ck_posts_views_not_negative dropped")
    async with engine.connect() as conn:
        assert await missing_checks(conn) == set()
    assert await migrate.check(engine) == []


@pytest.mark.parametrize(
    ("guard", "hint"),
    [
        pytest.param(accounts_only, "the database lacks, over every table", id="one-table"),
        pytest.param(the_wrong_way_round, "the database lacks, over every table", id="reversed"),
        pytest.param(as_a_list, "return a set of names", id="list"),
    ],
)
async def test_the_check_rejects_guards_that_miss_the_dropped_constraint(
    engine: AsyncEngine, guard: Any, hint: str
) -> None:
    with pytest.raises(ExerciseError, match=hint):
        await check_exercise_08(guard, engine)
    async with engine.connect() as conn:
        assert await missing_checks(conn) == set()


async def test_the_check_rejects_a_guard_that_reports_something_at_head(
    engine: AsyncEngine,
) -> None:
    async def everything(conn: AsyncConnection) -> set[str]:
        return set(DECLARED)

    with pytest.raises(ExerciseError, match="nothing is missing"):
        await check_exercise_08(everything, engine)
