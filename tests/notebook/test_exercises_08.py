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


def declared() -> set[str]:
    """The CHECK names the models declare now (named by the metadata's naming convention)."""
    return {
        str(constraint.name)
        for table in Base.metadata.tables.values()
        for constraint in table.constraints
        if isinstance(constraint, CheckConstraint)
    }


DECLARED = declared()  # a list written down once: what a guard must not rely on


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
    return declared() - await conn.run_sync(_database_checks)


async def written_down(conn: AsyncConnection) -> set[str]:
    """Right value today, wrong technique: the declared names frozen in a list."""
    return DECLARED - await conn.run_sync(_database_checks)


async def posts_only(conn: AsyncConnection) -> set[str]:
    """Looks at the posts table only (where the old check dropped its one CHECK)."""
    found = await conn.run_sync(_database_checks, ["posts"])
    return {name for name in declared() if name.startswith("ck_posts")} - found


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
    assert "your function reports exactly them, a CHECK new to the models too" in (
        capsys.readouterr().out
    )
    async with engine.connect() as conn:
        assert await missing_checks(conn) == set()
    assert await migrate.check(engine) == []
    assert declared() == DECLARED  # the check's extra CHECK is gone from the metadata


@pytest.mark.parametrize(
    ("guard", "hint"),
    [
        pytest.param(accounts_only, "over every table of Base.metadata", id="accounts-only"),
        pytest.param(posts_only, "over every table of Base.metadata", id="posts-only"),
        pytest.param(the_wrong_way_round, "over every table of Base.metadata", id="reversed"),
        pytest.param(written_down, "on each call, not from a list written down", id="frozen"),
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
        return declared()

    with pytest.raises(ExerciseError, match="nothing is missing"):
        await check_exercise_08(everything, engine)


async def test_the_check_rejects_the_names_typed_in(engine: AsyncEngine) -> None:
    with pytest.raises(ExerciseError, match="not your async function.*cannot pass"):
        await check_exercise_08({"ck_posts_views_not_negative"}, engine)
