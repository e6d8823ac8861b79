"""Notebook 01's exercise check: a function that exhausts a pool and returns the error."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine

from blogdata.db.engine import create_engine
from blogdata.errors import ExerciseError, PoolExhaustedError
from blogdata.notebook.exercises import check_exercise_01


async def _exhaust(engine: Any, held: int) -> BaseException | None:
    """Hold ``held`` connections of ``engine``, return what one more connect() raises."""
    try:
        async with AsyncExitStack() as stack:
            for _ in range(held):
                await stack.enter_async_context(engine.connect())
            try:
                extra = await engine.connect()
            except Exception as exc:
                return exc
            await extra.close()
            return None
    finally:
        await engine.dispose()


async def third_connection(url: URL, pool_size: int) -> BaseException | None:
    """The notebook's solution."""
    engine = create_engine(url, pool_size=pool_size, max_overflow=0, pool_timeout=0.5)
    return await _exhaust(engine, pool_size)


async def fixed_two(url: URL, pool_size: int) -> BaseException | None:
    """The prompt's numbers written in: ignores pool_size."""
    engine = create_engine(url, pool_size=2, max_overflow=0, pool_timeout=0.5)
    return await _exhaust(engine, 2)


async def with_overflow(url: URL, pool_size: int) -> BaseException | None:
    """Leaves max_overflow at its default: the extra connect succeeds."""
    engine = create_engine(url, pool_size=pool_size, pool_timeout=0.5)
    return await _exhaust(engine, pool_size)


async def plain_sqlalchemy(url: URL, pool_size: int) -> BaseException | None:
    """SQLAlchemy's create_async_engine: its own TimeoutError, no advice."""
    engine = create_async_engine(url, pool_size=pool_size, max_overflow=0, pool_timeout=0.5)
    return await _exhaust(engine, pool_size)


async def built_not_raised(url: URL, pool_size: int) -> BaseException:
    """Runs nothing: returns an exception it made up, with the expected message."""
    return PoolExhaustedError(
        f"timed out within 0.5 s: all {pool_size} pooled and 0 overflow connections are in use."
    )


async def lets_it_raise(url: URL, pool_size: int) -> None:
    """Does not catch the error."""
    engine = create_engine(url, pool_size=pool_size, max_overflow=0, pool_timeout=0.5)
    try:
        async with AsyncExitStack() as stack:
            for _ in range(pool_size):
                await stack.enter_async_context(engine.connect())
            await engine.connect()
    finally:
        await engine.dispose()


async def test_the_solution_passes(database_url: URL, capsys: pytest.CaptureFixture[str]) -> None:
    await check_exercise_01(third_connection, database_url)
    assert capsys.readouterr().out.startswith("✓ PoolExhaustedError after 0.5 s with a pool of 3")


async def test_a_literal_exception_typed_in_is_refused(database_url: URL) -> None:
    typed = PoolExhaustedError("all 2 pooled and 0 overflow connections ... within 0.5 s")
    with pytest.raises(ExerciseError, match="not your async function.*cannot pass"):
        await check_exercise_01(typed, database_url)


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        pytest.param(fixed_two, "pass the pool_size argument", id="right-value-fixed-size"),
        pytest.param(with_overflow, "is max_overflow=0", id="overflow"),
        pytest.param(plain_sqlalchemy, "SQLAlchemy's own pool TimeoutError", id="sqlalchemy"),
        pytest.param(built_not_raised, "never raised", id="made-up"),
        pytest.param(lets_it_raise, "instead of returning it", id="uncaught"),
    ],
)
async def test_wrong_functions_are_refused_with_a_hint(
    database_url: URL, answer: Callable[[URL, int], Awaitable[object]], hint: str
) -> None:
    with pytest.raises(ExerciseError, match=hint):
        await check_exercise_01(answer, database_url)


async def test_a_called_function_is_refused(database_url: URL) -> None:
    with pytest.raises(ExerciseError, match="you called third_connection"):
        await check_exercise_01(third_connection(database_url, 2), database_url)
